//! Epoch order and batch assembly, shared by both devices so that they see the same batches.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::data::{DataSet, Values};
use crate::rng;

/// How grey MNIST pixels become the data x: binary for the Bernoulli likelihood, else grayscale.
/// Real-valued data (the circle, a data file) is always `grayscale`: its values are used as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Binarize {
    /// pixel > 127 → 1: a fixed data set, as in most course assignments.
    Threshold,
    /// pixel/255 > u with fresh Philox uniforms every epoch (dynamic binarization; evaluation uses
    /// one fixed draw).
    Stochastic,
    /// pixel/255 as it is: the grayscale data every likelihood but `bernoulli` models.
    Grayscale,
    /// (pixel + u)/256 with fresh Philox uniforms u every epoch (uniform dequantization; evaluation
    /// uses one fixed draw): a continuous density of these values bounds the probability of the
    /// 8-bit data, so its ELBO converts to bits per dimension comparable across likelihoods.
    Dequantize,
    /// (pixel + ½)/256, the middle of each pixel's 8-bit bin: inside (0, 1), where the Beta's
    /// density is finite (MNIST's many exact 0s and 1s are not).
    Midpoint,
}

impl Binarize {
    /// The gather kernel's mode for data stored as `values` (real values have their own).
    pub fn code(self, values: &Values) -> u32 {
        if matches!(values, Values::Real(_)) {
            return 3;
        }
        match self {
            Binarize::Threshold => 0,
            Binarize::Stochastic => 1,
            Binarize::Grayscale => 2,
            Binarize::Dequantize => 4,
            Binarize::Midpoint => 5,
        }
    }

    /// The representation a likelihood models by default: binarized pixels for the Bernoulli,
    /// bin middles for the Beta, pixel/255 for the others.
    pub fn for_likelihood(lik: &crate::spec::Likelihood) -> Self {
        match lik {
            l if l.binary_data() => Binarize::Threshold,
            crate::spec::Likelihood::Beta => Binarize::Midpoint,
            _ => Binarize::Grayscale,
        }
    }

    /// The data value of 8-bit `pixel` given the uniform `u` of its Philox draw (used by the
    /// stochastic modes only).
    pub fn pixel_value(self, pixel: u8, u: f32) -> f32 {
        match self {
            Binarize::Threshold => (pixel > 127) as u8 as f32,
            Binarize::Stochastic => (pixel as f32 / 255.0 > u) as u8 as f32,
            Binarize::Grayscale => pixel as f32 / 255.0,
            // u < 1, but 255 + u rounds to 256 in f32 when u is within 2⁻¹⁶ of 1: the largest
            // f32 below 1 keeps x inside the top bin and ln(1 − x) finite (the Beta's).
            Binarize::Dequantize => ((pixel as f32 + u) / 256.0).min(BELOW_ONE),
            Binarize::Midpoint => (pixel as f32 + 0.5) / 256.0,
        }
    }

    /// Whether the value depends on a fresh uniform per pixel and epoch.
    fn stochastic(self) -> bool {
        matches!(self, Binarize::Stochastic | Binarize::Dequantize)
    }
}

/// The largest f32 below 1.
pub const BELOW_ONE: f32 = 1.0 - f32::EPSILON / 2.0;

/// The binarization "epoch" used for evaluation, so that test ELBOs are comparable across epochs.
pub const EVAL_EPOCH: u32 = u32::MAX;

/// The shuffled order of `n` training images for `epoch`: a pure function of (seed, epoch).
pub fn epoch_permutation(n: usize, seed: u64, epoch: u32) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mix = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0bad_5eed;
    let mut rng = rand::rngs::StdRng::seed_from_u64(mix);
    idx.shuffle(&mut rng);
    idx
}

/// Rows `index[start..start+batch]` (padded by repeating the last row, as the GPU gather does)
/// into `out` as `[batch, D]` f32: pixels binarized or scaled by `mode`, real values as they are.
#[allow(clippy::too_many_arguments)]
pub fn gather_batch(
    set: &DataSet,
    index: &[u32],
    start: usize,
    batch: usize,
    mode: Binarize,
    seed: u64,
    epoch: u32,
    out: &mut [f32],
) {
    let d = set.dim;
    let mut u = vec![0.0f32; d];
    for b in 0..batch {
        let pos = (start + b).min(index.len() - 1);
        let image = index[pos];
        let row = &mut out[b * d..(b + 1) * d];
        let pixels = match &set.values {
            Values::Real(v) => {
                row.copy_from_slice(&v[image as usize * d..(image as usize + 1) * d]);
                continue;
            }
            Values::Pixels(_) => set.image(image as usize),
        };
        if mode.stochastic() {
            rng::binarize_uniforms(seed, epoch, image, d, &mut u);
        }
        for ((o, &p), &ui) in row.iter_mut().zip(pixels).zip(&u) {
            *o = mode.pixel_value(p, ui);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every representation of the extreme bytes stays where its likelihood needs it: the Beta's
    /// (midpoint, dequantize) strictly inside (0, 1) even for a uniform that rounds 255 + u to 256.
    #[test]
    fn pixel_values_stay_in_their_ranges() {
        let u_top = 1.0 - f32::EPSILON / 2.0;
        let top = Binarize::Dequantize.pixel_value(255, u_top);
        assert!((255.0 / 256.0..1.0).contains(&top), "{top}");
        assert!(Binarize::Dequantize.pixel_value(0, 1e-7) > 0.0);
        assert_eq!(Binarize::Midpoint.pixel_value(0, 0.0), 0.5 / 256.0);
        assert_eq!(Binarize::Midpoint.pixel_value(255, 0.0), 255.5 / 256.0);
        assert_eq!(Binarize::Grayscale.pixel_value(255, 0.0), 1.0);
        assert_eq!(Binarize::Threshold.pixel_value(128, 0.0), 1.0);
        assert_eq!(Binarize::Stochastic.pixel_value(100, 0.5), 0.0);
    }
}
