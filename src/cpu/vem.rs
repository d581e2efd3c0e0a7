//! `--inference vem` on the reference path: variational EM with a free λ_n = [μ_n | log σ²_n] per
//! training image (Algorithm 7 of the lecture notes `004`, with minibatches), and the CPU twins of
//! `shaders/vem.wgsl`.
//!
//! A minibatch's λ rows are gathered from the table into the place of the encoder's output
//! (`Workspace::encoder.out`), take `e_steps` plain-SGD ascent steps on each image's ELBO there
//! (reparameterized gradient, [`step_from_q`] with no parameter gradient), are scattered back, and
//! then the decoder takes one step of the run's optimizer on the ELBO at the new λ's (the M-step).
//! The encoder is never run: its weights stay at their initialization (their gradient slots stay
//! 0, so Adam leaves them exactly where they are). Held-out images (validation, test) get their λ
//! by the E-step alone: from the prior, `test_e_steps` steps; the training split's ELBO is taken
//! at the table's λ's, the q that training maximizes.
//!
//! Noise: E-step s of the batch at θ step t draws row r from Philox counter
//! (r + s·B·L, block, t, `stream::VEM_E`); test-time E-step s of evaluation batch j from
//! (r + s·B·L, block, j, `stream::VEM_EVAL`); the M-step and the held-out ELBO draw exactly as
//! amortized training and evaluation do. The GPU (`gpu::vem`) draws the same.

use super::reference::{step_from_q, Workspace};
use super::Scalar;
use crate::data::batch::{gather_batch, EVAL_EPOCH};
use crate::error::{Error, Result};
use crate::rng::{noise_batch, noise_row, stream};
use crate::spec::{init_params, LatentFamily, ModelSpec};
use crate::training::backend::{
    Backend, Objective, SharedSplits, Split, TrainConfig, TrainState, VemConfig,
};
use crate::training::optim::Optimizer;

/// q rows `[batch, width]` ← table rows `index[start + b]` (clamped to the index's end, as the
/// GPU's padding rows are). Twin of `vem_lambda` mode `VEM_GATHER`.
pub fn lambda_gather<T: Scalar>(
    table: &[T],
    index: &[u32],
    start: usize,
    batch: usize,
    width: usize,
    q: &mut [T],
) {
    for b in 0..batch {
        let row = index[(start + b).min(index.len() - 1)] as usize;
        q[b * width..(b + 1) * width].copy_from_slice(&table[row * width..(row + 1) * width]);
    }
}

/// table rows `index[start + b]` ← q rows. Twin of `vem_lambda` mode `VEM_SCATTER`.
pub fn lambda_scatter<T: Scalar>(
    table: &mut [T],
    index: &[u32],
    start: usize,
    batch: usize,
    width: usize,
    q: &[T],
) {
    for b in 0..batch {
        let row = index[(start + b).min(index.len() - 1)] as usize;
        table[row * width..(row + 1) * width].copy_from_slice(&q[b * width..(b + 1) * width]);
    }
}

/// Every λ at the prior: μ = 0, log σ² = 0. Twin of `vem_lambda` mode `VEM_PRIOR`.
pub fn lambda_prior<T: Scalar>(q: &mut [T]) {
    q.iter_mut().for_each(|v| *v = T::zero());
}

/// One SGD ascent E-step of each image's own ELBO: q ← q − α·B·denc, where `denc` = dLoss/dq for
/// Loss = −(1/(B·L)) Σ ELBO rows, so −B·denc_b is image b's ELBO gradient (mean over its L
/// draws). Twin of `vem_lambda` mode `VEM_SGD` (same f32 operations in the same order:
/// (α·B)·denc, then the subtraction).
pub fn lambda_sgd<T: Scalar>(q: &mut [T], denc: &[T], alpha: T, batch: usize) {
    let ab = alpha * T::from_f64(batch as f64);
    for (v, &d) in q.iter_mut().zip(denc) {
        *v = *v - ab * d;
    }
}

/// The standard normals of E-step `s`: rows r of `rows` at counter (r + s·rows, block, `counter`,
/// `stream`).
pub fn e_step_noise(
    seed: u64,
    stream: u32,
    counter: u32,
    s: usize,
    rows: usize,
    dz: usize,
) -> Vec<f32> {
    let mut eps = vec![0.0f32; rows * dz];
    for (r, row) in eps.chunks_mut(dz).enumerate() {
        let r = (s * rows + r) as u32;
        noise_row(LatentFamily::Gaussian, seed, stream, counter, r, dz, row);
    }
    eps
}

/// `steps` E-steps of the λ rows in `ws.encoder.out` for images `x`, noise from `stream` at
/// `counter`, step size `alpha`.
#[allow(clippy::too_many_arguments)]
pub fn e_steps(
    spec: &ModelSpec,
    params: &[f32],
    x: &[f32],
    ws: &mut Workspace<f32>,
    steps: usize,
    seed: u64,
    stream: u32,
    counter: u32,
    alpha: f32,
) {
    let (b, rows) = (ws.batch, ws.batch * ws.samples);
    for s in 0..steps {
        let eps = e_step_noise(seed, stream, counter, s, rows, spec.latent);
        step_from_q(spec, Objective::Elbo, params, x, &eps, ws, None, true);
        let Workspace { encoder, denc, .. } = &mut *ws;
        lambda_sgd(&mut encoder.out, denc, alpha, b);
    }
}

/// `--device cpu --inference vem`.
pub struct CpuVemBackend {
    cfg: TrainConfig,
    vem: VemConfig,
    splits: SharedSplits,
    params: Vec<f32>,
    grads: Vec<f32>,
    optimizer: Optimizer,
    ws: Workspace<f32>,
    x: Vec<f32>,
    /// `[N_train, 2·Dz]`, row n = [μ_n | log σ²_n].
    lambda: Vec<f32>,
}

impl CpuVemBackend {
    pub fn new(cfg: &TrainConfig, vem: VemConfig, splits: SharedSplits) -> Self {
        let params = init_params(&cfg.model, cfg.seed);
        let n = params.len();
        let width = 2 * cfg.model.latent;
        Self {
            cfg: cfg.clone(),
            vem,
            grads: vec![0.0; n],
            optimizer: Optimizer::new(cfg.optimizer, n),
            ws: Workspace::new(&cfg.model, cfg.batch_size, cfg.samples),
            x: vec![0.0; cfg.batch_size * cfg.model.input],
            lambda: vec![0.0; splits.train.len() * width],
            splits,
            params,
        }
    }

    fn steps_per_epoch(&self) -> usize {
        self.splits.train.len() / self.cfg.batch_size
    }
}

impl Backend for CpuVemBackend {
    fn describe(&self) -> String {
        // The threads of the CPU path's pool (`MATMUL_NUM_THREADS`, else the cores).
        format!(
            "cpu reference path ({} threads), variational EM",
            super::par::threads()
        )
    }

    fn train_epoch(
        &mut self,
        epoch: u32,
        perm: &[u32],
        progress: &mut dyn FnMut(usize),
    ) -> Result<f64> {
        let (b, width) = (self.cfg.batch_size, 2 * self.cfg.model.latent);
        let steps = perm.len() / b;
        let spe = self.steps_per_epoch();
        let mut sum = 0.0;
        for i in 0..steps {
            let c = &self.cfg;
            gather_batch(
                &self.splits.train,
                perm,
                i * b,
                b,
                c.pixels,
                c.seed,
                epoch,
                &mut self.x,
            );
            let t = self.optimizer.t;
            let alpha = self.vem.step_size(t, spe);
            lambda_gather(
                &self.lambda,
                perm,
                i * b,
                b,
                width,
                &mut self.ws.encoder.out,
            );
            let s = self.vem.e_steps as usize;
            e_steps(
                &c.model,
                &self.params,
                &self.x,
                &mut self.ws,
                s,
                c.seed,
                stream::VEM_E,
                t,
                alpha,
            );
            lambda_scatter(
                &mut self.lambda,
                perm,
                i * b,
                b,
                width,
                &self.ws.encoder.out,
            );
            let eps = noise_batch(
                LatentFamily::Gaussian,
                c.seed,
                stream::TRAIN_NOISE,
                t,
                c.rows(),
                c.model.latent,
            );
            let loss = step_from_q(
                &c.model,
                Objective::Elbo,
                &self.params,
                &self.x,
                &eps,
                &mut self.ws,
                Some(&mut self.grads),
                true,
            );
            sum += -(loss as f64) * b as f64;
            self.optimizer.step(&mut self.params, &self.grads);
            progress(i + 1);
        }
        Ok(sum / (steps * b) as f64)
    }

    fn evaluate(&mut self, split: Split) -> Result<f64> {
        let set = self
            .splits
            .get(split)
            .ok_or_else(|| Error::Usage("no validation split (set --val-size)".into()))?;
        let n = set.len();
        let index: Vec<u32> = (0..n as u32).collect();
        let b = self.cfg.batch_size;
        let alpha = self
            .vem
            .test_step_size(self.optimizer.t, self.steps_per_epoch());
        let c = &self.cfg;
        let mut sum = 0.0;
        for batch in 0..n.div_ceil(b) {
            gather_batch(
                set,
                &index,
                batch * b,
                b,
                c.pixels,
                c.seed,
                EVAL_EPOCH,
                &mut self.x,
            );
            if split == Split::Train {
                let width = 2 * c.model.latent;
                lambda_gather(
                    &self.lambda,
                    &index,
                    batch * b,
                    b,
                    width,
                    &mut self.ws.encoder.out,
                );
            } else {
                lambda_prior(&mut self.ws.encoder.out);
                e_steps(
                    &c.model,
                    &self.params,
                    &self.x,
                    &mut self.ws,
                    self.vem.test_e_steps as usize,
                    c.seed,
                    stream::VEM_EVAL,
                    batch as u32,
                    alpha,
                );
            }
            let eps = noise_batch(
                LatentFamily::Gaussian,
                c.seed,
                stream::EVAL_NOISE,
                batch as u32,
                c.rows(),
                c.model.latent,
            );
            step_from_q(
                &c.model,
                Objective::Elbo,
                &self.params,
                &self.x,
                &eps,
                &mut self.ws,
                None,
                false,
            );
            for i in 0..b.min(n - batch * b) {
                sum += self.ws.image_elbo(i);
            }
        }
        Ok(sum / n as f64)
    }

    fn state(&mut self) -> Result<TrainState> {
        Ok(TrainState {
            params: self.params.clone(),
            m: self.optimizer.m.clone(),
            v: self.optimizer.v.clone(),
            step: self.optimizer.t,
            lambda: self.lambda.clone(),
        })
    }

    fn set_state(&mut self, s: &TrainState) -> Result<()> {
        s.check_len(self.params.len())?;
        check_lambda_len(s, self.lambda.len())?;
        self.params.clone_from(&s.params);
        self.optimizer.m.clone_from(&s.m);
        self.optimizer.v.clone_from(&s.v);
        self.optimizer.t = s.step;
        self.lambda.clone_from(&s.lambda);
        Ok(())
    }
}

/// A restored variational-EM state must hold a λ row for every training image.
pub fn check_lambda_len(s: &TrainState, n: usize) -> Result<()> {
    if s.lambda.len() != n {
        return Err(Error::Checkpoint(format!(
            "the λ table has {} values, the run's training split needs {n}",
            s.lambda.len()
        )));
    }
    Ok(())
}
