//! Counter-based random numbers (Philox4x32-10, Salmon et al. 2011) shared by the CPU and GPU paths.
//!
//! A counter-based generator has no state to carry between kernels: any thread can compute the
//! noise for (row, dimension, step) directly. `shaders/philox.wgsl` implements the same function,
//! so the CPU reference and the GPU kernels draw bit-identical uniforms for the same counter; the
//! normals differ only by the last-ulp differences of `ln`/`cos`/`sin` between devices.

use crate::spec::LatentFamily;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Streams keep independent uses of the generator apart (same seed, different purpose).
pub mod stream {
    /// Reparameterization noise during training steps.
    pub const TRAIN_NOISE: u32 = 0;
    /// Reparameterization noise during evaluation of a data split.
    pub const EVAL_NOISE: u32 = 1;
    /// Stochastic binarization of pixels.
    pub const BINARIZE: u32 = 2;
    /// Monte Carlo estimates and samples drawn by the analysis commands.
    pub const ANALYSIS: u32 = 3;
    /// Reparameterization noise of stochastic variational inference and estimator studies.
    pub const SVI: u32 = 4;
    /// Synthetic data sets (the circle).
    pub const DATA: u32 = 5;
    /// `--inference vem`'s training E-steps: counter (r + s·B·L, block, optimizer step, VEM_E)
    /// for E-step s of the batch at that step (the M-step draws from TRAIN_NOISE as amortized
    /// training does).
    pub const VEM_E: u32 = 6;
    /// `--inference vem`'s test-time E-steps: counter (r + s·B·L, block, batch, VEM_EVAL) for
    /// E-step s of evaluation batch `batch` (its ELBO then draws from EVAL_NOISE).
    pub const VEM_EVAL: u32 = 7;

    /// Whether the third counter word of a latent stream is the batch index of a pass over a
    /// split (evaluation) rather than the optimizer step (training).
    pub fn counts_by_batch(stream: u32) -> bool {
        !matches!(stream, TRAIN_NOISE | VEM_E)
    }
}

/// Philox4x32 with 10 rounds: four 32-bit random words for a 128-bit counter and 64-bit key.
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for _ in 0..10 {
        let p0 = (M0 as u64) * (c[0] as u64);
        let p1 = (M1 as u64) * (c[2] as u64);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        k[0] = k[0].wrapping_add(W0);
        k[1] = k[1].wrapping_add(W1);
    }
    c
}

/// Maps a random word to the open interval (0, 1), so `ln(u)` is always finite.
pub fn uniform_open(x: u32) -> f32 {
    ((x >> 8) as f32 + 0.5) * (1.0 / 16_777_216.0)
}

/// Four standard normals from one Philox call (two Box–Muller pairs), as `normal4` in WGSL.
pub fn normal4(counter: [u32; 4], key: [u32; 2]) -> [f32; 4] {
    let r = philox4x32(counter, key);
    let mut out = [0.0f32; 4];
    for p in 0..2 {
        let u1 = uniform_open(r[2 * p]);
        let u2 = uniform_open(r[2 * p + 1]);
        let rad = (-2.0 * u1.ln()).sqrt();
        // Angle in (-π, π): GPU sin/cos are only accurate on that range.
        let theta = std::f32::consts::PI * (2.0 * u2 - 1.0);
        out[2 * p] = rad * theta.cos();
        out[2 * p + 1] = rad * theta.sin();
    }
    out
}

/// Four standard Laplace variates (density e^(−|ε|)/2) from one Philox call by the inverse CDF:
/// ε = ln(2u) for u < ½, −ln(2(1 − u)) otherwise; as `laplace4` in WGSL. `uniform_open` keeps u
/// and 1 − u at least 2⁻²⁵ away from 0, so |ε| ≤ 24·ln 2.
pub fn laplace4(counter: [u32; 4], key: [u32; 2]) -> [f32; 4] {
    philox4x32(counter, key).map(|w| {
        let u = uniform_open(w);
        if u < 0.5 {
            (2.0 * u).ln()
        } else {
            -(2.0 * (1.0 - u)).ln()
        }
    })
}

/// Splits a 64-bit seed into the Philox key.
pub fn key_from_seed(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// The reparameterization noise ε (standard variates of latent family `family`) for sample row
/// `row` (row = sample·B + batch index), all `dz` latent dimensions, at optimizer step `step` in
/// stream `stream`. Exactly what the GPU's `shaders/latent/reparam.wgsl` computes for the same
/// arguments.
pub fn noise_row(
    family: LatentFamily,
    seed: u64,
    stream: u32,
    step: u32,
    row: u32,
    dz: usize,
    out: &mut [f32],
) {
    let key = key_from_seed(seed);
    for (chunk, block) in out[..dz].chunks_mut(4).zip(0u32..) {
        let n = family.standard4([row, block, step, stream], key);
        chunk.copy_from_slice(&n[..chunk.len()]);
    }
}

/// Noise for a whole batch: `rows` rows of `dz` values, row-major.
pub fn noise_batch(
    family: LatentFamily,
    seed: u64,
    stream: u32,
    step: u32,
    rows: usize,
    dz: usize,
) -> Vec<f32> {
    let mut eps = vec![0.0f32; rows * dz];
    for (r, row) in eps.chunks_mut(dz).enumerate() {
        noise_row(family, seed, stream, step, r as u32, dz, row);
    }
    eps
}

/// Uniforms for stochastic binarization of image `image` in epoch `epoch`: four pixels per call,
/// pixel p uses word p % 4 of counter (image, p / 4, epoch, BINARIZE).
pub fn binarize_uniforms(seed: u64, epoch: u32, image: u32, pixels: usize, out: &mut [f32]) {
    let key = key_from_seed(seed);
    for (chunk, block) in out[..pixels].chunks_mut(4).zip(0u32..) {
        let r = philox4x32([image, block, epoch, stream::BINARIZE], key);
        for (o, w) in chunk.iter_mut().zip(r) {
            *o = uniform_open(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answer() {
        // Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32_10).
        assert_eq!(
            philox4x32([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn standard_variates_have_their_moments() {
        // N(0, 1): variance 1, E|ε| = √(2/π); Laplace(0, 1): variance 2, E|ε| = 1. With n = 2·10⁵
        // the standard errors are ≤ 0.007 (variance, Laplace: √(20/n)) and ≤ 0.003 (the means).
        let n = 200_000;
        for (family, var_want, abs_want) in [
            (
                LatentFamily::Gaussian,
                1.0,
                (2.0 / std::f64::consts::PI).sqrt(),
            ),
            (LatentFamily::Laplace, 2.0, 1.0),
        ] {
            let eps = noise_batch(family, 7, 0, 3, n / 4, 4);
            let mean = eps.iter().map(|&e| e as f64).sum::<f64>() / n as f64;
            let var = eps.iter().map(|&e| (e as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let abs = eps.iter().map(|&e| (e as f64).abs()).sum::<f64>() / n as f64;
            assert!(mean.abs() < 0.01, "{family:?}: mean {mean}");
            assert!((var - var_want).abs() < 0.03, "{family:?}: var {var}");
            assert!((abs - abs_want).abs() < 0.01, "{family:?}: E|ε| {abs}");
        }
    }
}
