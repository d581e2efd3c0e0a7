// vae-gpu report: the explorable latent plane.
//
// Reads `window.VAE_EXPLORE` (written by src/report/explore.rs into explore_data.js beside this file) and
// builds, inside <div id="explore">, a canvas with the test points of the latent plane coloured by
// digit, and beside it the image under the pointer: for a 2-D latent the decoder mean at the
// pointer (bilinear between the four nearest precomputed lattice images), and for any latent the
// test image of the nearest point. Plain JavaScript, no libraries and no network, so the page
// works when opened from file://. When everything is built, #explore gets data-ready="1", which
// tools/check_report.sh looks for in headless Chromium.
(function () {
  "use strict";

  var root = document.getElementById("explore");
  if (!root) {
    return;
  }
  var status = element("p", { id: "explore-status" });
  root.appendChild(status);

  // The tab10 colours of the PNG scatter, so both views read the same.
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var PLANE = 480;      // canvas side in CSS pixels
  var MARGIN = 46;      // room for ticks and axis names
  var ZOOM = 6;         // a 28-pixel digit drawn 168 pixels wide
  var HOVER_PX = 8;     // how close the pointer must be to a test point

  function element(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) {
      e.textContent = text;
    }
    return e;
  }

  function fail(message) {
    status.textContent = "explorer unavailable: " + message;
    status.style.color = "#b00";
  }

  /** base64 → bytes, decoded once. */
  function bytes(b64) {
    var s = atob(b64);
    var out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) {
      out[i] = s.charCodeAt(i);
    }
    return out;
  }

  /** What is wrong with `window.VAE_EXPLORE`, or "" when it has the shape explore.js reads. */
  function malformed(d) {
    var isRange = function (r) {
      return Array.isArray(r) && r.length === 2 && isFinite(r[0]) && isFinite(r[1]) && r[0] < r[1];
    };
    if (!d || typeof d !== "object") { return "window.VAE_EXPLORE is not defined"; }
    if (!(d.side >= 1)) { return "no image side"; }
    if (!Array.isArray(d.axes) || d.axes.length !== 2) { return "no two axis names"; }
    var s = d.scatter;
    if (!s || !Array.isArray(s.x) || !Array.isArray(s.y) || !Array.isArray(s.label) ||
        typeof s.images !== "string") { return "no scatter x, y, label and images"; }
    if (s.x.length === 0 || s.y.length !== s.x.length || s.label.length !== s.x.length) {
      return "scatter arrays of different lengths or none";
    }
    var L = d.lattice;
    if (L && !(L.n >= 2 && isRange(L.z1) && isRange(L.z2) && typeof L.images === "string")) {
      return "a lattice without n >= 2, z1/z2 ranges or images";
    }
    return "";
  }

  // Any surprise in the data (or a browser without some API) ends in a message in #explore-status
  // rather than an uncaught error and a half-built view.
  try {
    build();
  } catch (e) {
    fail("the script stopped: " + (e && e.message ? e.message : String(e)));
  }

  /** Checks the data, builds the plane and the views, and wires the pointer. */
  function build() {
    var data = window.VAE_EXPLORE;
    var problem = malformed(data);
    if (problem) {
      fail("explore_data.js is missing or malformed (" + problem + "); regenerate the report " +
           "with `vae-gpu report`");
      return;
    }
    var side = data.side;
    var pixels = side * side;
    var sc = data.scatter;
    var n = sc.x.length;
    var lattice = data.lattice || null;
    var scatterImages = bytes(sc.images);
    if (scatterImages.length !== n * pixels) {
      fail("the scatter has " + scatterImages.length + " image bytes, expected " + n * pixels);
      return;
    }
    if (lattice) {
      lattice.bytes = bytes(lattice.images);
      if (lattice.bytes.length !== lattice.n * lattice.n * pixels) {
        fail("the lattice has " + lattice.bytes.length + " image bytes, expected " +
             lattice.n * lattice.n * pixels);
        return;
      }
    }

    // ---- layout: the plane on the left, the two image views on the right -------------------
    var row = element("div", { style: "display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap" });
    var plane = element("canvas", { id: "explore-plane", width: PLANE, height: PLANE,
                                    style: "border:1px solid #ccc;cursor:crosshair;touch-action:none" });
    var side_panel = element("div", {});
    row.appendChild(plane);
    row.appendChild(side_panel);
    root.appendChild(row);

    function view(id, title) {
      var box = element("div", { style: "margin-bottom:16px" });
      box.appendChild(element("div", { style: "font-weight:bold" }, title));
      var c = element("canvas", { id: id, width: side * ZOOM, height: side * ZOOM,
                                  style: "border:1px solid #ccc;image-rendering:pixelated;background:#000" });
      var caption = element("div", { id: id + "-caption", style: "font-size:90%;color:#444;min-height:1.2em" });
      box.appendChild(c);
      box.appendChild(caption);
      side_panel.appendChild(box);
      return { canvas: c, caption: caption };
    }
    var decoded = lattice ? view("explore-decoded", "Decoder mean at the pointer") : null;
    var nearest = view("explore-nearest", "Nearest test image");
    side_panel.appendChild(legend());

    function legend() {
      var box = element("div", { id: "explore-legend" });
      box.appendChild(element("div", { style: "font-weight:bold" }, "digit"));
      PALETTE.forEach(function (c, d) {
        var entry = element("span", { style: "display:inline-block;margin-right:10px" });
        entry.appendChild(element("span", { style: "display:inline-block;width:10px;height:10px;" +
                                            "border-radius:5px;margin-right:4px;background:" + c }));
        entry.appendChild(document.createTextNode(String(d)));
        box.appendChild(entry);
      });
      return box;
    }

    // ---- the plane: data ranges, ticks, points ---------------------------------------------
    function range(values, extra) {
      var lo = Infinity, hi = -Infinity;
      values.forEach(function (v) { if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
      (extra || []).forEach(function (v) { lo = Math.min(lo, v); hi = Math.max(hi, v); });
      if (!(lo < hi)) { lo -= 1; hi += 1; }
      var pad = 0.04 * (hi - lo);
      return [lo - pad, hi + pad];
    }
    var xr = range(sc.x, lattice ? lattice.z1 : []);
    var yr = range(sc.y, lattice ? lattice.z2 : []);
    var inner = PLANE - MARGIN - 10;
    function toPx(x, y) {
      return [MARGIN + (x - xr[0]) / (xr[1] - xr[0]) * inner,
              10 + (yr[1] - y) / (yr[1] - yr[0]) * inner];
    }
    function toData(px, py) {
      return [xr[0] + (px - MARGIN) / inner * (xr[1] - xr[0]),
              yr[1] - (py - 10) / inner * (yr[1] - yr[0])];
    }
    function ticks(r) {
      var raw = (r[1] - r[0]) / 6, mag = Math.pow(10, Math.floor(Math.log10(raw)));
      var step = [1, 2, 5, 10].map(function (m) { return m * mag; }).find(function (s) { return s >= raw; });
      var out = [];
      for (var v = Math.ceil(r[0] / step) * step; v <= r[1]; v += step) {
        out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
      }
      return { values: out, digits: Math.max(0, -Math.floor(Math.log10(step))) };
    }

    var ctx = plane.getContext("2d");
    var background = null;   // the drawn plane, restored under the hover marker
    function drawPlane() {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, PLANE, PLANE);
      ctx.strokeStyle = "#999";
      ctx.strokeRect(MARGIN, 10, inner, inner);
      ctx.fillStyle = "#333";
      ctx.font = "11px sans-serif";
      var tx = ticks(xr), ty = ticks(yr);
      ctx.textAlign = "center";
      tx.values.forEach(function (v) {
        var p = toPx(v, yr[0]);
        ctx.fillRect(p[0], 10 + inner, 1, 4);
        ctx.fillText(v.toFixed(tx.digits), p[0], 10 + inner + 15);
      });
      ctx.textAlign = "right";
      ty.values.forEach(function (v) {
        var p = toPx(xr[0], v);
        ctx.fillRect(MARGIN - 4, p[1], 4, 1);
        ctx.fillText(v.toFixed(ty.digits), MARGIN - 6, p[1] + 4);
      });
      ctx.textAlign = "center";
      ctx.font = "13px sans-serif";
      ctx.fillText(data.axes[0], MARGIN + inner / 2, PLANE - 4);
      ctx.save();
      ctx.translate(12, 10 + inner / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(data.axes[1], 0, 0);
      ctx.restore();
      if (lattice) {
        var a = toPx(lattice.z1[0], lattice.z2[1]), b = toPx(lattice.z1[1], lattice.z2[0]);
        ctx.setLineDash([4, 3]);
        ctx.strokeStyle = "#bbb";
        ctx.strokeRect(a[0], a[1], b[0] - a[0], b[1] - a[1]);
        ctx.setLineDash([]);
      }
      ctx.globalAlpha = 0.75;
      for (var i = 0; i < n; i++) {
        var p = toPx(sc.x[i], sc.y[i]);
        ctx.fillStyle = PALETTE[sc.label[i] % 10];
        ctx.beginPath();
        ctx.arc(p[0], p[1], 2.2, 0, 2 * Math.PI);
        ctx.fill();
      }
      ctx.globalAlpha = 1;
      background = ctx.getImageData(0, 0, PLANE, PLANE);
    }

    // ---- the image views ---------------------------------------------------------------------
    /** Paints `side × side` gray levels from `get(k)` (0..255) into a view's canvas. */
    function paint(target, get) {
      var c = target.canvas.getContext("2d");
      var img = c.createImageData(side, side);
      for (var k = 0; k < pixels; k++) {
        var g = get(k);
        img.data[4 * k] = g;
        img.data[4 * k + 1] = g;
        img.data[4 * k + 2] = g;
        img.data[4 * k + 3] = 255;
      }
      // Draw small, then scale up without smoothing: crisp pixels.
      var tmp = document.createElement("canvas");
      tmp.width = side;
      tmp.height = side;
      tmp.getContext("2d").putImageData(img, 0, 0);
      c.imageSmoothingEnabled = false;
      c.drawImage(tmp, 0, 0, side * ZOOM, side * ZOOM);
    }

    /** The decoder mean at (z1, z2): bilinear in the lattice, clamped to its bounds. */
    function showDecoded(z1, z2) {
      var L = lattice, m = L.n - 1;
      var fx = (z1 - L.z1[0]) / (L.z1[1] - L.z1[0]) * m;
      var fy = (z2 - L.z2[0]) / (L.z2[1] - L.z2[0]) * m;
      var outside = fx < 0 || fx > m || fy < 0 || fy > m;
      fx = Math.min(Math.max(fx, 0), m);
      fy = Math.min(Math.max(fy, 0), m);
      var ix = Math.min(Math.floor(fx), m - 1), iy = Math.min(Math.floor(fy), m - 1);
      var tx = fx - ix, ty = fy - iy;
      var at = function (gx, gy) { return (gy * L.n + gx) * pixels; };
      var a = at(ix, iy), b = at(ix + 1, iy), c = at(ix, iy + 1), d = at(ix + 1, iy + 1);
      var B = L.bytes;
      paint(decoded, function (k) {
        return Math.round((B[a + k] * (1 - tx) + B[b + k] * tx) * (1 - ty) +
                          (B[c + k] * (1 - tx) + B[d + k] * tx) * ty);
      });
      decoded.caption.textContent = "decoder mean at z = (" + z1.toFixed(2) + ", " + z2.toFixed(2) + ")" +
        (outside ? " (outside the precomputed lattice, clamped)" : "");
    }

    function showNearest(px, py) {
      var best = -1, bestD = HOVER_PX * HOVER_PX;
      for (var i = 0; i < n; i++) {
        var p = toPx(sc.x[i], sc.y[i]);
        var d = (p[0] - px) * (p[0] - px) + (p[1] - py) * (p[1] - py);
        if (d <= bestD) { best = i; bestD = d; }
      }
      if (best < 0) {
        return -1;
      }
      var off = best * pixels;
      paint(nearest, function (k) { return scatterImages[off + k]; });
      nearest.caption.textContent = "test image #" + best + ", digit " + sc.label[best];
      return best;
    }

    function marker(px, py, point) {
      ctx.putImageData(background, 0, 0);
      ctx.strokeStyle = "#000";
      ctx.beginPath();
      ctx.moveTo(px - 6, py); ctx.lineTo(px + 6, py);
      ctx.moveTo(px, py - 6); ctx.lineTo(px, py + 6);
      ctx.stroke();
      if (point >= 0) {
        var p = toPx(sc.x[point], sc.y[point]);
        ctx.beginPath();
        ctx.arc(p[0], p[1], 5, 0, 2 * Math.PI);
        ctx.stroke();
      }
    }

    function onPointer(ev) {
      var r = plane.getBoundingClientRect();
      var px = (ev.clientX - r.left) * PLANE / r.width, py = (ev.clientY - r.top) * PLANE / r.height;
      var z = toData(px, py);
      if (lattice) {
        showDecoded(z[0], z[1]);
      }
      marker(px, py, showNearest(px, py));
      ev.preventDefault();
    }

    drawPlane();
    plane.addEventListener("pointermove", onPointer);
    plane.addEventListener("pointerdown", onPointer);
    // Start with something to look at: the centre of the plane and the first test image.
    var centre = toPx((xr[0] + xr[1]) / 2, (yr[0] + yr[1]) / 2);
    if (lattice) {
      showDecoded((xr[0] + xr[1]) / 2, (yr[0] + yr[1]) / 2);
    }
    var first = toPx(sc.x[0], sc.y[0]);
    marker(centre[0], centre[1], showNearest(first[0], first[1]));   // and ring that point
    status.textContent = "ready: " + n + " test points" +
      (lattice ? ", " + lattice.n + "×" + lattice.n + " decoded lattice" :
                 "; no decoded lattice (latent dimension " + data.latent_dim + ")");
    root.dataset.ready = "1";
  }
})();
