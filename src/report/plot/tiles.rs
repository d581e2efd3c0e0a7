//! Figures made of digit tiles: captioned grids of digits side by side, and the lattice of
//! decoded digits laid out on latent-space axes.

use std::path::Path;

use super::axes::{build_chart, draw_axes, Axis};
use super::canvas::{checked_len, draw_title, px, px_i, render, title_width, Blit};
use super::text::{text_width, Align, Txt, Valign};
use super::{CAPTION_H, CAPTION_SIZE, PIXELS, SIDE, TARGET_W, TITLE_H, X_AREA};
use crate::error::{Error, Result};

/// A block of digit images shown as one captioned panel: `rows × cols` tiles in row-major order.
#[derive(Clone, Copy)]
pub struct Panel<'a> {
    pub caption: &'a str,
    pub rows: usize,
    pub cols: usize,
    pub images: &'a [f32],
}

impl<'a> Panel<'a> {
    /// `images` (784 values each) in rows of `cols` tiles, the last row partly filled when their
    /// number is not a multiple of `cols`; fewer images than `cols` make a single, shorter row.
    pub fn fill(caption: &'a str, cols: usize, images: &'a [f32]) -> Self {
        let n = images.len() / PIXELS;
        let cols = cols.clamp(1, n.max(1));
        Self {
            caption,
            rows: n.div_ceil(cols),
            cols,
            images,
        }
    }
}

/// Panels side by side (left to right) under an overall title; each tile scaled up (e.g. 2–3 px per pixel) with a 1–2 px gap. Returns an error unless a panel's images fill its rows × cols tiles, the last row possibly in part (whole 784-value images, more than (rows − 1)·cols of them).
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
        let fewest = want.saturating_sub(p.cols.saturating_mul(PIXELS)) + PIXELS;
        let whole = p.images.len().is_multiple_of(PIXELS);
        if !(whole && p.images.len() <= want && (p.images.len() >= fewest || want == 0)) {
            return Err(Error::Usage(format!(
                "{FIG}: panel {k} ('{}') has {} values, expected {}×{}×784 = {want} (the last \
                 row may be short)",
                p.caption,
                p.images.len(),
                p.rows,
                p.cols
            )));
        }
    }
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
    render(path, FIG, w, h, |c| {
        draw_title(c, title, w);
        let mut x = i64::from(w.saturating_sub(content_w) / 2);
        let y0 = i64::from(TITLE_H) + i64::from(CAPTION_H);
        for (p, slot) in panels.iter().zip(&slots) {
            let cx = (x + i64::from(*slot) / 2) as i32;
            let t = Txt::new(CAPTION_SIZE, Align::Center, Valign::Top);
            c.text(p.caption, (cx, TITLE_H as i32 + 4), t);
            let x0 = x + i64::from(slot.saturating_sub(block(p.cols, scale))) / 2;
            for (k, img) in p.images.chunks_exact(PIXELS).enumerate() {
                let (row, col) = (k / p.cols.max(1), k % p.cols.max(1));
                c.tile(Blit {
                    x: x0 + col as i64 * pitch,
                    y: y0 + row as i64 * pitch,
                    scale,
                    img,
                });
            }
            x += i64::from(*slot) + i64::from(SPACING);
        }
        Ok(())
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
    render(path, FIG, w, h, |c| {
        draw_title(c, title, w);
        // Exactly plot_w × plot_h of plotting area, so tiles map one-to-one onto cells.
        let area = c.root.clone().shrink(
            (0, TITLE_H as i32),
            ((left + plot_w) as i32, plot_h as i32 + X_AREA),
        );
        let chart = build_chart(&area, &x, &y, (0, 0))?;
        draw_axes(c, &chart, &x, &y, false)?;
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let tile = i64::from(tile);
        for (k, img) in images.chunks_exact(PIXELS).enumerate() {
            let (i, j) = ((k / nx) as i64, (k % nx) as i64);
            c.tile(Blit {
                x: i64::from(xr.start) + j * tile,
                y: i64::from(yr.end) - (i + 1) * tile,
                scale,
                img,
            });
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::tests::*;

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
        // Five images in rows of three: a short last row; fewer than a row: one shorter row.
        let five = Panel::fill("five", 3, &imgs[..5 * PIXELS]);
        assert_eq!((five.rows, five.cols), (2, 3));
        let two = Panel::fill("two", 8, &imgs[..2 * PIXELS]);
        assert_eq!((two.rows, two.cols), (1, 2));
        image_panels(&path, "short rows", &[five, two]).unwrap();
        check_png(&path);
        let short = [Panel {
            caption: "a whole row missing",
            rows: 3,
            cols: 2,
            images: &imgs[..4 * PIXELS],
        }];
        assert!(image_panels(&path, "x", &short).is_err());
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
}
