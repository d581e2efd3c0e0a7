//! A network of any depth on the reference path, layer by layer through [`layers`]: the forward
//! pass (the activation after every layer but the last) and the backward pass (weight and bias
//! gradients, the activation's derivative taken from each hidden layer's output). GPU twin:
//! `gpu::network`.

use super::layers;
use super::Scalar;
use crate::family::activation::activation_grad_from_output;
use crate::spec::{Activation, Layer};

/// A network's activations for `rows` inputs: the output of every hidden layer, and the last layer's.
#[derive(Clone, Debug)]
pub struct NetworkActivations<T> {
    pub hidden: Vec<Vec<T>>,
    pub out: Vec<T>,
    /// Gradients with respect to each hidden layer's output (the backward pass's scratch).
    pub d_hidden: Vec<Vec<T>>,
}

impl<T: Scalar> NetworkActivations<T> {
    pub fn new(layers: &[Layer], rows: usize) -> Self {
        let (last, hidden) = layers.split_last().expect("an output layer");
        let h: Vec<Vec<T>> = hidden
            .iter()
            .map(|l| vec![T::zero(); rows * l.out])
            .collect();
        Self {
            d_hidden: h.clone(),
            hidden: h,
            out: vec![T::zero(); rows * last.out],
        }
    }
}

/// Every layer of a network; the activation follows all but the last.
pub fn forward<T: Scalar>(
    layers: &[Layer],
    act: Activation,
    params: &[T],
    x: &[T],
    rows: usize,
    a: &mut NetworkActivations<T>,
) {
    let last = layers.len() - 1;
    for (i, l) in layers.iter().enumerate() {
        // hidden[..i] holds this layer's input, hidden[i] (or out) its output.
        let (done, rest) = a.hidden.split_at_mut(i);
        let input: &[T] = if i == 0 { x } else { &done[i - 1] };
        if i == last {
            layers::forward(l, params, input, rows, &mut a.out, None);
        } else {
            layers::forward(l, params, input, rows, &mut rest[0], Some(act));
        }
    }
}

/// Backward through a network from dLoss/d out: weight and bias gradients into `grads` (if given)
/// and dLoss/dx into `dx` (if given). Each hidden layer's gradient is multiplied by the
/// activation's derivative, taken from the layer's output (the matmul's backward epilogue).
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Scalar>(
    layers: &[Layer],
    act: Activation,
    params: &[T],
    x: &[T],
    rows: usize,
    a: &mut NetworkActivations<T>,
    d_out: &[T],
    mut grads: Option<&mut [T]>,
    mut dx: Option<&mut [T]>,
) {
    let last = layers.len() - 1;
    for i in (0..layers.len()).rev() {
        let l = &layers[i];
        // d_hidden[i - 1] receives dLoss/d(this layer's input); d_hidden[i] is this layer's dY.
        let (below, here) = a.d_hidden.split_at_mut(i);
        let dy: &[T] = if i == last { d_out } else { &here[0] };
        let input: &[T] = if i == 0 { x } else { &a.hidden[i - 1] };
        if let Some(g) = grads.as_deref_mut() {
            layers::param_grads(l, input, dy, rows, g);
        }
        if i > 0 {
            let dh = &mut below[i - 1];
            layers::input_grad(l, params, dy, rows, dh);
            for (d, &h) in dh.iter_mut().zip(&a.hidden[i - 1]) {
                *d = *d * activation_grad_from_output(act, h);
            }
        } else if let Some(dx) = dx.as_deref_mut() {
            layers::input_grad(l, params, dy, rows, dx);
        }
    }
}
