//! Host-side optimizers (Adam, the design card's, and Adagrad, which STATS271 HW6 offers beside
//! it); `shaders/optimizer.wgsl` is their GPU twin, one entry point each with the same arithmetic.
//! Both match `torch.optim` without weight decay, so that a run can be repeated in PyTorch.

use crate::cpu::par;
use serde::{Deserialize, Deserializer, Serialize};

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

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdagradConfig {
    pub lr: f32,
    pub eps: f32,
}

impl Default for AdagradConfig {
    /// torch.optim.Adagrad's defaults (no learning-rate decay, accumulator starting at 0).
    fn default() -> Self {
        Self {
            lr: 1e-2,
            eps: 1e-10,
        }
    }
}

/// Which optimizer a run uses and its hyper-parameters; stored in the checkpoint's config.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerConfig {
    Adam(AdamConfig),
    Adagrad(AdagradConfig),
}

/// The `--optimizer` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerKind {
    /// Adam (β₁ 0.9, β₂ 0.999, ε 1e-8), default lr 0.001
    Adam,
    /// Adagrad (ε 1e-10, accumulator from 0), default lr 0.01
    Adagrad,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam(AdamConfig::default())
    }
}

impl OptimizerConfig {
    /// `kind` with its defaults, and the learning rate `lr` if one is given.
    pub fn new(kind: OptimizerKind, lr: Option<f32>) -> Self {
        let mut c = match kind {
            OptimizerKind::Adam => OptimizerConfig::Adam(AdamConfig::default()),
            OptimizerKind::Adagrad => OptimizerConfig::Adagrad(AdagradConfig::default()),
        };
        if let Some(lr) = lr {
            match &mut c {
                OptimizerConfig::Adam(a) => a.lr = lr,
                OptimizerConfig::Adagrad(a) => a.lr = lr,
            }
        }
        c
    }

    pub fn kind(&self) -> OptimizerKind {
        match self {
            OptimizerConfig::Adam(_) => OptimizerKind::Adam,
            OptimizerConfig::Adagrad(_) => OptimizerKind::Adagrad,
        }
    }

    /// The flag value that selects this optimizer.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::Adagrad(_) => "adagrad",
        }
    }

    pub fn lr(&self) -> f32 {
        match self {
            OptimizerConfig::Adam(a) => a.lr,
            OptimizerConfig::Adagrad(a) => a.lr,
        }
    }

    /// The optimizer and its hyper-parameters in words, for logs and the report.
    pub fn describe(&self) -> String {
        match self {
            OptimizerConfig::Adam(a) => format!(
                "Adam, lr {}, β₁ {}, β₂ {}, ε {:e}",
                a.lr, a.beta1, a.beta2, a.eps
            ),
            OptimizerConfig::Adagrad(a) => format!("Adagrad, lr {}, ε {:e}", a.lr, a.eps),
        }
    }

    /// Checkpoint name prefixes of the optimizer state, PyTorch's state keys: Adam keeps both
    /// moments (`exp_avg`, `exp_avg_sq`), Adagrad only its running sum of squares (`sum`, held in
    /// the second-moment slot). `None`: this optimizer has no first moment.
    pub fn state_prefixes(&self) -> (Option<&'static str>, &'static str) {
        match self {
            OptimizerConfig::Adam(_) => (Some("optimizer.exp_avg."), "optimizer.exp_avg_sq."),
            OptimizerConfig::Adagrad(_) => (None, "optimizer.sum."),
        }
    }

    /// Every hyper-parameter in its valid range, named as stored.
    pub fn check(&self) -> Result<(), String> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0 && lr < 10.0) {
            return Err(format!("{}.lr is {lr}, not in (0, 10)", self.name()));
        }
        let eps = match self {
            OptimizerConfig::Adam(a) => {
                for (name, b) in [("adam.beta1", a.beta1), ("adam.beta2", a.beta2)] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(format!("{name} is {b}, not in [0, 1)"));
                    }
                }
                a.eps
            }
            OptimizerConfig::Adagrad(a) => a.eps,
        };
        if !(eps.is_finite() && eps > 0.0) {
            return Err(format!("{}.eps is {eps}, not positive", self.name()));
        }
        Ok(())
    }
}

/// Reads the optimizer of a stored config: the tagged form, or the bare Adam hyper-parameters
/// that checkpoints stored (as `adam`) before Adagrad existed.
pub fn deserialize_config<'de, D: Deserializer<'de>>(d: D) -> Result<OptimizerConfig, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Tagged(OptimizerConfig),
        AdamOnly(AdamConfig),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Tagged(c) => c,
        Stored::AdamOnly(a) => OptimizerConfig::Adam(a),
    })
}

/// An optimizer's state for any parameter vector: `m` is Adam's first moment (unused by
/// Adagrad), `v` Adam's second moment or Adagrad's sum of squared gradients.
#[derive(Clone, Debug)]
pub struct Optimizer {
    pub cfg: OptimizerConfig,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Steps taken so far.
    pub t: u32,
}

impl Optimizer {
    pub fn new(cfg: OptimizerConfig, n: usize) -> Self {
        Self {
            cfg,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// One update, identical in arithmetic to the matching entry of optimizer.wgsl.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        self.t += 1;
        match self.cfg {
            OptimizerConfig::Adam(a) => {
                adam_update(a, self.t, params, grads, &mut self.m, &mut self.v)
            }
            OptimizerConfig::Adagrad(a) => adagrad_update(a, params, grads, &mut self.v),
        }
    }
}

/// Adam at step `t` (from 1): bias-corrected moments, ε outside the square root.
fn adam_update(
    c: AdamConfig,
    t: u32,
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let t = t as f32;
    let bc1 = 1.0 - c.beta1.powf(t);
    let bc2 = 1.0 - c.beta2.powf(t);
    let update = |params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]| {
        adam_range(params, grads, m, v, c, bc1, bc2)
    };
    // Element-wise, so split across the CPU path's threads with the same values (the four
    // vectors stream from memory: one core does not saturate it).
    let n = par::parts(params.len(), 1);
    if n == 1 {
        return update(params, grads, m, v);
    }
    let b = par::bounds(params.len(), n);
    par::scope(|s| {
        let (mut p, mut g, mut m, mut v) = (params, grads, m, v);
        for i in 0..n {
            let len = b[i + 1] - b[i];
            let (p0, p1) = std::mem::take(&mut p).split_at_mut(len);
            let (g0, g1) = g.split_at(len);
            let (m0, m1) = std::mem::take(&mut m).split_at_mut(len);
            let (v0, v1) = std::mem::take(&mut v).split_at_mut(len);
            (p, g, m, v) = (p1, g1, m1, v1);
            let update = &update;
            if i + 1 == n {
                update(p0, g0, m0, v0);
            } else {
                s.spawn(move |_| update(p0, g0, m0, v0));
            }
        }
    });
}

crate::widest!(
    /// Adam on one range of the parameters, `bc1` and `bc2` its bias corrections: the loop
    /// compiled for the widest vector unit (`cpu::wide`; the same bits at every width).
    fn adam_range(
        params: &mut [f32],
        grads: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        c: AdamConfig,
        bc1: f32,
        bc2: f32,
    ) {
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
            *m = c.beta1 * *m + (1.0 - c.beta1) * g;
            *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
            *p -= c.lr * (*m / bc1) / ((*v / bc2).sqrt() + c.eps);
        }
    }
);

/// Adagrad: accumulate g², step by lr·g / (√Σg² + ε).
fn adagrad_update(c: AdagradConfig, params: &mut [f32], grads: &[f32], sum: &mut [f32]) {
    for ((p, &g), s) in params.iter_mut().zip(grads).zip(sum) {
        *s += g * g;
        *p -= c.lr * g / (s.sqrt() + c.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_stored_before_adagrad_still_read_as_adam() {
        #[derive(Deserialize)]
        struct Holder {
            #[serde(deserialize_with = "deserialize_config")]
            o: OptimizerConfig,
        }
        let old: Holder =
            serde_json::from_str(r#"{"o":{"lr":0.002,"beta1":0.9,"beta2":0.999,"eps":1e-8}}"#)
                .unwrap();
        assert_eq!(
            old.o,
            OptimizerConfig::Adam(AdamConfig {
                lr: 0.002,
                ..AdamConfig::default()
            })
        );
        let c = OptimizerConfig::new(OptimizerKind::Adagrad, Some(0.05));
        let json = format!(r#"{{"o":{}}}"#, serde_json::to_string(&c).unwrap());
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap().o, c);
    }

    #[test]
    fn adagrad_matches_its_definition_on_two_steps() {
        // torch.optim.Adagrad, lr 0.1: s₁ = g₁², p₁ = p₀ − 0.1·g₁/(√s₁ + ε); then s₂ = s₁ + g₂².
        let mut o = Optimizer::new(OptimizerConfig::new(OptimizerKind::Adagrad, Some(0.1)), 2);
        let mut p = [1.0f32, -2.0];
        o.step(&mut p, &[0.5, -3.0]);
        assert!(
            (p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6,
            "{p:?}"
        );
        o.step(&mut p, &[1.0, 0.0]);
        let expected0 = 0.9 - 0.1 * 1.0 / (1.25f32).sqrt();
        assert!(
            (p[0] - expected0).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6,
            "{p:?}"
        );
        assert!(
            o.m.iter().all(|&m| m == 0.0),
            "Adagrad keeps no first moment"
        );
    }
}
