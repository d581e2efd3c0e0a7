//! The lecture notes' synthetic circle (`seeds/004`, Part 2): z ~ N(0, 1) and
//! x = (cos z, sin z) + σ·ε with ε ~ N(0, I₂), so the data lie near a 1-D manifold that a VAE
//! with a 1-D latent can recover. Generated from Philox, so it is the same on every machine for
//! the same (n, seed, σ): analysis commands rebuild it from the checkpoint instead of storing it.

use super::{DataError, DataSet};
use crate::rng::{key_from_seed, normal4, stream};

/// Most rows `--n` may ask for (8 MB of values at 10⁶).
pub const MAX_ROWS: usize = 1_000_000;

/// `n` rows of the circle with noise level `noise`; row i's true latent is kept as its truth.
/// Row i uses the four normals of Philox counter (i, 0, 0, DATA): z, ε₁, ε₂ (the fourth unused).
pub fn generate(n: usize, seed: u64, noise: f32) -> Result<DataSet, DataError> {
    if !(2..=MAX_ROWS).contains(&n) {
        return Err(DataError(format!(
            "--n {n}: the circle needs between 2 and {MAX_ROWS} rows"
        )));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(DataError(format!(
            "--noise {noise} must be a finite number ≥ 0"
        )));
    }
    let key = key_from_seed(seed);
    let mut values = Vec::with_capacity(2 * n);
    let mut truth = Vec::with_capacity(n);
    for i in 0..n {
        let [z, e1, e2, _] = normal4([i as u32, 0, 0, stream::DATA], key);
        values.push(z.cos() + noise * e1);
        values.push(z.sin() + noise * e2);
        truth.push(z);
    }
    Ok(DataSet::real(2, values, truth))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_var(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
        let n = v.clone().count() as f64;
        let m = v.clone().sum::<f64>() / n;
        (m, v.map(|x| (x - m).powi(2)).sum::<f64>() / n)
    }

    #[test]
    fn deterministic_per_seed() {
        let a = generate(1000, 7, 0.1).unwrap();
        assert_eq!(a, generate(1000, 7, 0.1).unwrap());
        assert_ne!(a.values, generate(1000, 8, 0.1).unwrap().values);
        // A prefix of a longer set is the shorter set: row i depends on i alone.
        assert_eq!(generate(2000, 7, 0.1).unwrap().slice(0, 1000), a);
    }

    /// The stated statistics, at tolerances of about 4 standard errors for n = 200,000.
    #[test]
    fn has_the_stated_statistics() {
        let (n, sigma) = (200_000, 0.1f64);
        let set = generate(n, 0, sigma as f32).unwrap();
        let super::super::Values::Real(x) = &set.values else {
            panic!("real values expected")
        };
        // z ~ N(0, 1): mean 0 (s.e. 0.0022), variance 1 (s.e. 0.0032).
        let (mz, vz) = mean_var(set.truth.iter().map(|&z| z as f64));
        assert!(mz.abs() < 0.01 && (vz - 1.0).abs() < 0.015, "{mz} {vz}");
        // The residual from (cos z, sin z) is N(0, σ²) per coordinate, independent of z.
        for c in 0..2 {
            let res = (0..n).map(|i| {
                let z = set.truth[i] as f64;
                x[2 * i + c] as f64 - if c == 0 { z.cos() } else { z.sin() }
            });
            let (m, v) = mean_var(res);
            assert!(
                m.abs() < 0.001 && (v / (sigma * sigma) - 1.0).abs() < 0.015,
                "{c}: {m} {v}"
            );
        }
        // E[cos z] = e^{−1/2} for z ~ N(0, 1); E[sin z] = 0.
        let (m0, _) = mean_var((0..n).map(|i| x[2 * i] as f64));
        let (m1, _) = mean_var((0..n).map(|i| x[2 * i + 1] as f64));
        assert!(
            (m0 - (-0.5f64).exp()).abs() < 0.006 && m1.abs() < 0.006,
            "{m0} {m1}"
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(generate(1, 0, 0.1).unwrap_err().0.contains("--n 1"));
        assert!(generate(10, 0, f32::NAN).unwrap_err().0.contains("--noise"));
        assert!(generate(10, 0, -0.1).is_err());
        let flat = generate(10, 0, 0.0).unwrap();
        let super::super::Values::Real(x) = &flat.values else {
            panic!()
        };
        assert!((x[0].hypot(x[1]) - 1.0).abs() < 1e-6);
    }
}
