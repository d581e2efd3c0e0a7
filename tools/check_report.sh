#!/usr/bin/env bash
# Opens a `vae-gpu report` page in headless Chromium (from file://, as a reader would) and checks
# that its explorer script ran: the DOM after the script must contain the elements it creates
# (#explore-plane, #explore-nearest, #explore-decoded when the model has a 2-D latent) and
# data-ready="1" on #explore. With a second argument it also saves a screenshot.
#
#   tools/check_report.sh REPORT_DIR [SCREENSHOT.png]
#
# Needs Chromium (Debian: apt-get install -y chromium). Exits 0 on PASS, 1 on FAIL, 2 on bad usage.
set -uo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 REPORT_DIR [SCREENSHOT.png]" >&2
  exit 2
fi
dir=$(cd "$1" 2>/dev/null && pwd) || { echo "FAIL: $1 is not a directory" >&2; exit 1; }
page="$dir/index.html"
[ -f "$page" ] || { echo "FAIL: no index.html in $dir (run vae-gpu report --out $1)" >&2; exit 1; }
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$chrome" ] || { echo "FAIL: Chromium not found; apt-get install -y chromium" >&2; exit 1; }

profile=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$profile" "$log" "$log.dom"' EXIT
# The flags keep a headless root Chromium from reaching for the network or a GPU.
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$profile" --virtual-time-budget=5000
       --enable-logging=stderr --v=0)

"$chrome" "${flags[@]}" --dump-dom "file://$page" >"$log.dom" 2>"$log"

fail() {
  echo "FAIL: $1"
  # Headless Chromium logs D-Bus, VA-API and sandbox complaints on every start; leave them out.
  echo "--- Chromium log (console messages and errors) ---"
  grep -vF -e 'dbus' -e 'D-Bus' -e 'vaapi' -e 'sandbox' -e 'idle_linux' -e "$chrome: " "$log" | tail -n 20
  exit 1
}
# The script's own message when it refused the data, e.g. "explorer unavailable: ...".
said=$(grep -o 'id="explore-status"[^>]*>[^<]*' "$log.dom" | sed 's/.*>//')
grep -q 'id="explore"' "$log.dom" || fail "the page has no <div id=\"explore\">"
grep -q 'id="explore-plane"' "$log.dom" ||
  fail "the page has no #explore-plane: ${said:-explore.js did not run (is explore.js beside index.html?)}"
grep -q 'id="explore-nearest"' "$log.dom" || fail "no #explore-nearest view"
grep -q 'data-ready="1"' "$log.dom" || fail "#explore never became ready: ${said:-no status}"
# Does the page's data carry a decoded lattice (2-D latent)? serde writes "lattice":null otherwise.
has_lattice() { grep -Eq '"lattice"[[:space:]]*:[[:space:]]*\{' "$dir/explore_data.js"; }
if has_lattice; then
  grep -q 'id="explore-decoded"' "$log.dom" || fail "a 2-D model's page has no #explore-decoded view"
fi
if grep -q "Uncaught" "$log"; then
  fail "a script error: $(grep -m1 Uncaught "$log")"
fi

# Interaction: a harness page beside copies of the two scripts moves a synthetic pointer onto the
# first test point and records what the views then say.
cp "$dir/explore_data.js" "$dir/explore.js" "$profile/"
cat >"$profile/hover.html" <<'HTML'
<!doctype html><html><head><meta charset="utf-8"></head><body><div id="explore"></div><pre id="hover-result"></pre>
<script src="explore_data.js"></script><script src="explore.js"></script>
<script>
  var plane = document.getElementById("explore-plane"), out = document.getElementById("hover-result");
  var d = window.VAE_EXPLORE.scatter, i = Math.floor(d.x.length / 2);
  // Find the pixel of test point i by scanning the plane's mapping through a probe event.
  var r = plane.getBoundingClientRect();
  function moveTo(px, py) {
    plane.dispatchEvent(new PointerEvent("pointermove", { clientX: r.left + px, clientY: r.top + py, bubbles: true }));
  }
  var best = null;
  for (var py = 0; py < plane.height && !best; py += 4) {
    for (var px = 0; px < plane.width && !best; px += 4) {
      moveTo(px, py);
      var c = document.getElementById("explore-nearest-caption").textContent;
      if (c.indexOf("#" + i + ",") >= 0) { best = [px, py]; }
    }
  }
  var dec = document.getElementById("explore-decoded-caption");
  out.textContent = "nearest: " + document.getElementById("explore-nearest-caption").textContent +
    " | decoded: " + (dec ? dec.textContent : "none") + " | found point " + i + ": " + (best !== null);
</script></body></html>
HTML
"$chrome" "${flags[@]}" --dump-dom "file://$profile/hover.html" >"$log.dom" 2>>"$log"
hover=$(grep -o 'id="hover-result">[^<]*' "$log.dom" | sed 's/.*>//')
case "$hover" in
  *"found point"*": true"*) ;;
  *) fail "hovering did not reach a test point's image (harness said: ${hover:-nothing})" ;;
esac
if has_lattice; then
  case "$hover" in
    *"decoded: decoder mean at z = ("*) ;;
    *) fail "hovering did not update the decoded view (harness said: $hover)" ;;
  esac
fi
status=$(grep -o 'id="explore-status"[^>]*>[^<]*' "$log.dom" | sed 's/.*>//')
echo "PASS: $page ($status; hover: $hover)"

if [ $# -eq 2 ]; then
  shot=$(realpath -m "$2")
  "$chrome" "${flags[@]}" --hide-scrollbars --window-size=1200,1600 \
    --screenshot="$shot" "file://$page" >/dev/null 2>>"$log" || fail "screenshot failed"
  echo "screenshot: $shot"
fi
