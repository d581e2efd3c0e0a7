//! p(x|z) for every member of the family, each in its own file, and the one driver that applies a
//! member to whole rows (the twin of `shaders/likelihood/rows.wgsl`).
//!
//! A member sees one pixel: its data value x, the decoder's C outputs for that pixel (channel c
//! at `o.get(c)`), and, if the spec has them, the pixel's free parameter. It gives
//! - `log_prob_grad`: log p(x|outputs), its gradient with respect to each output and to the free
//!   parameter — training, SVI and the gradient estimators use this;
//! - the exponential-family form log p(x|η) = Σ_s T_s(x)·η_s − A(η) (every member here has h = 0),
//!   through `stats` (T) and `natural` (η and A): the log-likelihood of N images under R latents
//!   is then S + 1 matrix products, as the grid posterior needs;
//! - `mean` and `sample` of a pixel for the figures.
//!
//! [`with_member`] is the one place that maps a spec's `Likelihood` to its implementation.

pub mod bernoulli;
pub mod beta;
pub mod categorical;
pub mod continuous_bernoulli;
pub mod gaussian;

use crate::cpu::Scalar;
use crate::spec::Likelihood;

pub use bernoulli::Bernoulli;
pub use beta::Beta;
pub use categorical::Categorical;
pub use continuous_bernoulli::ContinuousBernoulli;
pub use gaussian::Gaussian;

/// The decoder outputs of one pixel: channel c is `data[c·stride]`.
#[derive(Clone, Copy)]
pub struct Outputs<'a, T> {
    pub data: &'a [T],
    pub stride: usize,
}

impl<T: Copy> Outputs<'_, T> {
    pub fn get(&self, c: usize) -> T {
        self.data[c * self.stride]
    }
}

pub trait Member {
    /// Sufficient statistics per pixel (S).
    fn stats(&self) -> usize;

    /// log p(x | outputs) and d log p / d(free parameter); `grad(c, g)` receives d log p / d o_c.
    fn log_prob_grad<T: Scalar>(
        &self,
        x: T,
        o: Outputs<T>,
        free: T,
        grad: impl FnMut(usize, T),
    ) -> (T, T);

    /// T_s(x) for s in 0..S, into `t`.
    fn sufficient<T: Scalar>(&self, x: T, t: &mut [T]);

    /// η_s(outputs) into `eta` (S values); returns A.
    fn natural<T: Scalar>(&self, o: Outputs<T>, free: T, eta: &mut [T]) -> T;

    /// E[x | outputs], on the pixel scale [0, 1].
    fn mean(&self, o: Outputs<f64>, free: f64) -> f64;

    /// A draw from p(x | outputs) given a uniform `u` in (0, 1) and a standard normal `n`.
    fn sample(&self, o: Outputs<f64>, free: f64, u: f64, n: f64) -> f64;
}

/// Runs `body` with the implementation of `lik`: the single match from spec to member.
#[macro_export]
macro_rules! with_member {
    ($lik:expr, $m:ident => $body:expr) => {{
        use $crate::family::likelihood as lk;
        match $lik {
            $crate::spec::Likelihood::Bernoulli | $crate::spec::Likelihood::BernoulliCe => {
                let $m = &lk::Bernoulli;
                $body
            }
            $crate::spec::Likelihood::ContinuousBernoulli => {
                let $m = &lk::ContinuousBernoulli;
                $body
            }
            $crate::spec::Likelihood::Gaussian { mean, variance } => {
                let $m = &lk::Gaussian::new(*mean, *variance);
                $body
            }
            $crate::spec::Likelihood::Beta => {
                let $m = &lk::Beta;
                $body
            }
            $crate::spec::Likelihood::Categorical { bins } => {
                let $m = &lk::Categorical::new(*bins);
                $body
            }
        }
    }};
}
pub use with_member;

/// What the row driver reads and writes. Row r of `outputs` is paired with data row `r % batch`
/// (L samples of a batch of B images: batch = B; one image per row: batch = rows).
pub struct Rows<'a, T> {
    pub dim: usize,
    pub batch: usize,
    /// `[batch, D]` pixel values.
    pub x: &'a [T],
    /// `[batch, D]` weights (1 observed, 0 not), or None for all ones.
    pub mask: Option<&'a [T]>,
    /// `[rows, C·D]` decoder outputs, channel-major within a row.
    pub outputs: &'a [T],
    /// The free parameters, if the spec has them: `[D]` per pixel, or one shared (pixel p reads
    /// `free[p % len]`).
    pub free: Option<&'a [T]>,
}

/// Where the driver writes gradients: `d_outputs[r, c·D + p] = scale · m · d log p / d o`, and,
/// when the spec has per-pixel parameters, `d_free[r, p]` the same for the free parameter.
pub struct RowGrads<'a, T> {
    pub scale: T,
    pub d_outputs: &'a mut [T],
    pub d_free: Option<&'a mut [T]>,
}

/// log p(x_row | outputs_row) for every row into `loglik`, masked; gradients if asked.
pub fn log_prob_rows<T: Scalar>(
    lik: &Likelihood,
    io: &Rows<T>,
    loglik: &mut [T],
    grads: Option<RowGrads<T>>,
) {
    with_member!(lik, m => rows_of(m, lik.channels(), io, loglik, grads))
}

fn rows_of<M: Member, T: Scalar>(
    member: &M,
    channels: usize,
    io: &Rows<T>,
    loglik: &mut [T],
    mut grads: Option<RowGrads<T>>,
) {
    let d = io.dim;
    let width = channels * d;
    // Everything that is per row is sliced once here, so the per-pixel loop (a large share of a
    // CPU training step) indexes short slices and tests no Option it does not need.
    for (r, ll) in loglik.iter_mut().enumerate() {
        let b = r % io.batch;
        let x = &io.x[b * d..(b + 1) * d];
        let mask = io.mask.map(|m| &m[b * d..(b + 1) * d]);
        let outputs = &io.outputs[r * width..(r + 1) * width];
        let weight = |p: usize| mask.map_or(T::one(), |m| m[p]);
        let free = |p: usize| io.free.map_or(T::zero(), |f| f[p % f.len()]);
        let at = |p: usize| Outputs {
            data: &outputs[p..],
            stride: d,
        };
        let mut s = T::zero();
        match grads.as_mut() {
            None => {
                for (p, &xv) in x.iter().enumerate() {
                    s += weight(p) * member.log_prob_grad(xv, at(p), free(p), |_, _| {}).0;
                }
            }
            Some(g) => {
                let d_outputs = &mut g.d_outputs[r * width..(r + 1) * width];
                let mut d_free = g.d_free.as_deref_mut().map(|f| &mut f[r * d..(r + 1) * d]);
                for (p, &xv) in x.iter().enumerate() {
                    let m = weight(p);
                    let w = g.scale * m;
                    let (lp, dfree) = member
                        .log_prob_grad(xv, at(p), free(p), |c, v| d_outputs[c * d + p] = w * v);
                    if let Some(df) = d_free.as_deref_mut() {
                        df[p] = w * dfree;
                    }
                    s += m * lp;
                }
            }
        }
        *ll = s;
    }
}

/// `[S, N, D]` sufficient statistics times the mask, `t[s][n, p] = m[n, p]·T_s(x[n, p])`: the
/// left operands of the log-likelihood matrix.
pub fn masked_stats(lik: &Likelihood, x: &[f32], mask: &[f32]) -> Vec<Vec<f32>> {
    with_member!(lik, m => {
        let s = m.stats();
        let mut out = vec![vec![0.0f32; x.len()]; s];
        let mut t = vec![0.0f32; s];
        for (i, (&xv, &mv)) in x.iter().zip(mask).enumerate() {
            m.sufficient(xv, &mut t);
            for (k, tv) in t.iter().enumerate() {
                out[k][i] = mv * tv;
            }
        }
        out
    })
}

/// Natural parameters `[S, R, D]` and log-normalisers `[R, D]` of decoded rows `[R, C·D]`.
pub fn natural_rows(
    lik: &Likelihood,
    dim: usize,
    outputs: &[f32],
    free: Option<&[f32]>,
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let width = lik.channels() * dim;
    let rows = outputs.len() / width;
    with_member!(lik, m => {
        let s = m.stats();
        let mut eta = vec![vec![0.0f32; rows * dim]; s];
        let mut a = vec![0.0f32; rows * dim];
        let mut e = vec![0.0f32; s];
        for r in 0..rows {
            for p in 0..dim {
                let o = Outputs { data: &outputs[r * width + p..], stride: dim };
                let f = free.map_or(0.0, |f| f[p % f.len()]);
                a[r * dim + p] = m.natural(o, f, &mut e);
                for (k, ev) in e.iter().enumerate() {
                    eta[k][r * dim + p] = *ev;
                }
            }
        }
        (eta, a)
    })
}

/// Per-pixel means `[R, D]` of decoded rows `[R, C·D]` (what the figures show).
pub fn mean_rows(lik: &Likelihood, dim: usize, outputs: &[f32], free: Option<&[f32]>) -> Vec<f32> {
    pixelwise(lik, dim, outputs, free, None)
}

/// One draw per pixel `[R, D]` of decoded rows, from uniforms `u` and normals `n` (`[R, D]` each).
pub fn sample_rows(
    lik: &Likelihood,
    dim: usize,
    outputs: &[f32],
    free: Option<&[f32]>,
    u: &[f32],
    n: &[f32],
) -> Vec<f32> {
    pixelwise(lik, dim, outputs, free, Some((u, n)))
}

/// Means (`noise` None) or samples of every pixel, in f64.
fn pixelwise(
    lik: &Likelihood,
    dim: usize,
    outputs: &[f32],
    free: Option<&[f32]>,
    noise: Option<(&[f32], &[f32])>,
) -> Vec<f32> {
    let c = lik.channels();
    let rows = outputs.len() / (c * dim);
    let mut out = vec![0.0f32; rows * dim];
    let mut ch = vec![0.0f64; c];
    with_member!(lik, m => {
        for r in 0..rows {
            for p in 0..dim {
                for (k, v) in ch.iter_mut().enumerate() {
                    *v = outputs[r * c * dim + k * dim + p] as f64;
                }
                let o = Outputs { data: &ch, stride: 1 };
                let fr = free.map_or(0.0, |f| f[p % f.len()] as f64);
                let i = r * dim + p;
                out[i] = match noise {
                    None => m.mean(o, fr),
                    Some((u, n)) => m.sample(o, fr, u[i] as f64, n[i] as f64),
                } as f32;
            }
        }
    });
    out
}

/// The 8-bit value of a pixel given on [0, 1] (data are k/255).
pub fn byte_of<T: Scalar>(x: T) -> u32 {
    (x.to_f64() * 255.0 + 0.5).floor().clamp(0.0, 255.0) as u32
}

/// softplus(raw) + floor and its derivative sigmoid(raw): the positive parameters (variances,
/// Beta's α and β) are kept away from 0 this way, smoothly.
pub fn positive<T: Scalar>(raw: T, floor: f64) -> (T, T) {
    use crate::family::activation::{sigmoid, softplus};
    (softplus(raw) + T::from_f64(floor), sigmoid(raw))
}
