//! Recording an MLP of any depth as matmul dispatches over the resident parameters: the forward
//! pass (bias and activation fused into each matmul's epilogue) and the backward pass (weight and
//! bias gradients, and the input gradient with the activation's derivative fused). Used by the
//! trainer and by inference, so both run exactly the layers the spec lists.

use super::kernels::{grid_1d, ColsumParams, Dispatch, Kernels, MatmulParams};
use super::GpuContext;
use crate::spec::{Activation, Linear};

/// An MLP's activation buffers for a fixed number of rows.
pub struct MlpBuffers {
    /// Output of each hidden layer `[rows, width]`.
    pub hidden: Vec<wgpu::Buffer>,
    /// Output of the last layer `[rows, out]`.
    pub out: wgpu::Buffer,
    /// dLoss/d(hidden layer output), the backward pass's scratch.
    pub d_hidden: Vec<wgpu::Buffer>,
}

impl MlpBuffers {
    pub fn new(ctx: &GpuContext, label: &str, layers: &[Linear], rows: usize) -> Self {
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
    /// Y[rows, out] = X·Wᵀ + b (then `act`).
    pub fn linear(
        &self,
        l: &Linear,
        x: &wgpu::Buffer,
        rows: usize,
        y: &wgpu::Buffer,
        act: Option<Activation>,
    ) -> Dispatch {
        let p = MatmulParams::linear_forward(l, rows, act);
        let pb = self.params;
        Dispatch::new(
            self.ctx,
            &self.kernels.matmul,
            0,
            &p,
            &[(1, x), (2, pb), (3, pb), (4, pb), (5, y)],
            p.groups(),
        )
    }

    /// dX[rows, in] = dY·W, times `act`'s derivative at `h` when the layer's input h came out of
    /// an activation.
    pub fn input_grad(
        &self,
        l: &Linear,
        dy: &wgpu::Buffer,
        rows: usize,
        h: Option<(&wgpu::Buffer, Activation)>,
        dx: &wgpu::Buffer,
    ) -> Dispatch {
        let p = MatmulParams::linear_input_grad(l, rows, h.map(|(_, a)| a));
        let (pb, aux) = (self.params, h.map_or(dy, |(b, _)| b));
        Dispatch::new(
            self.ctx,
            &self.kernels.matmul,
            0,
            &p,
            &[(1, dy), (2, pb), (3, pb), (4, aux), (5, dx)],
            p.groups(),
        )
    }

    /// dW[out, in] = dYᵀ·X into `grads`, and db = colsum(dY).
    pub fn weight_grad(
        &self,
        l: &Linear,
        dy: &wgpu::Buffer,
        x: &wgpu::Buffer,
        rows: usize,
        grads: &wgpu::Buffer,
    ) -> [Dispatch; 2] {
        let p = MatmulParams::linear_weight_grad(l, rows);
        let mm = Dispatch::new(
            self.ctx,
            &self.kernels.matmul,
            0,
            &p,
            &[(1, dy), (2, x), (3, dy), (4, dy), (5, grads)],
            p.groups(),
        );
        [mm, self.colsum(dy, rows, l.out, l.b, grads)]
    }

    /// grads[off + j] = Σ_i dy[i, j] for a `[rows, cols]` gradient.
    pub fn colsum(
        &self,
        dy: &wgpu::Buffer,
        rows: usize,
        cols: usize,
        off: usize,
        grads: &wgpu::Buffer,
    ) -> Dispatch {
        let cp = ColsumParams {
            rows: rows as u32,
            cols: cols as u32,
            in_rs: cols as u32,
            out_off: off as u32,
        };
        Dispatch::new(
            self.ctx,
            &self.kernels.colsum,
            0,
            &cp,
            &[(1, dy), (2, grads)],
            grid_1d(cols, 64),
        )
    }

    /// Every layer; the activation follows all but the last.
    pub fn forward(
        &self,
        layers: &[Linear],
        act: Activation,
        x: &wgpu::Buffer,
        rows: usize,
        bufs: &MlpBuffers,
    ) -> Vec<Dispatch> {
        let last = layers.len() - 1;
        layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let input = if i == 0 { x } else { &bufs.hidden[i - 1] };
                if i == last {
                    self.linear(l, input, rows, &bufs.out, None)
                } else {
                    self.linear(l, input, rows, &bufs.hidden[i], Some(act))
                }
            })
            .collect()
    }

    /// Backward from dLoss/d out `d_out`: weight gradients into `grads` (if given), dLoss/dx
    /// into `dx` (if given).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        layers: &[Linear],
        act: Activation,
        x: &wgpu::Buffer,
        rows: usize,
        bufs: &MlpBuffers,
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
