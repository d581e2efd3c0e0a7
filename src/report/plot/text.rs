//! Text layout and rasterisation with `ab_glyph`.
//!
//! plotters' own ab_glyph renderer puts each glyph's ink at the pen position, dropping the left
//! side bearing, so narrow glyphs such as "1" sit visibly off ("-120" reads "-1 20"). Here each
//! glyph is outlined at its true position (pen plus kerning; the side bearing is part of the
//! outline) and rasterised to coverage, which the canvas then blends into the page. One pass over
//! the string lays it out, so measuring and drawing take time linear in its length.

use std::borrow::Cow;
use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, GlyphId, OutlinedGlyph, PxScale, ScaleFont};
use plotters::style::{RGBColor, BLACK};

/// DejaVu Sans, embedded so rendering works without fontconfig/freetype.
const FONT_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/DejaVuSans.ttf"
));

/// Longest text we lay out; more could not fit any figure and would only cost time.
const MAX_TEXT_CHARS: usize = 200;

/// The embedded font, parsed once per process; `None` if it cannot be parsed, which
/// `canvas::render` reports as an error before anything is drawn.
pub(super) fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

/// `text`, cut to `MAX_TEXT_CHARS` characters (ending in "…") if longer.
fn clip_text(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        None => Cow::Borrowed(text),
        Some((i, _)) => Cow::Owned(format!("{}…", text.get(..i).unwrap_or(""))),
    }
}

/// Horizontal anchor: which end (or the middle) of the text's advance width sits at the anchor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Align {
    Left,
    Center,
    Right,
}

/// Vertical anchor, measured on capital letters (the top, middle or baseline of "H"), so a
/// label sits where it is asked to whatever its descenders.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Valign {
    Top,
    Middle,
    Baseline,
}

/// How to draw a piece of text relative to its anchor point.
#[derive(Clone, Copy, Debug)]
pub(super) struct Txt {
    pub size: f64,
    pub color: RGBColor,
    pub h: Align,
    pub v: Valign,
    /// Turned a quarter turn anticlockwise to read bottom to top (y-axis descriptions); the
    /// anchors still refer to the text's own direction.
    pub vertical: bool,
}

impl Txt {
    pub fn new(size: f64, h: Align, v: Valign) -> Self {
        Txt {
            size,
            color: BLACK,
            h,
            v,
            vertical: false,
        }
    }

    pub fn color(self, color: RGBColor) -> Self {
        Txt { color, ..self }
    }

    pub fn vertical(self) -> Self {
        Txt {
            vertical: true,
            ..self
        }
    }
}

/// A string's glyphs with their pen positions from the start of the line, and its total
/// advance width, in pixels.
struct Line {
    glyphs: Vec<(GlyphId, f32)>,
    width: f32,
}

fn layout(font: &FontRef<'_>, scale: PxScale, text: &str) -> Line {
    let f = font.as_scaled(scale);
    let mut glyphs = Vec::with_capacity(text.len());
    let mut pen = 0.0f32;
    let mut prev: Option<GlyphId> = None;
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            pen += f.kern(p, id);
        }
        glyphs.push((id, pen));
        pen += f.h_advance(id);
        prev = Some(id);
    }
    Line { glyphs, width: pen }
}

/// The pixel scale of a font size. plotters took the size as the font's full height
/// (ascent − descent), and so do we, so figures keep their proportions.
fn scale_of(size: f64) -> PxScale {
    let s = if size.is_finite() {
        size.clamp(1.0, 500.0)
    } else {
        12.0
    };
    PxScale::from(s as f32)
}

/// Advance width of `text` in pixels, rounded up (a rough estimate if the font is unusable).
pub(super) fn text_width(text: &str, size: f64) -> i32 {
    let text = clip_text(text);
    match font() {
        Some(f) => layout(f, scale_of(size), &text).width.max(0.0).ceil() as i32,
        None => (text.chars().count() as f64 * size * 0.6) as i32,
    }
}

/// Height of a capital "H" above the baseline, in pixels.
fn cap_height(font: &FontRef<'_>, scale: PxScale) -> f32 {
    let f = font.as_scaled(scale);
    font.outline(f.glyph_id('H')).map_or(0.73 * scale.y, |o| {
        // ab_glyph's unscaled bounds run top-left (min) to bottom-right (max), y up.
        o.bounds.min.y.max(o.bounds.max.y) * f.v_scale_factor()
    })
}

/// Coverage of rasterised text on the page: `w × h` values in [0, 1], row-major, whose top-left
/// pixel is `(x, y)`.
#[derive(Debug)]
pub(super) struct Ink {
    pub x: i32,
    pub y: i32,
    pub w: usize,
    pub h: usize,
    pub coverage: Vec<f32>,
}

/// Rasterises `text` anchored at `(x, y)` as `t` says; `None` if nothing would be inked.
///
/// The text is laid out in its own frame (u along the line, v down) with the anchor at the
/// origin, the baseline on a whole pixel (crisp horizontal strokes) and pens at fractional
/// positions (true spacing). Glyph coverages are summed (capped at 1) into one buffer, so glyphs
/// that touch blend once; vertical text is that buffer turned a quarter turn.
pub(super) fn rasterise(text: &str, (x, y): (i32, i32), t: Txt) -> Option<Ink> {
    let font = font()?;
    let text = clip_text(text);
    let scale = scale_of(t.size);
    let line = layout(font, scale, &text);
    let u0 = match t.h {
        Align::Left => 0.0,
        Align::Center => -0.5 * line.width,
        Align::Right => -line.width,
    }
    .round();
    let cap = cap_height(font, scale);
    let v0 = match t.v {
        Valign::Top => cap,
        Valign::Middle => 0.5 * cap,
        Valign::Baseline => 0.0,
    }
    .round();
    let outlined: Vec<OutlinedGlyph> = line
        .glyphs
        .iter()
        .filter_map(|&(id, pen)| {
            font.outline_glyph(id.with_scale_and_position(scale, point(u0 + pen, v0)))
        })
        .collect();
    let mut bounds = outlined.iter().map(|o| {
        let b = o.px_bounds();
        (
            b.min.x as i32,
            b.min.y as i32,
            b.max.x as i32,
            b.max.y as i32,
        )
    });
    let first = bounds.next()?;
    let (u_min, v_min, u_max, v_max) = bounds.fold(first, |a, r| {
        (a.0.min(r.0), a.1.min(r.1), a.2.max(r.2), a.3.max(r.3))
    });
    let (w, h) = (
        (u_max - u_min).max(0) as usize,
        (v_max - v_min).max(0) as usize,
    );
    if w == 0 || h == 0 {
        return None;
    }
    let mut coverage = vec![0.0f32; w * h];
    for o in &outlined {
        let b = o.px_bounds();
        let (ox, oy) = (b.min.x as i32 - u_min, b.min.y as i32 - v_min);
        o.draw(|dx, dy, c| {
            let (u, v) = (ox + dx as i32, oy + dy as i32);
            if let Some(p) = coverage.get_mut(v as usize * w + u as usize) {
                *p = (*p + c).clamp(0.0, 1.0);
            }
        });
    }
    if !t.vertical {
        return Some(Ink {
            x: x.saturating_add(u_min),
            y: y.saturating_add(v_min),
            w,
            h,
            coverage,
        });
    }
    // A quarter turn anticlockwise: frame pixel (u, v) lands on page pixel (x + v, y − 1 − u).
    let mut turned = vec![0.0f32; w * h];
    for v in 0..h {
        for u in 0..w {
            turned[(w - 1 - u) * h + v] = coverage[v * w + u];
        }
    }
    Some(Ink {
        x: x.saturating_add(v_min),
        y: y.saturating_sub(u_max),
        w: h,
        h: w,
        coverage: turned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt(size: f64) -> Txt {
        Txt::new(size, Align::Left, Valign::Baseline)
    }

    /// Columns of `ink` holding any coverage, as runs `[start, end)` in page x.
    fn inked_runs(ink: &Ink) -> Vec<(i32, i32)> {
        let inked: Vec<bool> = (0..ink.w)
            .map(|c| (0..ink.h).any(|r| ink.coverage[r * ink.w + c] > 0.0))
            .collect();
        let mut runs = Vec::new();
        let mut start = None;
        for (c, &on) in inked.iter().chain([&false]).enumerate() {
            match (on, start) {
                (true, None) => start = Some(c),
                (false, Some(s)) => {
                    runs.push((ink.x + s as i32, ink.x + c as i32));
                    start = None;
                }
                _ => {}
            }
        }
        runs
    }

    #[test]
    fn glyphs_keep_their_side_bearings() {
        // plotters drew every glyph's ink at its pen, so "1" (a large left bearing, a narrow
        // stem) hugged the "-" and left a wide hole before the "2".
        let ink = rasterise("-120", (0, 0), txt(40.0)).unwrap();
        let runs = inked_runs(&ink);
        assert_eq!(runs.len(), 4, "one ink run per glyph: {runs:?}");
        let gaps: Vec<i32> = runs.windows(2).map(|w| w[1].0 - w[0].1).collect();
        let (before_1, one_two, two_zero) = (gaps[0], gaps[1], gaps[2]);
        // Dropping the bearings gives gaps of about [2, 6, 5] px here: "1" hugs the "-".
        assert!(
            (before_1 - one_two).abs() <= 1 && one_two <= before_1.max(two_zero),
            "\"1\" does not sit evenly between its neighbours: gaps {gaps:?}"
        );
        // And each glyph's ink starts at its pen position plus its left side bearing.
        let font = font().unwrap();
        let scale = scale_of(40.0);
        let f = font.as_scaled(scale);
        let line = layout(font, scale, "-120");
        for ((id, pen), run) in line.glyphs.iter().zip(&runs) {
            let want = pen + f.h_side_bearing(*id);
            assert!(
                (run.0 as f32 - want).abs() <= 1.0,
                "glyph {id:?}: ink at {}, pen + bearing = {want}",
                run.0
            );
        }
    }

    #[test]
    fn width_is_the_sum_of_advances_and_kerning() {
        let font = font().unwrap();
        let scale = scale_of(13.0);
        let f = font.as_scaled(scale);
        let ids: Vec<GlyphId> = "AVo".chars().map(|c| f.glyph_id(c)).collect();
        let want = ids.iter().map(|id| f.h_advance(*id)).sum::<f32>()
            + f.kern(ids[0], ids[1])
            + f.kern(ids[1], ids[2]);
        assert_eq!(text_width("AVo", 13.0), want.ceil() as i32);
        assert_eq!(text_width("", 13.0), 0);
        // Long strings are clipped, so their width is bounded.
        let long = "m".repeat(100_000);
        assert_eq!(text_width(&long, 13.0), text_width(&clip_text(&long), 13.0));
        assert!(clip_text(&long).ends_with('…'));
    }

    #[test]
    fn anchors_place_the_ink() {
        let (x, y) = (300, 200);
        let right = rasterise("H-2", (x, y), Txt::new(20.0, Align::Right, Valign::Top)).unwrap();
        assert!(right.x + right.w as i32 <= x && right.x + right.w as i32 >= x - 4);
        // The top of "H" is on the anchor row.
        assert!(
            (right.y - y).abs() <= 1,
            "top at {} for anchor {y}",
            right.y
        );
        let base = rasterise("H", (x, y), Txt::new(20.0, Align::Center, Valign::Baseline));
        let base = base.unwrap();
        assert!(
            (base.y + base.h as i32 - y).abs() <= 1,
            "H sits on the baseline"
        );
        let mid = (2 * base.x + base.w as i32) / 2;
        assert!((mid - x).abs() <= 2, "centred: ink middle at {mid}");
        let middle = rasterise("H", (x, y), Txt::new(20.0, Align::Left, Valign::Middle));
        let middle = middle.unwrap();
        let centre = (2 * middle.y + middle.h as i32) / 2;
        assert!((centre - y).abs() <= 1, "middle of H at {centre}");
        assert!(rasterise("", (x, y), txt(13.0)).is_none());
        assert!(rasterise("   ", (x, y), txt(13.0)).is_none());
    }

    #[test]
    fn vertical_text_is_horizontal_text_turned_a_quarter() {
        let t = Txt::new(15.0, Align::Center, Valign::Top);
        let flat = rasterise("ELBO (nats) -120", (0, 0), t).unwrap();
        let up = rasterise("ELBO (nats) -120", (0, 0), t.vertical()).unwrap();
        assert_eq!((up.w, up.h), (flat.h, flat.w));
        // Frame pixel (u, v) is page pixel (u, v) when flat and (v, −1 − u) when turned.
        assert_eq!((up.x, up.y), (flat.y, -(flat.x + flat.w as i32)));
        for v in 0..flat.h {
            for u in 0..flat.w {
                let page_row = (flat.w - 1 - u) * up.w;
                assert_eq!(up.coverage[page_row + v], flat.coverage[v * flat.w + u]);
            }
        }
        // It reads bottom to top: the first glyph ("E") is lowest on the page.
        let lowest_row = (0..up.h)
            .rev()
            .find(|r| (0..up.w).any(|c| up.coverage[r * up.w + c] > 0.0))
            .unwrap();
        assert!(lowest_row + 2 >= up.h);
    }
}
