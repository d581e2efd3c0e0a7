//! Figures coloured by a continuous value: a scatter of points coloured by a value, and a
//! scalar field over the plane as a colour map, each with its colour bar.

use std::path::Path;

use plotters::prelude::*;

use super::axes::{
    axis_range, build_chart, clip_polyline, data_range, draw_axes, equalise, finite_min_max, Axis,
    Chart,
};
use super::canvas::{checked_len, draw_title, px_i, render, title_width, Canvas, DrawResult};
use super::colour::{ColourBar, AUTUMN, DIVERGING, MISSING_GRAY, VIRIDIS};
use super::legend::{draw_legend, legend_box_size, Mark};
use super::{HUGE, TAB10, TITLE_H, X_AREA};
use crate::error::{Error, Result};

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
fn render_colour_plot<U, O>(path: &Path, p: &ColourPlot, under: U, over: O) -> Result<()>
where
    U: FnOnce(&Canvas<'_, '_>, &Chart<'_, '_>) -> DrawResult<()>,
    O: FnOnce(&mut Chart<'_, '_>) -> DrawResult<()>,
{
    let (lw, lh) = if p.entries.is_empty() {
        (0, 0)
    } else {
        legend_box_size(None, &p.entries)
    };
    let rw = lw.min(400).max(p.bar.width());
    let w = (840 + px_i(rw) + 24).max(title_width(p.title));
    // Tall enough for the legend plus a colour bar of at least 250 px.
    let h = px_i(lh + 300 + X_AREA).saturating_add(TITLE_H).max(740);
    let (area_w, area_h) = (w as i32 - rw - 24, (h - TITLE_H) as i32);
    let axes = |xr, yr| (Axis::auto(xr, 8, p.x_label), Axis::auto(yr, 8, p.y_label));
    let (mut x, mut y) = axes(p.xr, p.yr);
    if p.equal_aspect {
        // The plot's width depends on the y tick labels, which depend on the range: settle it.
        for _ in 0..3 {
            let plot_w = area_w - 16 - y.y_area_width();
            let (xr, yr) = equalise(p.xr, p.yr, plot_w, area_h - 6 - X_AREA);
            (x, y) = axes(xr, yr);
        }
    }
    render(path, p.fig, w, h, |c| {
        draw_title(c, p.title, w);
        let area = c.root.clone().shrink((0, TITLE_H as i32), (area_w, area_h));
        let mut chart = build_chart(&area, &x, &y, (6, 16))?;
        under(c, &chart)?;
        draw_axes(c, &chart, &x, &y, p.grid)?;
        over(&mut chart)?;
        let (pxr, pyr) = chart.plotting_area().get_pixel_range();
        draw_legend(c, (pxr.end + 12, pyr.start), None, &p.entries)?;
        let bar_top = pyr.start + if lh > 0 { lh + 36 } else { 22 };
        p.bar.draw(c, pxr.end + 12, bar_top, pyr.end - 1)?;
        Ok(())
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
    let cells = |c: &Canvas, chart: &Chart| -> DrawResult<()> {
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
                if let Some(col) =
                    index(xv, g.x_min, g.dx, g.nx).and_then(|j| colours.get(i * g.nx + j))
                {
                    c.root.draw_pixel((pxl, py), col)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::tests::*;

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
}
