//! Epoch order and batch assembly, shared by both devices so that they see the same batches.

use rand::seq::SliceRandom;
use rand::SeedableRng;

pub use crate::data::representation::{Representation, BELOW_ONE};
use crate::data::{DataSet, Values};
use crate::rng;

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
    mode: Representation,
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
