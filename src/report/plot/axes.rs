//! Axes: data ranges, round tick values and their labels, the chart frame, and clipping lines to
//! the plot.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::canvas::{Area, Canvas, DrawResult};
use super::text::{text_width, Align, Txt, Valign};
use super::{DESC_SIZE, GRID_GRAY, HUGE, TICK_LEN, TICK_SIZE, X_AREA};

pub(super) type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<TickAxis, TickAxis>>;

/// An axis range covering [lo, hi] with a 5% margin, always finite and wide enough for
/// tick computation (plotters loops forever on ranges narrower than float rounding).
pub(super) fn axis_range(lo: f64, hi: f64) -> (f64, f64) {
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
pub(super) fn finite_min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// The finite min..max of the values (clamped to ±HUGE), or a small range around them if they
/// are (numerically) constant, so it can be divided by and ticked; None if none is finite.
pub(super) fn data_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
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
pub(super) fn equalise(
    xr: (f64, f64),
    yr: (f64, f64),
    pw: i32,
    ph: i32,
) -> ((f64, f64), (f64, f64)) {
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

/// "Nice" tick positions (multiples of 1, 2 or 5 × 10^k) inside [lo, hi], at most `target + 1`.
pub(super) fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
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
pub(super) fn tick_labels(ticks: &[f64]) -> Vec<String> {
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

/// A linear f64 axis with explicit tick positions, as plotters' coordinate for a chart.
pub(super) struct TickAxis {
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
pub(super) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
    pub labels: Vec<String>,
    pub desc: String,
}

impl Axis {
    /// Linear axis over [lo, hi] with about `target` round-valued ticks.
    pub fn auto((lo, hi): (f64, f64), target: usize, desc: &str) -> Self {
        Self::with_ticks((lo, hi), nice_ticks(lo, hi, target), desc)
    }

    /// Like [`Axis::auto`] but with whole-number ticks only (a step of at least 1).
    pub fn integer((lo, hi): (f64, f64), target: usize, desc: &str) -> Self {
        let mut ticks = nice_ticks(lo, hi, target);
        if ticks.len() > 1 && ticks[1] - ticks[0] < 1.0 {
            ticks = (lo.ceil() as i64..=hi.floor() as i64)
                .map(|v| v as f64)
                .collect();
        }
        Self::with_ticks((lo, hi), ticks, desc)
    }

    pub fn with_ticks((lo, hi): (f64, f64), ticks: Vec<f64>, desc: &str) -> Self {
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
    pub fn y_area_width(&self) -> i32 {
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

/// Sets up (but does not draw) a chart filling `area`: plot on the right, room for the tick
/// labels below and to the left, and the given top/right margins.
pub(super) fn build_chart<'a, 'b>(
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

/// Draws the frame of a chart: optional grid lines at the ticks, the left and bottom axis lines
/// just outside the plot with outward tick marks, the tick labels and the axis descriptions.
///
/// Drawn here rather than with plotters' mesh, which would lay out its own (invisible) labels
/// with plotters' font machinery.
pub(super) fn draw_axes(
    c: &mut Canvas,
    chart: &Chart<'_, '_>,
    x: &Axis,
    y: &Axis,
    grid: bool,
) -> DrawResult<()> {
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let (left, bottom) = (xr.start - 1, yr.end);
    let xs: Vec<i32> = x
        .ticks
        .iter()
        .map(|v| chart.backend_coord(&(*v, y.lo)).0)
        .collect();
    let ys: Vec<i32> = y
        .ticks
        .iter()
        .map(|v| chart.backend_coord(&(x.lo, *v)).1)
        .collect();
    let line = |a: (i32, i32), b: (i32, i32), colour: RGBColor| {
        c.root.draw(&PathElement::new(vec![a, b], colour))
    };
    if grid {
        for &px in &xs {
            line((px, yr.start), (px, yr.end - 1), GRID_GRAY)?;
        }
        for &py in &ys {
            line((xr.start, py), (xr.end - 1, py), GRID_GRAY)?;
        }
    }
    line((left, yr.start), (left, bottom), BLACK)?;
    line((left, bottom), (xr.end - 1, bottom), BLACK)?;
    for &px in &xs {
        line((px, bottom), (px, bottom + TICK_LEN), BLACK)?;
    }
    for &py in &ys {
        line((left - TICK_LEN, py), (left, py), BLACK)?;
    }
    for (px, label) in xs.iter().zip(&x.labels) {
        let t = Txt::new(TICK_SIZE, Align::Center, Valign::Top);
        c.text(label, (*px, yr.end + TICK_LEN + 6), t);
    }
    for (py, label) in ys.iter().zip(&y.labels) {
        let t = Txt::new(TICK_SIZE, Align::Right, Valign::Middle);
        c.text(label, (xr.start - TICK_LEN - 6, *py), t);
    }
    let t = Txt::new(DESC_SIZE, Align::Center, Valign::Baseline);
    let mid_x = (xr.start + xr.end) / 2;
    c.text(&x.desc, (mid_x, yr.end + X_AREA - 8), t);
    let desc_left = xr.start - y.y_area_width() + 4;
    let mid_y = (yr.start + yr.end) / 2;
    if y.desc_is_short() {
        let t = Txt::new(DESC_SIZE, Align::Left, Valign::Middle);
        c.text(&y.desc, (desc_left, mid_y), t);
    } else {
        let t = Txt::new(DESC_SIZE, Align::Center, Valign::Top).vertical();
        c.text(&y.desc, (desc_left, mid_y), t);
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
pub(super) fn clip_polyline(
    points: &[(f64, f64)],
    xr: (f64, f64),
    yr: (f64, f64),
) -> Vec<Vec<(f64, f64)>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_share_decimals_and_never_print_minus_zero() {
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
    }

    #[test]
    fn ranges_and_ticks() {
        assert_eq!(nice_ticks(-1.0, 1.0, 4), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert!(nice_ticks(1.0, 1.0, 4).is_empty());
        let (lo, hi) = axis_range(3.0, 3.0);
        assert!(lo < 3.0 && hi > 3.0);
        assert_eq!(axis_range(f64::NAN, 1.0), (-1.0, 1.0));
        assert_eq!(
            data_range([2.0, f64::NAN, -1.0].into_iter()),
            Some((-1.0, 2.0))
        );
        assert!(data_range([3.0, 3.0].into_iter()).is_some_and(|(a, b)| a < 3.0 && b > 3.0));
        assert_eq!(data_range([f64::NAN].into_iter()), None);
        let ints = Axis::integer((0.0, 3.0), 8, "epoch");
        assert_eq!(ints.ticks, [0.0, 1.0, 2.0, 3.0]);
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

    #[test]
    fn clipping() {
        assert!(
            clip_segment((-1.0, 0.5), (2.0, 0.5), (0.0, 1.0), (0.0, 1.0))
                .is_some_and(|(a, b)| a == (0.0, 0.5) && b == (1.0, 0.5))
        );
        assert!(clip_segment((-1.0, 2.0), (2.0, 2.0), (0.0, 1.0), (0.0, 1.0)).is_none());
        // A polyline leaving and re-entering the box becomes two runs; NaN breaks it.
        let path = [
            (0.5, 0.5),
            (0.5, 2.0),
            (0.6, 0.5),
            (0.7, 0.5),
            (f64::NAN, 0.0),
        ];
        let runs = clip_polyline(&path, (0.0, 1.0), (0.0, 1.0));
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!(runs[0], [(0.5, 0.5), (0.5, 1.0)]);
        assert_eq!(runs[1].last(), Some(&(0.7, 0.5)));
    }
}
