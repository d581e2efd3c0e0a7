//! Continuous colour: colour maps and the colour bar that reads a colour back as a value.

use plotters::prelude::*;

use super::axes::{nice_ticks, tick_labels};
use super::canvas::{Canvas, DrawResult};
use super::text::{text_width, Align, Txt, Valign};
use super::{BORDER_GRAY, LEGEND_SIZE, TICK_LEN, TICK_SIZE};

/// matplotlib's "autumn": red at the minimum, yellow at the maximum.
pub(super) const AUTUMN: [[u8; 3]; 2] = [[255, 0, 0], [255, 255, 0]];
/// Blue → white → red (ColorBrewer RdBu, reversed), for values of both signs centred on 0.
pub(super) const DIVERGING: [[u8; 3]; 5] = [
    [33, 102, 172],
    [146, 197, 222],
    [247, 247, 247],
    [244, 165, 130],
    [178, 24, 43],
];
/// matplotlib's "viridis" (five stops): perceptually even, for values of one sign.
pub(super) const VIRIDIS: [[u8; 3]; 5] = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
];
/// Colour of a field cell whose value is not finite.
pub(super) const MISSING_GRAY: RGBColor = RGBColor(200, 200, 200);
/// Width of a colour bar.
const BAR_W: i32 = 18;

/// The colour at `t` ∈ [0, 1] (clamped; NaN counts as 0) of a map interpolated linearly between
/// evenly spaced `stops`.
pub(super) fn ramp(stops: &[[u8; 3]], t: f64) -> RGBColor {
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

/// Darkest colour of the posterior heatmap (density = max); zero density is white.
const HEAT_COLOR: [f64; 3] = [150.0, 185.0, 230.0];

/// The posterior heatmap's colour for a density `v` relative to its maximum (clamped to [0, 1]).
/// The square root lifts the tails, which hold most of the area but little of the density.
pub(super) fn heat(v: f64) -> RGBColor {
    let t = v.clamp(0.0, 1.0).sqrt();
    let mix = |hc: f64| (255.0 + (hc - 255.0) * t).round() as u8;
    RGBColor(mix(HEAT_COLOR[0]), mix(HEAT_COLOR[1]), mix(HEAT_COLOR[2]))
}

/// A colour scale: the range `lo..hi` spread over a colour map, drawn as a vertical bar with ticks
/// in value units under a heading that says what the colour means.
pub(super) struct ColourBar {
    lo: f64,
    hi: f64,
    stops: &'static [[u8; 3]],
    ticks: Vec<f64>,
    labels: Vec<String>,
    label: String,
}

impl ColourBar {
    pub fn new((lo, hi): (f64, f64), stops: &'static [[u8; 3]], label: &str) -> Self {
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

    pub fn colour(&self, v: f64) -> RGBColor {
        ramp(self.stops, (v - self.lo) / (self.hi - self.lo))
    }

    /// Width of the bar with its tick labels, or of its heading if that is wider.
    pub fn width(&self) -> i32 {
        let labels = self.labels.iter().map(|l| text_width(l, TICK_SIZE));
        let ticked = BAR_W + TICK_LEN + 6 + labels.max().unwrap_or(0);
        ticked.max(text_width(&self.label, LEGEND_SIZE)).min(400)
    }

    /// Draws the bar with its left edge at `x`, from `top` (maximum) down to `bottom` (minimum),
    /// and the heading just above it.
    pub fn draw(&self, c: &mut Canvas, x: i32, top: i32, bottom: i32) -> DrawResult<()> {
        let t = Txt::new(LEGEND_SIZE, Align::Left, Valign::Baseline);
        c.text(&self.label, (x, top - 8), t);
        let h = f64::from((bottom - top).max(1));
        for py in top..=bottom {
            let v = self.lo + f64::from(bottom - py) / h * (self.hi - self.lo);
            let row = vec![(x, py), (x + BAR_W, py)];
            c.root.draw(&PathElement::new(row, self.colour(v)))?;
        }
        c.root.draw(&Rectangle::new(
            [(x, top), (x + BAR_W, bottom)],
            BORDER_GRAY,
        ))?;
        for (v, label) in self.ticks.iter().zip(&self.labels) {
            let py = bottom - ((v - self.lo) / (self.hi - self.lo) * h).round() as i32;
            let tick = vec![(x + BAR_W, py), (x + BAR_W + TICK_LEN, py)];
            c.root.draw(&PathElement::new(tick, BLACK))?;
            let t = Txt::new(TICK_SIZE, Align::Left, Valign::Middle);
            c.text(label, (x + BAR_W + TICK_LEN + 4, py), t);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_and_bars() {
        assert_eq!(ramp(&AUTUMN, 0.0), RGBColor(255, 0, 0));
        assert_eq!(ramp(&AUTUMN, 1.0), RGBColor(255, 255, 0));
        assert_eq!(ramp(&AUTUMN, f64::NAN), ramp(&AUTUMN, -5.0));
        assert_eq!(ramp(&DIVERGING, 0.5), RGBColor(247, 247, 247));
        assert_eq!(ramp(&VIRIDIS, 2.0), RGBColor(253, 231, 37));
        assert_eq!(heat(0.0), RGBColor(255, 255, 255));
        assert_eq!(heat(1.0), RGBColor(150, 185, 230));
        let bar = ColourBar::new((-2.0, 2.0), &DIVERGING, "μ(x)");
        assert_eq!(bar.colour(0.0), RGBColor(247, 247, 247));
        assert_eq!(bar.labels.first().map(String::as_str), Some("-2"));
        assert!(bar.width() >= BAR_W + text_width("-2", TICK_SIZE));
    }
}
