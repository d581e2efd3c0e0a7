//! Figures for models of real-valued vector data (the lecture notes' circle, a `--data-file`),
//! where digit grids make no sense: the data coloured by its true latent, samples coloured by
//! their z, the decoder's mean curve g(z) over the data, the encoder mean μ(x) as a colour map
//! over the plane, and for a 1-D latent the posterior p(z|x) against q(z|x) as densities.
//!
//! Plane figures use the first two coordinates; data with one coordinate get histograms.

use std::path::{Path, PathBuf};

use crate::data::DataSet;
use crate::error::{Error, Result};
use crate::inference::analysis::{grid_posteriors, LatentGrid};
use crate::inference::ModelOps;
use crate::report::plot::{self, DensityPanel, FieldGrid};
use crate::report::session::{PosteriorSpec, Session};

/// Values that colour a scatter of the first `n` rows of `set`: the latent that generated each
/// (the circle's z), or else its row number.
pub fn colouring(set: &DataSet, n: usize) -> (Vec<f32>, &'static str) {
    if set.truth.len() >= n {
        (set.truth[..n].to_vec(), "true z")
    } else {
        ((0..n).map(|i| i as f32).collect(), "row")
    }
}

/// A caption for test row `i` with values `x`: its coordinates (and its true z when known).
pub fn row_caption(set: &DataSet, x: &[f32], i: usize) -> String {
    let coords: Vec<String> = x.iter().take(3).map(|v| format!("{v:.2}")).collect();
    let more = if x.len() > 3 { ", …" } else { "" };
    let truth = set
        .truth
        .get(i)
        .map_or(String::new(), |z| format!(", generated at z = {z:.2}"));
    format!("test row {i}: x = ({}{more}){truth}", coords.join(", "))
}

/// What a title adds when captions show the z that generated each row: a VAE recovers that
/// latent only up to its sign and a smooth monotone warp, so a posterior peaking at +2.6 for a
/// row generated at −2.23 is no error.
pub fn truth_note(set: &DataSet) -> &'static str {
    if set.truth.is_empty() {
        ""
    } else {
        " (the learned z matches the generating z only up to sign and a monotone warp)"
    }
}

/// Rows as 2-D points (their first two coordinates).
fn plane(x: &[f32], d: usize) -> Vec<[f32; 2]> {
    x.chunks(d).map(|r| [r[0], r[1]]).collect()
}

/// The axis names of the plane the figures use.
fn axes(d: usize) -> (&'static str, &'static str, String) {
    let note = if d > 2 {
        format!(" (first 2 of {d} coordinates)")
    } else {
        String::new()
    };
    ("x₁", "x₂", note)
}

/// Histograms of the first coordinate of each list (data with D = 1).
fn histograms_1d(path: &Path, title: &str, lists: &[(&str, &[f32])]) -> Result<()> {
    let values: Vec<Vec<f64>> = lists
        .iter()
        .map(|(_, v)| v.iter().map(|&a| a as f64).collect())
        .collect();
    let panels: Vec<(&str, &[f64])> = lists
        .iter()
        .zip(&values)
        .map(|((name, _), v)| (*name, v.as_slice()))
        .collect();
    plot::histograms(path, title, &panels, 60)
}

/// Number of points in the vector-data scatters.
const SCATTER_POINTS: usize = 2000;

/// The test data coloured by the latent that generated it (or by row number).
pub fn data_figure(s: &mut Session, out: &Path) -> Result<PathBuf> {
    let d = s.dim();
    let (x, _) = s.test_images(SCATTER_POINTS);
    let path = out.join("data.png");
    if d == 1 {
        histograms_1d(&path, "Test data", &[("test rows", &x)])?;
        return Ok(path);
    }
    let (xl, yl, note) = axes(d);
    let (values, what) = colouring(&s.test, x.len() / d);
    plot::value_scatter(
        &path,
        &format!("{} test rows, coloured by {what}{note}", x.len() / d),
        xl,
        yl,
        &plane(&x, d),
        &values,
        what,
        &[],
        d == 2,
    )?;
    Ok(path)
}

/// Samples x ~ p(x|z), z ~ p(z) coloured by z₁, and for a 1-D latent the decoder's mean curve
/// g(z) for z in [−3, 3] drawn over the test data (the notes' figures).
pub fn samples(s: &mut Session, out: &Path) -> Result<Vec<PathBuf>> {
    let d = s.dim();
    let dz = s.latent();
    let z = s.prior_z(SCATTER_POINTS, 1);
    let x = s.decode_samples(&z, 1)?;
    let z_first: Vec<f32> = z.chunks(dz).map(|r| r[0]).collect();
    let path = out.join("prior_samples.png");
    if d == 1 {
        let (real, _) = s.test_images(SCATTER_POINTS);
        histograms_1d(
            &path,
            "Samples from the model beside the test data",
            &[("samples x ~ p(x|z), z ~ p(z)", &x), ("test rows", &real)],
        )?;
        return Ok(vec![path]);
    }
    let (xl, yl, note) = axes(d);
    let z_name = if dz == 1 { "z" } else { "z₁" };
    plot::value_scatter(
        &path,
        &format!("{SCATTER_POINTS} samples x ~ p(x|z), z ~ p(z), coloured by {z_name}{note}"),
        xl,
        yl,
        &plane(&x, d),
        &z_first,
        z_name,
        &[],
        d == 2,
    )?;
    let mut files = vec![path];
    if dz == 1 {
        files.push(decoder_curve(s, out)?);
    }
    Ok(files)
}

/// The decoder mean g(z) = E[x|z] for z on [−3, 3], over the test data coloured by true z.
pub fn decoder_curve(s: &mut Session, out: &Path) -> Result<PathBuf> {
    let d = s.dim();
    let steps = 301;
    let z: Vec<f32> = (0..steps)
        .map(|i| -3.0 + 6.0 * i as f32 / (steps - 1) as f32)
        .collect();
    let means = s.decode_means(&z)?;
    let curve: Vec<(f64, f64)> = means
        .chunks(d)
        .map(|m| (m[0] as f64, m[1] as f64))
        .collect();
    let (x, _) = s.test_images(SCATTER_POINTS);
    let (values, what) = colouring(&s.test, x.len() / d);
    let (xl, yl, note) = axes(d);
    let path = out.join("decoder_curve.png");
    plot::value_scatter(
        &path,
        &format!("Decoder mean g(z) for z ∈ [−3, 3] over the test data{note}"),
        xl,
        yl,
        &plane(&x, d),
        &values,
        what,
        &[("g(z) = E[x|z], z from −3 to 3", curve)],
        d == 2,
    )?;
    Ok(path)
}

/// Reconstruction means E[x|z], z ~ q(z|x), of the test rows, coloured by the encoder mean μ₁.
pub fn reconstructions(s: &mut Session, out: &Path) -> Result<Vec<PathBuf>> {
    let d = s.dim();
    let (x, _) = s.test_images(SCATTER_POINTS);
    let enc = s.ops.encode(&x)?;
    let z = s.sample_q(&enc, 2);
    let means = s.decode_means(&z)?;
    let path = out.join("reconstructions.png");
    if d == 1 {
        histograms_1d(
            &path,
            "Reconstructions through q(z|x) beside the test data",
            &[("E[x|z], z ~ q(z|x)", &means), ("test rows", &x)],
        )?;
        return Ok(vec![path]);
    }
    let mu_first: Vec<f32> = s.means(&enc).chunks(s.latent()).map(|r| r[0]).collect();
    let (xl, yl, note) = axes(d);
    plot::value_scatter(
        &path,
        &format!(
            "Reconstruction means E[x|z], z ~ q(z|x), of the test rows, coloured by μ₁(x){note}"
        ),
        xl,
        yl,
        &plane(&means, d),
        &mu_first,
        "μ₁(x), mean of q(z|x)",
        &[],
        d == 2,
    )?;
    Ok(vec![path])
}

/// The encoder mean μ₁(x) over a grid covering the test data (2-D data only), data overlaid.
pub fn encoder_map(s: &mut Session, out: &Path) -> Result<PathBuf> {
    let d = s.dim();
    if d != 2 {
        return Err(Error::Usage(format!(
            "the encoder map covers 2-D data and this model's rows have {d} values"
        )));
    }
    let (x, _) = s.test_images(SCATTER_POINTS);
    let (lo, hi) = x
        .chunks(2)
        .fold(([f32::MAX; 2], [f32::MIN; 2]), |(lo, hi), r| {
            (
                [lo[0].min(r[0]), lo[1].min(r[1])],
                [hi[0].max(r[0]), hi[1].max(r[1])],
            )
        });
    // A square window 10% wider than the data, so the circle stays round.
    let centre = [(lo[0] + hi[0]) as f64 / 2.0, (lo[1] + hi[1]) as f64 / 2.0];
    let half = 0.55 * (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-3) as f64;
    let n = 121;
    let h = 2.0 * half / (n - 1) as f64;
    let points: Vec<f32> = (0..n * n)
        .flat_map(|k| {
            let (i, j) = (k / n, k % n);
            [
                (centre[0] - half + j as f64 * h) as f32,
                (centre[1] - half + i as f64 * h) as f32,
            ]
        })
        .collect();
    let enc = s.ops.encode(&points)?;
    let values: Vec<f64> = s
        .means(&enc)
        .chunks(s.latent())
        .map(|r| r[0] as f64)
        .collect();
    let path = out.join("encoder_map.png");
    let z_name = if s.latent() == 1 { "μ(x)" } else { "μ₁(x)" };
    plot::field_map(
        &path,
        &format!("Encoder mean {z_name} of q(z|x) over the plane, test data as dots"),
        "x₁",
        "x₂",
        FieldGrid {
            values: &values,
            nx: n,
            ny: n,
            x_min: centre[0] - half,
            y_min: centre[1] - half,
            dx: h,
            dy: h,
        },
        z_name,
        &plane(&x, 2),
        true,
    )?;
    Ok(path)
}

/// For a 1-D latent: the encoder mean μ(x) of each test row against the z that generated it
/// (a recovered latent is a monotone curve, up to sign), coloured by q's standard deviation; a
/// histogram of μ(x) when the true z is unknown.
pub fn latent_1d(s: &mut Session, out: &Path, n: usize) -> Result<PathBuf> {
    let (x, labels) = s.test_images(n);
    let enc = s.ops.encode(&x)?;
    let mu = s.means(&enc);
    let path = out.join("latent_scatter.png");
    let rows = labels.len();
    if s.test.truth.len() >= rows {
        let posterior = s.ck.config.model.posterior;
        let points: Vec<[f32; 2]> = (0..rows).map(|i| [s.test.truth[i], mu[i]]).collect();
        let sd: Vec<f32> = enc
            .chunks(2)
            .map(|r| posterior.log_std_of_head(r[1]).exp())
            .collect();
        plot::value_scatter(
            &path,
            &format!(
                "Mean of q(z|x) against the generating z, {}",
                s.rows_note(rows)
            ),
            "generating z",
            "μ(x), mean of q(z|x)",
            &points,
            &sd,
            "standard deviation of q(z|x)",
            &[],
            false,
        )?;
    } else {
        let values: Vec<f64> = mu.iter().map(|&v| v as f64).collect();
        plot::histograms(
            &path,
            &format!("Means of q(z|x) (1-D latent) for {}", s.rows_note(rows)),
            &[("μ(x)", &values)],
            60,
        )?;
    }
    Ok(path)
}

/// Points of the zoomed 1-D grids the density figures are drawn from.
const DENSITY_POINTS: usize = 401;

/// For a 1-D latent: each posterior recomputed on a fine grid around its mass and q's ±5 scales,
/// drawn as a density beside q's.
pub fn posterior_densities(
    ops: &mut dyn ModelOps,
    path: &Path,
    title: &str,
    p_label: &str,
    q_label: &str,
    specs: &[PosteriorSpec],
) -> Result<()> {
    let mut curves = Vec::with_capacity(specs.len());
    for sp in specs {
        let (mu, scale) = (sp.q_mean[0], sp.q_scale[0]);
        let (mass_lo, mass_hi) = sp.post.mass_box(1e-4);
        let (lo, hi) = (
            mass_lo[0].min(mu - 5.0 * scale),
            mass_hi[0].max(mu + 5.0 * scale),
        );
        let h = (hi - lo) / (DENSITY_POINTS - 1) as f64;
        let grid = LatentGrid::square(lo, hi, h)?.for_latent(1)?;
        let fine = grid_posteriors(ops, &grid, sp.x, sp.mask)?.remove(0);
        let z: Vec<f64> = (0..grid.len()).map(|k| grid.point(k)[0]).collect();
        let p: Vec<f64> = fine.log_posterior().iter().map(|l| l.exp()).collect();
        let head = sp.q_family.head_of_scale(scale);
        let q: Vec<f64> = z
            .iter()
            .map(|&v| sp.q_family.log_density(v, mu, head).exp())
            .collect();
        curves.push((z, p, q));
    }
    let panels: Vec<DensityPanel> = specs
        .iter()
        .zip(&curves)
        .map(|(sp, (z, p, q))| DensityPanel {
            caption: &sp.caption,
            z,
            p,
            q,
            p_label,
            q_label,
        })
        .collect();
    plot::density_panels(path, title, "z", &panels, 3.min(specs.len().max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The circle's captions give the z a row was generated at, and titles say that the learned
    /// z matches it only up to sign (a posterior at +2.6 for a row generated at −2.23).
    #[test]
    fn captions_of_generated_rows_say_the_latent_is_recovered_up_to_sign() {
        let set = DataSet::real(2, vec![-0.7, -0.86], vec![-2.23]);
        let c = row_caption(&set, &[-0.7, -0.86], 0);
        assert!(
            c.ends_with("generated at z = -2.23") && !c.contains("true z"),
            "{c}"
        );
        assert!(truth_note(&set).contains("only up to sign"));
        assert_eq!(truth_note(&DataSet::real(2, vec![0.0, 0.0], vec![])), "");
    }
}
