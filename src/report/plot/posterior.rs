//! Posterior figures: 2-D contour panels of the true posterior with q over them, and 1-D
//! density panels of the two side by side.

use std::path::Path;

use plotters::prelude::*;

use super::axes::{build_chart, clip_polyline, data_range, draw_axes, Axis};
use super::canvas::{
    checked_len, draw_title, px, px_i, render, title_width, with_caption, Area, Blit, Canvas,
    DrawResult,
};
use super::colour::heat;
use super::contour::{
    bilinear, contour_segments, hpd_levels, normalised_density, upsample_cubic, CONTOUR_UPSAMPLE,
    HPD_MASSES,
};
use super::legend::{distinct, draw_legend_row, Mark, LEGEND_SWATCH, NOTE_SIZE};
use super::text::text_width;
use super::{BORDER_GRAY, CAPTION_H, HUGE, LEGEND_SIZE, P_COLOR, Q_COLOR, SIDE, TARGET_W, TITLE_H};
use crate::error::{Error, Result};
use crate::spec::LatentFamily;

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
    let cols = cols.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let panel_w = (TARGET_W / px(cols)).clamp(240, 380);
    let panel_h = panel_w + 10;
    let entries = distinct(panels.iter().flat_map(|p| {
        [
            (p.p_label, Mark::Line(P_COLOR)),
            (p.q_label, Mark::Line(Q_COLOR)),
        ]
    }));
    let note = "contours: p and q at 39%, 86%, 99% highest-density mass (a Gaussian q's 1, 2, 3 σ)";
    let legend_w = entries
        .iter()
        .map(|(l, _)| text_width(l, LEGEND_SIZE) + LEGEND_SWATCH + 40)
        .sum::<i32>()
        + text_width(note, NOTE_SIZE);
    let w = px(cols)
        .saturating_mul(panel_w)
        .saturating_add(20)
        .max(title_width(title))
        .max(px_i(legend_w).saturating_add(32).min(TARGET_W));
    let h = px(rows).saturating_mul(panel_h).saturating_add(HEADER + 8);
    render(path, FIG, w, h, |c| {
        draw_title(c, title, w);
        draw_legend_row(c, (w as i32 / 2, TITLE_H as i32 + 6), &entries, note)?;
        let x_off = w.saturating_sub(px(cols) * panel_w) / 2;
        for (k, p) in panels.iter().enumerate() {
            let (row, col) = (px(k / cols), px(k % cols));
            let area = c.root.clone().shrink(
                (
                    (x_off + col * panel_w) as i32,
                    (HEADER + row * panel_h) as i32,
                ),
                (panel_w as i32, panel_h as i32),
            );
            posterior_panel(c, &area, p)?;
        }
        Ok(())
    })
}

/// Draws one posterior panel into `area`, with its digit (if any) inset top left.
fn posterior_panel<'a, 'b>(
    c: &mut Canvas<'a, 'b>,
    area: &Area<'b>,
    p: &PosteriorPanel<'a>,
) -> DrawResult<()> {
    let xr = (p.x_min, p.x_min + (p.nx - 1) as f64 * p.dx);
    let yr = (p.y_min, p.y_min + (p.ny - 1) as f64 * p.dy);
    let area = with_caption(c, area, p.caption);
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
                c.root.draw_pixel((pxl, py), &heat(v))?;
            }
        }
    }
    draw_axes(c, &chart, &x, &y, true)?;
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
    if let Some(img) = p.digit {
        if pxr.end - pxr.start > 100 && pyr.end - pyr.start > 100 {
            let (x, y) = (pxr.start + 4, pyr.start + 4);
            let side = SIDE as i32 * 2;
            c.root.draw(&Rectangle::new(
                [(x - 1, y - 1), (x + side, y + side)],
                BORDER_GRAY.filled(),
            ))?;
            c.tile(Blit {
                x: i64::from(x),
                y: i64::from(y),
                scale: 2,
                img,
            });
        }
    }
    Ok(())
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
    let cols = cols.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let panel_w = (TARGET_W / px(cols)).clamp(240, 380);
    let panel_h = panel_w * 3 / 4 + px_i(CAPTION_H);
    let entries = distinct(panels.iter().flat_map(|p| {
        [
            (p.p_label, Mark::Line(P_COLOR)),
            (p.q_label, Mark::Dashed(Q_COLOR)),
        ]
    }));
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
    render(path, FIG, w, h, |c| {
        draw_title(c, title, w);
        draw_legend_row(c, (w as i32 / 2, TITLE_H as i32 + 6), &entries, "")?;
        let x_off = w.saturating_sub(px(cols) * panel_w) / 2;
        for (k, p) in panels.iter().enumerate() {
            let (row, col) = (px(k / cols), px(k % cols));
            let area = c.root.clone().shrink(
                (
                    (x_off + col * panel_w) as i32,
                    (HEADER + row * panel_h) as i32,
                ),
                (panel_w as i32, panel_h as i32),
            );
            density_panel(c, &area, p, x_label)?;
        }
        Ok(())
    })
}

fn density_panel<'b>(
    c: &mut Canvas<'_, 'b>,
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
    let area = with_caption(c, area, p.caption);
    let x = Axis::auto(xr, 5, x_label);
    let y = Axis::auto((0.0, y_hi), 5, "density");
    let mut chart = build_chart(&area, &x, &y, (2, 12))?;
    draw_axes(c, &chart, &x, &y, true)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::tests::*;

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
}
