//! One training step of the device-resident trainer as named stages, each a small function that
//! records its dispatches: gather, encoder, latent (sample and KL term), decoder, likelihood,
//! ELBO sum; the backward pass (IWAE's row weights, decoder, free parameters, latent, encoder);
//! the optimizer; and the advance of the step state. [`StepRecorder::train_step`] and
//! [`StepRecorder::eval_step`] list them; `trainer` replays the lists. CPU twin:
//! `cpu::reference::step`.

use super::kernels::*;
use super::network::{self, NetworkBuffers};
use super::recorder::Recorder;
use super::GpuContext;
use crate::rng::stream;
use crate::spec::Layout;
use crate::training::backend::{Objective, TrainConfig};
use crate::training::optim::OptimizerConfig;

/// The activation buffers of one step.
pub(super) struct StepBuffers {
    x: wgpu::Buffer,
    encoder: NetworkBuffers,
    z: wgpu::Buffer,
    eps: wgpu::Buffer,
    prior_minus_q: wgpu::Buffer,
    decoder: NetworkBuffers,
    loglik: wgpu::Buffer,
    d_outputs: wgpu::Buffer,
    d_free: wgpu::Buffer,
    dz: wgpu::Buffer,
    denc: wgpu::Buffer,
    /// The IWAE objective's row weights ŵ_r/B.
    row_weights: wgpu::Buffer,
}

impl StepBuffers {
    pub(super) fn new(ctx: &GpuContext, cfg: &TrainConfig, lay: &Layout) -> Self {
        let (b, rows) = (cfg.batch_size, cfg.rows());
        let (dz, d) = (cfg.model.latent, cfg.model.input);
        let z = |label: &str, n: usize| storage_zeroed(ctx, label, n);
        let free_rows = if lay.free.is_some() { rows * d } else { 1 };
        Self {
            x: z("x", b * d),
            encoder: NetworkBuffers::new(ctx, "encoder", &lay.encoder, b),
            z: z("z", rows * dz),
            eps: z("eps", rows * dz),
            prior_minus_q: z("prior_minus_q", rows),
            decoder: NetworkBuffers::new(ctx, "decoder", &lay.decoder, rows),
            loglik: z("loglik", rows),
            d_outputs: z("d_outputs", rows * lay.decoder_out().out),
            d_free: z("d_free", free_rows),
            dz: z("dz", rows * dz),
            denc: z("denc", b * 2 * dz),
            row_weights: z("row_weights", rows),
        }
    }
}

/// The device-resident state a step reads and writes besides its activations.
pub(super) struct Resident<'a> {
    pub(super) state: &'a wgpu::Buffer,
    pub(super) grads: &'a wgpu::Buffer,
    pub(super) moment1: &'a wgpu::Buffer,
    pub(super) moment2: &'a wgpu::Buffer,
    pub(super) elbo_sums: &'a wgpu::Buffer,
}

/// Records the stages of a step, each a small function in the order the step runs them:
///
/// forward: [`gather`](Self::gather), [`encoder_forward`](Self::encoder_forward),
/// [`latent_forward`](Self::latent_forward) (sample and KL term),
/// [`decoder_forward`](Self::decoder_forward), [`likelihood`](Self::likelihood) (row
/// log-likelihoods and their gradients), [`elbo_sum`](Self::elbo_sum);
/// backward: [`iwae_reweight`](Self::iwae_reweight) (IWAE only),
/// [`decoder_backward`](Self::decoder_backward), [`free_params_backward`](Self::free_params_backward)
/// (likelihoods with free parameters only), [`latent_backward`](Self::latent_backward),
/// [`encoder_backward`](Self::encoder_backward);
/// then [`optimizer`](Self::optimizer) (optimizer on the device only) and
/// [`advance`](Self::advance).
///
/// The order is the data flow's and fixes the dispatch list (22 dispatches for the Appendix C
/// model, pinned by the tests); every summation happens inside one kernel, so the list also fixes
/// the arithmetic.
pub(super) struct StepRecorder<'a> {
    pub(super) rec: Recorder<'a>,
    pub(super) cfg: &'a TrainConfig,
    pub(super) lay: &'a Layout,
    pub(super) a: &'a StepBuffers,
    pub(super) r: Resident<'a>,
    /// u32 words per data row, and the gather's pixel representation (`data::representation`).
    pub(super) words: u32,
    pub(super) pixels: u32,
}

impl StepRecorder<'_> {
    fn batch(&self) -> usize {
        self.cfg.batch_size
    }

    /// B·L: L sample rows per image.
    fn rows(&self) -> usize {
        self.cfg.rows()
    }

    fn iwae(&self) -> bool {
        self.cfg.objective == Objective::Iwae
    }

    /// The ELBO's weight of a row, 1/(B·L).
    fn scale(&self) -> f32 {
        1.0 / self.rows() as f32
    }

    /// The latent layer's uniform with noise from `stream`, rows weighted 1/(B·L).
    fn latent_params(&self, stream: u32) -> LatentParams {
        let (rows, b, seed) = (self.rows(), self.batch(), self.cfg.seed);
        LatentParams::new(&self.cfg.model, rows, b, stream, seed, self.scale())
    }

    /// One training step on the batch `perm` selects from `data`: forward, backward, the update
    /// when the optimizer runs on the device, and the advance to the next batch and step.
    pub(super) fn train_step(
        &self,
        data: &wgpu::Buffer,
        perm: &wgpu::Buffer,
        n_train: usize,
        update: bool,
    ) -> Vec<Dispatch> {
        let mut v = self.forward(data, perm, n_train, stream::TRAIN_NOISE);
        v.extend(self.backward());
        if update {
            v.push(self.optimizer());
        }
        v.push(self.advance(true));
        v
    }

    /// One evaluation batch: the forward pass in `index`'s order with the evaluation noise, then
    /// the advance to the next batch (not a new optimizer step).
    pub(super) fn eval_step(
        &self,
        data: &wgpu::Buffer,
        index: &wgpu::Buffer,
        n: usize,
    ) -> Vec<Dispatch> {
        let mut v = self.forward(data, index, n, stream::EVAL_NOISE);
        v.push(self.advance(false));
        v
    }

    /// Gather to the batch's ELBO sum, with the row gradients of the likelihood left for the
    /// backward pass.
    fn forward(
        &self,
        data: &wgpu::Buffer,
        index: &wgpu::Buffer,
        n_index: usize,
        noise: u32,
    ) -> Vec<Dispatch> {
        let mut v = vec![self.gather(data, index, n_index)];
        v.extend(self.encoder_forward());
        v.push(self.latent_forward(noise));
        v.extend(self.decoder_forward());
        v.push(self.likelihood());
        v.push(self.elbo_sum());
        v
    }

    /// Every gradient of the objective into `grads`, decoder first.
    fn backward(&self) -> Vec<Dispatch> {
        let mut v = self.iwae_reweight();
        v.extend(self.decoder_backward());
        v.extend(self.free_params_backward());
        v.push(self.latent_backward());
        v.extend(self.encoder_backward());
        v
    }

    /// The batch `state.batch` of the rows `index` lists (of `n_index`) from `data`, into x.
    fn gather(&self, data: &wgpu::Buffer, index: &wgpu::Buffer, n_index: usize) -> Dispatch {
        let p = GatherParams {
            batch: self.batch() as u32,
            words: self.words,
            n_index: n_index as u32,
            pixels: self.pixels,
            seed_lo: self.cfg.seed as u32,
            seed_hi: (self.cfg.seed >> 32) as u32,
            ..Default::default()
        };
        let bind = GatherBindings {
            state: self.r.state,
            data,
            index,
            x: &self.a.x,
        };
        self.rec.dispatch(&p, bind)
    }

    /// x → `[μ | log σ²]` (or the Laplace scale head) for the B images.
    fn encoder_forward(&self) -> Vec<Dispatch> {
        let (lay, a) = (self.lay, self.a);
        let act = self.cfg.model.activation;
        network::forward(&self.rec, &lay.encoder, act, &a.x, self.batch(), &a.encoder)
    }

    /// L reparameterized samples z per image with noise from `noise`, and each row's
    /// log p(z) − log q(z|x) (or −KL).
    fn latent_forward(&self, noise: u32) -> Dispatch {
        self.latent_forward_at(noise, 0)
    }

    /// [`latent_forward`](Self::latent_forward) with the noise counter's row word offset by
    /// `row_offset` (E-step s of `--inference vem` draws at s·B·L).
    fn latent_forward_at(&self, noise: u32, row_offset: u32) -> Dispatch {
        let a = self.a;
        let bind = LatentForwardBindings {
            state: self.r.state,
            enc: &a.encoder.out,
            z: &a.z,
            eps: &a.eps,
            prior_minus_q: &a.prior_minus_q,
        };
        let p = LatentParams {
            row_offset,
            ..self.latent_params(noise)
        };
        self.rec.dispatch(&p, bind)
    }

    /// z → the likelihood's outputs for the B·L rows.
    fn decoder_forward(&self) -> Vec<Dispatch> {
        let (lay, a) = (self.lay, self.a);
        let act = self.cfg.model.activation;
        network::forward(&self.rec, &lay.decoder, act, &a.z, self.rows(), &a.decoder)
    }

    /// Each row's log p(x|z) and its gradients, weighted −1/(B·L) (ELBO) or −1 (IWAE: the rows'
    /// weights ŵ_r/B are applied in [`iwae_reweight`](Self::iwae_reweight) once known).
    fn likelihood(&self) -> Dispatch {
        let (rows, a) = (self.rows(), self.a);
        let row_scale = if self.iwae() { -1.0 } else { -self.scale() };
        let p = LikelihoodParams::new(&self.cfg.model, rows, self.batch(), row_scale, false);
        let bind = LogProbRowsBindings {
            x: &a.x,
            mask: &a.x,
            outputs: &a.decoder.out,
            params: self.rec.params,
            d_outputs: &a.d_outputs,
            d_free: &a.d_free,
            loglik: &a.loglik,
        };
        self.rec.dispatch(&p, bind)
    }

    /// The batch's summed image ELBOs into `elbo_sums[state.batch]`.
    fn elbo_sum(&self) -> Dispatch {
        let p = LossParams {
            rows: self.rows() as u32,
            batch: self.batch() as u32,
            _pad: [0; 2],
        };
        let bind = ElboSumBindings {
            state: self.r.state,
            loglik: &self.a.loglik,
            prior_minus_q: &self.a.prior_minus_q,
            elbo_sums: self.r.elbo_sums,
        };
        self.rec.dispatch(&p, bind)
    }

    /// IWAE only (nothing for the ELBO): the rows' weights ŵ_r/B, and the likelihood's row
    /// gradients (outputs, then free parameters if any) scaled by them.
    fn iwae_reweight(&self) -> Vec<Dispatch> {
        if !self.iwae() {
            return Vec::new();
        }
        let a = self.a;
        let p = IwaeParams {
            batch: self.batch() as u32,
            samples: self.cfg.samples as u32,
            _pad: [0; 2],
        };
        let bind = IwaeWeightsBindings {
            loglik: &a.loglik,
            prior_minus_q: &a.prior_minus_q,
            weights: &a.row_weights,
        };
        let mut v = vec![self.rec.dispatch(&p, bind)];
        let mut targets = vec![(&a.d_outputs, self.lay.decoder_out().out)];
        if self.lay.free.is_some() {
            targets.push((&a.d_free, self.cfg.model.input));
        }
        for (target, width) in targets {
            let p = ScaleRowsParams {
                rows: self.rows() as u32,
                width: width as u32,
                _pad: [0; 2],
            };
            let bind = ScaleRowsBindings {
                row_weights: &a.row_weights,
                scaled: target,
            };
            v.push(self.rec.dispatch(&p, bind));
        }
        v
    }

    /// The decoder's weight and bias gradients, and dLoss/dz through it.
    fn decoder_backward(&self) -> Vec<Dispatch> {
        self.decoder_backward_into(Some(self.r.grads))
    }

    /// dLoss/dz through the decoder, and its weight and bias gradients into `grads` if given
    /// (the E-steps of `--inference vem` need none).
    fn decoder_backward_into(&self, grads: Option<&wgpu::Buffer>) -> Vec<Dispatch> {
        let (lay, a) = (self.lay, self.a);
        network::backward(
            &self.rec,
            &lay.decoder,
            self.cfg.model.activation,
            &a.z,
            self.rows(),
            &a.decoder,
            &a.d_outputs,
            grads,
            Some(&a.dz),
        )
    }

    /// The likelihood's free parameters' gradient (none without them): per pixel, a sum over
    /// rows; shared, one sum over every (row, pixel).
    fn free_params_backward(&self) -> Option<Dispatch> {
        let f = self.lay.free?;
        let values = self.rows() * self.cfg.model.input;
        let (off, n) = (f.offset, f.len);
        Some(
            self.rec
                .colsum(&self.a.d_free, values / n, n, 1, off, self.r.grads),
        )
    }

    /// dLoss/d`[μ | head]` from dLoss/dz and the latent terms, rows weighted 1/(B·L) (ELBO) or by
    /// the IWAE weights.
    fn latent_backward(&self) -> Dispatch {
        let a = self.a;
        let p = LatentParams {
            per_row: self.iwae() as u32,
            ..self.latent_params(stream::TRAIN_NOISE)
        };
        let bind = LatentBackwardBindings {
            enc: &a.encoder.out,
            z: &a.z,
            eps: &a.eps,
            dz_dec: &a.dz,
            denc: &a.denc,
            row_weights: &a.row_weights,
        };
        self.rec.dispatch(&p, bind)
    }

    /// The encoder's weight and bias gradients (the data needs no gradient).
    fn encoder_backward(&self) -> Vec<Dispatch> {
        let (lay, a) = (self.lay, self.a);
        network::backward(
            &self.rec,
            &lay.encoder,
            self.cfg.model.activation,
            &a.x,
            self.batch(),
            &a.encoder,
            &a.denc,
            Some(self.r.grads),
            None,
        )
    }

    /// One Adam or Adagrad step of every parameter on the device.
    fn optimizer(&self) -> Dispatch {
        let (rec, r) = (&self.rec, &self.r);
        let p = OptimizerParams::new(&self.cfg.optimizer, self.lay.total);
        match self.cfg.optimizer {
            OptimizerConfig::Adam(_) => rec.dispatch(
                &p,
                AdamBindings {
                    state: r.state,
                    params: rec.params,
                    grads: r.grads,
                    m: r.moment1,
                    v: r.moment2,
                },
            ),
            OptimizerConfig::Adagrad(_) => rec.dispatch(
                &p,
                AdagradBindings {
                    params: rec.params,
                    grads: r.grads,
                    v: r.moment2,
                },
            ),
        }
    }

    /// The step state moves to the next batch, and with `count_step` to the next optimizer step.
    fn advance(&self, count_step: bool) -> Dispatch {
        let p = AdvanceParams {
            count_step: count_step as u32,
            _pad: [0; 3],
        };
        self.rec.dispatch(
            &p,
            AdvanceBindings {
                state: self.r.state,
            },
        )
    }

    /// One `--inference vem` training step (Algorithm 7 of the notes, minibatched): the batch's
    /// images; its λ rows gathered from the table into the latent layer's q buffer; `e_steps`
    /// SGD E-steps on them; their scatter back; then the M-step — the ELBO at the new λ's with
    /// the training noise, the decoder's (and free parameters') gradients, the optimizer when
    /// `update`, and the advance. CPU twin: `cpu::vem::CpuVemBackend::train_epoch`.
    pub(super) fn vem_train_step(
        &self,
        data: &wgpu::Buffer,
        perm: &wgpu::Buffer,
        n_train: usize,
        update: bool,
        v: &VemBuffers,
    ) -> Vec<Dispatch> {
        let e_steps = self.cfg.vem.map_or(0, |c| c.e_steps as usize);
        let mut d = vec![self.gather(data, perm, n_train)];
        d.push(self.vem_lambda(vem_mode::GATHER, perm, n_train, v));
        for s in 0..e_steps {
            d.extend(self.e_step(stream::VEM_E, s, perm, v));
        }
        d.push(self.vem_lambda(vem_mode::SCATTER, perm, n_train, v));
        d.push(self.latent_forward(stream::TRAIN_NOISE));
        d.extend(self.decoder_forward());
        d.push(self.likelihood());
        d.push(self.elbo_sum());
        d.extend(self.decoder_backward());
        d.extend(self.free_params_backward());
        if update {
            d.push(self.optimizer());
        }
        d.push(self.advance(true));
        d
    }

    /// One `--inference vem` evaluation batch: the images; for held-out images λ at the prior
    /// and `test_e_steps` E-steps with the test-time noise, for the training split (`from_table`)
    /// the λ rows of the table as training left them; then the ELBO with the evaluation noise,
    /// the advance.
    pub(super) fn vem_eval_step(
        &self,
        data: &wgpu::Buffer,
        index: &wgpu::Buffer,
        n: usize,
        from_table: bool,
        v: &VemBuffers,
    ) -> Vec<Dispatch> {
        let mut d = vec![self.gather(data, index, n)];
        if from_table {
            d.push(self.vem_lambda(vem_mode::GATHER, index, n, v));
        } else {
            d.push(self.vem_lambda(vem_mode::PRIOR, index, n, v));
            let steps = self.cfg.vem.map_or(0, |c| c.test_e_steps as usize);
            for s in 0..steps {
                d.extend(self.e_step(stream::VEM_EVAL, s, index, v));
            }
        }
        d.extend(self.forward_from_q(stream::EVAL_NOISE));
        d.push(self.advance(false));
        d
    }

    /// The forward pass from the q rows already in place to the batch's ELBO sum.
    fn forward_from_q(&self, noise: u32) -> Vec<Dispatch> {
        let mut d = vec![self.latent_forward(noise)];
        d.extend(self.decoder_forward());
        d.push(self.likelihood());
        d.push(self.elbo_sum());
        d
    }

    /// E-step `s`: the ELBO of the q rows with noise `noise` at row offset s·B·L, dLoss/dq
    /// through the decoder (no parameter gradient), and the SGD move of q (`index`, any buffer
    /// but the table, is bound and unread).
    fn e_step(&self, noise: u32, s: usize, index: &wgpu::Buffer, v: &VemBuffers) -> Vec<Dispatch> {
        let mut d = vec![self.latent_forward_at(noise, (s * self.rows()) as u32)];
        d.extend(self.decoder_forward());
        d.push(self.likelihood());
        d.extend(self.decoder_backward_into(None));
        d.push(self.latent_backward());
        d.push(self.vem_lambda(vem_mode::SGD, index, 1, v));
        d
    }

    /// `vem_lambda` in `mode` on the batch's q rows (the latent layer's input buffer).
    fn vem_lambda(
        &self,
        mode: u32,
        index: &wgpu::Buffer,
        n_index: usize,
        v: &VemBuffers,
    ) -> Dispatch {
        let p = VemParams {
            batch: self.batch() as u32,
            width: 2 * self.cfg.model.latent as u32,
            n_index: n_index as u32,
            mode,
        };
        let bind = VemBindings {
            state: self.r.state,
            index,
            table: &v.table,
            q: &self.a.encoder.out,
            denc: &self.a.denc,
            alpha: &v.alpha,
        };
        self.rec.dispatch(&p, bind)
    }
}

/// The device-resident state of `--inference vem`: the λ table and the E-step's step size.
pub(super) struct VemBuffers {
    /// `[N_train, 2·Dz]`, row n = [μ_n | log σ²_n]; read and written only by `vem_lambda`.
    pub(super) table: wgpu::Buffer,
    /// `[1]`: α of the current epoch (training) or of the test-time E-step (evaluation), written by
    /// the host between passes.
    pub(super) alpha: wgpu::Buffer,
}
