//! PNG figures for the experiments: digit grids, latent scatters and lattices, learning curves,
//! posterior contour plots and densities, histograms, and colour-mapped scatters and fields.
//!
//! Shapes are drawn with `plotters` into an in-memory RGB buffer; text is laid out and
//! rasterised by `text` with `ab_glyph` directly, because plotters' ab_glyph renderer drops
//! each glyph's left side bearing (strings like "-120" come out as "-1 20"). The font, DejaVu
//! Sans, is embedded in the binary, so no system font libraries are needed. The finished buffer
//! is encoded with `image` and written with [`crate::training::checkpoint::write_atomic`], so a
//! crash never leaves a half-written PNG.
//!
//! Digits are drawn as **white ink on a black tile** (value 1 = white), like the figures in
//! Kingma & Welling (2014). Pixel values are clamped to [0, 1]; NaN marks an unobserved pixel
//! and is drawn in [`UNOBSERVED_TINT`].
//!
//! Nothing here panics on bad input: inconsistent shapes give [`Error::Usage`], rendering or
//! encoding failures give [`Error::Io`] naming the figure.
//!
//! The parts, lowest first: `text` (layout and rasterisation), `canvas` (the page, digit tiles,
//! PNG output), `axes`, `legend`, `colour` and `contour`; the figures are in `tiles` (digit
//! grids and the latent lattice), `charts` (scatter, lines, histograms), `posterior` (contours
//! and 1-D densities) and `fields` (colour-mapped scatters and fields).
//!
//! [`Error::Usage`]: crate::error::Error::Usage
//! [`Error::Io`]: crate::error::Error::Io

mod axes;
mod bars;
mod canvas;
mod charts;
mod colour;
mod contour;
mod fields;
mod legend;
mod posterior;
mod text;
mod tiles;

#[cfg(test)]
mod tests;

use plotters::style::RGBColor;

pub use bars::stacked_bars;
pub use charts::{
    class_scatter, histograms, histograms_with, line_chart, line_chart_with, LineOptions,
};
pub use contour::contour_segments;
pub use fields::{field_map, value_scatter, FieldGrid};
pub use posterior::{density_panels, posterior_contours, DensityPanel, PosteriorPanel};
pub use tiles::{image_panels, latent_lattice, Panel};

/// How unobserved (NaN) pixels are drawn: a dark blue tint, so a reader sees at once which
/// pixels the model was not given (black would read as observed background).
pub const UNOBSERVED_TINT: [u8; 3] = [38, 62, 128];

/// Side length of an MNIST digit.
const SIDE: usize = 28;
/// Values per digit image.
const PIXELS: usize = SIDE * SIDE;
/// Largest figure side we are willing to allocate; beyond this the input is surely a mistake.
const MAX_PX: u32 = 8192;
/// Figures are laid out to stay roughly this wide when the content allows it.
const TARGET_W: u32 = 1400;
/// Largest magnitude we plot; keeps every range width finite.
const HUGE: f64 = 1e300;

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
