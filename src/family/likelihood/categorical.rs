//! Categorical p(x|z) over k equal-width bins of the 8-bit pixel value: byte v falls in bin
//! ⌊v·k/256⌋ (for k = 4: 0–63, 64–127, 128–191, 192–255). The decoder gives k logits per pixel;
//! log p = o_bin − logsumexp(o). Figures show the expected value with each bin at its midpoint
//! (c + ½)/k. Twin of `shaders/likelihood/categorical.wgsl`.

use super::{byte_of, Member, Outputs};
use crate::cpu::Scalar;

pub struct Categorical {
    bins: usize,
}

impl Categorical {
    pub fn new(bins: u32) -> Self {
        Self {
            bins: bins as usize,
        }
    }

    pub fn bin<T: Scalar>(&self, x: T) -> usize {
        (byte_of(x) as usize * self.bins) >> 8
    }

    fn log_sum_exp<T: Scalar>(&self, o: &Outputs<T>) -> T {
        let mut top = o.get(0);
        for c in 1..self.bins {
            top = top.max(o.get(c));
        }
        let mut s = T::zero();
        for c in 0..self.bins {
            s += (o.get(c) - top).exp();
        }
        top + s.ln()
    }

    fn probabilities(&self, o: &Outputs<f64>) -> Vec<f64> {
        let lse = self.log_sum_exp(o);
        (0..self.bins).map(|c| (o.get(c) - lse).exp()).collect()
    }
}

impl Member for Categorical {
    fn stats(&self) -> usize {
        self.bins
    }

    fn log_prob_grad<T: Scalar>(
        &self,
        x: T,
        o: Outputs<T>,
        _free: T,
        mut grad: impl FnMut(usize, T),
    ) -> (T, T) {
        let bin = self.bin(x);
        let lse = self.log_sum_exp(&o);
        for c in 0..self.bins {
            let hit = if c == bin { T::one() } else { T::zero() };
            grad(c, hit - (o.get(c) - lse).exp());
        }
        (o.get(bin) - lse, T::zero())
    }

    fn sufficient<T: Scalar>(&self, x: T, t: &mut [T]) {
        let bin = self.bin(x);
        for (c, v) in t.iter_mut().enumerate() {
            *v = if c == bin { T::one() } else { T::zero() };
        }
    }

    fn natural<T: Scalar>(&self, o: Outputs<T>, _free: T, eta: &mut [T]) -> T {
        for (c, e) in eta.iter_mut().enumerate() {
            *e = o.get(c);
        }
        self.log_sum_exp(&o)
    }

    fn mean(&self, o: Outputs<f64>, _free: f64) -> f64 {
        let k = self.bins as f64;
        self.probabilities(&o)
            .iter()
            .enumerate()
            .map(|(c, p)| p * (c as f64 + 0.5) / k)
            .sum()
    }

    fn sample(&self, o: Outputs<f64>, _free: f64, u: f64, _n: f64) -> f64 {
        let k = self.bins as f64;
        let mut acc = 0.0;
        for (c, p) in self.probabilities(&o).iter().enumerate() {
            acc += p;
            if u < acc {
                return (c as f64 + 0.5) / k;
            }
        }
        (k - 0.5) / k
    }
}
