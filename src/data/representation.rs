//! How 8-bit MNIST pixels become the data values x a likelihood models. One table: the CPU
//! gather (`batch::gather_batch`) reads [`Representation::pixel_value`], the device
//! gather (`shaders/gather.wgsl`) switches on the codes [`wgsl_constants`] emits into its source,
//! so the two cannot drift apart. Which representations a likelihood accepts, and its default, the
//! likelihood answers for itself (`family::likelihood::Member::representations`).

use serde::{Deserialize, Serialize};

use super::Values;

/// The data representation of a run (`--pixels`, formerly `--binarize`; stored in checkpoints as
/// `binarize`). Real-valued data (the circle, a data file) is always `grayscale`: its values are
/// used as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Representation {
    /// pixel > 127 → 1: a fixed binary data set, as in most course assignments.
    Threshold,
    /// pixel/255 > u with fresh Philox uniforms every epoch (dynamic binarization; evaluation uses
    /// one fixed draw).
    Stochastic,
    /// pixel/255 as it is.
    Grayscale,
    /// (pixel + u)/256 with fresh Philox uniforms u every epoch (uniform dequantization; evaluation
    /// uses one fixed draw): a continuous density of these values bounds the probability of the
    /// 8-bit data, so its ELBO converts to bits per dimension comparable across likelihoods.
    Dequantize,
    /// (pixel + ½)/256, the middle of each pixel's 8-bit bin: strictly inside (0, 1).
    Midpoint,
}

/// The gather code of real-valued rows (copied as they are, whatever the representation).
const REAL_VALUES: u32 = 3;

impl Representation {
    pub const ALL: [Representation; 5] = [
        Representation::Threshold,
        Representation::Stochastic,
        Representation::Grayscale,
        Representation::Dequantize,
        Representation::Midpoint,
    ];

    /// The flag value (`--pixels NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Representation::Threshold => "threshold",
            Representation::Stochastic => "stochastic",
            Representation::Grayscale => "grayscale",
            Representation::Dequantize => "dequantize",
            Representation::Midpoint => "midpoint",
        }
    }

    /// The values in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Representation::Threshold => "binarized pixels (pixel > 127)",
            Representation::Stochastic => "stochastically binarized pixels",
            Representation::Grayscale => "pixel/255 values",
            Representation::Dequantize => "dequantized pixels (pixel + u)/256",
            Representation::Midpoint => "bin middles (pixel + ½)/256",
        }
    }

    /// Whether the values are 0 or 1.
    pub fn binary(self) -> bool {
        matches!(self, Representation::Threshold | Representation::Stochastic)
    }

    /// The gather kernel's mode for data stored as `values` (real values have their own).
    pub fn code(self, values: &Values) -> u32 {
        if matches!(values, Values::Real(_)) {
            return REAL_VALUES;
        }
        self.pixel_code()
    }

    fn pixel_code(self) -> u32 {
        match self {
            Representation::Threshold => 0,
            Representation::Stochastic => 1,
            Representation::Grayscale => 2,
            Representation::Dequantize => 4,
            Representation::Midpoint => 5,
        }
    }

    /// The data value of 8-bit `pixel` given the uniform `u` of its Philox draw (used by the
    /// stochastic modes only).
    pub fn pixel_value(self, pixel: u8, u: f32) -> f32 {
        match self {
            Representation::Threshold => (pixel > 127) as u8 as f32,
            Representation::Stochastic => (pixel as f32 / 255.0 > u) as u8 as f32,
            Representation::Grayscale => pixel as f32 / 255.0,
            // u < 1, but 255 + u rounds to 256 in f32 when u is within 2⁻¹⁶ of 1: the largest
            // f32 below 1 keeps x inside the top bin and ln(1 − x) finite (the Beta's).
            Representation::Dequantize => ((pixel as f32 + u) / 256.0).min(BELOW_ONE),
            Representation::Midpoint => (pixel as f32 + 0.5) / 256.0,
        }
    }

    /// Whether the value depends on a fresh uniform per pixel and epoch.
    pub fn stochastic(self) -> bool {
        matches!(
            self,
            Representation::Stochastic | Representation::Dequantize
        )
    }
}

/// The largest f32 below 1.
pub const BELOW_ONE: f32 = 1.0 - f32::EPSILON / 2.0;

/// The codes of `shaders/gather.wgsl` as WGSL constants (`PIXELS_THRESHOLD`, …, `REAL_VALUES`),
/// prepended to its source.
pub fn wgsl_constants() -> String {
    let mut s: String = Representation::ALL
        .iter()
        .map(|r| {
            format!(
                "const PIXELS_{}: u32 = {}u;\n",
                r.name().to_uppercase(),
                r.pixel_code()
            )
        })
        .collect();
    s.push_str(&format!("const REAL_VALUES: u32 = {REAL_VALUES}u;\n"));
    s.push_str(&format!("const BELOW_ONE: f32 = {BELOW_ONE:?};\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every representation of the extreme bytes stays where its likelihood needs it: the Beta's
    /// (midpoint, dequantize) strictly inside (0, 1) even for a uniform that rounds 255 + u to 256.
    #[test]
    fn pixel_values_stay_in_their_ranges() {
        let u_top = 1.0 - f32::EPSILON / 2.0;
        let top = Representation::Dequantize.pixel_value(255, u_top);
        assert!((255.0 / 256.0..1.0).contains(&top), "{top}");
        assert!(Representation::Dequantize.pixel_value(0, 1e-7) > 0.0);
        assert_eq!(Representation::Midpoint.pixel_value(0, 0.0), 0.5 / 256.0);
        assert_eq!(
            Representation::Midpoint.pixel_value(255, 0.0),
            255.5 / 256.0
        );
        assert_eq!(Representation::Grayscale.pixel_value(255, 0.0), 1.0);
        assert_eq!(Representation::Threshold.pixel_value(128, 0.0), 1.0);
        assert_eq!(Representation::Stochastic.pixel_value(100, 0.5), 0.0);
    }

    /// The emitted codes are distinct and name every representation; the serde names are the flag
    /// names.
    #[test]
    fn codes_and_names_agree() {
        let consts = wgsl_constants();
        let mut codes: Vec<u32> = Representation::ALL.iter().map(|r| r.pixel_code()).collect();
        codes.push(REAL_VALUES);
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 6);
        for r in Representation::ALL {
            assert!(consts.contains(&format!("PIXELS_{}", r.name().to_uppercase())));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.name()));
        }
        assert!(consts.contains("BELOW_ONE: f32 = 0.99999994"), "{consts}");
    }
}
