//! Categorical p(x|z) over k equal-width bins of the 8-bit pixel value: byte v falls in bin
//! ⌊v·k/256⌋ (for k = 4: 0–63, 64–127, 128–191, 192–255). The decoder gives k logits per pixel;
//! log p = o_bin − logsumexp(o). Figures show the expected value with each bin at its midpoint
//! (c + ½)/k. Twin of `shaders/likelihood/categorical.wgsl`.

use super::{byte_of, Likelihood, Member, Outputs};
use crate::cpu::Scalar;
use crate::data::representation::Representation;

/// The most bins: one per 8-bit value.
pub const MAX_BINS: u32 = 256;

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
    fn spec(&self) -> Likelihood {
        Likelihood::Categorical {
            bins: self.bins as u32,
        }
    }

    fn name(&self) -> &'static str {
        "categorical"
    }

    fn help(&self) -> &'static str {
        "Categorical over --bins equal-width pixel-value bins"
    }

    fn describe(&self) -> String {
        format!("categorical p(x|z) over {} pixel bins", self.bins)
    }

    fn models(&self) -> &'static str {
        "the 8-bit values themselves (already a distribution over 8-bit values: its bits/dim need no dequantization)"
    }

    fn channels(&self) -> usize {
        self.bins
    }

    fn check(&self) -> Result<(), String> {
        if !(2..=MAX_BINS as usize).contains(&self.bins) {
            return Err(format!(
                "--bins {}: the categorical likelihood needs 2..={MAX_BINS} bins (8-bit pixels have 256 values)",
                self.bins
            ));
        }
        Ok(())
    }

    fn representations(&self) -> &'static [Representation] {
        &[Representation::Grayscale]
    }

    /// Spread uniformly inside each of its k bins, it gives P(byte) = P(bin)·k/256.
    fn bits_offset(&self, r: Representation) -> Option<f64> {
        (r == Representation::Grayscale).then(|| (256.0 / self.bins as f64).ln())
    }

    fn options(&self) -> &'static [&'static str] {
        &["--bins"]
    }

    fn with_options(&self, o: &super::Options) -> Likelihood {
        Likelihood::Categorical {
            bins: o.bins.unwrap_or(self.bins as u32),
        }
    }

    fn option_values(&self) -> Vec<(&'static str, String)> {
        vec![("--bins", self.bins.to_string())]
    }

    fn examples(&self) -> Vec<Likelihood> {
        vec![Likelihood::Categorical { bins: 3 }]
    }

    fn wgsl(&self) -> &'static str {
        include_str!("../../../shaders/likelihood/categorical.wgsl")
    }

    fn wgsl_constants(&self) -> String {
        format!("const BINS: u32 = {}u;\n", self.bins)
    }

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
