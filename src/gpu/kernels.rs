//! The compute pipelines built from `shaders/`, their uniform parameter blocks, and `Dispatch`, a
//! pre-built (pipeline, bind group, grid) triple: a training step is a list of them replayed into
//! one compute pass, so recording a step costs the host almost nothing.
//!
//! Each entry point's bind group is a `…Bindings` struct declared next to its parameter block
//! (with [`bindings!`]): its buffers by name, each with the `@binding` number of the WGSL written
//! once, plus the pipeline and the grid of a dispatch. [`Dispatch::of`] builds any of them, so no
//! binding number or grid rule appears where a dispatch is recorded.

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use super::GpuContext;
use crate::error::Result;
use crate::spec::layers::ConvGeometry;
use crate::spec::{KlMode, Likelihood, ModelSpec};
use crate::training::optim::OptimizerConfig;

const STATE: &str = include_str!("../../shaders/state.wgsl");
const PHILOX: &str = include_str!("../../shaders/philox.wgsl");
const ACTIVATIONS: &str = include_str!("../../shaders/activations.wgsl");
const TILE_GEMM: &str = include_str!("../../shaders/tile.wgsl");
const MATMUL: &str = include_str!("../../shaders/matmul.wgsl");
const CONV: &str = include_str!("../../shaders/conv.wgsl");
const LATENT: [&str; 4] = [
    include_str!("../../shaders/latent/gaussian.wgsl"),
    include_str!("../../shaders/latent/laplace.wgsl"),
    include_str!("../../shaders/latent/kl.wgsl"),
    include_str!("../../shaders/latent/reparam.wgsl"),
];
const LIKELIHOOD_ROWS: &str = include_str!("../../shaders/likelihood/rows.wgsl");
const SPECIAL: &str = include_str!("../../shaders/likelihood/special.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const GATHER: &str = include_str!("../../shaders/gather.wgsl");
const OPTIMIZER: &str = include_str!("../../shaders/optimizer.wgsl");
const ADVANCE: &str = include_str!("../../shaders/advance.wgsl");
const IWAE: &str = include_str!("../../shaders/iwae.wgsl");
const WORKGROUP: &str = include_str!("../../shaders/workgroup.wgsl");
const VEM: &str = include_str!("../../shaders/vem.wgsl");

/// The GEMM tile edge of matmul and conv (must match TILE in tile.wgsl).
pub const MATMUL_TILE: u32 = 64;

/// One entry point's bind group: the binding of its uniform, the binding of each storage buffer
/// (`entries`), its pipeline and the grid a dispatch of it needs, all read from its parameters.
/// Implemented by the `…Bindings` structs below, one per entry point.
pub trait Bindings {
    /// The uniform parameter block.
    type Params: Pod;
    /// The uniform's `@binding`.
    const UNIFORM: u32;
    /// (`@binding`, buffer) of every storage buffer, in binding order.
    fn entries(&self) -> Vec<(u32, &wgpu::Buffer)>;
    /// The entry point (some kernels pick one of two by their parameters).
    fn pipeline<'k>(kernels: &'k Kernels, p: &Self::Params) -> &'k wgpu::ComputePipeline;
    /// Workgroups of a dispatch over what `p` describes.
    fn groups(p: &Self::Params) -> [u32; 3];
}

/// Declares an entry point's `…Bindings` struct (one `&wgpu::Buffer` field per storage binding,
/// named as in the WGSL where that name says what it is) and its [`Bindings`] impl:
///
/// ```text
/// bindings! {
///     /// doc
///     NameBindings(Params) { uniform: 0, field: 1, other: 2 }
///     pipeline(kernels, p) => expression;
///     groups(p) => expression;
/// }
/// ```
macro_rules! bindings {
    (
        $(#[$doc:meta])*
        $name:ident($params:ty) {
            uniform: $uniform:literal,
            $( $(#[$fdoc:meta])* $field:ident: $binding:literal ),+ $(,)?
        }
        pipeline($k:ident, $pp:ident) => $pipeline:expr;
        groups($gp:ident) => $groups:expr;
    ) => {
        $(#[$doc])*
        pub struct $name<'a> {
            $( $(#[$fdoc])* pub $field: &'a wgpu::Buffer, )+
        }

        impl Bindings for $name<'_> {
            type Params = $params;
            const UNIFORM: u32 = $uniform;

            fn entries(&self) -> Vec<(u32, &wgpu::Buffer)> {
                vec![$( ($binding, self.$field) ),+]
            }

            fn pipeline<'k>($k: &'k Kernels, $pp: &$params) -> &'k wgpu::ComputePipeline {
                $pipeline
            }

            fn groups($gp: &$params) -> [u32; 3] {
                $groups
            }
        }
    };
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct StepState {
    pub step: u32,
    pub batch: u32,
    pub epoch: u32,
    pub n_valid: u32,
}

/// Epilogue flags of `MatmulParams::flags`.
pub mod epilogue {
    use crate::spec::Activation;

    pub const BIAS: u32 = 1;
    pub const ACCUMULATE: u32 = 1 << 5;

    /// Apply `act` to the result.
    pub fn activate(act: Option<Activation>) -> u32 {
        act.map_or(0, |a| a.code() << 1)
    }

    /// Multiply the result by `act`'s derivative at the output held in aux.
    pub fn activation_backward(act: Option<Activation>) -> u32 {
        act.map_or(0, |a| a.code() << 3)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub flags: u32,
    pub a_off: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub b_off: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub c_off: u32,
    pub c_rs: u32,
    pub bias_off: u32,
    pub aux_off: u32,
    pub aux_rs: u32,
    pub _pad: u32,
}

impl MatmulParams {
    pub fn groups(&self) -> [u32; 3] {
        [
            self.n.div_ceil(MATMUL_TILE),
            self.m.div_ceil(MATMUL_TILE),
            1,
        ]
    }
}

bindings! {
    /// `matmul` (matmul.wgsl): C = op(A)·op(B), then the epilogue's bias, activation or
    /// activation derivative (at `aux`), or accumulation. Unused inputs may be bound to any buffer.
    MatmulBindings(MatmulParams) { uniform: 0, a: 1, b: 2, bias: 3, aux: 4, c: 5 }
    pipeline(k, _p) => &k.matmul;
    groups(p) => p.groups();
}

/// The three modes of `shaders/conv.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvMode {
    /// full → reduced (conv2d forward, transposed conv input gradient)
    Gather = 0,
    /// reduced → full (conv2d input gradient, transposed conv forward)
    Scatter = 1,
    /// the weight gradient
    WeightGrad = 2,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ConvParams {
    pub mode: u32,
    pub rows: u32,
    pub flags: u32,
    pub kernel: u32,
    pub stride: u32,
    pub padding: u32,
    pub full_c: u32,
    pub full_h: u32,
    pub full_w: u32,
    pub reduced_c: u32,
    pub reduced_h: u32,
    pub reduced_w: u32,
    pub w_off: u32,
    pub bias_off: u32,
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub tiles_n: u32,
    pub _pad: [u32; 2],
}

impl ConvParams {
    /// `mode` of geometry `g` over `rows` rows; `w_off` is the weight's offset (in modes 0 and 1
    /// inside the parameters, in mode 2 inside the gradient), `flags` the epilogue's.
    pub fn new(
        g: &ConvGeometry,
        mode: ConvMode,
        rows: usize,
        w_off: usize,
        bias_off: usize,
        flags: u32,
    ) -> Self {
        let [full_c, full_h, full_w] = g.full;
        let [reduced_c, reduced_h, reduced_w] = g.reduced;
        let area = g.kernel * g.kernel;
        let (m, n, k) = match mode {
            ConvMode::Gather => (rows * reduced_h * reduced_w, reduced_c, full_c * area),
            ConvMode::Scatter => (rows * full_h * full_w, full_c, reduced_c * area),
            ConvMode::WeightGrad => (reduced_c, full_c * area, rows * reduced_h * reduced_w),
        };
        let u = |v: usize| v as u32;
        Self {
            mode: mode as u32,
            rows: u(rows),
            flags,
            kernel: u(g.kernel),
            stride: u(g.stride),
            padding: u(g.padding),
            full_c: u(full_c),
            full_h: u(full_h),
            full_w: u(full_w),
            reduced_c: u(reduced_c),
            reduced_h: u(reduced_h),
            reduced_w: u(reduced_w),
            w_off: u(w_off),
            bias_off: u(bias_off),
            m: u(m),
            n: u(n),
            k: u(k),
            tiles_n: u(n.div_ceil(MATMUL_TILE as usize)),
            _pad: [0; 2],
        }
    }

    /// The GEMM modes: one workgroup per 64×64 tile, numbered linearly over x then y; the
    /// scatter: one thread per value of the full side, 64 to a workgroup.
    pub fn groups(&self) -> [u32; 3] {
        if self.mode == ConvMode::Scatter as u32 {
            let full = self.full_c * self.full_h * self.full_w;
            return grid_1d(self.rows as usize * full as usize, 64);
        }
        let tiles = self.tiles_n as usize * (self.m as usize).div_ceil(MATMUL_TILE as usize);
        grid_1d(tiles, 1)
    }

    /// The entry point of this mode.
    pub fn pipeline<'k>(&self, kernels: &'k Kernels) -> &'k wgpu::ComputePipeline {
        if self.mode == ConvMode::Scatter as u32 {
            &kernels.conv_scatter
        } else {
            &kernels.conv
        }
    }
}

bindings! {
    /// `conv` and `conv_scatter` (conv.wgsl): what each mode reads from `source` and `other` is
    /// listed at the top of the shader; `aux` holds the activation's output for the backward
    /// epilogue, `dest` receives the result.
    ConvBindings(ConvParams) { uniform: 0, source: 1, other: 2, aux: 3, dest: 4 }
    pipeline(k, p) => p.pipeline(k);
    groups(p) => p.groups();
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LatentParams {
    pub rows: u32,
    pub batch: u32,
    pub dz: u32,
    pub stream: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub scale: f32,
    pub posterior: u32,
    pub prior: u32,
    pub prior_scale: f32,
    pub analytic: u32,
    /// 1: rows weighted by the IWAE weights buffer instead of `scale`.
    pub per_row: u32,
    /// Added to the noise counter's row word (E-step s of `--inference vem`: s·B·L).
    pub row_offset: u32,
    /// 1: the noise counter's step word is the batch index (evaluation streams), 0: the
    /// optimizer step (training streams).
    pub by_batch: u32,
    pub _pad: [u32; 2],
}

impl LatentParams {
    /// The latent layer of `spec` for `rows` = B·L rows, noise from `stream` under `seed`, loss
    /// scale `scale` = 1/(B·L).
    pub fn new(
        spec: &ModelSpec,
        rows: usize,
        batch: usize,
        stream: u32,
        seed: u64,
        scale: f32,
    ) -> Self {
        Self {
            rows: rows as u32,
            batch: batch as u32,
            dz: spec.latent as u32,
            stream,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            scale,
            posterior: spec.posterior.code(),
            prior: spec.prior.family.code(),
            prior_scale: spec.prior.scale,
            analytic: (spec.kl == KlMode::Analytic) as u32,
            per_row: 0,
            row_offset: 0,
            by_batch: crate::rng::stream::counts_by_batch(stream) as u32,
            _pad: [0; 2],
        }
    }
}

bindings! {
    /// `latent_forward` (latent/reparam.wgsl): z = μ + s·ε from the encoder's `[μ | head]` rows
    /// and noise drawn at `state`'s counter, and each row's log p(z) − log q(z|x) (or −KL).
    LatentForwardBindings(LatentParams) {
        uniform: 0,
        state: 1,
        /// `[B, 2·Dz]`, the encoder's output.
        enc: 2,
        z: 3,
        eps: 4,
        prior_minus_q: 5,
    }
    pipeline(k, _p) => &k.latent_forward;
    groups(p) => grid_1d(p.rows as usize, 64);
}

bindings! {
    /// `latent_backward` (latent/reparam.wgsl): dLoss/d`[μ | head]` into `denc` from the
    /// decoder's gradient through z (`dz_dec`) and the latent terms', rows weighted by
    /// `row_weights` (IWAE) or the uniform's scale.
    LatentBackwardBindings(LatentParams) {
        uniform: 0,
        enc: 2,
        z: 3,
        eps: 4,
        dz_dec: 6,
        denc: 7,
        /// Read only when `per_row` is 1; any `[B·L]` buffer otherwise.
        row_weights: 8,
    }
    pipeline(k, _p) => &k.latent_backward;
    groups(p) => grid_1d(p.batch as usize * p.dz as usize, 64);
}

/// Bits of `LikelihoodParams::flags`, emitted into `shaders/likelihood/rows.wgsl` as `HAS_MASK`
/// and `HAS_FREE`.
pub mod likelihood_flags {
    pub const HAS_MASK: u32 = 1;
    pub const HAS_FREE: u32 = 1 << 1;

    pub fn wgsl_constants() -> String {
        format!("const HAS_MASK: u32 = {HAS_MASK}u;\nconst HAS_FREE: u32 = {HAS_FREE}u;\n")
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LikelihoodParams {
    pub rows: u32,
    pub batch: u32,
    pub dim: u32,
    pub channels: u32,
    pub scale: f32,
    pub flags: u32,
    pub free_off: u32,
    /// Free parameters: D (one per pixel) or 1 (shared); pixel p reads `free_off + p % free_len`.
    pub free_len: u32,
}

impl LikelihoodParams {
    /// `rows` output rows paired with data row `r % batch`; gradients weighted by `scale`;
    /// `masked` when a mask is bound. The member's own options are constants of its pipeline.
    pub fn new(spec: &ModelSpec, rows: usize, batch: usize, scale: f32, masked: bool) -> Self {
        use likelihood_flags::{HAS_FREE, HAS_MASK};
        let free = spec.layout().free;
        let mut flags = if masked { HAS_MASK } else { 0 };
        if free.is_some() {
            flags |= HAS_FREE;
        }
        Self {
            rows: rows as u32,
            batch: batch as u32,
            dim: spec.input as u32,
            channels: spec.likelihood.channels() as u32,
            scale,
            flags,
            free_off: free.map_or(0, |f| f.offset) as u32,
            free_len: free.map_or(1, |f| f.len) as u32,
        }
    }
}

bindings! {
    /// `log_prob_rows` (likelihood/rows.wgsl): each row's log-likelihood of the data row
    /// `r % batch` under the decoder's `outputs` (and the free parameters in `params`), with its
    /// gradients, weighted by the uniform's scale, into `d_outputs` and `d_free`. One workgroup per
    /// row. `mask` is read only with `HAS_MASK` (bind `x` again otherwise), `d_free` only with
    /// `HAS_FREE`.
    LogProbRowsBindings(LikelihoodParams) {
        uniform: 0,
        x: 1,
        mask: 2,
        outputs: 3,
        params: 4,
        d_outputs: 5,
        d_free: 6,
        loglik: 7,
    }
    pipeline(k, _p) => &k.log_prob_rows;
    groups(p) => grid_1d(p.rows as usize, 1);
}

bindings! {
    /// `natural_params` (likelihood/rows.wgsl): the exponential-family η `[S, rows·D]` and
    /// log-normaliser A `[rows·D]` of every pixel of every row.
    NaturalParamsBindings(LikelihoodParams) {
        uniform: 0,
        outputs: 3,
        params: 4,
        eta: 8,
        log_normaliser: 9,
    }
    pipeline(k, _p) => &k.natural_params;
    groups(p) => grid_1d(p.rows as usize * p.dim as usize, 64);
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ColsumParams {
    pub rows: u32,
    pub cols: u32,
    pub in_rs: u32,
    pub out_off: u32,
    /// Values per channel (`channel_sum` only; `colsum` sums single columns).
    pub inner: u32,
    pub _pad: [u32; 3],
}

bindings! {
    /// `colsum` (`inner` = 1: a thread per column) and `channel_sum` (a workgroup per channel)
    /// in reduce.wgsl: `cout[out_off + c]` = the sum of channel c of `cin` over every row.
    ColsumBindings(ColsumParams) { uniform: 0, cin: 1, cout: 2 }
    pipeline(k, p) => if p.inner == 1 { &k.colsum } else { &k.channel_sum };
    groups(p) => if p.inner == 1 {
        grid_1d(p.cols as usize, 64)
    } else {
        grid_1d(p.cols as usize, 1)
    };
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LossParams {
    pub rows: u32,
    pub batch: u32,
    pub _pad: [u32; 2],
}

bindings! {
    /// `elbo_sum` (reduce.wgsl, bindings 5 to 9 beside the column sums'): the batch's summed
    /// image ELBOs into `elbo_sums[state.batch]`. One workgroup.
    ElboSumBindings(LossParams) {
        uniform: 5,
        state: 6,
        loglik: 7,
        prior_minus_q: 8,
        elbo_sums: 9,
    }
    pipeline(k, _p) => &k.elbo_sum;
    groups(_p) => [1, 1, 1];
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct GatherParams {
    pub batch: u32,
    pub words: u32,
    pub n_index: u32,
    /// A code of `data::representation` (emitted into gather.wgsl).
    pub pixels: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub _pad: [u32; 2],
}

bindings! {
    /// `gather` (gather.wgsl): batch `state.batch` of the rows `data` lists through `index`,
    /// unpacked into `x` in the run's pixel representation. A thread per data word.
    GatherBindings(GatherParams) { uniform: 0, state: 1, data: 2, index: 3, x: 4 }
    pipeline(k, _p) => &k.gather;
    groups(p) => grid_1d(p.batch as usize * p.words as usize, 64);
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct OptimizerParams {
    pub n: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub _pad: [u32; 3],
}

impl OptimizerParams {
    /// The uniform for `n` parameters; Adagrad leaves the β slots at 0 (its entry ignores them).
    pub fn new(cfg: &OptimizerConfig, n: usize) -> Self {
        let (lr, beta1, beta2, eps) = match *cfg {
            OptimizerConfig::Adam(a) => (a.lr, a.beta1, a.beta2, a.eps),
            OptimizerConfig::Adagrad(a) => (a.lr, 0.0, 0.0, a.eps),
        };
        Self {
            n: n as u32,
            lr,
            beta1,
            beta2,
            eps,
            _pad: [0; 3],
        }
    }
}

bindings! {
    /// `adam` (optimizer.wgsl): one Adam step of every parameter, t from `state`.
    AdamBindings(OptimizerParams) { uniform: 0, state: 1, params: 2, grads: 3, m: 4, v: 5 }
    pipeline(k, _p) => &k.adam;
    groups(p) => grid_1d(p.n as usize, 256);
}

bindings! {
    /// `adagrad` (optimizer.wgsl): one Adagrad step, its running sum of squares in `v`.
    AdagradBindings(OptimizerParams) { uniform: 0, params: 2, grads: 3, v: 5 }
    pipeline(k, _p) => &k.adagrad;
    groups(p) => grid_1d(p.n as usize, 256);
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AdvanceParams {
    pub count_step: u32,
    pub _pad: [u32; 3],
}

bindings! {
    /// `advance` (advance.wgsl): the step state moves to the next batch (and the next optimizer
    /// step when `count_step`). One thread.
    AdvanceBindings(AdvanceParams) { uniform: 0, state: 1 }
    pipeline(k, _p) => &k.advance;
    groups(_p) => [1, 1, 1];
}

/// The modes of `vem_lambda` (vem.wgsl).
pub mod vem_mode {
    pub const GATHER: u32 = 0;
    pub const PRIOR: u32 = 1;
    pub const SGD: u32 = 2;
    pub const SCATTER: u32 = 3;
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct VemParams {
    pub batch: u32,
    /// 2·Dz values per λ row.
    pub width: u32,
    pub n_index: u32,
    /// One of [`vem_mode`].
    pub mode: u32,
}

bindings! {
    /// `vem_lambda` (vem.wgsl): the λ rows of `--inference vem`'s batch, by `mode`: gathered from
    /// `table` through `index` into `q`, set to the prior, moved by an SGD E-step along `denc`
    /// with step size `alpha[0]`, or scattered back.
    VemBindings(VemParams) { uniform: 0, state: 1, index: 2, table: 3, q: 4, denc: 5, alpha: 6 }
    pipeline(k, _p) => &k.vem_lambda;
    groups(p) => grid_1d(p.batch as usize * p.width as usize, 64);
}

/// Workgroups for `threads` one-dimensional threads in groups of `wg`; spills into y past the
/// 65535-per-dimension limit (kernels that can get that large index with `num_workgroups`).
pub fn grid_1d(threads: usize, wg: u32) -> [u32; 3] {
    let groups = (threads as u32).div_ceil(wg).max(1);
    if groups <= 65535 {
        [groups, 1, 1]
    } else {
        [65535, groups.div_ceil(65535), 1]
    }
}

/// All compute pipelines, compiled once per device.
pub struct Kernels {
    pub matmul: wgpu::ComputePipeline,
    /// Conv2d and ConvTranspose2d forward and backward (`shaders/conv.wgsl`): the implicit
    /// GEMM modes (gather, weight gradient) and the direct scatter.
    pub conv: wgpu::ComputePipeline,
    pub conv_scatter: wgpu::ComputePipeline,
    /// Reparameterized sample and KL term, and their backward (`shaders/latent/`).
    pub latent_forward: wgpu::ComputePipeline,
    pub latent_backward: wgpu::ComputePipeline,
    /// The spec's likelihood: row log-densities with gradients, and natural parameters.
    pub log_prob_rows: wgpu::ComputePipeline,
    pub natural_params: wgpu::ComputePipeline,
    pub colsum: wgpu::ComputePipeline,
    pub channel_sum: wgpu::ComputePipeline,
    pub elbo_sum: wgpu::ComputePipeline,
    pub gather: wgpu::ComputePipeline,
    pub adam: wgpu::ComputePipeline,
    pub adagrad: wgpu::ComputePipeline,
    pub advance: wgpu::ComputePipeline,
    /// The IWAE objective's row weights and their application (`shaders/iwae.wgsl`).
    pub iwae_weights: wgpu::ComputePipeline,
    pub scale_rows: wgpu::ComputePipeline,
    /// The λ table of `--inference vem` (`shaders/vem.wgsl`).
    pub vem_lambda: wgpu::ComputePipeline,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct IwaeParams {
    pub batch: u32,
    pub samples: u32,
    pub _pad: [u32; 2],
}

bindings! {
    /// `iwae_weights` (iwae.wgsl): each image's softmax over its samples' log-weights, over B.
    IwaeWeightsBindings(IwaeParams) { uniform: 0, loglik: 1, prior_minus_q: 2, weights: 3 }
    pipeline(k, _p) => &k.iwae_weights;
    groups(p) => grid_1d(p.batch as usize, 64);
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ScaleRowsParams {
    pub rows: u32,
    pub width: u32,
    pub _pad: [u32; 2],
}

bindings! {
    /// `scale_rows` (iwae.wgsl, bindings 4 to 6 beside the weights'): row r of `scaled` times
    /// `row_weights[r]`.
    ScaleRowsBindings(ScaleRowsParams) { uniform: 4, row_weights: 5, scaled: 6 }
    pipeline(k, _p) => &k.scale_rows;
    groups(p) => grid_1d(p.rows as usize * p.width as usize, 64);
}

impl Kernels {
    pub fn new(ctx: &GpuContext, lik: &Likelihood) -> Result<Self> {
        let module = |label: &str, parts: &[&str]| {
            ctx.device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(label),
                    source: wgpu::ShaderSource::Wgsl(parts.concat().into()),
                })
        };
        let pipeline = |m: &wgpu::ShaderModule, entry: &str| {
            ctx.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: m,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
        };
        // matmul and conv share tile.wgsl's tiled product and epilogue.
        let matmul = module("matmul.wgsl", &[ACTIVATIONS, TILE_GEMM, MATMUL]);
        let conv = module("conv.wgsl", &[WORKGROUP, ACTIVATIONS, TILE_GEMM, CONV]);
        let latent = module(
            "latent",
            &[&[WORKGROUP, STATE, PHILOX][..], &LATENT[..]].concat(),
        );
        let (flags, member) = (likelihood_flags::wgsl_constants(), lik.wgsl_constants());
        let likelihood = module(
            lik.name(),
            &[
                ACTIVATIONS,
                WORKGROUP,
                SPECIAL,
                &flags,
                LIKELIHOOD_ROWS,
                &member,
                lik.wgsl(),
            ],
        );
        let reduce = module("reduce.wgsl", &[WORKGROUP, STATE, REDUCE]);
        let pixels = crate::data::representation::wgsl_constants();
        let gather = module("gather.wgsl", &[WORKGROUP, STATE, PHILOX, &pixels, GATHER]);
        let optimizer = module("optimizer.wgsl", &[WORKGROUP, STATE, OPTIMIZER]);
        let advance = module("advance.wgsl", &[STATE, ADVANCE]);
        let iwae = module("iwae.wgsl", &[WORKGROUP, IWAE]);
        let vem = module("vem.wgsl", &[WORKGROUP, STATE, VEM]);
        let k = Self {
            matmul: pipeline(&matmul, "matmul"),
            conv: pipeline(&conv, "conv"),
            conv_scatter: pipeline(&conv, "conv_scatter"),
            latent_forward: pipeline(&latent, "latent_forward"),
            latent_backward: pipeline(&latent, "latent_backward"),
            log_prob_rows: pipeline(&likelihood, "log_prob_rows"),
            natural_params: pipeline(&likelihood, "natural_params"),
            colsum: pipeline(&reduce, "colsum"),
            channel_sum: pipeline(&reduce, "channel_sum"),
            elbo_sum: pipeline(&reduce, "elbo_sum"),
            gather: pipeline(&gather, "gather"),
            adam: pipeline(&optimizer, "adam"),
            adagrad: pipeline(&optimizer, "adagrad"),
            advance: pipeline(&advance, "advance"),
            iwae_weights: pipeline(&iwae, "iwae_weights"),
            scale_rows: pipeline(&iwae, "scale_rows"),
            vem_lambda: pipeline(&vem, "vem_lambda"),
        };
        ctx.wait()?;
        Ok(k)
    }
}

/// One recorded kernel launch.
pub struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
}

impl Dispatch {
    /// A dispatch of the entry point `B` describes, with parameters `p` and buffers `buffers`.
    pub fn of<B: Bindings>(
        ctx: &GpuContext,
        kernels: &Kernels,
        p: &B::Params,
        buffers: &B,
    ) -> Self {
        Self::new(
            ctx,
            B::pipeline(kernels, p),
            B::UNIFORM,
            p,
            &buffers.entries(),
            B::groups(p),
        )
    }

    /// Binds `uniform` at binding `uniform_binding` and each (binding, buffer) pair, all whole:
    /// the raw form of [`Dispatch::of`], for kernel tests that bind by number.
    pub fn new<P: Pod>(
        ctx: &GpuContext,
        pipeline: &wgpu::ComputePipeline,
        uniform_binding: u32,
        uniform: &P,
        buffers: &[(u32, &wgpu::Buffer)],
        groups: [u32; 3],
    ) -> Self {
        let ubuf = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(uniform),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: uniform_binding,
            resource: ubuf.as_entire_binding(),
        }];
        entries.extend(buffers.iter().map(|&(binding, b)| wgpu::BindGroupEntry {
            binding,
            resource: b.as_entire_binding(),
        }));
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Self {
            pipeline: pipeline.clone(),
            bind_group,
            groups,
        }
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.groups;
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Creates a storage buffer holding `data` (at least 4 bytes, as wgpu requires non-empty bindings).
pub fn storage_init(ctx: &GpuContext, label: &str, data: &[u8]) -> wgpu::Buffer {
    let mut padded;
    let contents = if data.len() < 4 {
        padded = data.to_vec();
        padded.resize(4, 0);
        &padded[..]
    } else {
        data
    };
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        })
}

/// A zeroed storage buffer of `n` f32/u32 elements.
pub fn storage_zeroed(ctx: &GpuContext, label: &str, n: usize) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (n.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Runs a list of dispatches in one compute pass and one submit, then waits.
pub fn run(ctx: &GpuContext, dispatches: &[&Dispatch]) -> Result<()> {
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for d in dispatches {
            d.record(&mut pass);
        }
    }
    ctx.queue.submit(Some(enc.finish()));
    ctx.wait()
}
