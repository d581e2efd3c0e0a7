//! The linear baselines of the lecture notes: PCA (a linear autoencoder) and probabilistic PCA
//! (Tipping & Bishop 1999, its stochastic version with an exact likelihood), the references a
//! linear VAE should reach. The eigen-decomposition is nalgebra's symmetric one.

use nalgebra::{DMatrix, SymmetricEigen};

use crate::error::{Error, Result};

/// Principal components of a data set: its mean, and the eigenvalues (descending) and unit
/// eigenvectors of its covariance (1/N)·Σ (x − μ)(x − μ)ᵀ.
#[derive(Clone, Debug)]
pub struct Pca {
    pub mean: Vec<f64>,
    pub eigenvalues: Vec<f64>,
    /// `components[i]` is the i-th principal direction (length D).
    pub components: Vec<Vec<f64>>,
}

impl Pca {
    /// PCA of `x` `[n, d]`. Errors: fewer than two points, or non-finite values.
    pub fn fit(x: &[f32], d: usize) -> Result<Self> {
        let n = x.len().checked_div(d).unwrap_or(0);
        if n < 2 || x.len() != n * d {
            return Err(Error::Usage(format!(
                "PCA needs at least two points of dimension {d}, got {} values",
                x.len()
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Usage(format!("PCA: value {i} is {}", x[i])));
        }
        let mut mean = vec![0.0f64; d];
        for row in x.chunks(d) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let centred: Vec<f64> = x
            .chunks(d)
            .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| v as f64 - m))
            .collect();
        // Covariance as one GEMM (Xᵀ·X / n); the d×d eigen-decomposition is nalgebra's.
        let mut cov = vec![0.0f64; d * d];
        unsafe {
            matrixmultiply::dgemm(
                d,
                n,
                d,
                1.0 / n as f64,
                centred.as_ptr(),
                1,
                d as isize,
                centred.as_ptr(),
                d as isize,
                1,
                0.0,
                cov.as_mut_ptr(),
                d as isize,
                1,
            );
        }
        // Coordinates that never vary (MNIST's border pixels) form an exact zero block of the
        // covariance: eigenvalue 0 on each unit vector. They are left out of the decomposition,
        // where they made nalgebra's symmetric QR return NaN eigenpairs for a few rows (2, 5 or
        // 10 MNIST images), which sorted first and read as "0.00% explained" and NaN errors.
        let varying: Vec<usize> = (0..d).filter(|&j| cov[j * d + j] > 0.0).collect();
        if varying.is_empty() {
            return Err(Error::Usage(format!(
                "PCA: the {n} rows are all equal; there is no variance to find components of"
            )));
        }
        let m = varying.len();
        let sub: Vec<f64> = varying
            .iter()
            .flat_map(|&i| varying.iter().map(move |&j| (i, j)))
            .map(|(i, j)| cov[i * d + j])
            .collect();
        let eig = SymmetricEigen::new(DMatrix::from_row_slice(m, m, &sub));
        if eig
            .eigenvalues
            .iter()
            .chain(eig.eigenvectors.iter())
            .any(|v| !v.is_finite())
        {
            return Err(Error::Data(format!(
                "PCA: the eigen-decomposition of the {m}×{m} covariance of {n} rows gave \
                 non-finite values; fit on more rows"
            )));
        }
        // (eigenvalue, direction) pairs: the decomposed block's, then a zero per constant
        // coordinate. Rounding can leave the smallest eigenvalues of a singular covariance at −1e-17.
        let mut pairs: Vec<(f64, Vec<f64>)> = (0..m)
            .map(|c| {
                let mut u = vec![0.0; d];
                for (r, &j) in varying.iter().enumerate() {
                    u[j] = eig.eigenvectors[(r, c)];
                }
                (eig.eigenvalues[c].max(0.0), u)
            })
            .collect();
        pairs.extend((0..d).filter(|&j| cov[j * d + j] <= 0.0).map(|j| {
            let mut u = vec![0.0; d];
            u[j] = 1.0;
            (0.0, u)
        }));
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (eigenvalues, components) = pairs.into_iter().unzip();
        Ok(Self {
            mean,
            eigenvalues,
            components,
        })
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The coordinates of `x` (length D) on the first `k` components.
    pub fn project(&self, x: &[f32], k: usize) -> Vec<f64> {
        self.components[..k]
            .iter()
            .map(|u| {
                u.iter()
                    .zip(x)
                    .zip(&self.mean)
                    .map(|((ui, &xi), m)| ui * (xi as f64 - m))
                    .sum()
            })
            .collect()
    }

    /// μ + Σᵢ cᵢ·uᵢ: the point of the k-component subspace with coordinates `coords`.
    pub fn reconstruct(&self, coords: &[f64]) -> Vec<f64> {
        let mut out = self.mean.clone();
        for (c, u) in coords.iter().zip(&self.components) {
            out.iter_mut().zip(u).for_each(|(o, ui)| *o += c * ui);
        }
        out
    }

    /// Fraction of the total variance on the first `k` components.
    pub fn explained(&self, k: usize) -> f64 {
        let total: f64 = self.eigenvalues.iter().sum();
        self.eigenvalues[..k].iter().sum::<f64>() / total
    }
}

/// The maximum-likelihood probabilistic PCA with k components: x = μ + W·z + ε, z ~ N(0, I_k),
/// ε ~ N(0, σ²I), so x ~ N(μ, C) with C = WWᵀ + σ²I. In closed form (Tipping & Bishop):
/// σ² = the mean of the D − k discarded eigenvalues, W = U_k (Λ_k − σ²I)^½.
#[derive(Clone, Debug)]
pub struct Ppca {
    pub mean: Vec<f64>,
    pub sigma2: f64,
    /// The k leading eigenvalues λᵢ and their directions uᵢ.
    pub eigenvalues: Vec<f64>,
    pub components: Vec<Vec<f64>>,
}

impl Ppca {
    /// Errors: k not in 1..D, or σ² = 0 (the data lie in a k-dimensional subspace, where the
    /// density is degenerate).
    pub fn from_pca(pca: &Pca, k: usize) -> Result<Self> {
        let d = pca.dim();
        if k == 0 || k >= d {
            return Err(Error::Usage(format!(
                "--components {k}: probabilistic PCA needs 1..{d} components"
            )));
        }
        let sigma2 = pca.eigenvalues[k..].iter().sum::<f64>() / (d - k) as f64;
        // Below 1e-12 of the largest eigenvalue σ² is rounding: the data lie in the subspace.
        if !(sigma2 > 1e-12 * pca.eigenvalues[0] && sigma2.is_finite()) {
            let rank = pca
                .eigenvalues
                .iter()
                .filter(|&&l| l > 1e-12 * pca.eigenvalues[0])
                .count();
            return Err(Error::Usage(format!(
                "probabilistic PCA with {k} component(s): the data vary in only {rank} \
                 direction(s), so there is no variance outside the components (σ² = {sigma2:.1e}); \
                 {k} component(s) need data that vary in at least {} directions: fewer \
                 components, or at least {} training rows (N rows span at most N − 1 directions)",
                k + 1,
                k + 2
            )));
        }
        Ok(Self {
            mean: pca.mean.clone(),
            sigma2,
            eigenvalues: pca.eigenvalues[..k].to_vec(),
            components: pca.components[..k].to_vec(),
        })
    }

    /// W `[D, k]` row-major: column i is uᵢ·√(λᵢ − σ²).
    pub fn w(&self) -> Vec<f64> {
        let (d, k) = (self.mean.len(), self.eigenvalues.len());
        let mut w = vec![0.0; d * k];
        for (i, (u, l)) in self.components.iter().zip(&self.eigenvalues).enumerate() {
            let s = (l - self.sigma2).max(0.0).sqrt();
            for j in 0..d {
                w[j * k + i] = u[j] * s;
            }
        }
        w
    }

    /// log N(x; μ, C), exactly, from the eigen-decomposition: C has eigenvalues λᵢ on uᵢ and σ²
    /// on the rest, so log|C| = Σ ln λᵢ + (D − k) ln σ² and
    /// x̃ᵀC⁻¹x̃ = (‖x̃‖² − Σ (1 − σ²/λᵢ)(uᵢᵀx̃)²)/σ², x̃ = x − μ.
    pub fn log_likelihood(&self, x: &[f32]) -> f64 {
        let d = self.mean.len();
        let k = self.eigenvalues.len();
        let centred: Vec<f64> = x
            .iter()
            .zip(&self.mean)
            .map(|(&v, m)| v as f64 - m)
            .collect();
        let norm2: f64 = centred.iter().map(|v| v * v).sum();
        let mut quad = norm2;
        let mut log_det = (d - k) as f64 * self.sigma2.ln();
        for (u, &l) in self.components.iter().zip(&self.eigenvalues) {
            let c: f64 = u.iter().zip(&centred).map(|(a, b)| a * b).sum();
            quad -= (1.0 - self.sigma2 / l) * c * c;
            log_det += l.ln();
        }
        -0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + log_det + quad / self.sigma2)
    }

    /// The mean of p(z|x) = N(M⁻¹Wᵀx̃, σ²M⁻¹), M = WᵀW + σ²I (diagonal here: λᵢ).
    pub fn posterior_mean(&self, x: &[f32]) -> Vec<f64> {
        self.components
            .iter()
            .zip(&self.eigenvalues)
            .map(|(u, &l)| {
                let c: f64 = u
                    .iter()
                    .zip(x)
                    .zip(&self.mean)
                    .map(|((ui, &xi), m)| ui * (xi as f64 - m))
                    .sum();
                (l - self.sigma2).max(0.0).sqrt() / l * c
            })
            .collect()
    }
}
