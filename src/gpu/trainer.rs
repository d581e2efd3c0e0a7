//! The device-resident trainer: data sets, parameters, optimizer state and every activation live in
//! GPU buffers; a training step is a list of dispatches derived from the spec (22 for the Appendix
//! C model), recorded once stage by stage (`step`) and replayed into one compute pass; an epoch is
//! a few submits with one read-back (the per-batch ELBO sums) at its end.

use std::time::{Duration, Instant};

use bytemuck::cast_slice;

use super::kernels::*;
use super::recorder::Recorder;
use super::step::{Resident, StepBuffers, StepRecorder, VemBuffers};
use super::GpuContext;
use crate::data::batch::EVAL_EPOCH;
use crate::data::Values;
use crate::error::{Error, Result};
use crate::spec::{init_params, Layout};
use crate::training::backend::{Backend, EpochCounters, Split, Splits, TrainConfig, TrainState};
use crate::training::optim::Optimizer;

/// `--optimizer-on`: where the optimizer (Adam or Adagrad) runs during GPU training.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerOn {
    /// optimizer.wgsl: steps chain on the device with no read-back; many steps per submit.
    Gpu,
    /// the host optimizer: gradients are read back and parameters uploaded every step.
    Host,
}

/// Training steps recorded per submit when the optimizer runs on the GPU. Large enough that per-submit cost
/// vanishes, small enough for a responsive progress bar and to keep encoders modest.
pub const STEPS_PER_SUBMIT: usize = 50;

/// What a pass over batches did on the host side: its submits and the time it sat blocked waiting
/// for the device (the rest of its wall time is the host's own work).
#[derive(Default)]
struct Tally {
    submits: u64,
    waiting: Duration,
}

/// One data split on the device: packed pixels plus the identity order used for evaluation.
struct DeviceSplit {
    n: usize,
    eval: Vec<Dispatch>,
}

pub struct GpuBackend {
    pub ctx: GpuContext,
    cfg: TrainConfig,
    placement: OptimizerOn,
    n_params: usize,
    n_train: usize,
    state: wgpu::Buffer,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    moment1: wgpu::Buffer,
    moment2: wgpu::Buffer,
    perm: wgpu::Buffer,
    elbo_sums: wgpu::Buffer,
    /// Staging buffer for per-step gradient read-back (host optimizer).
    grad_staging: wgpu::Buffer,
    train_step_device_update: Vec<Dispatch>,
    train_step_no_update: Vec<Dispatch>,
    splits: Vec<(Split, DeviceSplit)>,
    host_optimizer: Optimizer,
    host_params: Vec<f32>,
    /// Optimizer steps taken (mirrors the GPU's StepState.step).
    t: u32,
    /// The counters of the last training pass.
    last_counters: Option<EpochCounters>,
    /// `--inference vem`: the λ table and the E-step's step size on the device.
    vem: Option<VemBuffers>,
}

/// Fails unless the training data has the model's row width (a multiple of 4 for packed pixels)
/// and every buffer fits the adapter's storage binding limit.
fn check_fits(ctx: &GpuContext, cfg: &TrainConfig, lay: &Layout, splits: &Splits) -> Result<()> {
    let d = cfg.model.input;
    let values = &splits.train.values;
    let real = matches!(values, Values::Real(_));
    if splits.train.dim != d || (!real && !d.is_multiple_of(4)) {
        return Err(Error::Usage(format!(
            "the model takes {d} values per row but the data has {}",
            splits.train.dim
        )));
    }
    let max_binding = ctx.limits.max_storage_buffer_binding_size;
    let largest = [
        values.device_bytes().len(),
        cfg.rows() * lay.widest() * 4,
        lay.total * 4,
    ]
    .into_iter()
    .max()
    .unwrap_or(0) as u64;
    if largest > max_binding {
        return Err(Error::Gpu(format!(
            "a buffer of {largest} bytes exceeds this adapter's storage binding limit of {max_binding} bytes; \
             use a smaller --train-size / --batch-size / --samples / --hidden / --channels"
        )));
    }
    Ok(())
}

impl GpuBackend {
    /// The trainer of `cfg` on `ctx` (`device::gpu_context` opens one), with the splits
    /// uploaded and every step's dispatches recorded.
    pub fn new(
        ctx: GpuContext,
        cfg: &TrainConfig,
        splits: &Splits,
        placement: OptimizerOn,
    ) -> Result<Self> {
        let spec = &cfg.model;
        let lay = spec.layout();
        check_fits(&ctx, cfg, &lay, splits)?;
        let k = Kernels::new(&ctx, &spec.likelihood)?;
        let (b, d) = (cfg.batch_size, spec.input);
        let values = &splits.train.values;
        let real = matches!(values, Values::Real(_));
        let params0 = init_params(spec, cfg.seed);
        let n_params = params0.len();
        let state = storage_zeroed(&ctx, "state", 4);
        let params = storage_init(&ctx, "params", cast_slice(&params0));
        let grads = storage_zeroed(&ctx, "grads", n_params);
        let moment1 = storage_zeroed(&ctx, "moment1", n_params);
        let moment2 = storage_zeroed(&ctx, "moment2", n_params);
        let n_train = splits.train.len();
        let perm = storage_zeroed(&ctx, "perm", n_train);
        let max_batches = [Some(&splits.train), splits.val.as_ref(), Some(&splits.test)]
            .into_iter()
            .flatten()
            .map(|s| s.len().div_ceil(b))
            .max()
            .unwrap_or(1);
        let elbo_sums = storage_zeroed(&ctx, "elbo_sums", max_batches);
        let grad_staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("grad staging"),
            size: (n_params * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let step_buffers = StepBuffers::new(&ctx, cfg, &lay);
        if cfg.vem.is_some() && placement == OptimizerOn::Host {
            return Err(Error::Usage(
                "--inference vem keeps its λ table and optimizer on the device: drop --optimizer-on host"
                    .into(),
            ));
        }
        let vem = cfg.vem.map(|_| VemBuffers {
            table: storage_zeroed(&ctx, "vem lambda", n_train * 2 * spec.latent),
            alpha: storage_zeroed(&ctx, "vem alpha", 1),
        });
        let step = StepRecorder {
            rec: Recorder {
                ctx: &ctx,
                kernels: &k,
                params: &params,
            },
            cfg,
            lay: &lay,
            a: &step_buffers,
            r: Resident {
                state: &state,
                grads: &grads,
                moment1: &moment1,
                moment2: &moment2,
                elbo_sums: &elbo_sums,
            },
            // Pixels travel packed four to a u32 word; real values one f32 per word.
            words: if real { d } else { d / 4 } as u32,
            pixels: cfg.pixels.code(values),
        };
        let mut train_data = None;
        let mut device_splits = Vec::new();
        for (split, set) in [
            (Split::Train, Some(&splits.train)),
            (Split::Val, splits.val.as_ref()),
            (Split::Test, Some(&splits.test)),
        ] {
            let Some(set) = set else { continue };
            let data = storage_init(&ctx, "data rows", set.values.device_bytes());
            let identity: Vec<u32> = (0..set.len() as u32).collect();
            let index = storage_init(&ctx, "eval index", cast_slice(&identity));
            let eval = match &vem {
                Some(v) => step.vem_eval_step(&data, &index, set.len(), split == Split::Train, v),
                None => step.eval_step(&data, &index, set.len()),
            };
            device_splits.push((split, DeviceSplit { n: set.len(), eval }));
            if split == Split::Train {
                train_data = Some(data);
            }
        }
        let train_data = train_data.ok_or_else(|| Error::Usage("empty training split".into()))?;
        let (train_step_no_update, train_step_device_update) = match &vem {
            Some(v) => (
                step.vem_train_step(&train_data, &perm, n_train, false, v),
                step.vem_train_step(&train_data, &perm, n_train, true, v),
            ),
            None => (
                step.train_step(&train_data, &perm, n_train, false),
                step.train_step(&train_data, &perm, n_train, true),
            ),
        };
        ctx.check_errors()?;
        Ok(Self {
            host_optimizer: Optimizer::new(cfg.optimizer, n_params),
            host_params: params0,
            ctx,
            cfg: cfg.clone(),
            placement,
            n_params,
            n_train,
            state,
            params,
            grads,
            moment1,
            moment2,
            perm,
            elbo_sums,
            grad_staging,
            train_step_device_update,
            train_step_no_update,
            splits: device_splits,
            t: 0,
            last_counters: None,
            vem,
        })
    }

    /// The λ table of `--inference vem` (empty otherwise): read back for checkpoints only.
    fn read_lambda(&self) -> Result<Vec<f32>> {
        match &self.vem {
            Some(v) => {
                let n = self.n_train * 2 * self.cfg.model.latent;
                self.ctx.read_f32(&v.table, 0, n)
            }
            None => Ok(Vec::new()),
        }
    }

    /// Sets `--inference vem`'s step size on the device (nothing otherwise).
    fn write_alpha(&self, test: bool) {
        if let (Some(v), Some(c)) = (&self.vem, &self.cfg.vem) {
            let spe = self.n_train / self.cfg.batch_size;
            let a = if test {
                c.test_step_size(self.t, spe)
            } else {
                c.step_size(self.t, spe)
            };
            self.ctx
                .queue
                .write_buffer(&v.alpha, 0, bytemuck::bytes_of(&a));
        }
    }

    fn write_state(&self, s: StepState) {
        self.ctx
            .queue
            .write_buffer(&self.state, 0, bytemuck::bytes_of(&s));
    }

    /// Records `count` repetitions of `step` into one compute pass and submits it.
    fn submit_steps(&self, step: &[Dispatch], count: usize) -> wgpu::SubmissionIndex {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..count {
                for d in step {
                    d.record(&mut pass);
                }
            }
        }
        self.ctx.queue.submit(Some(enc.finish()))
    }

    fn wait_for(&self, idx: wgpu::SubmissionIndex, tally: &mut Tally) -> Result<()> {
        let t0 = Instant::now();
        let waited = self
            .ctx
            .device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(idx),
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("waiting for the device failed: {e}")));
        tally.waiting += t0.elapsed();
        waited?;
        self.ctx.check_errors()
    }

    /// Runs `count` batches of `step`, `per_submit` per submit with one submit in flight ahead of
    /// the host, calling `progress` as they complete; `tally` counts its submits and waits.
    fn run_batches(
        &self,
        step: &[Dispatch],
        count: usize,
        per_submit: usize,
        progress: &mut dyn FnMut(usize),
        tally: &mut Tally,
    ) -> Result<()> {
        let mut done = 0;
        let mut in_flight: Option<(wgpu::SubmissionIndex, usize)> = None;
        while done < count {
            let n = per_submit.min(count - done);
            let idx = self.submit_steps(step, n);
            tally.submits += 1;
            done += n;
            if let Some((prev, at)) = in_flight.replace((idx, done)) {
                self.wait_for(prev, tally)?;
                progress(at);
            }
        }
        if let Some((idx, at)) = in_flight {
            self.wait_for(idx, tally)?;
            progress(at);
        }
        Ok(())
    }

    fn read_elbo_sums(&self, n: usize) -> Result<Vec<f32>> {
        self.ctx.read_f32(&self.elbo_sums, 0, n)
    }

    /// Dispatches in one training step with the optimizer on the device (the per-step cost at small sizes).
    pub fn dispatches_per_step(&self) -> usize {
        self.train_step_device_update.len()
    }

    /// One forward + backward pass on training batch 0 of `perm` at optimizer step `step`, without
    /// an update: returns (−mean ELBO over the B·L rows, gradient of the run's objective). For
    /// parity tests; with the IWAE objective the first number is still the ELBO of the draws.
    pub fn loss_and_gradient(
        &mut self,
        epoch: u32,
        perm: &[u32],
        step: u32,
    ) -> Result<(f64, Vec<f32>)> {
        self.upload_perm(perm)?;
        self.write_alpha(false);
        self.write_state(StepState {
            step,
            batch: 0,
            epoch,
            n_valid: self.n_train as u32,
        });
        let idx = self.submit_steps(&self.train_step_no_update, 1);
        self.wait_for(idx, &mut Tally::default())?;
        let sums = self.read_elbo_sums(1)?;
        let grads = self.ctx.read_f32(&self.grads, 0, self.n_params)?;
        Ok((-(sums[0] as f64) / self.cfg.batch_size as f64, grads))
    }

    fn upload_perm(&self, perm: &[u32]) -> Result<()> {
        if perm.len() != self.n_train {
            return Err(Error::Usage(format!(
                "permutation of {} for {} training images",
                perm.len(),
                self.n_train
            )));
        }
        self.ctx.queue.write_buffer(&self.perm, 0, cast_slice(perm));
        Ok(())
    }

    fn host_optimizer_steps(
        &mut self,
        steps: usize,
        progress: &mut dyn FnMut(usize),
        tally: &mut Tally,
    ) -> Result<()> {
        let bytes = (self.n_params * 4) as u64;
        for i in 0..steps {
            let mut enc = self.ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                for d in &self.train_step_no_update {
                    d.record(&mut pass);
                }
            }
            enc.copy_buffer_to_buffer(&self.grads, 0, &self.grad_staging, 0, bytes);
            self.ctx.queue.submit(Some(enc.finish()));
            tally.submits += 1;
            let t0 = Instant::now();
            let g = self.ctx.map_read(&self.grad_staging);
            tally.waiting += t0.elapsed();
            let g: Vec<f32> = bytemuck::pod_collect_to_vec(&g?);
            self.host_optimizer.step(&mut self.host_params, &g);
            self.ctx
                .queue
                .write_buffer(&self.params, 0, cast_slice(&self.host_params));
            if (i + 1) % 10 == 0 || i + 1 == steps {
                progress(i + 1);
            }
        }
        Ok(())
    }
}

impl Backend for GpuBackend {
    fn describe(&self) -> String {
        format!(
            "{} [{} on {:?}]",
            self.ctx.describe(),
            self.cfg.optimizer.name(),
            self.placement
        )
    }

    fn train_epoch(
        &mut self,
        epoch: u32,
        perm: &[u32],
        progress: &mut dyn FnMut(usize),
    ) -> Result<f64> {
        let t0 = Instant::now();
        let mut tally = Tally::default();
        let b = self.cfg.batch_size;
        let steps = perm.len() / b;
        self.upload_perm(perm)?;
        self.write_alpha(false);
        self.write_state(StepState {
            step: self.t,
            batch: 0,
            epoch,
            n_valid: self.n_train as u32,
        });
        let dispatches = match self.placement {
            OptimizerOn::Gpu => {
                self.run_batches(
                    &self.train_step_device_update,
                    steps,
                    STEPS_PER_SUBMIT,
                    progress,
                    &mut tally,
                )?;
                self.train_step_device_update.len()
            }
            OptimizerOn::Host => {
                self.host_optimizer_steps(steps, progress, &mut tally)?;
                self.train_step_no_update.len()
            }
        };
        self.t += steps as u32;
        // The one read-back of the pass: a copy submit, then blocked until it lands.
        let t1 = Instant::now();
        let sums = self.read_elbo_sums(steps);
        tally.waiting += t1.elapsed();
        let sums = sums?;
        tally.submits += 1;
        let host = t0.elapsed().saturating_sub(tally.waiting);
        self.last_counters = Some(EpochCounters {
            dispatches_per_step: dispatches as u64,
            submits: tally.submits,
            host_seconds_per_step: host.as_secs_f64() / steps.max(1) as f64,
        });
        Ok(sums.iter().map(|&s| s as f64).sum::<f64>() / (steps * b) as f64)
    }

    fn evaluate(&mut self, split: Split) -> Result<f64> {
        let b = self.cfg.batch_size;
        let (_, ds) = self
            .splits
            .iter()
            .find(|(s, _)| *s == split)
            .ok_or_else(|| Error::Usage("no validation split (set --val-size)".into()))?;
        let batches = ds.n.div_ceil(b);
        self.write_alpha(true);
        self.write_state(StepState {
            step: self.t,
            batch: 0,
            epoch: EVAL_EPOCH,
            n_valid: ds.n as u32,
        });
        self.run_batches(
            &ds.eval,
            batches,
            STEPS_PER_SUBMIT * 2,
            &mut |_| {},
            &mut Tally::default(),
        )?;
        let sums = self.read_elbo_sums(batches)?;
        Ok(sums.iter().map(|&s| s as f64).sum::<f64>() / ds.n as f64)
    }

    fn state(&mut self) -> Result<TrainState> {
        match self.placement {
            OptimizerOn::Gpu => Ok(TrainState {
                params: self.ctx.read_f32(&self.params, 0, self.n_params)?,
                m: self.ctx.read_f32(&self.moment1, 0, self.n_params)?,
                v: self.ctx.read_f32(&self.moment2, 0, self.n_params)?,
                step: self.t,
                lambda: self.read_lambda()?,
            }),
            OptimizerOn::Host => Ok(TrainState {
                params: self.host_params.clone(),
                m: self.host_optimizer.m.clone(),
                v: self.host_optimizer.v.clone(),
                step: self.t,
                lambda: Vec::new(),
            }),
        }
    }

    fn set_state(&mut self, s: &TrainState) -> Result<()> {
        s.check_len(self.n_params)?;
        let q = &self.ctx.queue;
        q.write_buffer(&self.params, 0, cast_slice(&s.params));
        q.write_buffer(&self.moment1, 0, cast_slice(&s.m));
        q.write_buffer(&self.moment2, 0, cast_slice(&s.v));
        if let Some(v) = &self.vem {
            crate::cpu::vem::check_lambda_len(s, self.n_train * 2 * self.cfg.model.latent)?;
            q.write_buffer(&v.table, 0, cast_slice(&s.lambda));
        }
        self.host_params.clone_from(&s.params);
        self.host_optimizer.m.clone_from(&s.m);
        self.host_optimizer.v.clone_from(&s.v);
        self.host_optimizer.t = s.step;
        self.t = s.step;
        self.ctx.wait()
    }

    fn epoch_counters(&self) -> Option<EpochCounters> {
        self.last_counters
    }
}
