//! Recording a network of any depth as dispatches over the resident parameters: linear layers as
//! matmuls (`shaders/matmul.wgsl`), convolutions as implicit GEMMs (`shaders/conv.wgsl`), each
//! with the bias and activation fused into its epilogue; and the backward pass (weight and bias
//! gradients, and the input gradient with the activation's derivative fused). Used by the trainer
//! and by inference, so both run exactly the layers the spec lists.

use super::kernels::{
    epilogue, grid_1d, ColsumParams, ConvMode, ConvParams, Dispatch, Kernels, MatmulParams,
};
use super::GpuContext;
use crate::spec::layers::ConvGeometry;
use crate::spec::{Activation, Layer, LayerKind};

/// A network's activation buffers for a fixed number of rows.
pub struct NetworkBuffers {
    /// Output of each hidden layer `[rows, width]`.
    pub hidden: Vec<wgpu::Buffer>,
    /// Output of the last layer `[rows, out]`.
    pub out: wgpu::Buffer,
    /// dLoss/d(hidden layer output), the backward pass's scratch.
    pub d_hidden: Vec<wgpu::Buffer>,
}

impl NetworkBuffers {
    pub fn new(ctx: &GpuContext, label: &str, layers: &[Layer], rows: usize) -> Self {
        let (last, hidden) = layers.split_last().expect("an output layer");
        let bufs = |what: &str| {
            hidden
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    super::kernels::storage_zeroed(
                        ctx,
                        &format!("{label} {what}{}", i + 1),
                        rows * l.out,
                    )
                })
                .collect()
        };
        Self {
            hidden: bufs("h"),
            d_hidden: bufs("dh"),
            out: super::kernels::storage_zeroed(ctx, &format!("{label} out"), rows * last.out),
        }
    }
}

/// Records dispatches against one parameter buffer.
pub struct Recorder<'a> {
    pub ctx: &'a GpuContext,
    pub kernels: &'a Kernels,
    pub params: &'a wgpu::Buffer,
}

impl Recorder<'_> {
    /// One conv.wgsl dispatch: `source` and `other` as the mode reads them, `aux` for the
    /// activation's backward, into `dest`.
    fn conv(
        &self,
        p: ConvParams,
        source: &wgpu::Buffer,
        other: &wgpu::Buffer,
        aux: &wgpu::Buffer,
        dest: &wgpu::Buffer,
    ) -> Dispatch {
        Dispatch::new(
            self.ctx,
            p.pipeline(self.kernels),
            0,
            &p,
            &[(1, source), (2, other), (3, aux), (4, dest)],
            p.groups(),
        )
    }

    /// Y[rows, out] = layer(X) + b (then `act`).
    pub fn layer(
        &self,
        l: &Layer,
        x: &wgpu::Buffer,
        rows: usize,
        y: &wgpu::Buffer,
        act: Option<Activation>,
    ) -> Dispatch {
        let pb = self.params;
        let conv = |g: &ConvGeometry, mode| {
            let flags = epilogue::BIAS | epilogue::activate(act);
            self.conv(ConvParams::new(g, mode, rows, l.w, l.b, flags), x, pb, x, y)
        };
        match &l.kind {
            LayerKind::Linear => {
                let p = MatmulParams::linear_forward(l, rows, act);
                Dispatch::new(
                    self.ctx,
                    &self.kernels.matmul,
                    0,
                    &p,
                    &[(1, x), (2, pb), (3, pb), (4, pb), (5, y)],
                    p.groups(),
                )
            }
            LayerKind::Conv2d(g) => conv(g, ConvMode::Gather),
            LayerKind::ConvTranspose2d(g) => conv(g, ConvMode::Scatter),
        }
    }

    /// dX[rows, in] from dY (dY·W for a linear layer, the convolution run the other way for the
    /// others), times `act`'s derivative at `h` when the layer's input h came out of an
    /// activation.
    pub fn input_grad(
        &self,
        l: &Layer,
        dy: &wgpu::Buffer,
        rows: usize,
        h: Option<(&wgpu::Buffer, Activation)>,
        dx: &wgpu::Buffer,
    ) -> Dispatch {
        let (pb, aux) = (self.params, h.map_or(dy, |(b, _)| b));
        let act = h.map(|(_, a)| a);
        let conv = |g: &ConvGeometry, mode| {
            let flags = epilogue::activation_backward(act);
            self.conv(
                ConvParams::new(g, mode, rows, l.w, l.b, flags),
                dy,
                pb,
                aux,
                dx,
            )
        };
        match &l.kind {
            LayerKind::Linear => {
                let p = MatmulParams::linear_input_grad(l, rows, act);
                Dispatch::new(
                    self.ctx,
                    &self.kernels.matmul,
                    0,
                    &p,
                    &[(1, dy), (2, pb), (3, pb), (4, aux), (5, dx)],
                    p.groups(),
                )
            }
            LayerKind::Conv2d(g) => conv(g, ConvMode::Scatter),
            LayerKind::ConvTranspose2d(g) => conv(g, ConvMode::Gather),
        }
    }

    /// dW into `grads` at the weight's offset, and db = the per-channel sum of dY.
    pub fn weight_grad(
        &self,
        l: &Layer,
        dy: &wgpu::Buffer,
        x: &wgpu::Buffer,
        rows: usize,
        grads: &wgpu::Buffer,
    ) -> [Dispatch; 2] {
        let weight = |g: &ConvGeometry, image, result_grad| {
            let p = ConvParams::new(g, ConvMode::WeightGrad, rows, l.w, 0, 0);
            self.conv(p, image, result_grad, image, grads)
        };
        let dw = match &l.kind {
            LayerKind::Linear => {
                let p = MatmulParams::linear_weight_grad(l, rows);
                Dispatch::new(
                    self.ctx,
                    &self.kernels.matmul,
                    0,
                    &p,
                    &[(1, dy), (2, x), (3, dy), (4, dy), (5, grads)],
                    p.groups(),
                )
            }
            LayerKind::Conv2d(g) => weight(g, x, dy),
            LayerKind::ConvTranspose2d(g) => weight(g, dy, x),
        };
        let (channels, inner) = l.out_channels();
        [dw, self.colsum(dy, rows, channels, inner, l.b, grads)]
    }

    /// grads[off + c] = Σ_r Σ_s dy[r, c, s] for a gradient of `channels` × `inner` values per
    /// row: `colsum` for single columns, `channel_sum` (a workgroup per channel) otherwise.
    pub fn colsum(
        &self,
        dy: &wgpu::Buffer,
        rows: usize,
        channels: usize,
        inner: usize,
        off: usize,
        grads: &wgpu::Buffer,
    ) -> Dispatch {
        let cp = ColsumParams {
            rows: rows as u32,
            cols: channels as u32,
            in_rs: channels as u32,
            out_off: off as u32,
            inner: inner as u32,
            _pad: [0; 3],
        };
        let (pipeline, groups) = if inner == 1 {
            (&self.kernels.colsum, grid_1d(channels, 64))
        } else {
            (&self.kernels.channel_sum, grid_1d(channels, 1))
        };
        Dispatch::new(self.ctx, pipeline, 0, &cp, &[(1, dy), (2, grads)], groups)
    }

    /// Every layer; the activation follows all but the last.
    pub fn forward(
        &self,
        layers: &[Layer],
        act: Activation,
        x: &wgpu::Buffer,
        rows: usize,
        bufs: &NetworkBuffers,
    ) -> Vec<Dispatch> {
        let last = layers.len() - 1;
        layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let input = if i == 0 { x } else { &bufs.hidden[i - 1] };
                if i == last {
                    self.layer(l, input, rows, &bufs.out, None)
                } else {
                    self.layer(l, input, rows, &bufs.hidden[i], Some(act))
                }
            })
            .collect()
    }

    /// Backward from dLoss/d out `d_out`: weight gradients into `grads` (if given), dLoss/dx
    /// into `dx` (if given).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        layers: &[Layer],
        act: Activation,
        x: &wgpu::Buffer,
        rows: usize,
        bufs: &NetworkBuffers,
        d_out: &wgpu::Buffer,
        grads: Option<&wgpu::Buffer>,
        dx: Option<&wgpu::Buffer>,
    ) -> Vec<Dispatch> {
        let last = layers.len() - 1;
        let mut v = Vec::new();
        for i in (0..layers.len()).rev() {
            let l = &layers[i];
            let dy = if i == last { d_out } else { &bufs.d_hidden[i] };
            let input = if i == 0 { x } else { &bufs.hidden[i - 1] };
            if let Some(g) = grads {
                v.extend(self.weight_grad(l, dy, input, rows, g));
            }
            if i > 0 {
                let h = (&bufs.hidden[i - 1], act);
                v.push(self.input_grad(l, dy, rows, Some(h), &bufs.d_hidden[i - 1]));
            } else if let Some(dx) = dx {
                v.push(self.input_grad(l, dy, rows, None, dx));
            }
        }
        v
    }
}
