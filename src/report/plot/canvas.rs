//! The page a figure is drawn on, and how it becomes a PNG file.
//!
//! Shapes (lines, markers, rectangles, heatmap pixels) go through plotters into an RGB buffer.
//! Text and digit tiles are only recorded while plotters draws, and painted into the buffer once
//! it has finished: text by our own rasteriser (see `text`), tiles pixel for pixel, so tiles are
//! exact and never covered by chart lines. Nothing a figure draws with plotters lies over its
//! text, so painting text last changes no figure.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::text::{self, Align, Ink, Txt, Valign};
use super::{CAPTION_H, CAPTION_SIZE, MAX_PX, SIDE, TARGET_W, TITLE_SIZE, UNOBSERVED_TINT};
use crate::error::{Error, Result};

pub(super) type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;
pub(super) type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A digit to paste at pixel (x, y) of the page, each digit pixel `scale` px wide.
pub(super) struct Blit<'a> {
    pub x: i64,
    pub y: i64,
    pub scale: u32,
    pub img: &'a [f32],
}

/// A piece of text waiting to be painted.
struct Label {
    text: String,
    at: (i32, i32),
    style: Txt,
}

/// What a figure draws on: plotters' drawing area for the whole page, and the text and tiles to
/// paint over it afterwards.
pub(super) struct Canvas<'a, 'b> {
    pub root: Area<'b>,
    labels: Vec<Label>,
    tiles: Vec<Blit<'a>>,
}

impl<'a> Canvas<'a, '_> {
    /// Draws `text` anchored at page pixel `at`.
    pub fn text(&mut self, text: &str, at: (i32, i32), style: Txt) {
        if !text.is_empty() {
            self.labels.push(Label {
                text: text.to_string(),
                at,
                style,
            });
        }
    }

    /// Pastes a digit tile.
    pub fn tile(&mut self, b: Blit<'a>) {
        self.tiles.push(b);
    }
}

/// Renders a `w × h` figure with `draw`, paints its text and tiles, encodes PNG and writes it
/// atomically. All rendering errors become `Error::Io` naming `fig`.
pub(super) fn render<'a, F>(path: &Path, fig: &str, w: u32, h: u32, draw: F) -> Result<()>
where
    F: FnOnce(&mut Canvas<'a, '_>) -> DrawResult<()>,
{
    if text::font().is_none() {
        return Err(Error::Io(
            "embedded font assets/DejaVuSans.ttf could not be parsed".into(),
        ));
    }
    if w == 0 || h == 0 || w > MAX_PX || h > MAX_PX {
        return Err(Error::Usage(format!(
            "{fig}: figure would be {w}×{h} px (limit {MAX_PX}×{MAX_PX}); too many images or panels"
        )));
    }
    let render_err =
        |e: Box<dyn std::error::Error>| Error::Io(format!("{fig}: rendering failed: {e}"));
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    let (labels, tiles) = {
        let backend = BitMapBackend::with_buffer_and_format(&mut buf, (w, h))
            .map_err(|e| Error::Io(format!("{fig}: cannot create bitmap: {e}")))?;
        let mut canvas = Canvas {
            root: backend.into_drawing_area(),
            labels: Vec::new(),
            tiles: Vec::new(),
        };
        draw(&mut canvas).map_err(render_err)?;
        canvas.root.present().map_err(|e| render_err(e.into()))?;
        (canvas.labels, canvas.tiles)
    };
    let mut page = Pixels {
        buf: &mut buf,
        w: i64::from(w),
        h: i64::from(h),
    };
    for l in &labels {
        if let Some(ink) = text::rasterise(&l.text, l.at, l.style) {
            let RGBColor(r, g, b) = l.style.color;
            page.blend(&ink, [r, g, b]);
        }
    }
    for t in &tiles {
        page.blit(t);
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

/// The finished RGB buffer, for what is painted after plotters. Writes outside it are dropped.
struct Pixels<'p> {
    buf: &'p mut [u8],
    w: i64,
    h: i64,
}

impl Pixels<'_> {
    fn at(&mut self, x: i64, y: i64) -> Option<&mut [u8]> {
        if x < 0 || y < 0 || x >= self.w || y >= self.h {
            return None;
        }
        let o = ((y * self.w + x) * 3) as usize;
        self.buf.get_mut(o..o + 3)
    }

    /// Blends `rgb` over the page with the ink's coverage as opacity.
    fn blend(&mut self, ink: &Ink, rgb: [u8; 3]) {
        for (r, row) in ink.coverage.chunks(ink.w.max(1)).take(ink.h).enumerate() {
            for (c, &a) in row.iter().enumerate() {
                if a <= 0.0 {
                    continue;
                }
                let (x, y) = (i64::from(ink.x) + c as i64, i64::from(ink.y) + r as i64);
                if let Some(px) = self.at(x, y) {
                    for (p, fg) in px.iter_mut().zip(rgb) {
                        let v = f32::from(*p) + (f32::from(fg) - f32::from(*p)) * a.min(1.0);
                        *p = v.round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }

    /// Copies one digit (white ink on black, row 0 at the top), clipped to the page.
    fn blit(&mut self, b: &Blit) {
        let s = i64::from(b.scale.max(1));
        for r in 0..SIDE {
            for c in 0..SIDE {
                let g = pixel_rgb(b.img.get(r * SIDE + c).copied().unwrap_or(0.0));
                for dy in 0..s {
                    for dx in 0..s {
                        let (x, y) = (b.x + c as i64 * s + dx, b.y + r as i64 * s + dy);
                        if let Some(px) = self.at(x, y) {
                            px.copy_from_slice(&g);
                        }
                    }
                }
            }
        }
    }
}

/// The colour of a pixel value: grey levels for [0, 1], and NaN (an unobserved pixel in SVI and
/// posterior figures) as [`UNOBSERVED_TINT`].
fn pixel_rgb(v: f32) -> [u8; 3] {
    if v.is_nan() {
        return UNOBSERVED_TINT;
    }
    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [g, g, g]
}

/// Width the title needs, capped: an over-long title is clipped rather than widening the
/// figure without bound.
pub(super) fn title_width(title: &str) -> u32 {
    (px_i(text::text_width(title, TITLE_SIZE)) + 32).min(TARGET_W)
}

/// Draws a figure title centred at the top of the page.
pub(super) fn draw_title(c: &mut Canvas, title: &str, w: u32) {
    let t = Txt::new(TITLE_SIZE, Align::Center, Valign::Top);
    c.text(title, (w as i32 / 2, 14), t);
}

/// Draws `caption` centred at the top of `area` and returns the area below it.
pub(super) fn with_caption<'b>(c: &mut Canvas<'_, 'b>, area: &Area<'b>, caption: &str) -> Area<'b> {
    let (xr, yr) = area.get_pixel_range();
    let t = Txt::new(CAPTION_SIZE, Align::Center, Valign::Top);
    c.text(caption, ((xr.start + xr.end) / 2, yr.start + 8), t);
    let (w, h) = area.dim_in_pixel();
    area.clone()
        .shrink((0, CAPTION_H), (w as i32, h as i32 - CAPTION_H))
}

/// Checked `a * b * c`, as a usage error naming `what` on overflow.
pub(super) fn checked_len(a: usize, b: usize, c: usize, what: &str) -> Result<usize> {
    a.checked_mul(b)
        .and_then(|n| n.checked_mul(c))
        .ok_or_else(|| Error::Usage(format!("{what}: size overflows")))
}

/// Pixel count as u32, saturating (the figure-size check then rejects it).
pub(super) fn px(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

pub(super) fn px_i(v: i32) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_blended_by_coverage_and_tiles_are_exact() {
        let mut buf = vec![255u8; 4 * 3 * 3];
        let mut page = Pixels {
            buf: &mut buf,
            w: 4,
            h: 3,
        };
        let ink = Ink {
            x: 1,
            y: 1,
            w: 2,
            h: 1,
            coverage: vec![1.0, 0.5],
        };
        page.blend(&ink, [0, 0, 0]);
        let px = |buf: &[u8], x: usize, y: usize| buf[(y * 4 + x) * 3];
        assert_eq!(px(&buf, 1, 1), 0);
        assert_eq!(px(&buf, 2, 1), 128);
        assert_eq!(px(&buf, 0, 1), 255);
        // A tile hanging off the page is clipped; NaN gets the unobserved tint.
        let mut img = vec![0.0f32; SIDE * SIDE];
        img[0] = f32::NAN;
        let mut page = Pixels {
            buf: &mut buf,
            w: 4,
            h: 3,
        };
        page.blit(&Blit {
            x: 3,
            y: -1,
            scale: 1,
            img: &img,
        });
        assert_eq!(&buf[3 * 3..4 * 3], &[0, 0, 0]);
        assert_eq!(pixel_rgb(f32::NAN), UNOBSERVED_TINT);
        assert_eq!(pixel_rgb(2.0), [255; 3]);
        assert_eq!(pixel_rgb(-1.0), [0; 3]);
    }
}
