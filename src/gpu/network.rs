//! Recording a network of any depth as dispatches over the resident parameters, layer by layer
//! through [`layers::ops`] (linear layers as matmuls, convolutions as conv.wgsl's modes, each
//! with the bias and activation fused into its epilogue), and its backward pass (weight and bias
//! gradients, and the input gradient with the activation's derivative fused). Used by the trainer
//! and by inference, so both run exactly the layers the spec lists. CPU twin: `cpu::network`.

use super::kernels::{storage_zeroed, Dispatch};
use super::layers::{self, ops};
use super::recorder::Recorder;
use super::GpuContext;
use crate::spec::{Activation, Layer};

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
                    storage_zeroed(ctx, &format!("{label} {what}{}", i + 1), rows * l.out)
                })
                .collect()
        };
        Self {
            hidden: bufs("h"),
            d_hidden: bufs("dh"),
            out: storage_zeroed(ctx, &format!("{label} out"), rows * last.out),
        }
    }
}

/// Every layer on `rows` inputs `x`; the activation follows all but the last.
pub fn forward(
    rec: &Recorder,
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
            let kind = ops(&l.kind);
            if i == last {
                kind.forward(rec, l, input, rows, &bufs.out, None)
            } else {
                kind.forward(rec, l, input, rows, &bufs.hidden[i], Some(act))
            }
        })
        .collect()
}

/// Backward from dLoss/d out `d_out`, last layer first: weight and bias gradients into `grads`
/// (if given), dLoss/dx into `dx` (if given).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    rec: &Recorder,
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
            v.extend(layers::param_grads(rec, l, dy, input, rows, g));
        }
        if i > 0 {
            let h = (&bufs.hidden[i - 1], act);
            v.push(ops(&l.kind).input_grad(rec, l, dy, rows, Some(h), &bufs.d_hidden[i - 1]));
        } else if let Some(dx) = dx {
            v.push(ops(&l.kind).input_grad(rec, l, dy, rows, None, dx));
        }
    }
    v
}
