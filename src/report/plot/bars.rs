//! Stacked bars: one bar per item, its segments stacked from zero (positive parts upwards,
//! negative parts downwards, so a segment whose estimate came out below zero is still seen).

use std::path::Path;

use plotters::prelude::*;

use super::axes::{axis_range, build_chart, draw_axes, finite_min_max, Axis};
use super::canvas::{draw_title, px_i, render, title_width};
use super::legend::{draw_legend, legend_box_size, side_panel_width, Mark};
use super::text::{Align, Txt, Valign};
use super::{HUGE, TAB10, TEXT_GRAY, TITLE_H};
use crate::error::{Error, Result};

/// Bars at x = 0, 1, … (one per item), each stacking the items' values of every segment in
/// `segments` (name, one value per item) in TAB10 colours, with a legend naming the segments and
/// grey `notes` under it. Non-finite values are drawn as 0. Errors: no segments, segments of
/// different lengths, or no items.
pub fn stacked_bars(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    segments: &[(&str, Vec<f64>)],
    notes: &[String],
) -> Result<()> {
    const FIG: &str = "stacked_bars";
    let n = segments.first().map_or(0, |s| s.1.len());
    if n == 0 || segments.iter().any(|s| s.1.len() != n) {
        return Err(Error::Usage(format!(
            "{FIG}: '{title}' needs segments with one value per bar, all of the same length"
        )));
    }
    let val = |v: f64| {
        if v.is_finite() {
            v.clamp(-HUGE, HUGE)
        } else {
            0.0
        }
    };
    // Per bar: the top of the positive stack and the bottom of the negative one.
    let (mut up, mut down) = (vec![0.0f64; n], vec![0.0f64; n]);
    let mut rects: Vec<(usize, [(f64, f64); 2])> = Vec::new();
    for (k, (_, values)) in segments.iter().enumerate() {
        for (i, &v) in values.iter().enumerate() {
            let v = val(v);
            let (a, b) = if v >= 0.0 {
                let a = up[i];
                up[i] += v;
                (a, up[i])
            } else {
                let a = down[i];
                down[i] += v;
                (down[i], a)
            };
            let x0 = i as f64 - 0.4;
            rects.push((k, [(x0, a), (x0 + 0.8, b)]));
        }
    }
    let yr = finite_min_max(up.iter().chain(&down).copied().chain([0.0]))
        .map_or((0.0, 1.0), |(a, b)| axis_range(a, b));
    let xr = (-0.8, n as f64 - 0.2);
    let color = |k: usize| TAB10.get(k % TAB10.len()).copied().unwrap_or(BLACK);
    let entries: Vec<(String, Mark)> = segments
        .iter()
        .enumerate()
        .map(|(k, (name, _))| (name.to_string(), Mark::Dot(color(k))))
        .collect();
    let (_, legend_h) = legend_box_size(None, &entries);
    let lw = side_panel_width(&entries, notes, 480);
    let w = (900 + px_i(lw) + 24).max(title_width(title));
    let h = 580;
    render(path, FIG, w, h, |c| {
        draw_title(c, title, w);
        let area = c.root.clone().shrink(
            (0, TITLE_H as i32),
            (w as i32 - lw - 24, (h - TITLE_H) as i32),
        );
        let x = Axis::integer(xr, 10, x_label);
        let y = Axis::auto(yr, 8, y_label);
        let mut chart = build_chart(&area, &x, &y, (6, 16))?;
        draw_axes(c, &chart, &x, &y, true)?;
        for (k, r) in &rects {
            if r[0].1 != r[1].1 {
                chart.draw_series(std::iter::once(Rectangle::new(
                    *r,
                    color(*k).mix(0.8).filled(),
                )))?;
            }
        }
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(xr.0, 0.0), (xr.1, 0.0)],
            BLACK.stroke_width(1),
        )))?;
        let (pxr, pyr) = chart.plotting_area().get_pixel_range();
        draw_legend(c, (pxr.end + 12, pyr.start), None, &entries)?;
        let t = Txt::new(super::legend::NOTE_SIZE, Align::Left, Valign::Top).color(TEXT_GRAY);
        for (i, note) in notes.iter().enumerate() {
            c.text(
                note,
                (pxr.end + 14, pyr.start + legend_h + 8 + 17 * i as i32),
                t,
            );
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_bars_write_a_png_and_refuse_ragged_segments() {
        let dir = std::env::temp_dir().join(format!("vae-gpu-bars-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bars.png");
        stacked_bars(
            &p,
            "gaps",
            "image",
            "nats",
            &[("a", vec![1.0, -0.2, f64::NAN]), ("b", vec![2.0, 3.0, 1.0])],
            &["note".into()],
        )
        .expect("draw");
        assert!(std::fs::metadata(&p).unwrap().len() > 1000);
        assert!(stacked_bars(&p, "t", "x", "y", &[("a", vec![1.0]), ("b", vec![])], &[]).is_err());
        assert!(stacked_bars(&p, "t", "x", "y", &[], &[]).is_err());
    }
}
