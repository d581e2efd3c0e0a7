//! Bernoulli p(x|z) = λ^x (1−λ)^(1−x), λ = σ(l), from the decoder's logit l. On binarized pixels a
//! normalised likelihood; on grayscale targets (`bernoulli-ce`) the same formula is the
//! cross-entropy objective, not a density. Twin of `shaders/likelihood/bernoulli.wgsl`.

use super::{Likelihood, Member, Outputs};
use crate::cpu::Scalar;
use crate::data::representation::Representation;
use crate::family::activation::{sigmoid, softplus};

pub struct Bernoulli {
    /// `bernoulli-ce`: the same arithmetic on grayscale targets, an objective.
    cross_entropy: bool,
}

impl Bernoulli {
    pub const BINARY: Bernoulli = Bernoulli {
        cross_entropy: false,
    };
    pub const CROSS_ENTROPY: Bernoulli = Bernoulli {
        cross_entropy: true,
    };
}

impl Member for Bernoulli {
    fn spec(&self) -> Likelihood {
        if self.cross_entropy {
            Likelihood::BernoulliCe
        } else {
            Likelihood::Bernoulli
        }
    }

    fn name(&self) -> &'static str {
        if self.cross_entropy {
            "bernoulli-ce"
        } else {
            "bernoulli"
        }
    }

    fn help(&self) -> &'static str {
        if self.cross_entropy {
            "Bernoulli cross-entropy on grayscale targets (an objective, not a normalised likelihood)"
        } else {
            "Bernoulli on binarized pixels (Kingma & Welling)"
        }
    }

    fn describe(&self) -> String {
        if self.cross_entropy {
            "Bernoulli cross-entropy on grayscale targets (an objective, not a normalised log-likelihood)".into()
        } else {
            "Bernoulli p(x|z) on binarized pixels".into()
        }
    }

    fn models(&self) -> &'static str {
        if self.cross_entropy {
            "grayscale targets in [0, 1] (as a cross-entropy objective)"
        } else {
            "binarized pixels (for grayscale targets use bernoulli-ce or continuous-bernoulli)"
        }
    }

    fn representations(&self) -> &'static [Representation] {
        if self.cross_entropy {
            &[Representation::Grayscale]
        } else {
            &[Representation::Threshold, Representation::Stochastic]
        }
    }

    fn normalised(&self) -> bool {
        !self.cross_entropy
    }

    fn wgsl(&self) -> &'static str {
        include_str!("../../../shaders/likelihood/bernoulli.wgsl")
    }

    fn stats(&self) -> usize {
        1
    }

    /// x·l − softplus(l) and x − σ(l); one exp serves both (this loop is a large share of a CPU
    /// training step).
    fn log_prob_grad<T: Scalar>(
        &self,
        x: T,
        o: Outputs<T>,
        _free: T,
        mut grad: impl FnMut(usize, T),
    ) -> (T, T) {
        let l = o.get(0);
        let e = (-l.abs()).exp();
        let one_plus = T::one() + e;
        let sig = if l >= T::zero() {
            T::one() / one_plus
        } else {
            e / one_plus
        };
        grad(0, x - sig);
        (x * l - (l.max(T::zero()) + one_plus.ln()), T::zero())
    }

    fn sufficient<T: Scalar>(&self, x: T, t: &mut [T]) {
        t[0] = x;
    }

    fn natural<T: Scalar>(&self, o: Outputs<T>, _free: T, eta: &mut [T]) -> T {
        eta[0] = o.get(0);
        softplus(o.get(0))
    }

    fn mean(&self, o: Outputs<f64>, _free: f64) -> f64 {
        sigmoid(o.get(0))
    }

    fn sample(&self, o: Outputs<f64>, free: f64, u: f64, _n: f64) -> f64 {
        if u < self.mean(o, free) {
            1.0
        } else {
            0.0
        }
    }
}
