//! The flat parameter vector of a spec: where each layer's weight and bias live, their checkpoint
//! names, and their initial values.
//!
//! All parameters live in one flat `f32` vector so that one optimizer dispatch (or one host loop)
//! updates the whole model and one buffer holds it on the GPU. Each linear layer stores its weight
//! row-major as `[out, in]` (PyTorch `nn.Linear`) followed by its bias `[out]`. The encoder's last
//! layer produces `[μ | log σ²]` as one `[2·Dz, h]` matrix; the decoder's last layer produces the
//! likelihood's C channels per pixel as one `[C·D, h]` matrix, channel-major (row c·D + p). The
//! checkpoint splits both into named heads (`encoder.mean`, `encoder.logvar` — `encoder.logscale`
//! for a Laplace q; `decoder.logits`, or `decoder.mean` + `decoder.variance`, or `decoder.alpha` +
//! `decoder.beta`). Convolutions store PyTorch's weights, `[out, in, k, k]` for `nn.Conv2d` and
//! `[in, out, k, k]` for `nn.ConvTranspose2d`, then one bias per output channel; a transposed
//! convolution that ends the decoder writes the C channels of each pixel in the same c·D + p order.

use rand::{RngExt, SeedableRng};

use super::layers::{conv_out, conv_transpose_out, ConvGeometry, LayerSpec, Shape};
use super::{Init, ModelSpec};

/// What a layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// `nn.Linear`: weight `[out, in]`.
    Linear,
    /// `nn.Conv2d` from `geometry.full` to `geometry.reduced`: weight `[out, in, k, k]`.
    Conv2d(ConvGeometry),
    /// `nn.ConvTranspose2d` from `geometry.reduced` to `geometry.full`: weight `[in, out, k, k]`.
    ConvTranspose2d(ConvGeometry),
}

/// One layer with parameters inside the flat parameter vector. `inp` and `out` count the values
/// of one row on each side (`C·H·W` for an image-shaped row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    pub kind: LayerKind,
    pub out: usize,
    pub inp: usize,
    /// Offset of the weight.
    pub w: usize,
    /// Offset of the bias, right after the weight.
    pub b: usize,
}

impl Layer {
    pub fn weight_len(&self) -> usize {
        self.b - self.w
    }

    /// One bias per output feature (linear) or per output channel (convolutions).
    pub fn bias_len(&self) -> usize {
        self.out_channels().0
    }

    /// (channels, values per channel) of one output row: a bias and its gradient are per channel.
    pub fn out_channels(&self) -> (usize, usize) {
        match self.kind {
            LayerKind::Linear => (self.out, 1),
            LayerKind::Conv2d(g) => (g.reduced[0], g.reduced[1] * g.reduced[2]),
            LayerKind::ConvTranspose2d(g) => (g.full[0], g.full[1] * g.full[2]),
        }
    }

    /// The weight's shape in PyTorch's layout.
    pub fn weight_shape(&self) -> Vec<usize> {
        match self.kind {
            LayerKind::Linear => vec![self.out, self.inp],
            LayerKind::Conv2d(g) => vec![g.reduced[0], g.full[0], g.kernel, g.kernel],
            LayerKind::ConvTranspose2d(g) => vec![g.reduced[0], g.full[0], g.kernel, g.kernel],
        }
    }

    /// PyTorch's fan-in for its default init: `weight.size(1)` times the kernel area, which for
    /// a transposed convolution is its *output* channels.
    pub fn fan_in(&self) -> usize {
        let shape = self.weight_shape();
        shape[1..].iter().product()
    }

    pub fn is_conv(&self) -> bool {
        !matches!(self.kind, LayerKind::Linear)
    }

    /// The layer in the architecture line: its width, or a convolution's kernel, stride,
    /// padding and output shape (`conv4 s2 p1 32×14×14`, `convT4 s2 p1 1×28×28`).
    pub fn describe(&self) -> String {
        let conv = |name: &str, g: &ConvGeometry, [c, h, w]: [usize; 3]| {
            format!(
                "{name}{} s{} p{} {c}×{h}×{w}",
                g.kernel, g.stride, g.padding
            )
        };
        match &self.kind {
            LayerKind::Linear => self.out.to_string(),
            LayerKind::Conv2d(g) => conv("conv", g, g.reduced),
            LayerKind::ConvTranspose2d(g) => conv("convT", g, g.full),
        }
    }
}

/// A named tensor of the checkpoint: a contiguous range of the flat vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl NamedTensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A likelihood's free parameters in the flat vector: `len` of them at `offset`, one per value or
/// one shared by all (value p reads parameter p mod len), under the member's checkpoint `name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeParams {
    pub offset: usize,
    pub len: usize,
    pub name: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// x → hidden layers → [μ | log σ²]; every layer but the last is followed by the activation.
    pub encoder: Vec<Layer>,
    /// z → hidden layers → C·D likelihood outputs; every layer but the last is activated.
    pub decoder: Vec<Layer>,
    /// The likelihood's free parameters outside the networks (a learned Gaussian variance), if
    /// the spec has them.
    pub free: Option<FreeParams>,
    pub total: usize,
    heads: Vec<&'static str>,
    /// The encoder's scale head: `logvar` (Gaussian q) or `logscale` (Laplace q).
    scale_head: &'static str,
}

/// What one side of the model is joined to, for [`Stacker::side`].
struct Ends {
    /// The shape of the side's input row.
    input: Shape,
    /// The input is the data (the encoder's), whose image shape the spec may give.
    input_is_data: bool,
    /// Features of the side's output row.
    out: usize,
    /// The channels of an output `conv_transpose2d` (one without `out` ending the list), if the
    /// side may end in one: the decoder, whose output is the likelihood's channels per pixel.
    output_channels: Option<usize>,
}

/// Places layers one after another in the flat vector, following the row's shape.
struct Stacker {
    next: usize,
}

impl Stacker {
    fn place(
        &mut self,
        kind: LayerKind,
        inp: usize,
        out: usize,
        weights: usize,
        bias: usize,
    ) -> Layer {
        let l = Layer {
            kind,
            inp,
            out,
            w: self.next,
            b: self.next + weights,
        };
        self.next += weights + bias;
        l
    }

    /// The layers of one side: its input through `hidden`, then the output layer to `ends.out`
    /// features (a linear layer, unless the list ends with an output `conv_transpose2d` where
    /// `ends` allows one). Errors name the layer as `model.SIDE[i]`.
    fn side(&mut self, side: &str, hidden: &[LayerSpec], ends: Ends) -> Result<Vec<Layer>, String> {
        let out = ends.out;
        let mut shape = ends.input;
        let mut layers = Vec::new();
        for (i, spec) in hidden.iter().enumerate() {
            let at = format!("model.{side}[{i}]");
            let image = |name: &str| match shape {
                Shape::Image(s) => Ok(s),
                Shape::Flat(n) => Err(format!(
                    "{at} ({name}) needs an image-shaped input [channels, height, width], but its \
                     input is a flat vector of {n}; put a reshape before it{}",
                    if ends.input_is_data && i == 0 {
                        " or give the spec an `image` shape"
                    } else {
                        ""
                    }
                )),
            };
            match *spec {
                LayerSpec::Linear(n) => {
                    let inp = shape.len();
                    layers.push(self.place(LayerKind::Linear, inp, n, n * inp, n));
                    shape = Shape::Flat(n);
                }
                LayerSpec::Reshape(to) => {
                    // Saturating: a shape too large to count is as wrong as any other mismatch.
                    let n = to.iter().fold(1usize, |n, &d| n.saturating_mul(d));
                    if n != shape.len() {
                        return Err(format!(
                            "{at} reshapes {} values to {}×{}×{} = {n}",
                            shape.len(),
                            to[0],
                            to[1],
                            to[2]
                        ));
                    }
                    shape = Shape::Image(to);
                }
                LayerSpec::Conv2d(c) => {
                    let [ch, h, w] = image("conv2d")?;
                    let out_ch = c.out.ok_or_else(|| {
                        format!("{at} (conv2d) needs `out`, its number of output channels")
                    })?;
                    let size = |n: usize, axis: &str| {
                        conv_out(n, c.kernel, c.stride, c.padding)
                            .map_err(|e| format!("{at} (conv2d on {ch}×{h}×{w}), {axis}: {e}"))
                    };
                    let g = ConvGeometry {
                        full: [ch, h, w],
                        reduced: [out_ch, size(h, "height")?, size(w, "width")?],
                        kernel: c.kernel,
                        stride: c.stride,
                        padding: c.padding,
                    };
                    let l = self.place(
                        LayerKind::Conv2d(g),
                        g.full_len(),
                        g.reduced_len(),
                        g.weight_len(),
                        out_ch,
                    );
                    layers.push(l);
                    shape = Shape::Image(g.reduced);
                }
                LayerSpec::ConvTranspose2d(c) => {
                    let [ch, h, w] = image("conv_transpose2d")?;
                    let output_channels = if i + 1 == hidden.len() {
                        ends.output_channels
                    } else {
                        None
                    };
                    let out_ch = match (c.out, output_channels) {
                        (Some(n), _) => n,
                        (None, Some(n)) => n,
                        (None, None) => {
                            return Err(format!(
                                "{at} (conv_transpose2d) needs `out`: only the decoder's last \
                                 layer may leave it out (it then gives the likelihood's channels)"
                            ))
                        }
                    };
                    let size = |n: usize, axis: &str| {
                        conv_transpose_out(n, c.kernel, c.stride, c.padding).map_err(|e| {
                            format!("{at} (conv_transpose2d on {ch}×{h}×{w}), {axis}: {e}")
                        })
                    };
                    let g = ConvGeometry {
                        full: [out_ch, size(h, "height")?, size(w, "width")?],
                        reduced: [ch, h, w],
                        kernel: c.kernel,
                        stride: c.stride,
                        padding: c.padding,
                    };
                    // `check`'s MAX_FEATURES rule, here before stacked layers' counts overflow.
                    let values = g.full.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                    if values.is_none_or(|n| n > super::MAX_FEATURES) {
                        return Err(format!(
                            "{at} (conv_transpose2d on {ch}×{h}×{w}) gives {}×{}×{} values per \
                             row, more than {}",
                            g.full[0],
                            g.full[1],
                            g.full[2],
                            super::MAX_FEATURES
                        ));
                    }
                    // A conv2d over the output must step back onto the input exactly.
                    for (axis, n, m) in [("height", g.full[1], h), ("width", g.full[2], w)] {
                        if conv_out(n, c.kernel, c.stride, c.padding) != Ok(m) {
                            return Err(format!(
                                "{at} (conv_transpose2d on {ch}×{h}×{w}), {axis}: no conv2d \
                                 with these settings maps {n} back to {m}"
                            ));
                        }
                    }
                    let l = self.place(
                        LayerKind::ConvTranspose2d(g),
                        g.reduced_len(),
                        g.full_len(),
                        g.weight_len(),
                        out_ch,
                    );
                    layers.push(l);
                    shape = Shape::Image(g.full);
                    if c.out.is_none() {
                        // The output layer: out_ch is the likelihood's channels.
                        if g.full_len() != out {
                            return Err(format!(
                                "{at} (conv_transpose2d, the output layer) gives {out_ch}×{}×{} \
                                 = {} values per row, but the likelihood needs {out} ({out_ch} \
                                 channels of the data's shape)",
                                g.full[1],
                                g.full[2],
                                g.full_len()
                            ));
                        }
                        return Ok(layers);
                    }
                }
            }
        }
        let inp = shape.len();
        layers.push(self.place(LayerKind::Linear, inp, out, out * inp, out));
        Ok(layers)
    }
}

impl Layout {
    /// The layout of a spec that passed [`ModelSpec::check`] (which reports the errors of
    /// [`Layout::try_new`]).
    pub fn new(s: &ModelSpec) -> Self {
        Self::try_new(s).unwrap_or_else(|e| panic!("an unchecked model spec: {e}"))
    }

    /// The layout, or which layer does not fit the shape it is given.
    pub fn try_new(s: &ModelSpec) -> Result<Self, String> {
        let mut stack = Stacker { next: 0 };
        let input = match s.image {
            Some(shape) => Shape::Image(shape),
            None => Shape::Flat(s.input),
        };
        let channels = s.likelihood.channels();
        let encoder = stack.side(
            "encoder",
            &s.encoder,
            Ends {
                input,
                input_is_data: true,
                out: 2 * s.latent,
                output_channels: None,
            },
        )?;
        let image_channels = s.image.map_or(1, |i| i[0]);
        let decoder = stack.side(
            "decoder",
            &s.decoder,
            Ends {
                input: Shape::Flat(s.latent),
                input_is_data: false,
                out: channels * s.input,
                output_channels: Some(channels * image_channels),
            },
        )?;
        let len = s.likelihood.free_parameters(s.input);
        let free = (len > 0).then(|| {
            stack.next += len;
            FreeParams {
                offset: stack.next - len,
                len,
                name: s.likelihood.free_parameter_name(s.input),
            }
        });
        Ok(Self {
            encoder,
            decoder,
            free,
            total: stack.next,
            heads: s.likelihood.head_names(),
            scale_head: s.posterior.scale_head(),
        })
    }

    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.encoder.iter().chain(&self.decoder)
    }

    pub fn decoder_out(&self) -> &Layer {
        self.decoder
            .last()
            .expect("the decoder has an output layer")
    }

    /// The widest row any layer produces (for buffer sizes).
    pub fn widest(&self) -> usize {
        self.layers().map(|l| l.out).max().unwrap_or(0)
    }

    /// The checkpoint's tensors in PyTorch naming: hidden layers `fc1, fc2, …` (linear),
    /// `conv1, …` and `deconv1, …`; the encoder's output split into `mean` / `logvar` (or
    /// `logscale`) heads, the decoder's into the likelihood's heads. A transposed-convolution
    /// output layer keeps its heads together as channels (`decoder.mean_variance.weight`
    /// `[in, 2, k, k]`: channel 0 the mean, 1 the variance), since its `[in, out, k, k]` weight
    /// does not split into contiguous heads.
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let mut v = Vec::new();
        let mut push = |name: String, shape: Vec<usize>, offset: usize| {
            v.push(NamedTensor {
                name,
                shape,
                offset,
            })
        };
        for (side, layers, heads) in [
            ("encoder", &self.encoder, vec!["mean", self.scale_head]),
            ("decoder", &self.decoder, self.heads.clone()),
        ] {
            let (last, hidden) = layers.split_last().expect("output layer");
            let mut counts = [0usize; 3];
            for l in hidden {
                let (prefix, n) = match l.kind {
                    LayerKind::Linear => ("fc", &mut counts[0]),
                    LayerKind::Conv2d(_) => ("conv", &mut counts[1]),
                    LayerKind::ConvTranspose2d(_) => ("deconv", &mut counts[2]),
                };
                *n += 1;
                let name = format!("{side}.{prefix}{n}");
                push(format!("{name}.weight"), l.weight_shape(), l.w);
                push(format!("{name}.bias"), vec![l.bias_len()], l.b);
            }
            if last.is_conv() {
                let name = format!("{side}.{}", heads.join("_"));
                push(format!("{name}.weight"), last.weight_shape(), last.w);
                push(format!("{name}.bias"), vec![last.bias_len()], last.b);
                continue;
            }
            // A head of `rows` output rows; the last head takes what is left (categorical: C·D).
            let rows = last.out / heads.len();
            for (h, name) in heads.iter().enumerate() {
                let r = if h + 1 == heads.len() {
                    last.out - h * rows
                } else {
                    rows
                };
                push(
                    format!("{side}.{name}.weight"),
                    vec![r, last.inp],
                    last.w + h * rows * last.inp,
                );
                push(format!("{side}.{name}.bias"), vec![r], last.b + h * rows);
            }
        }
        if let Some(f) = self.free {
            push(f.name.into(), vec![f.len], f.offset);
        }
        v
    }
}

/// Initial parameters, drawn on the host from `seed` so that the CPU and GPU paths start from
/// identical values. `pytorch`: `nn.Linear`'s and `nn.Conv2d`'s default, weights and biases
/// uniform in ±1/√fan_in (fan_in = `weight.size(1)`·k², see [`Layer::fan_in`]);
/// `normal:STD`: weights N(0, STD²), biases 0. Per-pixel variance parameters start at 0.
pub fn init_params(spec: &ModelSpec, seed: u64) -> Vec<f32> {
    let layout = spec.layout();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed_1417_a11c_e5e5);
    let mut p = vec![0.0f32; layout.total];
    for l in layout.layers() {
        match spec.init {
            Init::Pytorch => {
                let bound = 1.0 / (l.fan_in() as f32).sqrt();
                for v in &mut p[l.w..l.b + l.bias_len()] {
                    *v = rng.random_range(-bound..bound);
                }
            }
            Init::Normal { std } => {
                for v in &mut p[l.w..l.b] {
                    *v = std * standard_normal(&mut rng);
                }
            }
        }
    }
    p
}

/// One N(0, 1) draw by Box–Muller (the host-side initialiser only; training noise is Philox).
fn standard_normal(rng: &mut rand::rngs::StdRng) -> f32 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<ModelSpec> {
        let liks = super::super::members::likelihoods();
        let mut v = Vec::new();
        for lik in liks {
            for (enc, dec) in [(vec![7], vec![7]), (vec![9, 4], vec![3]), (vec![], vec![])] {
                v.push(ModelSpec {
                    encoder: super::super::linear(&enc),
                    decoder: super::super::linear(&dec),
                    likelihood: lik,
                    latent: 3,
                    ..ModelSpec::mnist(1, 1)
                });
            }
        }
        v
    }

    #[test]
    fn named_tensors_tile_the_flat_vector_exactly_once() {
        for spec in members() {
            let layout = spec.layout();
            let mut covered = vec![0u8; layout.total];
            for t in layout.named_tensors() {
                for c in &mut covered[t.offset..t.offset + t.len()] {
                    *c += 1;
                }
            }
            assert!(
                covered.iter().all(|&c| c == 1),
                "{spec:?}: a parameter is named {} times",
                covered.iter().find(|&&c| c != 1).unwrap()
            );
        }
    }

    #[test]
    fn the_appendix_c_names_are_unchanged() {
        let names: Vec<String> = ModelSpec::mnist(500, 2)
            .layout()
            .named_tensors()
            .into_iter()
            .map(|t| format!("{} {:?}", t.name, t.shape))
            .collect();
        assert_eq!(
            names,
            [
                "encoder.fc1.weight [500, 784]",
                "encoder.fc1.bias [500]",
                "encoder.mean.weight [2, 500]",
                "encoder.mean.bias [2]",
                "encoder.logvar.weight [2, 500]",
                "encoder.logvar.bias [2]",
                "decoder.fc1.weight [500, 2]",
                "decoder.fc1.bias [500]",
                "decoder.logits.weight [784, 500]",
                "decoder.logits.bias [784]",
            ]
        );
    }

    fn default_conv(likelihood: super::super::Likelihood) -> ModelSpec {
        let (encoder, decoder) = super::super::layers::conv_arch([1, 28, 28], [32, 64], &[256]);
        ModelSpec {
            image: Some([1, 28, 28]),
            encoder,
            decoder,
            likelihood,
            ..ModelSpec::mnist(1, 2)
        }
    }

    #[test]
    fn the_default_conv_model_has_pytorch_names_shapes_and_fan_ins() {
        use super::super::{GaussianMean, Likelihood, Variance};
        let spec = default_conv(Likelihood::Gaussian {
            mean: GaussianMean::Identity,
            variance: Variance::Decoder,
        });
        let layout = spec.layout();
        let names: Vec<String> = layout
            .named_tensors()
            .into_iter()
            .map(|t| format!("{} {:?}", t.name, t.shape))
            .collect();
        assert_eq!(
            names,
            [
                "encoder.conv1.weight [32, 1, 4, 4]",
                "encoder.conv1.bias [32]",
                "encoder.conv2.weight [64, 32, 4, 4]",
                "encoder.conv2.bias [64]",
                "encoder.fc1.weight [256, 3136]",
                "encoder.fc1.bias [256]",
                "encoder.mean.weight [2, 256]",
                "encoder.mean.bias [2]",
                "encoder.logvar.weight [2, 256]",
                "encoder.logvar.bias [2]",
                "decoder.fc1.weight [256, 2]",
                "decoder.fc1.bias [256]",
                "decoder.fc2.weight [3136, 256]",
                "decoder.fc2.bias [3136]",
                "decoder.deconv1.weight [64, 32, 4, 4]",
                "decoder.deconv1.bias [32]",
                "decoder.mean_variance.weight [32, 2, 4, 4]",
                "decoder.mean_variance.bias [2]",
            ]
        );
        // nn.Conv2d: in·k²; nn.ConvTranspose2d: weight.size(1)·k² = its out channels·k².
        let fans: Vec<usize> = layout.layers().map(|l| l.fan_in()).collect();
        assert_eq!(fans, [16, 512, 3136, 256, 2, 256, 512, 32]);
        let mut covered = vec![0u8; layout.total];
        for t in layout.named_tensors() {
            covered[t.offset..t.offset + t.len()]
                .iter_mut()
                .for_each(|c| *c += 1);
        }
        assert!(covered.iter().all(|&c| c == 1));
        // The categorical's bins are the output layer's channels, one head.
        let cat = default_conv(Likelihood::Categorical { bins: 5 }).layout();
        let last = cat.named_tensors().pop().unwrap();
        assert_eq!(
            (last.name.as_str(), last.shape),
            ("decoder.logits.bias", vec![5])
        );
    }

    #[test]
    fn conv_shapes_that_do_not_line_up_name_the_layer() {
        use super::super::{ConvSpec, LayerSpec};
        let conv = |out, kernel, stride, padding| ConvSpec {
            out,
            kernel,
            stride,
            padding,
        };
        let mut spec = default_conv(super::super::Likelihood::Bernoulli);
        spec.decoder[3] = LayerSpec::ConvTranspose2d(conv(Some(32), 3, 2, 1));
        let e = spec.check().unwrap_err();
        assert!(
            e.contains("model.decoder[4]") && e.contains("1×26×26 = 676"),
            "{e}"
        );
        spec = default_conv(super::super::Likelihood::Bernoulli);
        spec.decoder[2] = LayerSpec::Reshape([64, 7, 8]);
        assert!(spec.check().unwrap_err().contains("reshapes 3136 values"));
        spec = default_conv(super::super::Likelihood::Bernoulli);
        spec.encoder[1] = LayerSpec::Conv2d(conv(Some(8), 4, 5, 1));
        let e = spec.check().unwrap_err();
        assert!(
            e.contains("model.encoder[1] (conv2d on 32×14×14), height: stride 5 does not divide 14 + 2·1 − 4 = 12"),
            "{e}"
        );
        spec = default_conv(super::super::Likelihood::Bernoulli);
        spec.decoder[4] = LayerSpec::ConvTranspose2d(conv(None, 3, 2, 1));
        let e = spec.check().unwrap_err();
        assert!(e.contains("model.decoder[4]") && e.contains("27×27"), "{e}");
    }

    #[test]
    fn normal_init_has_the_asked_spread_and_zero_biases() {
        let spec = ModelSpec {
            init: Init::Normal { std: 0.01 },
            ..ModelSpec::mnist(512, 2)
        };
        let p = init_params(&spec, 3);
        let l = spec.layout().encoder[0];
        let w = &p[l.w..l.b];
        let var = w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((var.sqrt() - 0.01).abs() < 2e-4, "std {}", var.sqrt());
        assert!(p[l.b..l.b + l.out].iter().all(|&b| b == 0.0));
    }
}
