//! p(x|z) for every member of the family, each in its own file, and the one driver that applies a
//! member to whole rows (the twin of `shaders/likelihood/rows.wgsl`).
//!
//! **A member answers for itself.** Everything that depends on the likelihood is a method of
//! [`Member`], implemented in the member's file beside its arithmetic: its names and words, its
//! decoder heads and free parameters, the data representations it models (and its default), its
//! units (normalised? bits/dim of the 8-bit data?), the flags that apply to it, and its WGSL
//! source with the constants that specialise it. The spec's [`Likelihood`] is only the serialised
//! tag; [`with_member!`] is the one match from tag to member, and [`MEMBERS`] the one list every
//! flag value, message and test derives from. Adding a likelihood is: a variant and a
//! [`with_member!`] arm and a [`MEMBERS`] entry here, its file here, its WGSL file in
//! `shaders/likelihood/`, and tests.
//!
//! The arithmetic of one pixel — its data value x, the decoder's C outputs for that pixel (channel
//! c at `o.get(c)`), and, if the spec has them, the pixel's free parameter:
//! - `log_prob_grad`: log p(x|outputs), its gradient with respect to each output and to the free
//!   parameter — training, SVI and the gradient estimators use this;
//! - the exponential-family form log p(x|η) = Σ_s T_s(x)·η_s − A(η) (every member here has h = 0),
//!   through `stats` (T) and `natural` (η and A): the log-likelihood of N images under R latents
//!   is then S + 1 matrix products, as the grid posterior needs;
//! - `mean` and `sample` of a pixel for the figures.

pub mod bernoulli;
pub mod beta;
pub mod categorical;
pub mod continuous_bernoulli;
pub mod discretized_logistic;
pub mod gaussian;

use serde::{Deserialize, Serialize};

use crate::cpu::{par, Scalar};
use crate::data::representation::Representation;

pub use bernoulli::Bernoulli;
pub use beta::Beta;
pub use categorical::Categorical;
pub use continuous_bernoulli::ContinuousBernoulli;
pub use discretized_logistic::DiscretizedLogistic;
pub use gaussian::{Gaussian, GaussianMean, Variance};

/// p(x|z) as the spec stores it: the tag of a member and its options. What a member means is
/// asked of it (see the module docs); this enum holds no rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Likelihood {
    /// Bernoulli on binarized pixels.
    #[default]
    Bernoulli,
    /// The Bernoulli cross-entropy on grayscale targets in [0, 1]: not a normalised density.
    BernoulliCe,
    /// The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019), normalised on [0, 1].
    ContinuousBernoulli,
    /// Gaussian on grayscale pixels.
    Gaussian {
        mean: GaussianMean,
        variance: Variance,
    },
    /// Beta on pixels inside (0, 1): bin middles (k + ½)/256, or dequantized.
    Beta,
    /// Categorical over `bins` equal-width pixel-value bins.
    Categorical { bins: u32 },
    /// The discretized logistic over the 256 pixel values (PixelCNN++).
    DiscretizedLogistic,
}

/// Every member once, with the options `--likelihood NAME` starts from: the flag's values, the
/// messages' lists and the tests' coverage all come from here.
pub const MEMBERS: &[Likelihood] = &[
    Likelihood::Bernoulli,
    Likelihood::BernoulliCe,
    Likelihood::ContinuousBernoulli,
    Likelihood::Gaussian {
        mean: GaussianMean::Identity,
        variance: Variance::Decoder,
    },
    Likelihood::Beta,
    Likelihood::Categorical { bins: 4 },
    Likelihood::DiscretizedLogistic,
];

/// Runs `body` with the implementation of `lik`: the single match from spec to member.
#[macro_export]
macro_rules! with_member {
    ($lik:expr, $m:ident => $body:expr) => {{
        #[allow(unused_imports)]
        use lk::Member as _;
        use $crate::family::likelihood as lk;
        match $lik {
            lk::Likelihood::Bernoulli => {
                let $m = &lk::Bernoulli::BINARY;
                $body
            }
            lk::Likelihood::BernoulliCe => {
                let $m = &lk::Bernoulli::CROSS_ENTROPY;
                $body
            }
            lk::Likelihood::ContinuousBernoulli => {
                let $m = &lk::ContinuousBernoulli;
                $body
            }
            lk::Likelihood::Gaussian { mean, variance } => {
                let $m = &lk::Gaussian::new(*mean, *variance);
                $body
            }
            lk::Likelihood::Beta => {
                let $m = &lk::Beta;
                $body
            }
            lk::Likelihood::Categorical { bins } => {
                let $m = &lk::Categorical::new(*bins);
                $body
            }
            lk::Likelihood::DiscretizedLogistic => {
                let $m = &lk::DiscretizedLogistic;
                $body
            }
        }
    }};
}
pub use with_member;

/// The options of the likelihood flags (`--mean`, `--variance`, `--bins`), as given; a member
/// takes the ones it lists in [`Member::options`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub mean: Option<GaussianMean>,
    pub variance: Option<Variance>,
    pub bins: Option<u32>,
}

impl Options {
    /// The flags that were given, by name.
    pub fn given(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.mean.is_some() {
            v.push("--mean");
        }
        if self.variance.is_some() {
            v.push("--variance");
        }
        if self.bins.is_some() {
            v.push("--bins");
        }
        v
    }
}

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
    // ---- What the member is: names, heads, rules (asked by the spec, the CLI and the report).

    /// The spec tag of this member with its options.
    fn spec(&self) -> Likelihood;

    /// The flag value that selects it (`--likelihood NAME`).
    fn name(&self) -> &'static str;

    /// One line for `--likelihood`'s help.
    fn help(&self) -> &'static str;

    /// The likelihood in words, with its options, for reports and logs.
    fn describe(&self) -> String;

    /// What its data values are, for messages ("binarized pixels", "values inside (0, 1)").
    fn models(&self) -> &'static str;

    /// Decoder outputs per pixel.
    fn channels(&self) -> usize {
        1
    }

    /// Names of the decoder's output heads in checkpoints, one per group of D output rows; a head
    /// may hold several channels (the categorical's `logits` hold all its bins).
    fn head_names(&self) -> Vec<&'static str> {
        vec!["logits"]
    }

    /// Free likelihood parameters outside the networks for `input` values per row (value p reads
    /// parameter p mod count), and their checkpoint name.
    fn free_parameters(&self, _input: usize) -> usize {
        0
    }

    fn free_parameter_name(&self, _input: usize) -> &'static str {
        ""
    }

    /// Rejects options that cannot be trained, naming them.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// The representations of MNIST pixels it models; the first is its default.
    fn representations(&self) -> &'static [Representation];

    /// Whether it models real-valued rows (the circle, a data file), used as they are.
    fn real_values(&self) -> bool {
        false
    }

    /// Whether log p(x|z) is a normalised log-density (a cross-entropy objective is not).
    fn normalised(&self) -> bool {
        true
    }

    /// For representation `r`, the nats per dimension to add to −log p/D for a bound in nats of
    /// the 8-bit data (then bits/dim = that / ln 2), where the model gives one.
    fn bits_offset(&self, _r: Representation) -> Option<f64> {
        None
    }

    /// The option flags that apply to it.
    fn options(&self) -> &'static [&'static str] {
        &[]
    }

    /// This member with the given option flags applied (only those in [`Member::options`] are
    /// given; the caller refuses the others).
    fn with_options(&self, _o: &Options) -> Likelihood {
        self.spec()
    }

    /// Its options written back as flag values, for `--resume` messages.
    fn option_values(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Configurations that together cover its code paths, for the tests that must see them all.
    fn examples(&self) -> Vec<Likelihood> {
        vec![self.spec()]
    }

    /// Its WGSL file, appended to `shaders/likelihood/rows.wgsl`.
    fn wgsl(&self) -> &'static str;

    /// WGSL constants that specialise its file to these options (emitted before it).
    fn wgsl_constants(&self) -> String {
        String::new()
    }

    // ---- The arithmetic of one pixel (twins of the WGSL functions of the same role).

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

/// `Likelihood::f(…)` for each of the member's rules, so callers holding the tag ask the member.
macro_rules! ask_member {
    ($( $(#[$doc:meta])* fn $f:ident(&self $(, $arg:ident: $t:ty)*) -> $r:ty; )*) => {
        impl Likelihood {
            $( $(#[$doc])* pub fn $f(&self $(, $arg: $t)*) -> $r {
                with_member!(self, m => m.$f($($arg),*))
            } )*
        }
    };
}

ask_member! {
    /// See [`Member::name`].
    fn name(&self) -> &'static str;
    /// See [`Member::describe`].
    fn describe(&self) -> String;
    /// See [`Member::channels`].
    fn channels(&self) -> usize;
    /// See [`Member::head_names`].
    fn head_names(&self) -> Vec<&'static str>;
    /// See [`Member::free_parameters`].
    fn free_parameters(&self, input: usize) -> usize;
    /// See [`Member::free_parameter_name`].
    fn free_parameter_name(&self, input: usize) -> &'static str;
    /// See [`Member::normalised`].
    fn normalised(&self) -> bool;
    /// See [`Member::bits_offset`].
    fn bits_offset(&self, r: Representation) -> Option<f64>;
    /// See [`Member::stats`].
    fn stats(&self) -> usize;
    /// See [`Member::wgsl`].
    fn wgsl(&self) -> &'static str;
    /// See [`Member::wgsl_constants`].
    fn wgsl_constants(&self) -> String;
}

impl Likelihood {
    /// The member `--likelihood name` selects, with its default options.
    pub fn named(name: &str) -> Option<Likelihood> {
        MEMBERS.iter().copied().find(|l| l.name() == name)
    }

    /// The representation it models by default.
    pub fn default_representation(&self) -> Representation {
        with_member!(self, m => m.representations()[0])
    }

    /// The representation of a run: MNIST pixels in `given` (or the member's default), or, for
    /// real-valued rows, the values as they are. Errors say what the member models and which
    /// members model what was asked for.
    pub fn representation(
        &self,
        given: Option<Representation>,
        real_values: bool,
    ) -> Result<Representation, String> {
        let r = match (given, real_values) {
            (None, true) => Representation::Grayscale,
            (None, false) => self.default_representation(),
            (Some(r), _) => r,
        };
        self.check_representation(r, real_values)?;
        Ok(r)
    }

    /// Whether it models representation `r` (of MNIST pixels, or real values when `real_values`).
    pub fn check_representation(&self, r: Representation, real_values: bool) -> Result<(), String> {
        let takers = |ok: &dyn Fn(&Likelihood) -> bool| {
            let v: Vec<&str> = MEMBERS.iter().filter(|l| ok(l)).map(|l| l.name()).collect();
            v.join(", ")
        };
        with_member!(self, m => {
            if real_values {
                if !m.real_values() {
                    return Err(format!(
                        "--likelihood {}: the {} likelihood models {}, not real-valued rows; \
                         real values are modelled by --likelihood {}",
                        m.name(),
                        m.name(),
                        m.models(),
                        takers(&|l| with_member!(l, o => o.real_values()))
                    ));
                }
                if r != Representation::Grayscale {
                    return Err(format!(
                        "--pixels {} applies to MNIST pixels; real-valued rows are used as \
                         they are: drop it",
                        r.name()
                    ));
                }
                return Ok(());
            }
            let takes = m.representations();
            if takes.contains(&r) {
                return Ok(());
            }
            let names: Vec<&str> = takes.iter().map(|t| t.name()).collect();
            Err(format!(
                "--pixels {} ({}): the {} likelihood models {}; it takes {} (the first is its \
                 default). {} is modelled by --likelihood {}",
                r.name(),
                r.describe(),
                m.name(),
                m.models(),
                names.join(" or "),
                r.name(),
                takers(&|l| with_member!(l, o => o.representations().contains(&r)))
            ))
        })
    }

    /// This likelihood with the option flags `o` applied; a flag that does not apply to it is an
    /// error naming the members it applies to.
    pub fn with_options(&self, o: &Options) -> Result<Likelihood, String> {
        with_member!(self, m => {
            for flag in o.given() {
                if !m.options().contains(&flag) {
                    let takers: Vec<&str> = MEMBERS
                        .iter()
                        .filter(|l| with_member!(l, t => t.options().contains(&flag)))
                        .map(|l| l.name())
                        .collect();
                    return Err(format!(
                        "{flag} applies to --likelihood {}, not {}",
                        takers.join(" or "),
                        m.name()
                    ));
                }
            }
            Ok(m.with_options(o))
        })
    }

    /// Checks the member's options (see [`Member::check`]).
    pub fn check(&self) -> Result<(), String> {
        with_member!(self, m => m.check())
    }

    /// Every option flag of any member, in a stable order, with this member's value or "-".
    pub fn option_values(&self) -> Vec<(&'static str, String)> {
        let mine = with_member!(self, m => m.option_values());
        let mut flags: Vec<&'static str> = Vec::new();
        for l in MEMBERS {
            for f in with_member!(l, m => m.options()) {
                if !flags.contains(f) {
                    flags.push(f);
                }
            }
        }
        flags
            .into_iter()
            .map(|f| {
                let v = mine
                    .iter()
                    .find(|(g, _)| *g == f)
                    .map_or("-".into(), |(_, v)| v.clone());
                (f, v)
            })
            .collect()
    }

    /// The members that give bits/dim of the 8-bit data, with the representation that does,
    /// as flags ("--likelihood gaussian --pixels dequantize"), for the units note.
    pub fn with_bits_per_dim() -> Vec<String> {
        let mut v = Vec::new();
        for l in MEMBERS {
            with_member!(l, m => {
                for r in m.representations() {
                    if m.bits_offset(*r).is_some() {
                        v.push(if *r == m.representations()[0] {
                            m.name().to_string()
                        } else {
                            format!("{} --pixels {}", m.name(), r.name())
                        });
                    }
                }
            });
        }
        v
    }
}

/// Every configuration the tests must cover: each member's examples.
pub fn all_examples() -> Vec<Likelihood> {
    MEMBERS
        .iter()
        .flat_map(|l| with_member!(l, m => m.examples()))
        .collect()
}

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

fn rows_of<M: Member + Sync, T: Scalar>(
    member: &M,
    channels: usize,
    io: &Rows<T>,
    loglik: &mut [T],
    grads: Option<RowGrads<T>>,
) {
    let (d, rows) = (io.dim, loglik.len());
    let width = channels * d;
    // Rows are independent: contiguous ranges of them on the CPU path's threads, each row summed
    // in the same order whatever the split.
    let n = par::parts(rows, width);
    if n == 1 {
        return row_range(member, width, io, 0, loglik, grads);
    }
    let b = par::bounds(rows, n);
    par::scope(|s| {
        let mut ll = loglik;
        let mut g = grads;
        for i in 0..n {
            let len = b[i + 1] - b[i];
            let (ll0, ll1) = std::mem::take(&mut ll).split_at_mut(len);
            ll = ll1;
            let g0 = g.as_mut().map(|g| {
                let (o0, o1) = std::mem::take(&mut g.d_outputs).split_at_mut(len * width);
                g.d_outputs = o1;
                let f0 = g.d_free.as_mut().map(|f| {
                    let (f0, f1) = std::mem::take(f).split_at_mut(len * d);
                    *f = f1;
                    f0
                });
                RowGrads {
                    scale: g.scale,
                    d_outputs: o0,
                    d_free: f0,
                }
            });
            let r0 = b[i];
            if i + 1 == n {
                row_range(member, width, io, r0, ll0, g0);
            } else {
                s.spawn(move |_| row_range(member, width, io, r0, ll0, g0));
            }
        }
    });
}

/// Rows `r0..r0 + loglik.len()` of [`rows_of`]; `grads` holds those rows only.
fn row_range<M: Member, T: Scalar>(
    member: &M,
    width: usize,
    io: &Rows<T>,
    r0: usize,
    loglik: &mut [T],
    mut grads: Option<RowGrads<T>>,
) {
    let d = io.dim;
    // Everything that is per row is sliced once here, so the per-pixel loop (a large share of a
    // CPU training step) indexes short slices and tests no Option it does not need.
    for (r, ll) in loglik.iter_mut().enumerate() {
        let b = (r0 + r) % io.batch;
        let x = &io.x[b * d..(b + 1) * d];
        let mask = io.mask.map(|m| &m[b * d..(b + 1) * d]);
        let outputs = &io.outputs[(r0 + r) * width..(r0 + r + 1) * width];
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
