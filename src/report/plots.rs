//! PNG figures for the experiments: digit grids, latent scatters and lattices, learning curves,
//! posterior contour plots and densities, histograms, and colour-mapped scatters and fields.
//!
//! Everything is rendered with `plotters` into an in-memory RGB buffer, encoded with `image` and
//! written with [`crate::training::checkpoint::write_atomic`], so a crash never leaves a half-written PNG.
//! Text uses the DejaVu Sans font embedded in the binary (registered with plotters' `ab_glyph`
//! backend), so no system font libraries are needed.
//!
//! Digits are drawn as **white ink on a black tile** (value 1 = white), like the figures in
//! Kingma & Welling (2014). Pixel values are clamped to [0, 1] and NaN is drawn as 0 (black).
//!
//! Nothing here panics on bad input: inconsistent shapes give [`Error::Usage`], rendering or
//! encoding failures give [`Error::Io`] naming the figure.
//!
//! All text (titles, tick labels, legends) goes through `draw_text`, which places glyphs one
//! at a time: plotters' ab_glyph renderer ignores each glyph's left side bearing, which makes
//! strings like "-120" render as "-1 20".

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::FontTransform;

use crate::error::{Error, Result};
use crate::spec::LatentFamily;

/// Side length of an MNIST digit.
const SIDE: usize = 28;
/// Values per digit image.
const PIXELS: usize = SIDE * SIDE;
/// Largest figure side we are willing to allocate; beyond this the input is surely a mistake.
const MAX_PX: u32 = 8192;
/// Figures are laid out to stay roughly this wide when the content allows it.
const TARGET_W: u32 = 1400;
/// Font family name under which the embedded TTF is registered.
const FAMILY: &str = "sans-serif";
/// DejaVu Sans, embedded so rendering works without fontconfig/freetype.
const FONT_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/DejaVuSans.ttf"
));

/// matplotlib's "tab10": ten colours that stay distinguishable for the ten digit classes.
const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const GRID_GRAY: RGBColor = RGBColor(225, 225, 225);
const BORDER_GRAY: RGBColor = RGBColor(150, 150, 150);
const TEXT_GRAY: RGBColor = RGBColor(90, 90, 90);
/// Colour of the true-posterior contours.
const P_COLOR: RGBColor = RGBColor(8, 48, 140);
/// Colour of the approximate-posterior (q) contours.
const Q_COLOR: RGBColor = RGBColor(220, 50, 32);
/// Darkest colour of the posterior heatmap (density = max); zero density is white.
const HEAT_COLOR: (f64, f64, f64) = (150.0, 185.0, 230.0);
/// Mass enclosed by the 1, 2 and 3 sigma ellipse of a 2-D Gaussian: 1 - exp(-k^2 / 2). Both p
/// and q are contoured at the highest-density regions of these masses, so the curves coincide
/// when q = p (for a Gaussian q they are its 1/2/3-sigma ellipses, for a Laplace q diamonds).
const HPD_MASSES: [f64; 3] = [
    0.393_469_340_287_366_6,
    0.864_664_716_763_387_3,
    0.988_891_003_461_758,
];

const TITLE_SIZE: f64 = 22.0;
const CAPTION_SIZE: f64 = 16.0;
const TICK_SIZE: f64 = 13.0;
const DESC_SIZE: f64 = 15.0;
const LEGEND_SIZE: f64 = 13.0;
/// Height reserved for a figure title.
const TITLE_H: u32 = 46;
/// Height reserved for a panel caption.
const CAPTION_H: i32 = 28;
/// Length of axis tick marks.
const TICK_LEN: i32 = 5;
/// Height of the area under a chart for tick labels and the x-axis description.
const X_AREA: i32 = 50;

type Backend<'b> = BitMapBackend<'b>;
type Area<'b> = DrawingArea<Backend<'b>, Shift>;
type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;
type Chart<'a, 'b> = ChartContext<'a, Backend<'b>, Cartesian2d<TickAxis, TickAxis>>;

/// A block of digit images shown as one captioned panel: `rows × cols` tiles in row-major order.
#[derive(Clone, Copy)]
pub struct Panel<'a> {
    pub caption: &'a str,
    pub rows: usize,
    pub cols: usize,
    pub images: &'a [f32],
}

/// One posterior panel: a density on a regular grid plus a diagonal Gaussian to overlay.
#[derive(Clone, Copy)]
pub struct PosteriorPanel<'a> {
    pub caption: &'a str,
    /// log density on the grid, row-major `[ny][nx]`: value at `(x_min + j*dx, y_min + i*dy)`
    pub log_density: &'a [f64],
    pub nx: usize,
    pub ny: usize,
    pub x_min: f64,
    pub y_min: f64,
    pub dx: f64,
    pub dy: f64,
    /// q with independent coordinates: its family, location and scale per axis (σ for a
    /// Gaussian, b for a Laplace)
    pub q_family: LatentFamily,
    pub q_mean: [f64; 2],
    pub q_scale: [f64; 2],
    /// optional digit (784 values) shown small in the top-left corner of the panel
    pub digit: Option<&'a [f32]>,
    /// legend label for the grid posterior's contours, e.g. "p(z|x) (grid)"
    pub p_label: &'a str,
    /// legend label for the Gaussian's ellipses, e.g. "q(z|x)"
    pub q_label: &'a str,
}

/// A scalar field sampled on a regular grid, row-major `[ny][nx]`: value at
/// `(x_min + j*dx, y_min + i*dy)`.
#[derive(Clone, Copy)]
pub struct FieldGrid<'a> {
    pub values: &'a [f64],
    pub nx: usize,
    pub ny: usize,
    pub x_min: f64,
    pub y_min: f64,
    pub dx: f64,
    pub dy: f64,
}

/// One panel of [`density_panels`]: two 1-D densities of the same latent on shared points `z`.
#[derive(Clone, Copy)]
pub struct DensityPanel<'a> {
    pub caption: &'a str,
    pub z: &'a [f64],
    /// the grid (true) posterior p(z|x) at each `z`
    pub p: &'a [f64],
    /// the approximate posterior q(z|x) at each `z`
    pub q: &'a [f64],
    /// legend label for `p`, e.g. "p(z|x) (grid)"
    pub p_label: &'a str,
    /// legend label for `q`, e.g. "q(z|x)"
    pub q_label: &'a str,
}

// ---------------------------------------------------------------------------------------------
// Infrastructure: font, buffer, PNG, digit blitting
// ---------------------------------------------------------------------------------------------

/// Registers the embedded font once per process; plotters' ab_glyph backend has no fallback.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Io(
            "embedded font assets/DejaVuSans.ttf could not be parsed".into(),
        ))
    }
}

/// A digit to copy into the finished bitmap at pixel (x, y), each digit pixel `scale` px wide.
/// Done after plotters has finished so tiles are exact, fast and never covered by chart lines.
struct Blit<'a> {
    x: i64,
    y: i64,
    scale: u32,
    img: &'a [f32],
}

/// The colour of a pixel value: grey levels for [0, 1], and NaN — the marker of an unobserved
/// pixel in SVI and posterior figures — as a dark blue tint, so a reader sees at once which
/// pixels the model was not given (black would read as observed background).
fn pixel_rgb(v: f32) -> [u8; 3] {
    if v.is_nan() {
        return UNOBSERVED_TINT;
    }
    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [g, g, g]
}

/// How unobserved (NaN) pixels are drawn.
pub const UNOBSERVED_TINT: [u8; 3] = [38, 62, 128];

/// Copies one digit (white ink on black, row 0 at the top) into an RGB buffer, clipped.
fn blit_digit(buf: &mut [u8], w: u32, h: u32, b: &Blit) {
    let s = i64::from(b.scale.max(1));
    for r in 0..SIDE {
        for c in 0..SIDE {
            let g = pixel_rgb(b.img.get(r * SIDE + c).copied().unwrap_or(0.0));
            for dy in 0..s {
                let y = b.y + r as i64 * s + dy;
                if y < 0 || y >= i64::from(h) {
                    continue;
                }
                for dx in 0..s {
                    let x = b.x + c as i64 * s + dx;
                    if x < 0 || x >= i64::from(w) {
                        continue;
                    }
                    let o = ((y * i64::from(w) + x) * 3) as usize;
                    if let Some(px) = buf.get_mut(o..o + 3) {
                        px.copy_from_slice(&g);
                    }
                }
            }
        }
    }
}

/// Renders a `w × h` figure with `draw`, pastes the digit tiles it returns, encodes PNG and
/// writes it atomically. All rendering errors become `Error::Io` naming `fig`.
fn render<'a, F>(path: &Path, fig: &str, w: u32, h: u32, draw: F) -> Result<()>
where
    F: FnOnce(&Area<'_>) -> DrawResult<Vec<Blit<'a>>>,
{
    ensure_font()?;
    if w == 0 || h == 0 || w > MAX_PX || h > MAX_PX {
        return Err(Error::Usage(format!(
            "{fig}: figure would be {w}×{h} px (limit {MAX_PX}×{MAX_PX}); too many images or panels"
        )));
    }
    let render_err =
        |e: Box<dyn std::error::Error>| Error::Io(format!("{fig}: rendering failed: {e}"));
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    let blits = {
        let backend = BitMapBackend::with_buffer_and_format(&mut buf, (w, h))
            .map_err(|e| Error::Io(format!("{fig}: cannot create bitmap: {e}")))?;
        let root = backend.into_drawing_area();
        let blits = draw(&root).map_err(render_err)?;
        root.present().map_err(|e| render_err(e.into()))?;
        blits
    };
    for b in &blits {
        blit_digit(&mut buf, w, h, b);
    }
    let png = encode_png(&buf, w, h)
        .map_err(|e| Error::Io(format!("{fig}: PNG encoding failed: {e}")))?;
    crate::training::checkpoint::write_atomic(path, &png)
}

fn encode_png(buf: &[u8], w: u32, h: u32) -> std::result::Result<Vec<u8>, image::ImageError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        buf,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

fn font_desc(size: f64) -> FontDesc<'static> {
    (FAMILY, size).into_font()
}

/// Longest text we lay out; more could not fit any figure and would make layout slow.
const MAX_TEXT_CHARS: usize = 200;

/// `text`, cut to `MAX_TEXT_CHARS` characters (ending in "…") if longer.
fn clip_text(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((i, _)) => std::borrow::Cow::Owned(format!("{}…", text.get(..i).unwrap_or(""))),
    }
}

/// Width the title needs, capped: an over-long title is clipped rather than widening the
/// figure without bound.
fn title_width(title: &str) -> u32 {
    (px_i(text_width(title, TITLE_SIZE)) + 32).min(TARGET_W)
}

/// Advance width of `text` in pixels (a rough estimate if the font cannot measure it).
fn text_width(text: &str, size: f64) -> i32 {
    let text = clip_text(text);
    match font_desc(size).box_size(&text) {
        Ok((w, _)) => i32::try_from(w).unwrap_or(i32::MAX / 4),
        Err(_) => (text.chars().count() as f64 * size * 0.6) as i32,
    }
}

/// Ink that plotters draws for `s` at the origin: (right edge, top, bottom) in pixels.
fn ink_extent(fd: &FontDesc, s: &str) -> Option<(i32, i32, i32)> {
    let (mut right, mut top, mut bottom) = (i32::MIN, i32::MAX, i32::MIN);
    let drawn = fd.draw(s, (0, 0), |x, y, coverage| {
        if coverage > 0.0 {
            right = right.max(x + 1);
            top = top.min(y);
            bottom = bottom.max(y + 1);
        }
        Ok::<(), ()>(())
    });
    match drawn {
        Ok(Ok(())) if right > i32::MIN => Some((right, top, bottom)),
        _ => None,
    }
}

/// How to place a piece of text relative to its anchor point.
#[derive(Clone, Copy)]
struct Txt {
    size: f64,
    color: RGBColor,
    h: HPos,
    v: VPos,
    /// Rotated to read bottom-to-top (for y-axis descriptions).
    vertical: bool,
}

impl Txt {
    fn new(size: f64, h: HPos, v: VPos) -> Self {
        Txt {
            size,
            color: BLACK,
            h,
            v,
            vertical: false,
        }
    }

    fn color(self, color: RGBColor) -> Self {
        Txt { color, ..self }
    }

    fn vertical(self) -> Self {
        Txt {
            vertical: true,
            ..self
        }
    }
}

/// Draws `text` anchored at `(x, y)` of `area`. VPos::Top/Center/Bottom refer to the top,
/// middle and baseline of capital letters, so text sits where it is asked to.
///
/// Glyphs are drawn one at a time, each centred in its advance width: plotters' ab_glyph
/// renderer places every glyph's ink at the pen position (dropping the side bearing), which
/// spaces narrow glyphs like "1" visibly wrong.
fn draw_text(area: &Area<'_>, text: &str, (x, y): (i32, i32), t: Txt) -> DrawResult<()> {
    let text = clip_text(text);
    let text = text.as_ref();
    if text.is_empty() {
        return Ok(());
    }
    let fd = font_desc(t.size);
    let (top, base) = match ink_extent(&fd, "H") {
        Some((_, top, base)) => (top, base),
        None => (0, (t.size * 0.7) as i32),
    };
    let width = text_width(text, t.size);
    let lx0 = match t.h {
        HPos::Left => 0,
        HPos::Center => -width / 2,
        HPos::Right => -width,
    };
    let ly = match t.v {
        VPos::Top => -top,
        VPos::Center => -(top + base) / 2,
        VPos::Bottom => -base,
    };
    let mut style = TextStyle::from(fd.clone()).color(&t.color);
    if t.vertical {
        style = style.transform(FontTransform::Rotate270);
    }
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            continue;
        }
        let (Some(prefix), Some(glyph)) = (text.get(..i), text.get(i..i + c.len_utf8())) else {
            continue;
        };
        let pen = text_width(prefix, t.size);
        let advance = text_width(glyph, t.size);
        let ink = ink_extent(&fd, glyph).map_or(advance, |e| e.0);
        let lx = lx0 + pen + (advance - ink) / 2;
        let pos = if t.vertical {
            (x + ly, y - lx)
        } else {
            (x + lx, y + ly)
        };
        area.draw(&Text::new(glyph, pos, style.clone()))?;
    }
    Ok(())
}

/// Draws a figure title centred at the top of `root`.
fn draw_title(root: &Area<'_>, title: &str, w: u32) -> DrawResult<()> {
    let t = Txt::new(TITLE_SIZE, HPos::Center, VPos::Top);
    draw_text(root, title, (w as i32 / 2, 14), t)
}

/// Draws `caption` centred at the top of `area` and returns the area below it.
fn with_caption<'b>(root: &Area<'b>, area: &Area<'b>, caption: &str) -> DrawResult<Area<'b>> {
    let (xr, yr) = area.get_pixel_range();
    let t = Txt::new(CAPTION_SIZE, HPos::Center, VPos::Top);
    draw_text(root, caption, ((xr.start + xr.end) / 2, yr.start + 8), t)?;
    let (w, h) = area.dim_in_pixel();
    Ok(area
        .clone()
        .shrink((0, CAPTION_H), (w as i32, h as i32 - CAPTION_H)))
}

// ---------------------------------------------------------------------------------------------
// Legends
// ---------------------------------------------------------------------------------------------

/// How a legend entry is marked.
#[derive(Clone, Copy)]
enum Mark {
    Line(RGBColor),
    Dashed(RGBColor),
    Dot(RGBColor),
}

const LEGEND_ROW: i32 = 20;
/// More legend entries than this could not fit any figure; the rest are dropped.
const MAX_LEGEND: usize = 200;
const LEGEND_SWATCH: i32 = 22;

/// Width and height of a legend box, including its title row when it has one.
fn legend_box_size(title: Option<&str>, entries: &[(String, Mark)]) -> (i32, i32) {
    let tw = entries
        .iter()
        .map(|(l, _)| text_width(l, LEGEND_SIZE) + LEGEND_SWATCH + 22)
        .max()
        .unwrap_or(0);
    let title_w = title.map_or(0, |t| text_width(t, LEGEND_SIZE) + 14);
    let rows = entries.len().min(MAX_LEGEND) as i32 + i32::from(title.is_some());
    (tw.max(title_w), rows * LEGEND_ROW + 8)
}

fn draw_mark(root: &Area<'_>, mark: Mark, x: i32, cy: i32) -> DrawResult<()> {
    match mark {
        Mark::Line(c) => root.draw(&PathElement::new(
            vec![(x, cy), (x + LEGEND_SWATCH, cy)],
            c.stroke_width(2),
        ))?,
        Mark::Dashed(c) => {
            for x0 in [x, x + 13] {
                root.draw(&PathElement::new(
                    vec![(x0, cy), (x0 + 9, cy)],
                    c.stroke_width(2),
                ))?;
            }
        }
        Mark::Dot(c) => root.draw(&Circle::new((x + LEGEND_SWATCH / 2, cy), 4, c.filled()))?,
    }
    Ok(())
}

/// A vertical legend box with its top-left corner at pixel (x, y) of `root`, under an optional
/// title that says what the entries are (e.g. "digit" over the class colours).
fn draw_legend(
    root: &Area<'_>,
    x: i32,
    y: i32,
    title: Option<&str>,
    entries: &[(String, Mark)],
) -> DrawResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (w, h) = legend_box_size(title, entries);
    root.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        WHITE.mix(0.9).filled(),
    ))?;
    root.draw(&Rectangle::new([(x, y), (x + w, y + h)], BORDER_GRAY))?;
    let mut top = y + 4;
    if let Some(t) = title {
        let txt = Txt::new(LEGEND_SIZE, HPos::Left, VPos::Center).color(TEXT_GRAY);
        draw_text(root, t, (x + 7, top + LEGEND_ROW / 2), txt)?;
        top += LEGEND_ROW;
    }
    for (k, (label, mark)) in entries.iter().take(MAX_LEGEND).enumerate() {
        let cy = top + k as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        draw_mark(root, *mark, x + 7, cy)?;
        let t = Txt::new(LEGEND_SIZE, HPos::Left, VPos::Center);
        draw_text(root, label, (x + LEGEND_SWATCH + 14, cy), t)?;
    }
    Ok(())
}

/// A one-line legend centred on `cx` at vertical centre `cy`, followed by a grey note.
fn draw_legend_row(
    root: &Area<'_>,
    (cx, cy): (i32, i32),
    entries: &[(String, Mark)],
    note: &str,
) -> DrawResult<()> {
    const GAP: i32 = 26;
    let widths: Vec<i32> = entries
        .iter()
        .map(|(l, _)| LEGEND_SWATCH + 7 + text_width(l, LEGEND_SIZE))
        .collect();
    let note_w = text_width(note, 12.0);
    let total = widths.iter().map(|w| w + GAP).sum::<i32>() + note_w;
    let mut x = cx - total / 2;
    for ((label, mark), w) in entries.iter().zip(&widths) {
        draw_mark(root, *mark, x, cy)?;
        let t = Txt::new(LEGEND_SIZE, HPos::Left, VPos::Center);
        draw_text(root, label, (x + LEGEND_SWATCH + 7, cy), t)?;
        x += w + GAP;
    }
    let t = Txt::new(12.0, HPos::Left, VPos::Center).color(TEXT_GRAY);
    draw_text(root, note, (x, cy), t)
}

// ---------------------------------------------------------------------------------------------
// Axes: ranges, ticks, labels
// ---------------------------------------------------------------------------------------------

/// Largest magnitude we plot; keeps every range width finite.
const HUGE: f64 = 1e300;

/// An axis range covering [lo, hi] with a 5% margin, always finite and wide enough for
/// tick computation (plotters loops forever on ranges narrower than float rounding).
fn axis_range(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) || lo > hi {
        return (-1.0, 1.0);
    }
    let (lo, hi) = (lo.clamp(-HUGE, HUGE), hi.clamp(-HUGE, HUGE));
    let mag = lo.abs().max(hi.abs());
    let min_width = (mag * 1e-6).max(1e-100);
    let (lo, hi) = if hi - lo < min_width {
        let mid = 0.5 * (lo + hi);
        let half = if mag > 0.0 {
            (mag * 0.05).max(min_width)
        } else {
            1.0
        };
        (mid - half, mid + half)
    } else {
        (lo, hi)
    };
    let m = 0.05 * (hi - lo);
    (lo - m, hi + m)
}

/// Finite min and max of the values, if any.
fn finite_min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// "Nice" tick positions (multiples of 1, 2 or 5 × 10^k) inside [lo, hi], at most `target + 1`.
fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || target == 0 {
        return Vec::new();
    }
    let raw = (hi - lo) / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    if !(mag.is_finite() && mag > 0.0) {
        return Vec::new();
    }
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil();
    let last = (hi / step).floor();
    if !(first.is_finite() && last.is_finite()) || last - first > 1000.0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut k = first;
    while k <= last {
        let v = k * step;
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        k += 1.0;
    }
    out
}

/// Labels for evenly spaced ticks, all with the same number of decimals (enough to tell
/// neighbours apart); scientific notation for very large or very small magnitudes.
fn tick_labels(ticks: &[f64]) -> Vec<String> {
    let step = match ticks {
        [a, b, ..] => (b - a).abs(),
        [a] => a.abs(),
        [] => 1.0,
    };
    let step = if step > 0.0 && step.is_finite() {
        step
    } else {
        1.0
    };
    let max_abs = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let sci = max_abs >= 1e6 || (max_abs > 0.0 && max_abs < 1e-4);
    ticks
        .iter()
        .map(|v| {
            // Exact zero, so rounding noise never prints as "-0.0".
            let v = if v.abs() < step * 1e-6 { 0.0 } else { *v };
            if sci && v == 0.0 {
                "0".to_string()
            } else if sci {
                let d = (max_abs.log10().floor() - step.log10().floor()).clamp(0.0, 6.0) as usize;
                format!("{v:.d$e}")
            } else {
                let d = (-step.log10().floor()).clamp(0.0, 10.0) as usize;
                format!("{v:.d$}")
            }
        })
        .collect()
}

/// A linear f64 axis with explicit tick positions. (plotters' own `WithKeyPoints` loses the
/// f64 value formatter, so it cannot be used with `configure_mesh`.)
struct TickAxis {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for TickAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// One chart axis: range, ticks with their labels, and a description.
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    labels: Vec<String>,
    desc: String,
}

impl Axis {
    /// Linear axis over [lo, hi] with about `target` round-valued ticks.
    fn auto((lo, hi): (f64, f64), target: usize, desc: &str) -> Self {
        Self::with_ticks((lo, hi), nice_ticks(lo, hi, target), desc)
    }

    /// Like [`Axis::auto`] but with whole-number ticks only (a step of at least 1).
    fn integer((lo, hi): (f64, f64), target: usize, desc: &str) -> Self {
        let mut ticks = nice_ticks(lo, hi, target);
        if ticks.len() > 1 && ticks[1] - ticks[0] < 1.0 {
            ticks = (lo.ceil() as i64..=hi.floor() as i64)
                .map(|v| v as f64)
                .collect();
        }
        Self::with_ticks((lo, hi), ticks, desc)
    }

    fn with_ticks((lo, hi): (f64, f64), ticks: Vec<f64>, desc: &str) -> Self {
        let labels = tick_labels(&ticks);
        Axis {
            lo,
            hi,
            ticks,
            labels,
            desc: desc.to_string(),
        }
    }

    fn coord(&self) -> TickAxis {
        TickAxis {
            inner: (self.lo..self.hi).into(),
            ticks: self.ticks.clone(),
        }
    }

    /// Short descriptions such as "z₂" read better horizontally than rotated.
    fn desc_is_short(&self) -> bool {
        self.desc.chars().count() <= 3
    }

    /// Width of the label area left of the plot needed for this axis as the y axis.
    fn y_area_width(&self) -> i32 {
        let labels = self
            .labels
            .iter()
            .map(|l| text_width(l, TICK_SIZE))
            .max()
            .unwrap_or(0);
        let desc = if self.desc.is_empty() {
            0
        } else if self.desc_is_short() {
            text_width(&self.desc, DESC_SIZE) + 10
        } else {
            26
        };
        TICK_LEN + 6 + labels + 6 + desc
    }
}

/// Sets up (but does not draw) a chart filling `area`: plot on the right, room for our
/// own tick labels below and to the left, and the given top/right margins.
fn build_chart<'a, 'b>(
    area: &'a Area<'b>,
    x: &Axis,
    y: &Axis,
    (top, right): (i32, i32),
) -> DrawResult<Chart<'a, 'b>> {
    let chart = ChartBuilder::on(area)
        .margin_top(top)
        .margin_right(right)
        .x_label_area_size(X_AREA)
        .y_label_area_size(y.y_area_width())
        .build_cartesian_2d(x.coord(), y.coord())?;
    Ok(chart)
}

/// Draws the axes, tick marks, optional grid lines, tick labels and axis descriptions.
fn draw_axes(
    root: &Area<'_>,
    chart: &mut Chart<'_, '_>,
    x: &Axis,
    y: &Axis,
    grid: bool,
) -> DrawResult<()> {
    let grid_style: ShapeStyle = if grid {
        GRID_GRAY.into()
    } else {
        TRANSPARENT.into()
    };
    // plotters draws the axis lines, tick marks and grid; its own labels are made invisible
    // because we draw them with correct glyph spacing below.
    chart
        .configure_mesh()
        .x_labels(x.ticks.len().max(1))
        .y_labels(y.ticks.len().max(1))
        .label_style(TextStyle::from(font_desc(TICK_SIZE)).color(&TRANSPARENT))
        .bold_line_style(grid_style)
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK)
        .set_all_tick_mark_size(TICK_LEN)
        .draw()?;
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    for (v, label) in x.ticks.iter().zip(&x.labels) {
        let (px, _) = chart.backend_coord(&(*v, y.lo));
        let t = Txt::new(TICK_SIZE, HPos::Center, VPos::Top);
        draw_text(root, label, (px, yr.end + TICK_LEN + 6), t)?;
    }
    for (v, label) in y.ticks.iter().zip(&y.labels) {
        let (_, py) = chart.backend_coord(&(x.lo, *v));
        let t = Txt::new(TICK_SIZE, HPos::Right, VPos::Center);
        draw_text(root, label, (xr.start - TICK_LEN - 6, py), t)?;
    }
    let t = Txt::new(DESC_SIZE, HPos::Center, VPos::Bottom);
    let mid_x = (xr.start + xr.end) / 2;
    draw_text(root, &x.desc, (mid_x, yr.end + X_AREA - 8), t)?;
    let left = xr.start - y.y_area_width() + 4;
    let mid_y = (yr.start + yr.end) / 2;
    if y.desc_is_short() {
        let t = Txt::new(DESC_SIZE, HPos::Left, VPos::Center);
        draw_text(root, &y.desc, (left, mid_y), t)?;
    } else {
        let t = Txt::new(DESC_SIZE, HPos::Center, VPos::Top).vertical();
        draw_text(root, &y.desc, (left, mid_y), t)?;
    }
    Ok(())
}

/// Liang–Barsky: the part of segment a→b inside the box, if any.
fn clip_segment(
    a: (f64, f64),
    b: (f64, f64),
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Option<((f64, f64), (f64, f64))> {
    if ![a.0, a.1, b.0, b.1].iter().all(|v| v.is_finite()) {
        return None;
    }
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let mut t0: f64 = 0.0;
    let mut t1: f64 = 1.0;
    for (p, q) in [
        (-dx, a.0 - x0),
        (dx, x1 - a.0),
        (-dy, a.1 - y0),
        (dy, y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    let at = |t: f64| (a.0 + t * dx, a.1 + t * dy);
    Some((
        if t0 > 0.0 { at(t0) } else { a },
        if t1 < 1.0 { at(t1) } else { b },
    ))
}

/// Splits a polyline into the runs that lie inside the box (clipping at the border), so
/// nothing is drawn over the axes and no pixel coordinate can overflow.
fn clip_polyline(points: &[(f64, f64)], xr: (f64, f64), yr: (f64, f64)) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    for w in points.windows(2) {
        match clip_segment(w[0], w[1], xr, yr) {
            None => {
                if run.len() >= 2 {
                    runs.push(std::mem::take(&mut run));
                }
                run.clear();
            }
            Some((p, q)) => {
                if run.last() != Some(&p) {
                    if run.len() >= 2 {
                        runs.push(std::mem::take(&mut run));
                    }
                    run.clear();
                    run.push(p);
                }
                run.push(q);
            }
        }
    }
    if run.len() >= 2 {
        runs.push(run);
    }
    runs
}

/// Checked `a * b * c`, as a usage error naming `what` on overflow.
fn checked_len(a: usize, b: usize, c: usize, what: &str) -> Result<usize> {
    a.checked_mul(b)
        .and_then(|n| n.checked_mul(c))
        .ok_or_else(|| Error::Usage(format!("{what}: size overflows")))
}

/// Pixel count as u32, saturating (the figure-size check then rejects it).
fn px(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn px_i(v: i32) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

/// Panels side by side (left to right) under an overall title; each tile scaled up (e.g. 2–3 px per pixel) with a 1–2 px gap. Returns an error if a panel's images.len() != rows*cols*784.
///
/// Tiles are white ink on black on a white page. The scale (3, 2 or 1 px per digit pixel) is
/// the largest that keeps the figure within about 1600 × 1400 px, so large grids stay a
/// sensible size.
pub fn image_panels(path: &Path, title: &str, panels: &[Panel]) -> Result<()> {
    const FIG: &str = "image_panels";
    const MARGIN: u32 = 16;
    const SPACING: u32 = 28;
    if panels.is_empty() {
        return Err(Error::Usage(format!("{FIG}: no panels to draw")));
    }
    for (k, p) in panels.iter().enumerate() {
        let want = checked_len(p.rows, p.cols, PIXELS, FIG)?;
        if p.images.len() != want {
            return Err(Error::Usage(format!(
                "{FIG}: panel {k} ('{}') has {} values, expected {}×{}×784 = {want}",
                p.caption,
                p.images.len(),
                p.rows,
                p.cols
            )));
        }
    }
    ensure_font()?;
    let caption_w: Vec<u32> = panels
        .iter()
        .map(|p| (px_i(text_width(p.caption, CAPTION_SIZE)) + 8).min(600))
        .collect();
    let title_w = title_width(title);
    let spacing = SPACING.saturating_mul(px(panels.len()) - 1);
    let gap_for = |scale: u32| if scale >= 2 { 2 } else { 1 };
    // Pixel size of n tiles in a row (or column) at a given scale.
    let block = |n: usize, scale: u32| -> u32 {
        match n {
            0 => 0,
            _ => px(n)
                .saturating_mul(SIDE as u32 * scale)
                .saturating_add(px(n - 1).saturating_mul(gap_for(scale))),
        }
    };
    let layout = |scale: u32| -> (u32, u32, Vec<u32>) {
        let slots: Vec<u32> = panels
            .iter()
            .zip(&caption_w)
            .map(|(p, cw)| block(p.cols, scale).max(*cw))
            .collect();
        let content = slots.iter().fold(spacing, |a, s| a.saturating_add(*s));
        let w = content.saturating_add(2 * MARGIN).max(title_w).max(240);
        let tiles_h = panels
            .iter()
            .map(|p| block(p.rows, scale))
            .max()
            .unwrap_or(0);
        let h = tiles_h.saturating_add(TITLE_H + px_i(CAPTION_H) + MARGIN);
        (w, h, slots)
    };
    // Digit tiles are worth a little extra width: 1 px per pixel is hard to read.
    let mut scale = 3;
    while scale > 1 && {
        let (w, h, _) = layout(scale);
        w > TARGET_W + 200 || h > TARGET_W
    } {
        scale -= 1;
    }
    let (w, h, slots) = layout(scale);
    let pitch = i64::from(SIDE as u32 * scale + gap_for(scale));
    let content_w = slots.iter().fold(spacing, |a, s| a.saturating_add(*s));
    render(path, FIG, w, h, |root| {
        draw_title(root, title, w)?;
        let mut blits = Vec::new();
        let mut x = i64::from(w.saturating_sub(content_w) / 2);
        let y0 = i64::from(TITLE_H) + i64::from(CAPTION_H);
        for (p, slot) in panels.iter().zip(&slots) {
            let cx = (x + i64::from(*slot) / 2) as i32;
            let t = Txt::new(CAPTION_SIZE, HPos::Center, VPos::Top);
            draw_text(root, p.caption, (cx, TITLE_H as i32 + 4), t)?;
            let x0 = x + i64::from(slot.saturating_sub(block(p.cols, scale))) / 2;
            for (k, img) in p.images.chunks_exact(PIXELS).enumerate() {
                let (r, c) = (k / p.cols.max(1), k % p.cols.max(1));
                blits.push(Blit {
                    x: x0 + c as i64 * pitch,
                    y: y0 + r as i64 * pitch,
                    scale,
                    img,
                });
            }
            x += i64::from(*slot) + i64::from(SPACING);
        }
        Ok(blits)
    })
}

/// Scatter of 2-D points coloured by class label 0..=9 (10 distinct colours), with a legend "0".."9", axis labels, ticks and a title. Points with non-finite coordinates are skipped. Axis ranges from the data (with a small margin).
///
/// Points are drawn in input order (not class by class) so no class systematically hides
/// another; they are slightly transparent so dense regions show. Labels above 9 are drawn
/// black under a legend entry "other". The legend sits outside the plot so it covers no data.
/// With no finite points the axes span [-1, 1]. Error if `points.len() != labels.len()`.
pub fn class_scatter(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[[f32; 2]],
    labels: &[u8],
) -> Result<()> {
    const FIG: &str = "class_scatter";
    if points.len() != labels.len() {
        return Err(Error::Usage(format!(
            "{FIG}: {} points but {} labels",
            points.len(),
            labels.len()
        )));
    }
    let finite: Vec<((f64, f64), u8)> = points
        .iter()
        .zip(labels)
        .map(|(p, l)| ((f64::from(p[0]), f64::from(p[1])), *l))
        .filter(|((x, y), _)| x.is_finite() && y.is_finite())
        .collect();
    let xr = finite_min_max(finite.iter().map(|(p, _)| p.0))
        .map_or((-1.0, 1.0), |(a, b)| axis_range(a, b));
    let yr = finite_min_max(finite.iter().map(|(p, _)| p.1))
        .map_or((-1.0, 1.0), |(a, b)| axis_range(a, b));
    let mut entries: Vec<(String, Mark)> = TAB10
        .iter()
        .enumerate()
        .map(|(k, c)| (k.to_string(), Mark::Dot(*c)))
        .collect();
    if finite.iter().any(|(_, l)| *l > 9) {
        entries.push(("other".into(), Mark::Dot(BLACK)));
    }
    ensure_font()?;
    let (lw, _) = legend_box_size(Some("digit"), &entries);
    let w = (840 + px_i(lw) + 24).max(title_width(title));
    let h = 740;
    render(path, FIG, w, h, |root| {
        draw_title(root, title, w)?;
        let area = root.clone().shrink(
            (0, TITLE_H as i32),
            (w as i32 - lw - 24, (h - TITLE_H) as i32),
        );
        let x = Axis::auto(xr, 8, x_label);
        let y = Axis::auto(yr, 8, y_label);
        let mut chart = build_chart(&area, &x, &y, (6, 16))?;
        draw_axes(root, &mut chart, &x, &y, true)?;
        chart.draw_series(finite.iter().map(|(p, l)| {
            let c = TAB10.get(usize::from(*l)).copied().unwrap_or(BLACK);
            Circle::new(*p, 2, c.mix(0.75).filled())
        }))?;
        let (pxr, pyr) = chart.plotting_area().get_pixel_range();
        draw_legend(root, pxr.end + 12, pyr.start, Some("digit"), &entries)?;
        Ok(Vec::new())
    })
}

/// An n×n lattice of decoded digits placed on latent-space axes: tile (i, j) is the image at `z = (x_values[j], y_values[i])`; y increases upwards (row 0 of `images` is the BOTTOM row, i.e. `y_values[0]`). Axes labelled z₁ / z₂ with ticks in latent units. images.len() == y_values.len()*x_values.len()*784.
///
/// Tiles touch (no gaps) so the lattice reads as one continuous manifold, as in the paper;
/// digits are white on black. If a coordinate list is evenly spaced and increasing, that axis
/// is linear in latent units with round tick values; otherwise (e.g. Gaussian quantiles) tiles
/// stay on a regular grid and ticks sit on tile centres, labelled with the tile's latent value.
/// Non-finite coordinates are a usage error.
pub fn latent_lattice(
    path: &Path,
    title: &str,
    x_values: &[f32],
    y_values: &[f32],
    images: &[f32],
) -> Result<()> {
    const FIG: &str = "latent_lattice";
    const RIGHT: u32 = 24;
    let (nx, ny) = (x_values.len(), y_values.len());
    if nx == 0 || ny == 0 {
        return Err(Error::Usage(format!(
            "{FIG}: empty coordinate list ({nx} x values, {ny} y values)"
        )));
    }
    let want = checked_len(nx, ny, PIXELS, FIG)?;
    if images.len() != want {
        return Err(Error::Usage(format!(
            "{FIG}: {} image values, expected {ny}×{nx}×784 = {want}",
            images.len()
        )));
    }
    if !x_values.iter().chain(y_values).all(|v| v.is_finite()) {
        return Err(Error::Usage(format!("{FIG}: non-finite latent coordinate")));
    }
    ensure_font()?;
    let scale = px(900 / (SIDE * nx.max(ny))).clamp(1, 3);
    let tile = SIDE as u32 * scale;
    let plot_w = px(nx).saturating_mul(tile);
    let plot_h = px(ny).saturating_mul(tile);
    let x = lattice_axis(x_values, "z₁");
    let y = lattice_axis(y_values, "z₂");
    let left = px_i(y.y_area_width());
    let w = (left + RIGHT)
        .saturating_add(plot_w)
        .max(title_width(title))
        .max(300);
    let h = (TITLE_H + px_i(X_AREA) + 8).saturating_add(plot_h);
    render(path, FIG, w, h, |root| {
        draw_title(root, title, w)?;
        // Exactly plot_w × plot_h of plotting area, so tiles map one-to-one onto cells.
        let area = root.clone().shrink(
            (0, TITLE_H as i32),
            ((left + plot_w) as i32, plot_h as i32 + X_AREA),
        );
        let mut chart = build_chart(&area, &x, &y, (0, 0))?;
        draw_axes(root, &mut chart, &x, &y, false)?;
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let tile = i64::from(tile);
        let blits = images
            .chunks_exact(PIXELS)
            .enumerate()
            .map(|(k, img)| {
                let (i, j) = ((k / nx) as i64, (k % nx) as i64);
                Blit {
                    x: i64::from(xr.start) + j * tile,
                    y: i64::from(yr.end) - (i + 1) * tile,
                    scale,
                    img,
                }
            })
            .collect();
        Ok(blits)
    })
}

/// Tick label for a tile's latent coordinate.
fn lattice_label(v: f32) -> String {
    if v.abs() < 1e5 {
        format!("{v:.2}")
    } else {
        format!("{v:.2e}")
    }
}

/// Axis for one lattice direction, one tile per unit cell: linear in latent units when the
/// values are evenly spaced and increasing, otherwise indexed by tile with ticks at (up to 8)
/// tile centres labelled by their latent value.
fn lattice_axis(values: &[f32], desc: &str) -> Axis {
    let n = values.len();
    let first = values.first().map_or(0.0, |v| f64::from(*v));
    let last = values.last().map_or(0.0, |v| f64::from(*v));
    let step = if n >= 2 {
        (last - first) / (n - 1) as f64
    } else {
        0.0
    };
    let even = step > 0.0
        && values
            .iter()
            .enumerate()
            .all(|(k, v)| (f64::from(*v) - (first + k as f64 * step)).abs() <= 1e-3 * step);
    if even {
        let lo = first - 0.5 * step;
        let hi = first + (n as f64 - 0.5) * step;
        let target = n.clamp(2, 7);
        Axis::auto((lo, hi), target, desc)
    } else {
        let every = n.div_ceil(8).max(1);
        let idx: Vec<usize> = (0..n).step_by(every).collect();
        Axis {
            lo: -0.5,
            hi: n as f64 - 0.5,
            ticks: idx.iter().map(|k| *k as f64).collect(),
            labels: idx
                .iter()
                .map(|k| values.get(*k).map_or(String::new(), |v| lattice_label(*v)))
                .collect(),
            desc: desc.to_string(),
        }
    }
}

/// Line plot of named series (e.g. "train ELBO", "test ELBO" against epoch), with legend, axis labels, ticks. Non-finite points skipped; empty series allowed; error if all are empty.
///
/// Lines are 2 px wide in tab10 colours (series k gets colour k mod 10); series with at most
/// 60 points also get point markers, so single points and sparse evaluations stay visible.
/// The legend sits outside the plot on the right so it never hides a curve.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<()> {
    const FIG: &str = "line_chart";
    let clean: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, pts)| {
            pts.iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(x, y)| (x.clamp(-HUGE, HUGE), y.clamp(-HUGE, HUGE)))
                .collect()
        })
        .collect();
    if clean.iter().all(|p| p.is_empty()) {
        return Err(Error::Usage(format!(
            "{FIG}: '{title}' has no finite points in any series"
        )));
    }
    let all = || clean.iter().flatten();
    let xr = finite_min_max(all().map(|p| p.0)).map_or((-1.0, 1.0), |(a, b)| axis_range(a, b));
    let yr = finite_min_max(all().map(|p| p.1)).map_or((-1.0, 1.0), |(a, b)| axis_range(a, b));
    let color = |k: usize| TAB10.get(k % TAB10.len()).copied().unwrap_or(BLACK);
    let entries: Vec<(String, Mark)> = series
        .iter()
        .enumerate()
        .map(|(k, (name, _))| (name.to_string(), Mark::Line(color(k))))
        .collect();
    ensure_font()?;
    let (lw, _) = legend_box_size(None, &entries);
    let lw = lw.min(400);
    let w = (860 + px_i(lw) + 24).max(title_width(title));
    let h = 580;
    render(path, FIG, w, h, |root| {
        draw_title(root, title, w)?;
        let area = root.clone().shrink(
            (0, TITLE_H as i32),
            (w as i32 - lw - 24, (h - TITLE_H) as i32),
        );
        // Counts such as epochs get whole-number ticks, never "2.5".
        let x = if all().all(|p| p.0.fract() == 0.0) {
            Axis::integer(xr, 8, x_label)
        } else {
            Axis::auto(xr, 8, x_label)
        };
        let y = Axis::auto(yr, 8, y_label);
        let mut chart = build_chart(&area, &x, &y, (6, 16))?;
        draw_axes(root, &mut chart, &x, &y, true)?;
        for (k, pts) in clean.iter().enumerate() {
            let c = color(k);
            chart.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?;
            if pts.len() <= 60 {
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled())))?;
            }
        }
        let (pxr, pyr) = chart.plotting_area().get_pixel_range();
        draw_legend(root, pxr.end + 12, pyr.start, None, &entries)?;
        Ok(Vec::new())
    })
}

/// Grid of panels (`cols` per row), each with contours of a grid posterior (marching squares on
/// exp(log_density − max), over a light heatmap) and the contours of q of the same masses,
/// axes z₁/z₂ and a legend with `p_label` / `q_label`. Non-finite log densities count as −∞.
///
/// Levels used: the grid posterior is contoured at the boundaries of its highest-density
/// regions holding 39.3%, 86.5% and 98.9% of the grid's mass — exactly the masses inside the
/// 1, 2 and 3 sigma ellipses of a 2-D Gaussian, and so is q — so if q equalled p the two sets
/// would coincide, and the gap between them shows the approximation error. Mass is relative to the
/// grid (which should cover the posterior). p is dark blue over a light-blue heatmap of
/// exp(log_density - max); q is red with a × at its mean. Each panel's axes span its grid, and
/// q's contours are clipped to it. The legend (one row under the title) lists the distinct
/// `p_label`s and `q_label`s. Errors: no panels, `cols == 0`, a grid smaller than 2×2, a
/// `log_density` of the wrong length, or a non-finite / non-positive grid spacing.
pub fn posterior_contours(
    path: &Path,
    title: &str,
    cols: usize,
    panels: &[PosteriorPanel],
) -> Result<()> {
    const FIG: &str = "posterior_contours";
    const HEADER: u32 = TITLE_H + 26;
    if panels.is_empty() {
        return Err(Error::Usage(format!("{FIG}: no panels to draw")));
    }
    if cols == 0 {
        return Err(Error::Usage(format!("{FIG}: cols must be at least 1")));
    }
    for (k, p) in panels.iter().enumerate() {
        let want = checked_len(p.nx, p.ny, 1, FIG)?;
        if p.nx < 2 || p.ny < 2 || p.log_density.len() != want {
            return Err(Error::Usage(format!(
                "{FIG}: panel {k} ('{}'): need nx, ny >= 2 and {}×{} log densities, got {}",
                p.caption,
                p.nx,
                p.ny,
                p.log_density.len()
            )));
        }
        let grid_ok = [p.x_min, p.y_min, p.dx, p.dy].iter().all(|v| v.is_finite())
            && p.dx > 0.0
            && p.dy > 0.0
            && (p.x_min + (p.nx - 1) as f64 * p.dx).is_finite()
            && (p.y_min + (p.ny - 1) as f64 * p.dy).is_finite();
        if !grid_ok {
            return Err(Error::Usage(format!(
                "{FIG}: panel {k} ('{}'): grid origin/spacing must be finite with dx, dy > 0",
                p.caption
            )));
        }
    }
    ensure_font()?;
    let cols = cols.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let panel_w = (TARGET_W / px(cols)).clamp(240, 380);
    let panel_h = panel_w + 10;
    let mut entries: Vec<(String, Mark)> = Vec::new();
    for p in panels {
        for (label, mark) in [
            (p.p_label, Mark::Line(P_COLOR)),
            (p.q_label, Mark::Line(Q_COLOR)),
        ] {
            if !label.is_empty() && !entries.iter().any(|(l, _)| l == label) {
                entries.push((label.to_string(), mark));
            }
        }
    }
    let note = "contours: p and q at 39%, 86%, 99% highest-density mass (a Gaussian q's 1, 2, 3 σ)";
    let legend_w = entries
        .iter()
        .map(|(l, _)| text_width(l, LEGEND_SIZE) + LEGEND_SWATCH + 40)
        .sum::<i32>()
        + text_width(note, 12.0);
    let w = px(cols)
        .saturating_mul(panel_w)
        .saturating_add(20)
        .max(title_width(title))
        .max(px_i(legend_w).saturating_add(32).min(TARGET_W));
    let h = px(rows).saturating_mul(panel_h).saturating_add(HEADER + 8);
    render(path, FIG, w, h, |root| {
        draw_title(root, title, w)?;
        draw_legend_row(root, (w as i32 / 2, TITLE_H as i32 + 6), &entries, note)?;
        let x_off = w.saturating_sub(px(cols) * panel_w) / 2;
        let mut blits = Vec::new();
        for (k, p) in panels.iter().enumerate() {
            let (r, c) = (px(k / cols), px(k % cols));
            let area = root.clone().shrink(
                ((x_off + c * panel_w) as i32, (HEADER + r * panel_h) as i32),
                (panel_w as i32, panel_h as i32),
            );
            if let Some(b) = posterior_panel(root, &area, p)? {
                blits.push(b);
            }
        }
        Ok(blits)
    })
}

/// Normalised density exp(log_density - max) (non-finite → 0), or None if nothing is finite.
fn normalised_density(log_density: &[f64]) -> Option<Vec<f64>> {
    let max = log_density
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return None;
    }
    Some(
        log_density
            .iter()
            .map(|v| if v.is_finite() { (v - max).exp() } else { 0.0 })
            .collect(),
    )
}

/// Density thresholds whose superlevel sets hold the given fractions of the total grid mass.
fn hpd_levels(density: &[f64], masses: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = density.iter().copied().filter(|v| *v > 0.0).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = sorted.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Vec::new();
    }
    masses
        .iter()
        .map(|m| {
            let target = m * total;
            let mut acc = 0.0;
            for &v in &sorted {
                acc += v;
                if acc >= target {
                    return v;
                }
            }
            sorted.last().copied().unwrap_or(0.0)
        })
        .collect()
}

/// Bilinear interpolation of a row-major grid at fractional grid coordinates (clamped).
fn bilinear(f: &[f64], nx: usize, ny: usize, gx: f64, gy: f64) -> f64 {
    if nx < 2 || ny < 2 || !gx.is_finite() || !gy.is_finite() {
        return 0.0;
    }
    let gx = gx.clamp(0.0, (nx - 1) as f64);
    let gy = gy.clamp(0.0, (ny - 1) as f64);
    let j = (gx.floor() as usize).min(nx - 2);
    let i = (gy.floor() as usize).min(ny - 2);
    let (tx, ty) = (gx - j as f64, gy - i as f64);
    let at = |i: usize, j: usize| f.get(i * nx + j).copied().unwrap_or(0.0);
    let bottom = at(i, j) * (1.0 - tx) + at(i, j + 1) * tx;
    let top = at(i + 1, j) * (1.0 - tx) + at(i + 1, j + 1) * tx;
    bottom * (1.0 - ty) + top * ty
}

/// Contours are traced on the density upsampled by this factor.
const CONTOUR_UPSAMPLE: usize = 4;

/// Catmull–Rom weights of the four samples around a point at fraction `t` past the second.
fn catmull_rom(t: f64) -> [f64; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// `f` (`ny` rows of `nx`) resampled at `k` points per cell by separable Catmull–Rom
/// interpolation, which passes through every original sample and has a continuous slope;
/// returns the values and the new `nx`, `ny` (`(n − 1)·k + 1`). Edges repeat the border sample.
fn upsample_cubic(f: &[f64], nx: usize, ny: usize, k: usize) -> (Vec<f64>, usize, usize) {
    if nx < 2 || ny < 2 || k < 2 || f.len() < nx * ny {
        return (f.to_vec(), nx, ny);
    }
    let resample = |n: usize, get: &dyn Fn(usize) -> f64| -> Vec<f64> {
        (0..(n - 1) * k + 1)
            .map(|m| {
                let (cell, t) = (
                    (m / k).min(n - 2),
                    (m as f64 / k as f64) - (m / k).min(n - 2) as f64,
                );
                let w = catmull_rom(t);
                (0..4)
                    .map(|j| {
                        let idx =
                            (cell as isize + j as isize - 1).clamp(0, n as isize - 1) as usize;
                        w[j] * get(idx)
                    })
                    .sum()
            })
            .collect()
    };
    let rows: Vec<Vec<f64>> = (0..ny).map(|i| resample(nx, &|j| f[i * nx + j])).collect();
    let fnx = (nx - 1) * k + 1;
    let columns: Vec<Vec<f64>> = (0..fnx).map(|j| resample(ny, &|i| rows[i][j])).collect();
    let fny = (ny - 1) * k + 1;
    let mut out = vec![0.0; fnx * fny];
    for (j, col) in columns.iter().enumerate() {
        for (i, v) in col.iter().enumerate() {
            out[i * fnx + j] = *v;
        }
    }
    (out, fnx, fny)
}

/// Draws one posterior panel into `area`; returns the digit inset to paste, if any.
fn posterior_panel<'a, 'b>(
    root: &Area<'b>,
    area: &Area<'b>,
    p: &PosteriorPanel<'a>,
) -> DrawResult<Option<Blit<'a>>> {
    let xr = (p.x_min, p.x_min + (p.nx - 1) as f64 * p.dx);
    let yr = (p.y_min, p.y_min + (p.ny - 1) as f64 * p.dy);
    let area = with_caption(root, area, p.caption)?;
    let x = Axis::auto(xr, 6, "z₁");
    let y = Axis::auto(yr, 6, "z₂");
    let mut chart = build_chart(&area, &x, &y, (2, 12))?;
    let density = normalised_density(p.log_density);
    let (pxr, pyr) = chart.plotting_area().get_pixel_range();
    // Heatmap underneath everything, one pixel at a time (bilinear in the grid), so it looks
    // the same whatever the grid resolution.
    if let Some(d) = &density {
        let pw = f64::from(pxr.end - pxr.start);
        let ph = f64::from(pyr.end - pyr.start);
        for py in pyr.clone() {
            let yv = yr.1 - (f64::from(py - pyr.start) + 0.5) / ph * (yr.1 - yr.0);
            let gy = (yv - p.y_min) / p.dy;
            for pxl in pxr.clone() {
                let xv = xr.0 + (f64::from(pxl - pxr.start) + 0.5) / pw * (xr.1 - xr.0);
                let v = bilinear(d, p.nx, p.ny, (xv - p.x_min) / p.dx, gy).clamp(0.0, 1.0);
                if v < 0.004 {
                    continue;
                }
                let t = v.sqrt();
                let mix = |hc: f64| (255.0 + (hc - 255.0) * t).round() as u8;
                let c = RGBColor(mix(HEAT_COLOR.0), mix(HEAT_COLOR.1), mix(HEAT_COLOR.2));
                root.draw_pixel((pxl, py), &c)?;
            }
        }
    }
    draw_axes(root, &mut chart, &x, &y, true)?;
    if let Some(d) = &density {
        // Marching squares on the raw grid draws a visible kink in every cell; on a 4× cubic
        // upsampling each straight piece is about a pixel long and the contours read as curves.
        let (fine, fnx, fny) = upsample_cubic(d, p.nx, p.ny, CONTOUR_UPSAMPLE);
        let k = CONTOUR_UPSAMPLE as f64;
        let to_data = |(gx, gy): (f64, f64)| (p.x_min + gx / k * p.dx, p.y_min + gy / k * p.dy);
        for level in hpd_levels(d, &HPD_MASSES) {
            let segs = contour_segments(&fine, fnx, fny, level);
            chart.draw_series(segs.iter().map(|s| {
                PathElement::new(vec![to_data(s[0]), to_data(s[1])], P_COLOR.stroke_width(2))
            }))?;
        }
    }
    let [mx, my] = p.q_mean;
    let [sx, sy] = p.q_scale;
    if [mx, my, sx, sy].iter().all(|v| v.is_finite()) && sx > 0.0 && sy > 0.0 {
        for mass in HPD_MASSES {
            let ring = p.q_family.level_curve(p.q_mean, p.q_scale, mass);
            for run in clip_polyline(&ring, xr, yr) {
                chart.draw_series(std::iter::once(PathElement::new(
                    run,
                    Q_COLOR.stroke_width(2),
                )))?;
            }
        }
        if (xr.0..=xr.1).contains(&mx) && (yr.0..=yr.1).contains(&my) {
            chart.draw_series(std::iter::once(Cross::new(
                (mx, my),
                5,
                Q_COLOR.stroke_width(2),
            )))?;
        }
    }
    let blit = match p.digit {
        Some(img) if pxr.end - pxr.start > 100 && pyr.end - pyr.start > 100 => {
            let (x, y) = (pxr.start + 4, pyr.start + 4);
            let side = SIDE as i32 * 2;
            root.draw(&Rectangle::new(
                [(x - 1, y - 1), (x + side, y + side)],
                BORDER_GRAY.filled(),
            ))?;
            Some(Blit {
                x: i64::from(x),
                y: i64::from(y),
                scale: 2,
                img,
            })
        }
        _ => None,
    };
    Ok(blit)
}

/// Side-by-side histograms (one per panel) sharing nothing but style: each with its caption, `bins` equal-width bins over that panel's finite data range, axis labels ("value", "count"), and a vertical line at the sample mean with a legend entry "mean".
///
/// Non-finite values are ignored (the mean is over the finite ones). Each y axis leaves 20%
/// headroom so the legend in the upper right rarely covers a bar. A constant sample gets a
/// small range around its value; a panel with no finite data shows empty axes and says so.
/// Errors: no panels, or `bins` outside 1..=10000.
pub fn histograms(path: &Path, title: &str, panels: &[(&str, &[f64])], bins: usize) -> Result<()> {
    const FIG: &str = "histograms";
    if panels.is_empty() {
        return Err(Error::Usage(format!("{FIG}: no panels to draw")));
    }
    if bins == 0 || bins > 10_000 {
        return Err(Error::Usage(format!(
            "{FIG}: bins must be in 1..=10000, got {bins}"
        )));
    }
    ensure_font()?;
    let n = px(panels.len());
    let panel_w = (TARGET_W / n).clamp(280, 440);
    let panel_h = 390;
    let w = n
        .saturating_mul(panel_w)
        .saturating_add(20)
        .max(title_width(title));
    let h = panel_h + TITLE_H + 8;
    render(path, FIG, w, h, |root| {
        draw_title(root, title, w)?;
        let x_off = w.saturating_sub(n.saturating_mul(panel_w)) / 2;
        for (k, (caption, data)) in panels.iter().enumerate() {
            let area = root.clone().shrink(
                ((x_off + px(k) * panel_w) as i32, TITLE_H as i32),
                (panel_w as i32, panel_h as i32),
            );
            histogram_panel(root, &area, caption, data, bins)?;
        }
        Ok(Vec::new())
    })
}

fn histogram_panel<'b>(
    root: &Area<'b>,
    area: &Area<'b>,
    caption: &str,
    data: &[f64],
    bins: usize,
) -> DrawResult<()> {
    let finite: Vec<f64> = data
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .map(|v| v.clamp(-HUGE, HUGE))
        .collect();
    // Bins span the data exactly; a constant (or numerically constant) sample gets a small
    // range around it from `axis_range`, shifted so the value sits mid-bin.
    let (lo, hi) = match finite_min_max(finite.iter().copied()) {
        Some((a, b)) => {
            let (r0, r1) = axis_range(a, b);
            if b > a && (b - a) >= 0.5 * (r1 - r0) {
                (a, b)
            } else if bins.is_multiple_of(2) {
                let half_bin = 0.5 * (r1 - r0) / bins as f64;
                (r0 - half_bin, r1 - half_bin)
            } else {
                (r0, r1)
            }
        }
        None => (0.0, 1.0),
    };
    let mut counts = vec![0u64; bins];
    let width = (hi - lo) / bins as f64;
    for v in &finite {
        let k = ((v - lo) / width).floor();
        let k = if k.is_finite() {
            (k.max(0.0) as usize).min(bins - 1)
        } else {
            0
        };
        if let Some(c) = counts.get_mut(k) {
            *c += 1;
        }
    }
    let max_count = counts.iter().copied().max().unwrap_or(0).max(1);
    let x = Axis::auto(axis_range(lo, hi), 5, "value");
    let y_hi = max_count as f64 * 1.2;
    let mut y = Axis::auto((0.0, y_hi), 6, "count");
    // Counts are whole numbers: keep only integer ticks.
    y.ticks.retain(|t| t.fract() == 0.0);
    y.labels = tick_labels(&y.ticks);
    let area = with_caption(root, area, caption)?;
    let mut chart = build_chart(&area, &x, &y, (2, 16))?;
    draw_axes(root, &mut chart, &x, &y, true)?;
    let bar = RGBColor(31, 119, 180);
    let rects = || {
        counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(k, c)| {
                let a = lo + k as f64 * width;
                [(a, 0.0), (a + width, *c as f64)]
            })
    };
    chart.draw_series(rects().map(|r| Rectangle::new(r, bar.mix(0.55).filled())))?;
    chart.draw_series(rects().map(|r| Rectangle::new(r, bar)))?;
    let (pxr, pyr) = chart.plotting_area().get_pixel_range();
    if finite.is_empty() {
        let t = Txt::new(14.0, HPos::Center, VPos::Center).color(TEXT_GRAY);
        let centre = ((pxr.start + pxr.end) / 2, (pyr.start + pyr.end) / 2);
        return draw_text(root, "no finite data", centre, t);
    }
    let count = finite.len() as f64;
    let mean = finite.iter().sum::<f64>() / count;
    // If the plain sum overflowed, average pre-divided values instead.
    let mean = if mean.is_finite() {
        mean
    } else {
        finite.iter().map(|v| v / count).sum::<f64>()
    };
    if mean.is_finite() {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(mean, 0.0), (mean, y_hi)],
            Q_COLOR.stroke_width(2),
        )))?;
    }
    let entries = [("mean".to_string(), Mark::Line(Q_COLOR))];
    let (lw, _) = legend_box_size(None, &entries);
    draw_legend(root, pxr.end - lw - 8, pyr.start + 8, None, &entries)
}

// ---------------------------------------------------------------------------------------------
// Continuous colour: colour maps, colour bars and colour-mapped figures
// ---------------------------------------------------------------------------------------------

/// matplotlib's "autumn": red at the minimum, yellow at the maximum.
const AUTUMN: [[u8; 3]; 2] = [[255, 0, 0], [255, 255, 0]];
/// Blue → white → red (ColorBrewer RdBu, reversed), for values of both signs centred on 0.
const DIVERGING: [[u8; 3]; 5] = [
    [33, 102, 172],
    [146, 197, 222],
    [247, 247, 247],
    [244, 165, 130],
    [178, 24, 43],
];
/// matplotlib's "viridis" (five stops): perceptually even, for values of one sign.
const VIRIDIS: [[u8; 3]; 5] = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
];
/// Colour of a field cell whose value is not finite.
const MISSING_GRAY: RGBColor = RGBColor(200, 200, 200);
/// Width of a colour bar.
const BAR_W: i32 = 18;

/// The colour at `t` ∈ [0, 1] (clamped; NaN counts as 0) of a map interpolated linearly between
/// evenly spaced `stops`.
fn ramp(stops: &[[u8; 3]], t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let last = stops.len().saturating_sub(1);
    let pos = t * last as f64;
    let k = (pos.floor() as usize).min(last.saturating_sub(1));
    let (Some(a), Some(b)) = (stops.get(k), stops.get((k + 1).min(last))) else {
        return BLACK;
    };
    let f = pos - k as f64;
    let mix = |i: usize| (f64::from(a[i]) + (f64::from(b[i]) - f64::from(a[i])) * f).round() as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

/// The finite min..max of the values (clamped to ±HUGE), or a small range around them if they
/// are (numerically) constant, so it can be divided by and ticked; None if none is finite.
fn data_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = finite_min_max(values)?;
    let (lo, hi) = (lo.clamp(-HUGE, HUGE), hi.clamp(-HUGE, HUGE));
    let (a, b) = axis_range(lo, hi);
    Some(if hi - lo >= 0.5 * (b - a) {
        (lo, hi)
    } else {
        (a, b)
    })
}

/// Widens the shorter of two ranges about its centre so that both get the same units per pixel
/// on a plot `pw` × `ph` px: a circle in the data is then drawn round.
fn equalise(xr: (f64, f64), yr: (f64, f64), pw: i32, ph: i32) -> ((f64, f64), (f64, f64)) {
    let (pw, ph) = (f64::from(pw.max(1)), f64::from(ph.max(1)));
    let widen =
        |(a, b): (f64, f64), half: f64| (0.5 * a + 0.5 * b - half, 0.5 * a + 0.5 * b + half);
    let (ux, uy) = ((xr.1 - xr.0) / pw, (yr.1 - yr.0) / ph);
    if ux > uy {
        (xr, widen(yr, 0.5 * ux * ph))
    } else {
        (widen(xr, 0.5 * uy * pw), yr)
    }
}

/// A colour scale: the range `lo..hi` spread over a colour map, drawn as a vertical bar with ticks
/// in value units under a heading that says what the colour means.
struct ColourBar {
    lo: f64,
    hi: f64,
    stops: &'static [[u8; 3]],
    ticks: Vec<f64>,
    labels: Vec<String>,
    label: String,
}

impl ColourBar {
    fn new((lo, hi): (f64, f64), stops: &'static [[u8; 3]], label: &str) -> Self {
        let ticks = nice_ticks(lo, hi, 6);
        ColourBar {
            lo,
            hi,
            stops,
            labels: tick_labels(&ticks),
            ticks,
            label: label.to_string(),
        }
    }

    fn colour(&self, v: f64) -> RGBColor {
        ramp(self.stops, (v - self.lo) / (self.hi - self.lo))
    }

    /// Width of the bar with its tick labels, or of its heading if that is wider.
    fn width(&self) -> i32 {
        let labels = self.labels.iter().map(|l| text_width(l, TICK_SIZE));
        let ticked = BAR_W + TICK_LEN + 6 + labels.max().unwrap_or(0);
        ticked.max(text_width(&self.label, LEGEND_SIZE)).min(400)
    }

    /// Draws the bar with its left edge at `x`, from `top` (maximum) down to `bottom` (minimum),
    /// and the heading just above it.
    fn draw(&self, root: &Area<'_>, x: i32, top: i32, bottom: i32) -> DrawResult<()> {
        let t = Txt::new(LEGEND_SIZE, HPos::Left, VPos::Bottom);
        draw_text(root, &self.label, (x, top - 8), t)?;
        let h = f64::from((bottom - top).max(1));
        for py in top..=bottom {
            let v = self.lo + f64::from(bottom - py) / h * (self.hi - self.lo);
            let row = vec![(x, py), (x + BAR_W, py)];
            root.draw(&PathElement::new(row, self.colour(v)))?;
        }
        root.draw(&Rectangle::new(
            [(x, top), (x + BAR_W, bottom)],
            BORDER_GRAY,
        ))?;
        for (v, label) in self.ticks.iter().zip(&self.labels) {
            let py = bottom - ((v - self.lo) / (self.hi - self.lo) * h).round() as i32;
            let tick = vec![(x + BAR_W, py), (x + BAR_W + TICK_LEN, py)];
            root.draw(&PathElement::new(tick, BLACK))?;
            let t = Txt::new(TICK_SIZE, HPos::Left, VPos::Center);
            draw_text(root, label, (x + BAR_W + TICK_LEN + 4, py), t)?;
        }
        Ok(())
    }
}

/// A 2-D plot coloured by value: its axes and what goes in the column right of it (a legend, if
/// there are entries, above the colour bar).
struct ColourPlot<'a> {
    fig: &'a str,
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    xr: (f64, f64),
    yr: (f64, f64),
    equal_aspect: bool,
    grid: bool,
    bar: ColourBar,
    entries: Vec<(String, Mark)>,
}

/// Renders a [`ColourPlot`]: `under` draws into the plotting area before the axes and grid
/// lines, `over` on top of them. With `equal_aspect` the shorter range is widened (see
/// [`equalise`]) for the plot's actual pixel size.
fn render_colour_plot<U, O>(path: &Path, c: &ColourPlot, under: U, over: O) -> Result<()>
where
    U: FnOnce(&Area<'_>, &Chart<'_, '_>) -> DrawResult<()>,
    O: FnOnce(&mut Chart<'_, '_>) -> DrawResult<()>,
{
    ensure_font()?;
    let (lw, lh) = if c.entries.is_empty() {
        (0, 0)
    } else {
        legend_box_size(None, &c.entries)
    };
    let rw = lw.min(400).max(c.bar.width());
    let w = (840 + px_i(rw) + 24).max(title_width(c.title));
    // Tall enough for the legend plus a colour bar of at least 250 px.
    let h = px_i(lh + 300 + X_AREA).saturating_add(TITLE_H).max(740);
    let (area_w, area_h) = (w as i32 - rw - 24, (h - TITLE_H) as i32);
    let axes = |xr, yr| (Axis::auto(xr, 8, c.x_label), Axis::auto(yr, 8, c.y_label));
    let (mut x, mut y) = axes(c.xr, c.yr);
    if c.equal_aspect {
        // The plot's width depends on the y tick labels, which depend on the range: settle it.
        for _ in 0..3 {
            let plot_w = area_w - 16 - y.y_area_width();
            let (xr, yr) = equalise(c.xr, c.yr, plot_w, area_h - 6 - X_AREA);
            (x, y) = axes(xr, yr);
        }
    }
    render(path, c.fig, w, h, |root| {
        draw_title(root, c.title, w)?;
        let area = root.clone().shrink((0, TITLE_H as i32), (area_w, area_h));
        let mut chart = build_chart(&area, &x, &y, (6, 16))?;
        under(root, &chart)?;
        draw_axes(root, &mut chart, &x, &y, c.grid)?;
        over(&mut chart)?;
        let (pxr, pyr) = chart.plotting_area().get_pixel_range();
        draw_legend(root, pxr.end + 12, pyr.start, None, &c.entries)?;
        let bar_top = pyr.start + if lh > 0 { lh + 36 } else { 22 };
        c.bar.draw(root, pxr.end + 12, bar_top, pyr.end - 1)?;
        Ok(Vec::new())
    })
}

/// Scatter of 2-D points, each coloured by a continuous value (matplotlib's "autumn": red at the
/// minimum, yellow at the maximum), with a colour bar labelled `value_label` in value units and
/// optional `curves` drawn on top (e.g. the circle data coloured by its true latent z, with the
/// decoder's mean curve g(z) over it).
///
/// Points are 3 px, slightly transparent and drawn in input order; points with a non-finite
/// coordinate or value are skipped. The colours span the finite min..max of the drawn values (a
/// constant value gets a small range around it). Axis ranges come from the points (with a small
/// margin); curves are 2 px lines, black for the first and then tab10 colours, clipped to the
/// plot and broken at non-finite points, each with a legend entry outside the plot (no legend
/// without curves). With `equal_aspect` both axes get the same units per pixel, so a circle
/// looks round. Errors: `points.len() != values.len()`, or no finite point with a finite value.
#[allow(clippy::too_many_arguments)]
pub fn value_scatter(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[[f32; 2]],
    values: &[f32],
    value_label: &str,
    curves: &[(&str, Vec<(f64, f64)>)],
    equal_aspect: bool,
) -> Result<()> {
    const FIG: &str = "value_scatter";
    if points.len() != values.len() {
        return Err(Error::Usage(format!(
            "{FIG}: {} points but {} values",
            points.len(),
            values.len()
        )));
    }
    let finite: Vec<((f64, f64), f64)> = points
        .iter()
        .zip(values)
        .map(|(p, v)| ((f64::from(p[0]), f64::from(p[1])), f64::from(*v)))
        .filter(|((x, y), v)| x.is_finite() && y.is_finite() && v.is_finite())
        .collect();
    let (Some(xr), Some(yr), Some(vr)) = (
        finite_min_max(finite.iter().map(|(p, _)| p.0)),
        finite_min_max(finite.iter().map(|(p, _)| p.1)),
        data_range(finite.iter().map(|(_, v)| *v)),
    ) else {
        return Err(Error::Usage(format!(
            "{FIG}: '{title}' has no point with finite coordinates and value"
        )));
    };
    let color = |k: usize| match k {
        0 => BLACK,
        _ => TAB10[(k - 1) % TAB10.len()],
    };
    let plot = ColourPlot {
        fig: FIG,
        title,
        x_label,
        y_label,
        xr: axis_range(xr.0, xr.1),
        yr: axis_range(yr.0, yr.1),
        equal_aspect,
        grid: true,
        bar: ColourBar::new(vr, &AUTUMN, value_label),
        entries: curves
            .iter()
            .enumerate()
            .map(|(k, (name, _))| (name.to_string(), Mark::Line(color(k))))
            .collect(),
    };
    render_colour_plot(
        path,
        &plot,
        |_, _| Ok(()),
        |chart| {
            chart.draw_series(
                finite
                    .iter()
                    .map(|(p, v)| Circle::new(*p, 3, plot.bar.colour(*v).mix(0.8).filled())),
            )?;
            let (xr, yr) = (chart.x_range(), chart.y_range());
            for (k, (_, pts)) in curves.iter().enumerate() {
                for run in clip_polyline(pts, (xr.start, xr.end), (yr.start, yr.end)) {
                    let line = PathElement::new(run, color(k).stroke_width(2));
                    chart.draw_series(std::iter::once(line))?;
                }
            }
            Ok(())
        },
    )
}

/// A colour map of a scalar field over the plane (e.g. the encoder mean μ(x) of a 1-D latent as
/// a function of x ∈ R²), with a colour bar labelled `value_label` and the optional `points`
/// (e.g. the data) overlaid as small dark semi-transparent dots.
///
/// Each grid cell is a flat rectangle centred on its grid point. Values of both signs use a
/// blue → white → red map symmetric about 0 (white = 0), so the sign of the field reads at a
/// glance; values of one sign use viridis over their min..max. Non-finite cells are light
/// grey. The axes span the cells, widened (with a margin) to include any point outside them;
/// with `equal_aspect` both axes get the same units per pixel. Errors: a grid smaller than
/// 2×2, `values.len() != nx*ny`, or a non-finite / non-positive spacing or extent.
#[allow(clippy::too_many_arguments)]
pub fn field_map(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    grid: FieldGrid,
    value_label: &str,
    points: &[[f32; 2]],
    equal_aspect: bool,
) -> Result<()> {
    const FIG: &str = "field_map";
    let g = grid;
    let want = checked_len(g.nx, g.ny, 1, FIG)?;
    if g.nx < 2 || g.ny < 2 || g.values.len() != want {
        return Err(Error::Usage(format!(
            "{FIG}: need nx, ny >= 2 and {}×{} values, got {}",
            g.nx,
            g.ny,
            g.values.len()
        )));
    }
    // The cells reach half a spacing beyond the outer grid points.
    let extent = |min: f64, d: f64, n: usize| (min - 0.5 * d, min + (n as f64 - 0.5) * d);
    let (cx, cy) = (extent(g.x_min, g.dx, g.nx), extent(g.y_min, g.dy, g.ny));
    let ok = |d: f64, (a, b): (f64, f64)| d > 0.0 && d.is_finite() && a >= -HUGE && b <= HUGE;
    if !(ok(g.dx, cx) && ok(g.dy, cy)) {
        return Err(Error::Usage(format!(
            "{FIG}: grid origin/spacing must be finite with dx, dy > 0 (and a finite extent)"
        )));
    }
    let pts: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (f64::from(p[0]), f64::from(p[1])))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let span = |cells: (f64, f64), p: Option<(f64, f64)>| match p {
        Some((a, b)) if a < cells.0 || b > cells.1 => axis_range(a.min(cells.0), b.max(cells.1)),
        _ => cells,
    };
    let (vr, stops): ((f64, f64), &'static [[u8; 3]]) = match data_range(g.values.iter().copied()) {
        Some((lo, hi)) if lo < 0.0 && hi > 0.0 => {
            let m = lo.abs().max(hi);
            ((-m, m), &DIVERGING)
        }
        Some(r) => (r, &VIRIDIS),
        None => ((-1.0, 1.0), &DIVERGING),
    };
    let bar = ColourBar::new(vr, stops, value_label);
    let colours: Vec<RGBColor> = g
        .values
        .iter()
        .map(|v| {
            if v.is_finite() {
                bar.colour(*v)
            } else {
                MISSING_GRAY
            }
        })
        .collect();
    let plot = ColourPlot {
        fig: FIG,
        title,
        x_label,
        y_label,
        xr: span(cx, finite_min_max(pts.iter().map(|p| p.0))),
        yr: span(cy, finite_min_max(pts.iter().map(|p| p.1))),
        equal_aspect,
        grid: false,
        bar,
        entries: Vec::new(),
    };
    // Cells are painted pixel by pixel (nearest grid point), so any grid resolution looks the
    // same and cell edges fall exactly where they belong.
    let cells = |root: &Area<'_>, chart: &Chart<'_, '_>| -> DrawResult<()> {
        let (pxr, pyr) = chart.plotting_area().get_pixel_range();
        let (xr, yr) = (chart.x_range(), chart.y_range());
        let (pw, ph) = (
            f64::from(pxr.end - pxr.start),
            f64::from(pyr.end - pyr.start),
        );
        let index = |v: f64, min: f64, d: f64, n: usize| {
            let k = ((v - min) / d).round();
            (0.0..n as f64).contains(&k).then_some(k as usize)
        };
        for py in pyr.clone() {
            let yv = yr.end - (f64::from(py - pyr.start) + 0.5) / ph * (yr.end - yr.start);
            let Some(i) = index(yv, g.y_min, g.dy, g.ny) else {
                continue;
            };
            for pxl in pxr.clone() {
                let xv = xr.start + (f64::from(pxl - pxr.start) + 0.5) / pw * (xr.end - xr.start);
                if let Some(c) =
                    index(xv, g.x_min, g.dx, g.nx).and_then(|j| colours.get(i * g.nx + j))
                {
                    root.draw_pixel((pxl, py), c)?;
                }
            }
        }
        Ok(())
    };
    render_colour_plot(path, &plot, cells, |chart| {
        // A faint light halo keeps the dark dots visible on the darkest colours too.
        let halo = WHITE.mix(0.4).filled();
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, halo)))?;
        let dot = RGBColor(20, 20, 20).mix(0.5).filled();
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 2, dot)))?;
        Ok(())
    })
}

/// Grid of small line charts (`cols` per row), one per panel, each comparing two 1-D densities on
/// the same points `z`: the grid posterior p(z|x) (dark blue, lightly filled underneath) and the
/// approximate posterior q(z|x) (red, dashed so p shows through where they agree), e.g. true
/// posterior vs q for several test points of a 1-D latent model.
///
/// Each panel has its caption above it, x axis `x_label`, y axis "density" from 0 to a little
/// above the larger peak of the two; points are drawn in order of z and a non-finite z is
/// skipped. One legend row under the title lists the distinct `p_label`s and `q_label`s.
/// Non-finite (or negative) densities count as 0. Errors: no panels, `cols == 0`, or a panel
/// whose `z`, `p` and `q` differ in length or have fewer than 2 points.
pub fn density_panels(
    path: &Path,
    title: &str,
    x_label: &str,
    panels: &[DensityPanel],
    cols: usize,
) -> Result<()> {
    const FIG: &str = "density_panels";
    const HEADER: u32 = TITLE_H + 26;
    if panels.is_empty() {
        return Err(Error::Usage(format!("{FIG}: no panels to draw")));
    }
    if cols == 0 {
        return Err(Error::Usage(format!("{FIG}: cols must be at least 1")));
    }
    for (k, p) in panels.iter().enumerate() {
        if p.z.len() != p.p.len() || p.z.len() != p.q.len() || p.z.len() < 2 {
            return Err(Error::Usage(format!(
                "{FIG}: panel {k} ('{}'): z, p and q need the same length, at least 2; got {}, {}, {}",
                p.caption,
                p.z.len(),
                p.p.len(),
                p.q.len()
            )));
        }
    }
    ensure_font()?;
    let cols = cols.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let panel_w = (TARGET_W / px(cols)).clamp(240, 380);
    let panel_h = panel_w * 3 / 4 + px_i(CAPTION_H);
    let mut entries: Vec<(String, Mark)> = Vec::new();
    for p in panels {
        for (label, mark) in [
            (p.p_label, Mark::Line(P_COLOR)),
            (p.q_label, Mark::Dashed(Q_COLOR)),
        ] {
            if !label.is_empty() && !entries.iter().any(|(l, _)| l == label) {
                entries.push((label.to_string(), mark));
            }
        }
    }
    let legend_w: i32 = entries
        .iter()
        .map(|(l, _)| text_width(l, LEGEND_SIZE) + LEGEND_SWATCH + 33)
        .sum();
    let w = px(cols)
        .saturating_mul(panel_w)
        .saturating_add(20)
        .max(title_width(title))
        .max(px_i(legend_w).saturating_add(32).min(TARGET_W));
    let h = px(rows).saturating_mul(panel_h).saturating_add(HEADER + 8);
    render(path, FIG, w, h, |root| {
        draw_title(root, title, w)?;
        draw_legend_row(root, (w as i32 / 2, TITLE_H as i32 + 6), &entries, "")?;
        let x_off = w.saturating_sub(px(cols) * panel_w) / 2;
        for (k, p) in panels.iter().enumerate() {
            let (r, c) = (px(k / cols), px(k % cols));
            let area = root.clone().shrink(
                ((x_off + c * panel_w) as i32, (HEADER + r * panel_h) as i32),
                (panel_w as i32, panel_h as i32),
            );
            density_panel(root, &area, p, x_label)?;
        }
        Ok(Vec::new())
    })
}

fn density_panel<'b>(
    root: &Area<'b>,
    area: &Area<'b>,
    p: &DensityPanel,
    x_label: &str,
) -> DrawResult<()> {
    let dens = |v: f64| {
        if v.is_finite() {
            v.clamp(0.0, HUGE)
        } else {
            0.0
        }
    };
    let mut pts: Vec<(f64, f64, f64)> =
        p.z.iter()
            .zip(p.p.iter().zip(p.q))
            .filter(|(z, _)| z.is_finite())
            .map(|(z, (a, b))| (z.clamp(-HUGE, HUGE), dens(*a), dens(*b)))
            .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let xr = data_range(pts.iter().map(|t| t.0)).unwrap_or((-1.0, 1.0));
    let peak = pts.iter().fold(0.0f64, |m, t| m.max(t.1).max(t.2));
    let y_hi = if peak > 0.0 { peak * 1.1 } else { 1.0 };
    let area = with_caption(root, area, p.caption)?;
    let x = Axis::auto(xr, 5, x_label);
    let y = Axis::auto((0.0, y_hi), 5, "density");
    let mut chart = build_chart(&area, &x, &y, (2, 12))?;
    draw_axes(root, &mut chart, &x, &y, true)?;
    let p_curve = pts.iter().map(|t| (t.0, t.1));
    chart.draw_series(AreaSeries::new(p_curve.clone(), 0.0, P_COLOR.mix(0.15)))?;
    chart.draw_series(LineSeries::new(p_curve, P_COLOR.stroke_width(2)))?;
    let q_curve = pts.iter().map(|t| (t.0, t.2));
    chart.draw_series(DashedLineSeries::new(
        q_curve,
        9,
        5,
        Q_COLOR.stroke_width(2),
    ))?;
    Ok(())
}

/// Marching squares: line segments of the level set {f = level} of a grid `f[ny][nx]` (row-major), in grid coordinates (x = column index, y = row index, fractional, linear interpolation along cell edges). Public so it can be unit-tested.
///
/// Corners with `f >= level` count as inside. Cells with a NaN corner are skipped; saddle cells
/// are resolved by the mean of their four corners. Infinite corners are allowed (the crossing is
/// then put at the edge midpoint). Returns nothing for grids smaller than 2×2 or if
/// `f.len() < nx*ny`.
pub fn contour_segments(f: &[f64], nx: usize, ny: usize, level: f64) -> Vec<[(f64, f64); 2]> {
    let mut out = Vec::new();
    if nx < 2 || ny < 2 || level.is_nan() {
        return out;
    }
    match nx.checked_mul(ny) {
        Some(n) if n <= f.len() => {}
        _ => return out,
    }
    // Edges of a cell, as pairs of corner indices; corners are numbered
    // 0 = (j, i), 1 = (j+1, i), 2 = (j+1, i+1), 3 = (j, i+1).
    // Edge e joins corner e and corner (e+1) % 4.
    const AROUND_0_2: &[(usize, usize)] = &[(3, 0), (1, 2)];
    const AROUND_1_3: &[(usize, usize)] = &[(0, 1), (2, 3)];
    for i in 0..ny - 1 {
        for j in 0..nx - 1 {
            let v = [
                f[i * nx + j],
                f[i * nx + j + 1],
                f[(i + 1) * nx + j + 1],
                f[(i + 1) * nx + j],
            ];
            if v.iter().any(|x| x.is_nan()) {
                continue;
            }
            let (x0, y0, x1, y1) = (j as f64, i as f64, (j + 1) as f64, (i + 1) as f64);
            let corner = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)];
            let case =
                v.iter().enumerate().fold(
                    0usize,
                    |acc, (k, x)| if *x >= level { acc | (1 << k) } else { acc },
                );
            let center_in = (v[0] + v[1] + v[2] + v[3]) / 4.0 >= level;
            let pairs: &[(usize, usize)] = match case {
                1 | 14 => &[(3, 0)],
                2 | 13 => &[(0, 1)],
                4 | 11 => &[(1, 2)],
                8 | 7 => &[(2, 3)],
                3 | 12 => &[(3, 1)],
                6 | 9 => &[(0, 2)],
                5 if center_in => AROUND_1_3,
                5 => AROUND_0_2,
                10 if center_in => AROUND_0_2,
                10 => AROUND_1_3,
                _ => &[],
            };
            let cross = |e: usize| {
                let (a, b) = (e, (e + 1) % 4);
                let t = (level - v[a]) / (v[b] - v[a]);
                let t = if t.is_finite() {
                    t.clamp(0.0, 1.0)
                } else {
                    0.5
                };
                (
                    corner[a].0 + t * (corner[b].0 - corner[a].0),
                    corner[a].1 + t * (corner[b].1 - corner[a].1),
                )
            };
            for &(e1, e2) in pairs {
                out.push([cross(e1), cross(e2)]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn test_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vae_plots_test_{}_{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn check_png(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        assert!(img.width() > 0 && img.height() > 0);
        (img.width(), img.height())
    }

    #[test]
    fn cubic_upsampling_keeps_samples_and_reproduces_a_quadratic() {
        let (nx, ny) = (5, 4);
        let f: Vec<f64> = (0..nx * ny)
            .map(|k| {
                let (x, y) = ((k % nx) as f64, (k / nx) as f64);
                x * x + 2.0 * y
            })
            .collect();
        let (g, gx, gy) = upsample_cubic(&f, nx, ny, 4);
        assert_eq!((gx, gy), (17, 13));
        for i in 0..ny {
            for j in 0..nx {
                assert!((g[4 * i * gx + 4 * j] - f[i * nx + j]).abs() < 1e-12);
            }
        }
        // Catmull–Rom is exact for quadratics away from the clamped border cells.
        let (x, y) = (1.75, 1.5);
        let v = g[(y * 4.0) as usize * gx + (x * 4.0) as usize];
        assert!((v - (x * x + 2.0 * y)).abs() < 1e-9, "{v}");
    }

    /// Small deterministic RNG (xorshift) with Box–Muller normals.
    struct Rng(u64);
    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// An "L": a vertical bar down the left and a horizontal bar along the bottom. Its
    /// orientation shows at a glance whether digits are transposed or flipped.
    /// `arm` (0..1) scales the foot's length, `height` (0..1) the stem's height.
    fn l_digit(arm: f64, height: f64) -> Vec<f32> {
        let mut img = vec![0f32; PIXELS];
        let bottom = 22usize;
        let top = bottom - (4.0 + 14.0 * height) as usize;
        let right = 8 + (4.0 + 12.0 * arm) as usize;
        for r in top..=bottom {
            for c in 6..9 {
                img[r * SIDE + c] = 1.0;
            }
        }
        for r in bottom - 2..=bottom {
            for c in 6..right {
                img[r * SIDE + c] = 1.0;
            }
        }
        // a soft edge so grey levels show too
        img[(bottom + 1) * SIDE + 7] = 0.5;
        img
    }

    #[test]
    fn contour_of_radial_function_is_a_circle() {
        let (nx, ny) = (61usize, 51usize);
        let (cx, cy) = (30.0, 25.0);
        let f: Vec<f64> = (0..ny)
            .flat_map(|i| (0..nx).map(move |j| (j as f64 - cx).powi(2) + (i as f64 - cy).powi(2)))
            .collect();
        for level in [4.0, 50.0, 400.0] {
            let segs = contour_segments(&f, nx, ny, level);
            assert!(segs.len() > 8, "level {level}: {} segments", segs.len());
            let r = f64::sqrt(level);
            for s in &segs {
                for (x, y) in s {
                    let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
                    assert!(
                        (d - r).abs() <= 0.5,
                        "level {level}: point at radius {d}, want {r}"
                    );
                }
            }
        }
        // A contour that leaves the grid is simply cut off; nothing outside the grid.
        for s in contour_segments(&f, nx, ny, 900.0) {
            for (x, y) in s {
                assert!(
                    (0.0..=(nx - 1) as f64).contains(&x) && (0.0..=(ny - 1) as f64).contains(&y)
                );
            }
        }
    }

    #[test]
    fn contour_degenerate_inputs() {
        assert!(contour_segments(&[], 0, 0, 1.0).is_empty());
        assert!(contour_segments(&[1.0, 2.0], 2, 1, 1.5).is_empty());
        assert!(contour_segments(&[1.0, 2.0, 3.0], 2, 2, 1.5).is_empty());
        assert!(contour_segments(&[0.0; 4], usize::MAX, 2, 1.5).is_empty());
        let f = [
            f64::NAN,
            f64::NEG_INFINITY,
            1.0,
            f64::INFINITY,
            0.0,
            2.0,
            0.0,
            3.0,
            0.0,
        ];
        for s in contour_segments(&f, 3, 3, 0.5) {
            for (x, y) in s {
                assert!(x.is_finite() && y.is_finite());
            }
        }
        assert!(contour_segments(&[0.0, 1.0, 0.0, 1.0], 2, 2, f64::NAN).is_empty());
        // Saddle: exactly two segments.
        assert_eq!(contour_segments(&[1.0, 0.0, 0.0, 1.0], 2, 2, 0.5).len(), 2);
    }

    #[test]
    fn image_panels_writes_png_and_checks_lengths() {
        let dir = test_dir("panels");
        let path = dir.join("panels.png");
        let imgs: Vec<f32> = (0..6).flat_map(|k| l_digit(k as f64 / 5.0, 0.5)).collect();
        let panels = [
            Panel {
                caption: "a",
                rows: 2,
                cols: 3,
                images: &imgs,
            },
            Panel {
                caption: "b",
                rows: 3,
                cols: 2,
                images: &imgs,
            },
        ];
        image_panels(&path, "panels", &panels).unwrap();
        check_png(&path);
        let bad = [Panel {
            caption: "bad",
            rows: 2,
            cols: 2,
            images: &imgs,
        }];
        assert!(matches!(
            image_panels(&path, "x", &bad),
            Err(Error::Usage(_))
        ));
        let huge = [Panel {
            caption: "huge",
            rows: usize::MAX,
            cols: 3,
            images: &imgs,
        }];
        assert!(image_panels(&path, "x", &huge).is_err());
        assert!(image_panels(&path, "x", &[]).is_err());
        let empty = [Panel {
            caption: "empty",
            rows: 0,
            cols: 0,
            images: &[],
        }];
        image_panels(&path, "", &empty).unwrap();
        check_png(&path);
        let nan = vec![f32::NAN; PIXELS];
        image_panels(
            &path,
            "nan",
            &[Panel {
                caption: "",
                rows: 1,
                cols: 1,
                images: &nan,
            }],
        )
        .unwrap();
        // Far too many tiles: an error rather than a gigantic allocation.
        let many = vec![0f32; 400 * 400 * PIXELS / 400];
        let r = image_panels(
            &path,
            "many",
            &[Panel {
                caption: "",
                rows: 400,
                cols: 1,
                images: &many,
            }],
        );
        assert!(matches!(r, Err(Error::Usage(_))));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn class_scatter_writes_png() {
        let dir = test_dir("scatter");
        let path = dir.join("scatter.png");
        let pts = [
            [0.0, 1.0],
            [f32::NAN, 2.0],
            [3.0, f32::INFINITY],
            [2.0, -1.0],
            [1.0, 1.0],
        ];
        class_scatter(&path, "s", "x", "y", &pts, &[0, 1, 2, 3, 42]).unwrap();
        check_png(&path);
        class_scatter(&path, "", "", "", &[], &[]).unwrap();
        check_png(&path);
        class_scatter(&path, "one", "x", "y", &[[5.0, 5.0]], &[7]).unwrap();
        class_scatter(
            &path,
            "huge",
            "x",
            "y",
            &[[f32::MAX, -f32::MAX], [-f32::MAX, 0.0]],
            &[1, 2],
        )
        .unwrap();
        assert!(matches!(
            class_scatter(&path, "s", "x", "y", &pts, &[0]),
            Err(Error::Usage(_))
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn latent_lattice_writes_png_and_checks_lengths() {
        let dir = test_dir("lattice");
        let path = dir.join("lattice.png");
        let xs = [-1.0f32, 0.0, 1.0];
        let ys = [-2.0f32, 2.0];
        let imgs: Vec<f32> = (0..6).flat_map(|k| l_digit(k as f64 / 5.0, 0.5)).collect();
        latent_lattice(&path, "lattice", &xs, &ys, &imgs).unwrap();
        let (w, h) = check_png(&path);
        assert!(w > 0 && h > 0);
        assert!(matches!(
            latent_lattice(&path, "bad", &xs, &ys, &imgs[..10]),
            Err(Error::Usage(_))
        ));
        assert!(latent_lattice(&path, "empty", &[], &[], &[]).is_err());
        assert!(latent_lattice(&path, "nan", &[f32::NAN], &[0.0], &imgs[..PIXELS]).is_err());
        latent_lattice(&path, "one", &[0.5], &[0.5], &imgs[..PIXELS]).unwrap();
        latent_lattice(&path, "same", &[0.5, 0.5], &[1e30], &imgs[..2 * PIXELS]).unwrap();
        check_png(&path);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn line_chart_writes_png() {
        let dir = test_dir("lines");
        let path = dir.join("lines.png");
        let a: Vec<(f64, f64)> = (0..10)
            .map(|k| (k as f64, -(100.0 / (k as f64 + 1.0))))
            .collect();
        let b = vec![(0.0, f64::NAN), (1.0, f64::INFINITY), (2.0, -50.0)];
        line_chart(
            &path,
            "ELBO",
            "epoch",
            "ELBO",
            &[("train", a), ("test", b), ("none", vec![])],
        )
        .unwrap();
        check_png(&path);
        line_chart(&path, "one", "x", "y", &[("p", vec![(1.0, 1.0)])]).unwrap();
        line_chart(
            &path,
            "big",
            "x",
            "y",
            &[("p", vec![(-1e308, 1e308), (1e308, -1e308)])],
        )
        .unwrap();
        check_png(&path);
        assert!(line_chart(&path, "empty", "x", "y", &[]).is_err());
        assert!(line_chart(
            &path,
            "empty",
            "x",
            "y",
            &[("a", vec![]), ("b", vec![(f64::NAN, 1.0)])]
        )
        .is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    fn gaussian_panel<'a>(ld: &'a [f64], n: usize, digit: Option<&'a [f32]>) -> PosteriorPanel<'a> {
        PosteriorPanel {
            caption: "panel",
            log_density: ld,
            nx: n,
            ny: n,
            x_min: -3.0,
            y_min: -3.0,
            dx: 6.0 / (n - 1) as f64,
            dy: 6.0 / (n - 1) as f64,
            q_family: LatentFamily::Gaussian,
            q_mean: [0.2, -0.1],
            q_scale: [0.8, 0.5],
            digit,
            p_label: "p(z|x) (grid)",
            q_label: "q(z|x)",
        }
    }

    #[test]
    fn posterior_contours_writes_png_and_checks_inputs() {
        let dir = test_dir("posterior");
        let path = dir.join("posterior.png");
        let n = 41;
        let ld: Vec<f64> = (0..n * n)
            .map(|k| {
                let (x, y) = (-3.0 + 0.15 * (k % n) as f64, -3.0 + 0.15 * (k / n) as f64);
                -0.5 * (x * x + 4.0 * y * y)
            })
            .collect();
        let digit = l_digit(0.5, 0.5);
        let panels = [
            gaussian_panel(&ld, n, Some(&digit)),
            gaussian_panel(&ld, n, None),
        ];
        posterior_contours(&path, "posterior", 2, &panels).unwrap();
        check_png(&path);
        posterior_contours(&path, "posterior", 5, &panels[..1]).unwrap();
        // All -inf / NaN densities, q outside the grid, bad std: still a figure.
        let dead = vec![f64::NEG_INFINITY; n * n];
        let mut p = gaussian_panel(&dead, n, Some(&digit[..10]));
        p.q_mean = [100.0, 100.0];
        let nan = vec![f64::NAN; n * n];
        let mut p2 = gaussian_panel(&nan, n, None);
        p2.q_scale = [0.0, f64::NAN];
        posterior_contours(&path, "dead", 1, &[p, p2]).unwrap();
        check_png(&path);
        assert!(posterior_contours(&path, "none", 2, &[]).is_err());
        assert!(posterior_contours(&path, "cols", 0, &panels).is_err());
        let short = gaussian_panel(&ld[..10], n, None);
        assert!(matches!(
            posterior_contours(&path, "short", 1, &[short]),
            Err(Error::Usage(_))
        ));
        let mut bad_dx = gaussian_panel(&ld, n, None);
        bad_dx.dx = 0.0;
        assert!(posterior_contours(&path, "dx", 1, &[bad_dx]).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn histograms_write_png() {
        let dir = test_dir("hist");
        let path = dir.join("hist.png");
        let mut rng = Rng(7);
        let a: Vec<f64> = (0..500).map(|_| rng.normal()).collect();
        let b = [3.0, 3.0, 3.0];
        let c = [f64::NAN, f64::INFINITY];
        let d = [f64::MAX, -f64::MAX, 1.0];
        histograms(
            &path,
            "h",
            &[("a", &a), ("b", &b), ("c", &c), ("d", &d), ("e", &[])],
            20,
        )
        .unwrap();
        check_png(&path);
        assert!(histograms(&path, "h", &[("a", &a)], 0).is_err());
        assert!(histograms(&path, "h", &[], 10).is_err());
        histograms(&path, "h", &[("a", &a)], 1).unwrap();
        check_png(&path);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Noisy points on the unit circle with their angle as the value.
    fn circle(n: usize, rng: &mut Rng) -> (Vec<[f32; 2]>, Vec<f32>) {
        (0..n)
            .map(|k| {
                let z = -3.0 + 6.0 * k as f64 / n as f64;
                let a = z * std::f64::consts::PI / 3.0;
                let p = [
                    (a.cos() + 0.05 * rng.normal()) as f32,
                    (a.sin() + 0.05 * rng.normal()) as f32,
                ];
                (p, z as f32)
            })
            .unzip()
    }

    #[test]
    fn value_scatter_writes_png_and_checks_inputs() {
        let dir = test_dir("value_scatter");
        let path = dir.join("value.png");
        let (mut pts, mut values) = circle(200, &mut Rng(3));
        pts[0] = [f32::NAN, 0.0];
        values[1] = f32::INFINITY;
        let ring: Vec<(f64, f64)> = (0..=100)
            .map(|k| (k as f64 * 0.0628).cos())
            .zip((0..=100).map(|k| (k as f64 * 0.0628).sin()))
            .collect();
        let broken = vec![(0.0, 0.0), (f64::NAN, 1.0), (5.0, 5.0), (0.5, -0.5)];
        let curves = [("g(z)", ring), ("other", broken), ("empty", vec![])];
        for equal in [true, false] {
            value_scatter(&path, "v", "x₁", "x₂", &pts, &values, "z", &curves, equal).unwrap();
            check_png(&path);
        }
        value_scatter(&path, "c", "x", "y", &pts, &vec![2.0; 200], "z", &[], true).unwrap();
        value_scatter(&path, "1", "x", "y", &[[1.0, 2.0]], &[0.5], "z", &[], true).unwrap();
        let wide = [[-f32::MAX, 0.0], [f32::MAX, 1e-30]];
        value_scatter(
            &path,
            "w",
            "x",
            "y",
            &wide,
            &[-f32::MAX, f32::MAX],
            "",
            &[],
            true,
        )
        .unwrap();
        check_png(&path);
        assert!(matches!(
            value_scatter(&path, "n", "x", "y", &pts, &values[1..], "z", &[], false),
            Err(Error::Usage(_))
        ));
        let nan = [[f32::NAN, 0.0], [0.0, 0.0]];
        assert!(matches!(
            value_scatter(
                &path,
                "n",
                "x",
                "y",
                &nan,
                &[1.0, f32::NAN],
                "z",
                &[],
                false
            ),
            Err(Error::Usage(_))
        ));
        assert!(value_scatter(&path, "e", "x", "y", &[], &[], "z", &[], false).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    fn field(nx: usize, ny: usize, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
        (0..nx * ny)
            .map(|k| f(-2.0 + 0.1 * (k % nx) as f64, -1.0 + 0.1 * (k / nx) as f64))
            .collect()
    }

    #[test]
    fn field_map_writes_png_and_checks_inputs() {
        let dir = test_dir("field");
        let path = dir.join("field.png");
        let (nx, ny) = (41, 21);
        let signed = field(nx, ny, |x, y| x.atan2(y));
        let grid = |values| FieldGrid {
            values,
            nx,
            ny,
            x_min: -2.0,
            y_min: -1.0,
            dx: 0.1,
            dy: 0.1,
        };
        let (pts, _) = circle(100, &mut Rng(5));
        let (zeros, nans) = (vec![0.0; nx * ny], vec![f64::NAN; nx * ny]);
        let out = [[5.0, -4.0], [f32::NAN, 0.0]];
        field_map(&path, "μ", "x₁", "x₂", grid(&signed), "μ(x)", &pts, true).unwrap();
        check_png(&path);
        let mut positive = field(nx, ny, |x, y| x * x + y * y);
        positive[7] = f64::NAN;
        positive[8] = f64::NEG_INFINITY;
        field_map(&path, "p", "x", "y", grid(&positive), "r²", &out, false).unwrap();
        check_png(&path);
        field_map(&path, "0", "x", "y", grid(&zeros), "", &[], true).unwrap();
        field_map(&path, "nan", "x", "y", grid(&nans), "", &[], false).unwrap();
        check_png(&path);
        let usage = |g: FieldGrid| {
            matches!(
                field_map(&path, "bad", "x", "y", g, "", &[], false),
                Err(Error::Usage(_))
            )
        };
        assert!(usage(grid(&signed[1..])));
        assert!(usage(FieldGrid {
            nx: 1,
            ny: 1,
            ..grid(&signed[..1])
        }));
        assert!(usage(FieldGrid {
            dx: 0.0,
            ..grid(&signed)
        }));
        assert!(usage(FieldGrid {
            dy: f64::NAN,
            ..grid(&signed)
        }));
        assert!(usage(FieldGrid {
            x_min: 1e308,
            dx: 1e307,
            ..grid(&signed)
        }));
        assert!(usage(FieldGrid {
            nx: usize::MAX,
            ny: 2,
            ..grid(&signed)
        }));
        std::fs::remove_dir_all(&dir).ok();
    }

    fn density_panel_of<'a>(z: &'a [f64], p: &'a [f64], q: &'a [f64]) -> DensityPanel<'a> {
        DensityPanel {
            caption: "x = (0.3, 0.9)",
            z,
            p,
            q,
            p_label: "p(z|x) (grid)",
            q_label: "q(z|x)",
        }
    }

    #[test]
    fn density_panels_write_png_and_check_inputs() {
        let dir = test_dir("density");
        let path = dir.join("density.png");
        let z: Vec<f64> = (0..101).map(|k| -4.0 + 0.08 * k as f64).collect();
        let gauss = |m: f64, s: f64| -> Vec<f64> {
            z.iter()
                .map(|v| (-0.5 * ((v - m) / s).powi(2)).exp() / (s * 2.5066))
                .collect()
        };
        let (p, q) = (gauss(0.5, 0.7), gauss(0.3, 0.5));
        let mut bad = p.clone();
        bad[3] = f64::NAN;
        bad[4] = f64::INFINITY;
        bad[5] = -1.0;
        let mut bad_z = z.clone();
        bad_z[0] = f64::NAN;
        let zeros = vec![0.0; z.len()];
        let panels = [
            density_panel_of(&z, &p, &q),
            density_panel_of(&bad_z, &bad, &q),
            density_panel_of(&z, &zeros, &zeros),
            density_panel_of(&[1.0, 1.0], &[1.0, 2.0], &[f64::NAN, 0.0]),
        ];
        density_panels(&path, "posteriors", "z", &panels, 3).unwrap();
        check_png(&path);
        density_panels(&path, "one", "z", &panels[..1], 9).unwrap();
        check_png(&path);
        let usage = |panels: &[DensityPanel], cols| {
            matches!(
                density_panels(&path, "bad", "z", panels, cols),
                Err(Error::Usage(_))
            )
        };
        assert!(usage(&[], 2));
        assert!(usage(&panels, 0));
        assert!(usage(&[density_panel_of(&z, &p[1..], &q)], 1));
        assert!(usage(&[density_panel_of(&z, &p, &q[1..])], 1));
        assert!(usage(&[density_panel_of(&z[..1], &p[..1], &q[..1])], 1));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn extreme_text_and_counts_do_not_panic() {
        let dir = test_dir("extreme");
        let path = dir.join("x.png");
        let long: String = "very long title ".repeat(10_000);
        let many: Vec<(&str, Vec<(f64, f64)>)> =
            (0..1000).map(|k| ("s", vec![(k as f64, 1.0)])).collect();
        line_chart(&path, &long, &long, &long, &many).unwrap();
        check_png(&path);
        let empty: Vec<Panel> = (0..10_000)
            .map(|_| Panel {
                caption: "",
                rows: 0,
                cols: 0,
                images: &[],
            })
            .collect();
        assert!(matches!(
            image_panels(&path, &long, &empty),
            Err(Error::Usage(_))
        ));
        let one = l_digit(0.5, 0.5);
        let panel = [Panel {
            caption: &long,
            rows: 1,
            cols: 1,
            images: &one,
        }];
        image_panels(&path, &long, &panel).unwrap();
        latent_lattice(
            &path,
            &long,
            &[-3e38, 3e38],
            &[1e-30],
            &[&one[..], &one[..]].concat(),
        )
        .unwrap();
        check_png(&path);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn helpers_behave() {
        assert_eq!(
            tick_labels(&[-1e-17, 0.1, 0.2, 0.30000000000000004]),
            ["0.0", "0.1", "0.2", "0.3"]
        );
        assert_eq!(tick_labels(&[-100.0, -50.0]), ["-100", "-50"]);
        assert_eq!(tick_labels(&[2.5e7, 3.0e7]), ["2.5e7", "3.0e7"]);
        assert_eq!(
            tick_labels(&[0.0, 2e-4, 4e-4]),
            ["0.0000", "0.0002", "0.0004"]
        );
        assert_eq!(tick_labels(&[1e-5, 2e-5]), ["1e-5", "2e-5"]);
        assert_eq!(nice_ticks(-1.0, 1.0, 4), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        let (lo, hi) = axis_range(3.0, 3.0);
        assert!(lo < 3.0 && hi > 3.0);
        assert_eq!(axis_range(f64::NAN, 1.0), (-1.0, 1.0));
        let levels = hpd_levels(&[1.0, 1.0, 1.0, 1.0], &[0.5]);
        assert_eq!(levels, vec![1.0]);
        assert!(
            clip_segment((-1.0, 0.5), (2.0, 0.5), (0.0, 1.0), (0.0, 1.0))
                .is_some_and(|(a, b)| a == (0.0, 0.5) && b == (1.0, 0.5))
        );
        assert!(clip_segment((-1.0, 2.0), (2.0, 2.0), (0.0, 1.0), (0.0, 1.0)).is_none());
        assert_eq!(ramp(&AUTUMN, 0.0), RGBColor(255, 0, 0));
        assert_eq!(ramp(&AUTUMN, 1.0), RGBColor(255, 255, 0));
        assert_eq!(ramp(&AUTUMN, f64::NAN), ramp(&AUTUMN, -5.0));
        assert_eq!(ramp(&DIVERGING, 0.5), RGBColor(247, 247, 247));
        assert_eq!(
            data_range([2.0, f64::NAN, -1.0].into_iter()),
            Some((-1.0, 2.0))
        );
        assert!(data_range([3.0, 3.0].into_iter()).is_some_and(|(a, b)| a < 3.0 && b > 3.0));
        assert_eq!(data_range([f64::NAN].into_iter()), None);
        // A 200 × 100 px plot of the unit square: x is widened to twice the y range.
        assert_eq!(
            equalise((0.0, 1.0), (0.0, 1.0), 200, 100),
            ((-0.5, 1.5), (0.0, 1.0))
        );
        assert_eq!(
            equalise((0.0, 4.0), (0.0, 1.0), 100, 100),
            ((0.0, 4.0), (-1.5, 2.5))
        );
    }

    /// Renders every figure with realistic fake data into $TMPDIR/plot_previews for a visual
    /// check. Run with `cargo test -- --ignored render_previews`.
    #[test]
    #[ignore]
    fn render_previews() {
        let dir = std::env::temp_dir().join("plot_previews");
        std::fs::create_dir_all(&dir).unwrap();
        let mut rng = Rng(12345);

        // Digit panels: 8×8 L shapes of varying size.
        let imgs: Vec<f32> = (0..64)
            .flat_map(|k| l_digit((k % 8) as f64 / 7.0, (k / 8) as f64 / 7.0))
            .collect();
        let noisy: Vec<f32> = imgs
            .iter()
            .map(|v| v * 0.8 + 0.2 * rng.uniform() as f32)
            .collect();
        image_panels(
            &dir.join("panels.png"),
            "MNIST reconstructions (epoch 100)",
            &[
                Panel {
                    caption: "data",
                    rows: 8,
                    cols: 8,
                    images: &imgs,
                },
                Panel {
                    caption: "reconstruction",
                    rows: 8,
                    cols: 8,
                    images: &noisy,
                },
                Panel {
                    caption: "samples from p(x|z)",
                    rows: 8,
                    cols: 8,
                    images: &imgs,
                },
            ],
        )
        .unwrap();

        // Class scatter: ten clusters around a circle.
        let mut pts = Vec::new();
        let mut labels = Vec::new();
        for k in 0..3000 {
            let c = (k % 10) as u8;
            let a = c as f64 / 10.0 * std::f64::consts::TAU;
            pts.push([
                (2.0 * a.cos() + 0.5 * rng.normal()) as f32,
                (2.0 * a.sin() + 0.5 * rng.normal()) as f32,
            ]);
            labels.push(c);
        }
        class_scatter(
            &dir.join("scatter.png"),
            "Latent means of the test set",
            "z₁",
            "z₂",
            &pts,
            &labels,
        )
        .unwrap();

        // Lattice: stem height grows with z₂ (upwards), foot length with z₁ (rightwards).
        let n = 15;
        let quantile = |k: usize| {
            // rough inverse normal CDF via a logistic approximation
            let p = (k as f64 + 0.5) / n as f64;
            ((p / (1.0 - p)).ln() / 1.702) as f32
        };
        let xs: Vec<f32> = (0..n).map(quantile).collect();
        let ys = xs.clone();
        let lattice: Vec<f32> = (0..n * n)
            .flat_map(|k| {
                l_digit(
                    (k % n) as f64 / (n - 1) as f64,
                    (k / n) as f64 / (n - 1) as f64,
                )
            })
            .collect();
        latent_lattice(
            &dir.join("lattice_quantiles.png"),
            "Learned MNIST manifold (2-D latent space)",
            &xs,
            &ys,
            &lattice,
        )
        .unwrap();
        let lin: Vec<f32> = (0..n)
            .map(|k| -3.0 + 6.0 * k as f32 / (n - 1) as f32)
            .collect();
        latent_lattice(
            &dir.join("lattice_linear.png"),
            "Decoded lattice, evenly spaced z",
            &lin,
            &lin,
            &lattice,
        )
        .unwrap();

        // Learning curves.
        let train: Vec<(f64, f64)> = (1..=100)
            .map(|e| {
                (
                    e as f64,
                    -95.0 - 120.0 * (-(e as f64) / 12.0).exp() + rng.normal(),
                )
            })
            .collect();
        let test: Vec<(f64, f64)> = (1..=100)
            .step_by(5)
            .map(|e| {
                (
                    e as f64,
                    -98.0 - 115.0 * (-(e as f64) / 12.0).exp() + rng.normal(),
                )
            })
            .collect();
        line_chart(
            &dir.join("elbo.png"),
            "ELBO per datapoint",
            "epoch",
            "ELBO (nats)",
            &[("train ELBO", train), ("test ELBO", test)],
        )
        .unwrap();

        // Posteriors: banana-shaped true posterior, Gaussian q.
        let gn = 81;
        let digit = l_digit(0.7, 0.9);
        let mut lds = Vec::new();
        for k in 0..4 {
            let bend = 0.3 * k as f64;
            let ld: Vec<f64> = (0..gn * gn)
                .map(|idx| {
                    let x = -3.0 + 6.0 * (idx % gn) as f64 / (gn - 1) as f64;
                    let y = -3.0 + 6.0 * (idx / gn) as f64 / (gn - 1) as f64;
                    let yy = y - bend * x * x + 0.5;
                    -0.5 * (x * x / 1.2 + yy * yy / 0.3)
                })
                .collect();
            lds.push(ld);
        }
        let captions = [
            "x₁ (digit 3)",
            "x₂ (digit 7)",
            "x₃ (digit 1)",
            "x₄ (digit 0)",
        ];
        let panels: Vec<PosteriorPanel> = lds
            .iter()
            .enumerate()
            .map(|(k, ld)| PosteriorPanel {
                caption: captions[k],
                log_density: ld,
                nx: gn,
                ny: gn,
                x_min: -3.0,
                y_min: -3.0,
                dx: 6.0 / (gn - 1) as f64,
                dy: 6.0 / (gn - 1) as f64,
                // The last panel shows a Laplace q's diamonds.
                q_family: if k + 1 == captions.len() {
                    LatentFamily::Laplace
                } else {
                    LatentFamily::Gaussian
                },
                q_mean: [0.0, 0.1 * k as f64],
                q_scale: [1.0, 0.55],
                digit: Some(&digit),
                p_label: "p(z|x) (grid)",
                q_label: "q(z|x)",
            })
            .collect();
        posterior_contours(
            &dir.join("posterior.png"),
            "True vs approximate posterior",
            2,
            &panels,
        )
        .unwrap();
        posterior_contours(
            &dir.join("posterior_row.png"),
            "True vs approximate posterior",
            4,
            &panels,
        )
        .unwrap();

        // Histograms.
        let a: Vec<f64> = (0..2000).map(|_| -95.0 + 8.0 * rng.normal()).collect();
        let b: Vec<f64> = (0..2000).map(|_| (0.5 * rng.normal()).exp()).collect();
        let c: Vec<f64> = (0..2000).map(|_| rng.uniform() * 1e-3).collect();
        // Edge cases that should still look sane.
        let one = l_digit(1.0, 1.0);
        latent_lattice(
            &dir.join("edge_lattice_1x1.png"),
            "One tile",
            &[0.0],
            &[0.0],
            &one,
        )
        .unwrap();
        let n20 = 20;
        let lin20: Vec<f32> = (0..n20)
            .map(|k| -2.0 + 4.0 * k as f32 / (n20 - 1) as f32)
            .collect();
        let lattice20: Vec<f32> = (0..n20 * n20)
            .flat_map(|k| l_digit((k % n20) as f64 / 19.0, (k / n20) as f64 / 19.0))
            .collect();
        latent_lattice(
            &dir.join("edge_lattice_20.png"),
            "20 × 20",
            &lin20,
            &lin20,
            &lattice20,
        )
        .unwrap();
        class_scatter(
            &dir.join("edge_scatter_empty.png"),
            "No points",
            "z₁",
            "z₂",
            &[],
            &[],
        )
        .unwrap();
        line_chart(
            &dir.join("edge_lines_huge.png"),
            "A very long title that goes on and on to check that nothing is cut off at the edges of the figure",
            "x",
            "loss",
            &[("big", vec![(0.0, 1e9), (1.0, 3e9), (2.0, 2e9)]), ("single", vec![(1.5, 2.5e9)]), ("empty", vec![])],
        )
        .unwrap();
        let constant: Vec<f64> = vec![5.0; 100];
        histograms(
            &dir.join("edge_hist.png"),
            "Degenerate histograms",
            &[
                ("constant", &constant),
                ("no finite data", &[f64::NAN]),
                ("two values", &[0.0, 1e-9]),
            ],
            10,
        )
        .unwrap();
        posterior_contours(
            &dir.join("edge_posterior_5.png"),
            "Five panels, three columns",
            3,
            &[panels[0], panels[1], panels[2], panels[3], panels[0]],
        )
        .unwrap();

        histograms(
            &dir.join("hist.png"),
            "Per-datapoint estimates",
            &[
                ("log p(x) estimate", &a),
                ("importance weight", &b),
                ("tiny values", &c),
            ],
            40,
        )
        .unwrap();
        // Circle data coloured by its latent, the decoder's mean curve over it; the encoder
        // mean as a field; 1-D posteriors against q.
        let (circ, zs) = circle(600, &mut rng);
        let g_curve: Vec<(f64, f64)> = (0..=200)
            .map(|k| {
                let a = (-3.0 + 0.03 * k as f64) * std::f64::consts::PI / 3.0;
                (0.95 * a.cos(), 0.95 * a.sin())
            })
            .collect();
        value_scatter(
            &dir.join("value_scatter.png"),
            "Circle data coloured by the true latent z",
            "x₁",
            "x₂",
            &circ,
            &zs,
            "true latent z",
            &[("decoder mean g(z)", g_curve)],
            true,
        )
        .unwrap();
        let (fx, fy) = (61, 61);
        let mu: Vec<f64> = (0..fx * fy)
            .map(|k| {
                let (x, y) = (-1.5 + 0.05 * (k % fx) as f64, -1.5 + 0.05 * (k / fx) as f64);
                y.atan2(x) * 3.0 / std::f64::consts::PI * (1.0 - (-4.0 * (x * x + y * y)).exp())
            })
            .collect();
        field_map(
            &dir.join("field_map.png"),
            "Encoder mean μ(x) of the 1-D latent",
            "x₁",
            "x₂",
            FieldGrid {
                values: &mu,
                nx: fx,
                ny: fy,
                x_min: -1.5,
                y_min: -1.5,
                dx: 0.05,
                dy: 0.05,
            },
            "μ(x)",
            &circ,
            true,
        )
        .unwrap();
        let zg: Vec<f64> = (0..301).map(|k| -4.0 + 8.0 * k as f64 / 300.0).collect();
        let normal = |m: f64, s: f64, v: f64| {
            (-0.5 * ((v - m) / s).powi(2)).exp() / (s * (std::f64::consts::TAU).sqrt())
        };
        let dens: Vec<(Vec<f64>, Vec<f64>)> = (0..5)
            .map(|k| {
                let m = -1.5 + 0.75 * k as f64;
                // a skewed, sometimes bimodal true posterior against a Gaussian q
                let p = zg
                    .iter()
                    .map(|v| {
                        0.7 * normal(m, 0.4, *v) + 0.3 * normal(m + 1.2 - 0.4 * k as f64, 0.3, *v)
                    })
                    .collect();
                let q = zg.iter().map(|v| normal(m + 0.15, 0.45, *v)).collect();
                (p, q)
            })
            .collect();
        let captions = ["x₁", "x₂", "x₃", "x₄", "x₅"];
        let dpanels: Vec<DensityPanel> = dens
            .iter()
            .zip(captions)
            .map(|((p, q), caption)| DensityPanel {
                caption,
                z: &zg,
                p,
                q,
                p_label: "p(z|x) (grid)",
                q_label: "q(z|x)",
            })
            .collect();
        density_panels(
            &dir.join("density_panels.png"),
            "True posterior vs q for five test points",
            "z",
            &dpanels,
            3,
        )
        .unwrap();
        // Edge cases: one-signed field with missing cells and points beyond the grid; a
        // constant colour value and no curves.
        let mut r2: Vec<f64> = mu.iter().map(|v| v * v).collect();
        r2[..3 * fx].fill(f64::NAN);
        field_map(
            &dir.join("edge_field_one_sign.png"),
            "μ(x)² (bottom rows missing, points beyond the grid)",
            "first coordinate",
            "second coordinate",
            FieldGrid {
                values: &r2,
                nx: fx,
                ny: fy,
                x_min: -1.5,
                y_min: -1.5,
                dx: 0.05,
                dy: 0.05,
            },
            "μ(x)²",
            &[[2.5, 0.0], [0.0, -2.0], [0.5, 0.5]],
            false,
        )
        .unwrap();
        value_scatter(
            &dir.join("edge_value_constant.png"),
            "Constant value",
            "x₁",
            "x₂",
            &circ,
            &vec![1.0; circ.len()],
            "z",
            &[],
            false,
        )
        .unwrap();
    }
}
