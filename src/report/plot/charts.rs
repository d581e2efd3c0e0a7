//! Charts on linear axes: the class-coloured latent scatter, learning curves, and histograms.

use std::path::Path;

use plotters::prelude::*;

use super::axes::{axis_range, build_chart, draw_axes, finite_min_max, tick_labels, Axis};
use super::canvas::{
    draw_title, px, px_i, render, title_width, with_caption, Area, Canvas, DrawResult,
};
use super::legend::{draw_legend, legend_box_size, side_panel_width, Mark};
use super::text::{Align, Txt, Valign};
use super::{HUGE, Q_COLOR, TAB10, TARGET_W, TEXT_GRAY, TITLE_H};
use crate::error::{Error, Result};

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
    let (lw, _) = legend_box_size(Some("digit"), &entries);
    let w = (840 + px_i(lw) + 24).max(title_width(title));
    let h = 740;
    render(path, FIG, w, h, |c| {
        draw_title(c, title, w);
        let area = c.root.clone().shrink(
            (0, TITLE_H as i32),
            (w as i32 - lw - 24, (h - TITLE_H) as i32),
        );
        let x = Axis::auto(xr, 8, x_label);
        let y = Axis::auto(yr, 8, y_label);
        let mut chart = build_chart(&area, &x, &y, (6, 16))?;
        draw_axes(c, &chart, &x, &y, true)?;
        chart.draw_series(finite.iter().map(|(p, l)| {
            let col = TAB10.get(usize::from(*l)).copied().unwrap_or(BLACK);
            Circle::new(*p, 2, col.mix(0.75).filled())
        }))?;
        let (pxr, pyr) = chart.plotting_area().get_pixel_range();
        draw_legend(c, (pxr.end + 12, pyr.start), Some("digit"), &entries)?;
        Ok(())
    })
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
    line_chart_with(
        path,
        title,
        x_label,
        y_label,
        series,
        &LineOptions::default(),
    )
}

/// What a line chart may add to its series.
#[derive(Clone, Debug, Default)]
pub struct LineOptions {
    /// The y range shown, instead of the data's: lines are clipped at its edges and points
    /// outside it are not marked (say so in `notes`).
    pub y_range: Option<(f64, f64)>,
    /// A vertical dashed grey line at this x, across the whole plot, with its legend label.
    pub vline: Option<(f64, String)>,
    /// A black ring around this point (drawn when inside the range), legended with `vline`.
    pub ring: Option<(f64, f64)>,
    /// Grey lines of text under the legend.
    pub notes: Vec<String>,
}

/// The part of the segment a–b with y in [lo, hi], if any.
fn clip_segment(a: (f64, f64), b: (f64, f64), lo: f64, hi: f64) -> Option<[(f64, f64); 2]> {
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    let dy = b.1 - a.1;
    for (edge, inside_above) in [(lo, true), (hi, false)] {
        if dy == 0.0 {
            let inside = if inside_above {
                a.1 >= edge
            } else {
                a.1 <= edge
            };
            if !inside {
                return None;
            }
            continue;
        }
        let t = (edge - a.1) / dy;
        // Entering the half-plane when moving towards it.
        if (dy > 0.0) == inside_above {
            t0 = t0.max(t);
        } else {
            t1 = t1.min(t);
        }
    }
    (t0 <= t1).then(|| {
        let at = |t: f64| (a.0 + t * (b.0 - a.0), a.1 + t * dy);
        [at(t0), at(t1)]
    })
}

/// [`line_chart`] with a fixed y range, a marked x position and notes ([`LineOptions`]).
pub fn line_chart_with(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    opts: &LineOptions,
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
    let yr = match opts.y_range {
        Some((a, b)) if a.is_finite() && b.is_finite() && a < b => (a, b),
        _ => finite_min_max(all().map(|p| p.1)).map_or((-1.0, 1.0), |(a, b)| axis_range(a, b)),
    };
    let color = |k: usize| TAB10.get(k % TAB10.len()).copied().unwrap_or(BLACK);
    let mut entries: Vec<(String, Mark)> = series
        .iter()
        .enumerate()
        .map(|(k, (name, _))| (name.to_string(), Mark::Line(color(k))))
        .collect();
    const MARKER: RGBColor = RGBColor(60, 60, 60);
    if let Some((_, label)) = &opts.vline {
        entries.push((label.clone(), Mark::Dashed(MARKER)));
    }
    let lw = side_panel_width(&entries, &opts.notes, 400);
    let w = (860 + px_i(lw) + 24).max(title_width(title));
    let h = 580;
    render(path, FIG, w, h, |c| {
        draw_title(c, title, w);
        let area = c.root.clone().shrink(
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
        draw_axes(c, &chart, &x, &y, true)?;
        let (ylo, yhi) = yr;
        let inside = |p: &(f64, f64)| p.1 >= ylo && p.1 <= yhi;
        if let Some((vx, _)) = &opts.vline {
            // Dashes of 8 px with gaps of 5, in data units of the y axis.
            let (_, pyr) = chart.plotting_area().get_pixel_range();
            let per_px = (yhi - ylo) / f64::from((pyr.end - pyr.start).max(1));
            let (dash, gap) = (8.0 * per_px, 5.0 * per_px);
            let mut y0 = ylo;
            while y0 < yhi {
                let y1 = (y0 + dash).min(yhi);
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(*vx, y0), (*vx, y1)],
                    MARKER.stroke_width(2),
                )))?;
                y0 = y1 + gap;
            }
        }
        for (k, pts) in clean.iter().enumerate() {
            let c = color(k);
            for w in pts.windows(2) {
                if let Some(seg) = clip_segment(w[0], w[1], ylo, yhi) {
                    chart.draw_series(LineSeries::new(seg, c.stroke_width(2)))?;
                }
            }
            if pts.len() <= 60 {
                chart.draw_series(
                    pts.iter()
                        .filter(|p| inside(p))
                        .map(|p| Circle::new(*p, 3, c.filled())),
                )?;
            }
        }
        if let Some(p) = opts.ring.filter(|p| inside(p)) {
            chart.draw_series(std::iter::once(Circle::new(p, 7, MARKER.stroke_width(2))))?;
        }
        let (pxr, pyr) = chart.plotting_area().get_pixel_range();
        draw_legend(c, (pxr.end + 12, pyr.start), None, &entries)?;
        let (_, legend_h) = legend_box_size(None, &entries);
        let t = Txt::new(super::legend::NOTE_SIZE, Align::Left, Valign::Top).color(TEXT_GRAY);
        for (i, note) in opts.notes.iter().enumerate() {
            c.text(
                note,
                (pxr.end + 14, pyr.start + legend_h + 8 + 17 * i as i32),
                t,
            );
        }
        Ok(())
    })
}

/// Side-by-side histograms (one per panel) sharing nothing but style: each with its caption, `bins` equal-width bins over that panel's finite data range, axis labels ("value", "count"), and a vertical line at the sample mean with a legend entry "mean".
///
/// Non-finite values are ignored (the mean is over the finite ones). Each y axis leaves 20%
/// headroom so the legend in the upper right rarely covers a bar. A constant sample gets a
/// small range around its value; a panel with no finite data shows empty axes and says so.
/// Errors: no panels, or `bins` outside 1..=10000.
pub fn histograms(path: &Path, title: &str, panels: &[(&str, &[f64])], bins: usize) -> Result<()> {
    histograms_with(path, title, panels, bins, false)
}

/// [`histograms`], with `shared_x` one x range and the same bins for every panel (the range of
/// all their finite values together), so spreads can be compared by eye: estimators of one
/// gradient drawn each on its own scale hide the very variance gap the figure is about.
pub fn histograms_with(
    path: &Path,
    title: &str,
    panels: &[(&str, &[f64])],
    bins: usize,
    shared_x: bool,
) -> Result<()> {
    const FIG: &str = "histograms";
    if panels.is_empty() {
        return Err(Error::Usage(format!("{FIG}: no panels to draw")));
    }
    if bins == 0 || bins > 10_000 {
        return Err(Error::Usage(format!(
            "{FIG}: bins must be in 1..=10000, got {bins}"
        )));
    }
    let n = px(panels.len());
    let panel_w = (TARGET_W / n).clamp(280, 440);
    let panel_h = 390;
    let w = n
        .saturating_mul(panel_w)
        .saturating_add(20)
        .max(title_width(title));
    let h = panel_h + TITLE_H + 8;
    let shared = shared_x
        .then(|| {
            let all = panels.iter().flat_map(|(_, d)| d.iter().copied());
            finite_min_max(all.map(|v| v.clamp(-HUGE, HUGE)))
        })
        .flatten()
        .map(|(a, b)| bin_range(a, b, bins));
    render(path, FIG, w, h, |c| {
        draw_title(c, title, w);
        let x_off = w.saturating_sub(n.saturating_mul(panel_w)) / 2;
        for (k, (caption, data)) in panels.iter().enumerate() {
            let area = c.root.clone().shrink(
                ((x_off + px(k) * panel_w) as i32, TITLE_H as i32),
                (panel_w as i32, panel_h as i32),
            );
            histogram_panel(c, &area, caption, data, bins, shared)?;
        }
        Ok(())
    })
}

/// Bins span the data exactly; a constant (or numerically constant) sample gets a small range
/// around it from `axis_range`, shifted so the value sits mid-bin.
fn bin_range(a: f64, b: f64, bins: usize) -> (f64, f64) {
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

fn histogram_panel<'b>(
    c: &mut Canvas<'_, 'b>,
    area: &Area<'b>,
    caption: &str,
    data: &[f64],
    bins: usize,
    range: Option<(f64, f64)>,
) -> DrawResult<()> {
    let finite: Vec<f64> = data
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .map(|v| v.clamp(-HUGE, HUGE))
        .collect();
    let (lo, hi) = match range.or_else(|| finite_min_max(finite.iter().copied())) {
        Some(r) if range.is_some() => r,
        Some((a, b)) => bin_range(a, b, bins),
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
        if let Some(n) = counts.get_mut(k) {
            *n += 1;
        }
    }
    let max_count = counts.iter().copied().max().unwrap_or(0).max(1);
    let x = Axis::auto(axis_range(lo, hi), 5, "value");
    let y_hi = max_count as f64 * 1.2;
    let mut y = Axis::auto((0.0, y_hi), 6, "count");
    // Counts are whole numbers: keep only integer ticks.
    y.ticks.retain(|t| t.fract() == 0.0);
    y.labels = tick_labels(&y.ticks);
    let area = with_caption(c, area, caption);
    let mut chart = build_chart(&area, &x, &y, (2, 16))?;
    draw_axes(c, &chart, &x, &y, true)?;
    let bar = RGBColor(31, 119, 180);
    let rects = || {
        counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| {
                let a = lo + k as f64 * width;
                [(a, 0.0), (a + width, *n as f64)]
            })
    };
    chart.draw_series(rects().map(|r| Rectangle::new(r, bar.mix(0.55).filled())))?;
    chart.draw_series(rects().map(|r| Rectangle::new(r, bar)))?;
    let (pxr, pyr) = chart.plotting_area().get_pixel_range();
    if finite.is_empty() {
        let t = Txt::new(14.0, Align::Center, Valign::Middle).color(TEXT_GRAY);
        let centre = ((pxr.start + pxr.end) / 2, (pyr.start + pyr.end) / 2);
        c.text("no finite data", centre, t);
        return Ok(());
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
    draw_legend(c, (pxr.end - lw - 8, pyr.start + 8), None, &entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::tests::*;

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

    #[test]
    fn segments_are_clipped_to_the_range() {
        assert_eq!(
            clip_segment((1.0, -300.0), (2.0, -200.0), -250.0, -150.0),
            Some([(1.5, -250.0), (2.0, -200.0)])
        );
        assert_eq!(clip_segment((0.0, 5.0), (1.0, 6.0), 0.0, 1.0), None);
        assert_eq!(
            clip_segment((0.0, 0.5), (1.0, 0.5), 0.0, 1.0),
            Some([(0.0, 0.5), (1.0, 0.5)])
        );
        let dir = test_dir("lines-range");
        let path = dir.join("lines.png");
        line_chart_with(
            &path,
            "ELBO",
            "epoch",
            "ELBO",
            &[("train", vec![(1.0, -300.0), (2.0, -180.0), (3.0, -170.0)])],
            &LineOptions {
                y_range: Some((-185.0, -165.0)),
                vline: Some((3.0, "best epoch (3)".into())),
                ring: Some((3.0, -170.0)),
                notes: vec!["epoch 1 below the axis".into()],
            },
        )
        .unwrap();
        check_png(&path);
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
        let wide: Vec<f64> = a.iter().map(|v| 100.0 * v).collect();
        histograms_with(
            &path,
            "shared",
            &[("a", &a), ("wide", &wide), ("c", &c)],
            40,
            true,
        )
        .unwrap();
        check_png(&path);
        std::fs::remove_dir_all(&dir).ok();
    }
}
