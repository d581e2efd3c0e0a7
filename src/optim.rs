//! Host-side Adam (the design card's optimizer); `shaders/adam.wgsl` is its GPU twin.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Default for AdamConfig {
    /// Kingma & Ba's defaults, also torch.optim.Adam's.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Adam's moments and step count, for any parameter vector.
#[derive(Clone, Debug)]
pub struct Adam {
    pub cfg: AdamConfig,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Steps taken so far.
    pub t: u32,
}

impl Adam {
    pub fn new(cfg: AdamConfig, n: usize) -> Self {
        Self {
            cfg,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// One update, identical in arithmetic to adam.wgsl (bias-corrected moments, ε outside √).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        self.t += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.cfg;
        let t = self.t as f32;
        let bc1 = 1.0 - beta1.powf(t);
        let bc2 = 1.0 - beta2.powf(t);
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = beta1 * *m + (1.0 - beta1) * g;
            *v = beta2 * *v + (1.0 - beta2) * g * g;
            *p -= lr * (*m / bc1) / ((*v / bc2).sqrt() + eps);
        }
    }
}
