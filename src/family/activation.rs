//! Hidden-layer nonlinearities and their derivatives expressed through the output (the backward
//! pass keeps only a layer's output). Twins of `activate` / `activation_grad_from_output` in
//! `shaders/activations.wgsl`.

use crate::cpu::Scalar;
use serde::{Deserialize, Serialize};

/// Nonlinearity after every hidden layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// tanh (Kingma & Welling's choice)
    #[default]
    Tanh,
    /// max(0, x)
    Relu,
    /// 1 / (1 + e^-x)
    Sigmoid,
}

impl Activation {
    /// The code of this activation in the GEMM epilogue (`shaders/tile.wgsl`).
    pub fn code(self) -> u32 {
        match self {
            Activation::Tanh => 1,
            Activation::Relu => 2,
            Activation::Sigmoid => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "ReLU",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// tanh as activations.wgsl computes it: through exp(-2|x|), which cannot overflow and is several
/// times faster than libm's expm1-based tanh (that was 18% of a CPU epoch). Near zero, where
/// 1 - e^(-2|x|) would cancel, the Taylor series to x⁷ is used instead. Both forms are computed
/// and one is chosen (a select, not a branch), so that a loop of tanh vectorizes.
#[inline(always)]
pub fn tanh_stable<T: Scalar>(x: T) -> T {
    let a = x.abs();
    let a2 = a * a;
    let series = a
        * (T::one()
            - a2 * (T::from_f64(1.0 / 3.0)
                - a2 * (T::from_f64(2.0 / 15.0) - a2 * T::from_f64(17.0 / 315.0))));
    let t = (T::from_f64(-2.0) * a).exp_inline();
    let closed = (T::one() - t) / (T::one() + t);
    let y = if a < T::from_f64(0.03) {
        series
    } else {
        closed
    };
    if x >= T::zero() {
        y
    } else {
        -y
    }
}

/// Logistic sigmoid evaluated on the side that cannot overflow.
#[inline(always)]
pub fn sigmoid<T: Scalar>(l: T) -> T {
    let e = (-l.abs()).exp();
    if l >= T::zero() {
        T::one() / (T::one() + e)
    } else {
        e / (T::one() + e)
    }
}

/// log(1 + e^l) without overflow: max(l, 0) + log(1 + e^-|l|).
#[inline(always)]
pub fn softplus<T: Scalar>(l: T) -> T {
    l.max(T::zero()) + (T::one() + (-l.abs()).exp()).ln()
}

#[inline(always)]
pub fn activate<T: Scalar>(act: Activation, x: T) -> T {
    match act {
        Activation::Tanh => tanh_stable(x),
        Activation::Relu => x.max(T::zero()),
        Activation::Sigmoid => sigmoid(x),
    }
}

/// The derivative of the activation at the input that produced output `h`.
pub fn activation_grad_from_output<T: Scalar>(act: Activation, h: T) -> T {
    match act {
        Activation::Tanh => T::one() - h * h,
        Activation::Relu => {
            if h > T::zero() {
                T::one()
            } else {
                T::zero()
            }
        }
        Activation::Sigmoid => h * (T::one() - h),
    }
}
