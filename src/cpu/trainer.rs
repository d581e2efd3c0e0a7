//! `--device cpu`: training and evaluation on the reference path, with the host optimizer.

use super::par;
use super::reference::{step, Workspace};
use crate::data::batch::{gather_batch, EVAL_EPOCH};
use crate::error::{Error, Result};
use crate::rng::{noise_batch, stream};
use crate::spec::init_params;
use crate::training::backend::{Backend, Objective, SharedSplits, Split, TrainConfig, TrainState};
use crate::training::optim::Optimizer;

pub struct CpuBackend {
    cfg: TrainConfig,
    splits: SharedSplits,
    params: Vec<f32>,
    grads: Vec<f32>,
    optimizer: Optimizer,
    ws: Workspace<f32>,
    x: Vec<f32>,
}

impl CpuBackend {
    pub fn new(cfg: &TrainConfig, splits: SharedSplits) -> Self {
        let params = init_params(&cfg.model, cfg.seed);
        let n = params.len();
        Self {
            cfg: cfg.clone(),
            splits,
            grads: vec![0.0; n],
            optimizer: Optimizer::new(cfg.optimizer, n),
            ws: Workspace::new(&cfg.model, cfg.batch_size, cfg.samples),
            x: vec![0.0; cfg.batch_size * cfg.model.input],
            params,
        }
    }
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        // The threads of the CPU path's pool (`MATMUL_NUM_THREADS`, else the cores).
        format!("cpu reference path ({} threads)", super::par::threads())
    }

    fn train_epoch(
        &mut self,
        epoch: u32,
        perm: &[u32],
        progress: &mut dyn FnMut(usize),
    ) -> Result<f64> {
        let b = self.cfg.batch_size;
        let steps = perm.len() / b;
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
            let eps = noise_batch(
                c.model.posterior,
                c.seed,
                stream::TRAIN_NOISE,
                self.optimizer.t,
                c.rows(),
                c.model.latent,
            );
            let (params, grads, ws, x) = (&mut self.params, &mut self.grads, &mut self.ws, &self.x);
            let optimizer = &mut self.optimizer;
            // The step and the update on the CPU path's pool: one hand-off per step.
            sum += par::install(|| {
                let loss = step(&c.model, c.objective, params, x, &eps, ws, Some(grads));
                optimizer.step(params, grads);
                // The ELBO of the step's draws, whatever the objective (as the GPU's elbo_sum).
                match c.objective {
                    Objective::Elbo => -(loss as f64) * b as f64,
                    Objective::Iwae => (0..b).map(|i| ws.image_elbo(i)).sum::<f64>(),
                }
            });
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
            let eps = noise_batch(
                c.model.posterior,
                c.seed,
                stream::EVAL_NOISE,
                batch as u32,
                c.rows(),
                c.model.latent,
            );
            step(
                &c.model,
                Objective::Elbo,
                &self.params,
                &self.x,
                &eps,
                &mut self.ws,
                None,
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
            lambda: Vec::new(),
        })
    }

    fn set_state(&mut self, s: &TrainState) -> Result<()> {
        s.check_len(self.params.len())?;
        self.params.clone_from(&s.params);
        self.optimizer.m.clone_from(&s.m);
        self.optimizer.v.clone_from(&s.v);
        self.optimizer.t = s.step;
        Ok(())
    }
}
