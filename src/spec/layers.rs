//! The hidden layers a spec lists, and the shapes they pass between them.
//!
//! A spec's `encoder` and `decoder` are lists of [`LayerSpec`]s. In JSON a linear layer is its
//! width (`500`), so the MLP specs written before convolutions existed read unchanged; the other
//! layers are one-key objects in PyTorch's terms:
//!
//! ```json
//! {"conv2d": {"out": 32, "kernel": 4, "stride": 2, "padding": 1}}
//! {"conv_transpose2d": {"out": 32, "kernel": 4, "stride": 2, "padding": 1}}
//! {"reshape": [64, 7, 7]}
//! ```
//!
//! Activations are stored row by row in PyTorch's NCHW order, so `flatten` needs no layer: a
//! linear layer after a convolution reads the `C·H·W` values of its row as they lie. A
//! `conv_transpose2d` without `out` may end the decoder: it is then the output layer, with as many
//! channels as the likelihood needs per pixel.

use serde::{Deserialize, Serialize};

/// The geometry of a (transposed) convolution in a spec: output channels, square kernel, stride
/// and zero padding, as in `nn.Conv2d(in, out, kernel, stride, padding)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvSpec {
    /// Output channels; left out only on a `conv_transpose2d` that ends the decoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<usize>,
    pub kernel: usize,
    #[serde(default = "one")]
    pub stride: usize,
    #[serde(default)]
    pub padding: usize,
}

fn one() -> usize {
    1
}

/// One hidden layer of a spec; every layer but a reshape is followed by the spec's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LayerRepr", into = "LayerRepr")]
pub enum LayerSpec {
    /// `nn.Linear` to this many features (a row is flattened first).
    Linear(usize),
    /// `nn.Conv2d`, weight `[out, in, k, k]`.
    Conv2d(ConvSpec),
    /// `nn.ConvTranspose2d`, weight `[in, out, k, k]`.
    ConvTranspose2d(ConvSpec),
    /// Views a row as `[channels, height, width]` (no parameters, no activation).
    Reshape([usize; 3]),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum LayerRepr {
    Width(usize),
    Shaped(ShapedRepr),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ShapedRepr {
    Conv2d(ConvSpec),
    ConvTranspose2d(ConvSpec),
    Reshape([usize; 3]),
}

impl From<LayerRepr> for LayerSpec {
    fn from(r: LayerRepr) -> Self {
        match r {
            LayerRepr::Width(w) => LayerSpec::Linear(w),
            LayerRepr::Shaped(ShapedRepr::Conv2d(c)) => LayerSpec::Conv2d(c),
            LayerRepr::Shaped(ShapedRepr::ConvTranspose2d(c)) => LayerSpec::ConvTranspose2d(c),
            LayerRepr::Shaped(ShapedRepr::Reshape(s)) => LayerSpec::Reshape(s),
        }
    }
}

impl From<LayerSpec> for LayerRepr {
    fn from(l: LayerSpec) -> Self {
        match l {
            LayerSpec::Linear(w) => LayerRepr::Width(w),
            LayerSpec::Conv2d(c) => LayerRepr::Shaped(ShapedRepr::Conv2d(c)),
            LayerSpec::ConvTranspose2d(c) => LayerRepr::Shaped(ShapedRepr::ConvTranspose2d(c)),
            LayerSpec::Reshape(s) => LayerRepr::Shaped(ShapedRepr::Reshape(s)),
        }
    }
}

/// Linear layers of these widths.
pub fn linear(widths: &[usize]) -> Vec<LayerSpec> {
    widths.iter().map(|&n| LayerSpec::Linear(n)).collect()
}

/// The shape of one row between layers: a flat vector, or channels × height × width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Flat(usize),
    Image([usize; 3]),
}

impl Shape {
    pub fn len(&self) -> usize {
        match *self {
            Shape::Flat(n) => n,
            Shape::Image([c, h, w]) => c * h * w,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A (transposed) convolution placed in a network, as the two sides of the equivalent `Conv2d`:
///
/// - `full`: the side a `Conv2d` reads in k×k windows — a `Conv2d`'s input, a
///   `ConvTranspose2d`'s output;
/// - `reduced`: one value per window position, `conv2d(full)` — a `Conv2d`'s output, a
///   `ConvTranspose2d`'s input. With 2·padding < kernel (every architecture here) it is no larger
///   than `full` along either axis.
///
/// A `ConvTranspose2d` is the `Conv2d` operator run backwards, from `reduced` to `full`, with its
/// `[in, out, k, k]` weight lying in memory exactly like the `[out, in, k, k]` weight of that
/// `Conv2d`. So both layers need the same three kernels — gather (full → reduced), scatter
/// (reduced → full) and the weight gradient — with the roles of input and output swapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// `[channels, height, width]` of the windowed side.
    pub full: [usize; 3],
    /// `[channels, height, width]` of the side with one value per window, `conv2d(full)`.
    pub reduced: [usize; 3],
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvGeometry {
    /// Weights `reduced channels × full channels × k × k`.
    pub fn weight_len(&self) -> usize {
        self.reduced[0] * self.full[0] * self.kernel * self.kernel
    }

    /// The contraction length of the gather: full channels × k × k.
    pub fn patch_len(&self) -> usize {
        self.full[0] * self.kernel * self.kernel
    }

    pub fn full_len(&self) -> usize {
        self.full.iter().product()
    }

    pub fn reduced_len(&self) -> usize {
        self.reduced.iter().product()
    }
}

/// The output size of a convolution along one axis, or why there is none: the kernel must fit
/// inside the padded input and the stride must step exactly onto its far edge (so the transposed
/// layer that mirrors it gives the input size back).
pub fn conv_out(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<usize, String> {
    let padded = size + 2 * padding;
    if kernel == 0 || stride == 0 {
        return Err("kernel and stride must be at least 1".into());
    }
    if kernel > padded {
        return Err(format!(
            "kernel {kernel} is larger than the padded input ({size} + 2·{padding} = {padded})"
        ));
    }
    if !(padded - kernel).is_multiple_of(stride) {
        return Err(format!(
            "stride {stride} does not divide {size} + 2·{padding} − {kernel} = {}: the last \
             window would hang off the edge",
            padded - kernel
        ));
    }
    Ok((padded - kernel) / stride + 1)
}

/// The output size of a transposed convolution along one axis: (size − 1)·stride − 2·padding + k.
pub fn conv_transpose_out(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<usize, String> {
    if kernel == 0 || stride == 0 {
        return Err("kernel and stride must be at least 1".into());
    }
    let full = (size - 1) * stride + kernel;
    if full <= 2 * padding {
        return Err(format!(
            "padding {padding} removes the whole output ((size − 1)·stride + kernel = {full})"
        ));
    }
    Ok(full - 2 * padding)
}

/// The default convolutional VAE of `--arch conv` for `image` `[C, H, W]` (H and W divisible by
/// 4): encoder Conv(C→c1, k4, s2, p1) → Conv(c1→c2, k4, s2, p1) → flatten → `hidden` linear
/// layers; decoder the linear layers mirrored → Linear(c2·H/4·W/4) → reshape → ConvT(c2→c1, k4,
/// s2, p1) → ConvT(c1→likelihood channels, k4, s2, p1). Returns (encoder, decoder).
pub fn conv_arch(
    image: [usize; 3],
    channels: [usize; 2],
    hidden: &[usize],
) -> (Vec<LayerSpec>, Vec<LayerSpec>) {
    let [c1, c2] = channels;
    let down = |out| ConvSpec {
        out: Some(out),
        kernel: 4,
        stride: 2,
        padding: 1,
    };
    let (h, w) = (image[1] / 4, image[2] / 4);
    let mut encoder = vec![LayerSpec::Conv2d(down(c1)), LayerSpec::Conv2d(down(c2))];
    encoder.extend(hidden.iter().map(|&n| LayerSpec::Linear(n)));
    let mut decoder: Vec<LayerSpec> = hidden.iter().rev().map(|&n| LayerSpec::Linear(n)).collect();
    decoder.extend([
        LayerSpec::Linear(c2 * h * w),
        LayerSpec::Reshape([c2, h, w]),
        LayerSpec::ConvTranspose2d(down(c1)),
        LayerSpec::ConvTranspose2d(ConvSpec {
            out: None,
            ..down(0)
        }),
    ]);
    (encoder, decoder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_read_and_write_the_documented_json() {
        let text = r#"[500, {"conv2d": {"out": 32, "kernel": 4, "stride": 2, "padding": 1}},
                       {"conv_transpose2d": {"kernel": 3}}, {"reshape": [64, 7, 7]}]"#;
        let layers: Vec<LayerSpec> = serde_json::from_str(text).unwrap();
        assert_eq!(layers[0], LayerSpec::Linear(500));
        assert_eq!(
            layers[2],
            LayerSpec::ConvTranspose2d(ConvSpec {
                out: None,
                kernel: 3,
                stride: 1,
                padding: 0
            })
        );
        let back: Vec<LayerSpec> =
            serde_json::from_str(&serde_json::to_string(&layers).unwrap()).unwrap();
        assert_eq!(back, layers);
        assert!(serde_json::from_str::<LayerSpec>(r#"{"conv3d": {"kernel": 3}}"#).is_err());
    }

    #[test]
    fn output_sizes_follow_pytorch() {
        assert_eq!(conv_out(28, 4, 2, 1), Ok(14));
        assert_eq!(conv_out(7, 3, 1, 0), Ok(5));
        assert!(conv_out(28, 3, 2, 0)
            .unwrap_err()
            .contains("does not divide"));
        assert!(conv_out(2, 5, 1, 1).unwrap_err().contains("larger"));
        assert_eq!(conv_transpose_out(7, 4, 2, 1), Ok(14));
        assert_eq!(conv_transpose_out(5, 3, 1, 0), Ok(7));
    }
}
