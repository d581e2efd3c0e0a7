//! Shared test helpers: the GPU context (fails loudly without an adapter), tolerances, random data.
#![allow(dead_code)]

pub mod cli;

use rand::{RngExt, SeedableRng};
use vae_gpu::device::{gpu_context, DeviceKind};
use vae_gpu::gpu::GpuContext;

/// The adapter the GPU tests run on. No adapter is a test failure, never a skip.
pub fn gpu() -> GpuContext {
    match gpu_context(DeviceKind::Auto) {
        Ok(ctx) => ctx,
        Err(e) => panic!(
            "GPU tests need a Vulkan/Metal/DX12 adapter and found none ({e}). On Linux without a GPU \
             install Mesa's software Vulkan driver: `apt-get install -y mesa-vulkan-drivers`"
        ),
    }
}

pub fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

pub fn uniform(rng: &mut rand::rngs::StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Asserts |got - want| <= atol + rtol·|want| elementwise, reporting the worst element.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0usize, 0.0f32);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(g.is_finite(), "{what}[{i}] = {g} is not finite");
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        if excess > worst.1 {
            worst = (i, excess);
        }
    }
    let (i, e) = worst;
    assert!(e <= 0.0, "{what}: element {i} got {} want {} (|diff| exceeds atol {atol} + rtol {rtol}·|want| by {e})", got[i], want[i]);
}

pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}
