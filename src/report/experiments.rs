//! `vae-gpu svi` and `vae-gpu estimators`: inference without the encoder (image completion) and
//! the variance of gradient estimators, with their figures and JSON/CSV summaries.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::{IMAGE_SIDE, PIXELS};
use crate::error::{Error, Result};
use crate::inference::analysis::{
    elbo_estimate, grid_posteriors, left_cols_mask, top_rows_mask, Estimate, LatentGrid,
};
use crate::inference::svi::{
    fit, gradient_estimators, EstimatorStats, SviFit, SviInit, SviOptions,
};
use crate::report::figures::{interleave, posterior_figure, q_row};
use crate::report::plot::{self, Panel};
use crate::report::session::{PosteriorSpec, Session, NO_LABEL};
use crate::rng::{noise_row, stream};
use crate::spec::LatentFamily;
use crate::training::checkpoint::write_atomic;

/// Which pixels SVI may look at.
#[derive(Clone, Debug, PartialEq)]
pub enum Observe {
    /// The whole image: reconstruction without the encoder.
    All,
    /// The top 14 rows.
    Top,
    /// The left 14 columns.
    Left,
    /// A 28×28 PNG: pixels brighter than 127 are observed.
    Custom(PathBuf),
}

impl Observe {
    pub fn parse(s: &str) -> Self {
        match s {
            "all" => Observe::All,
            "top" => Observe::Top,
            "left" => Observe::Left,
            path => Observe::Custom(PathBuf::from(path)),
        }
    }

    /// The name in output files: `all`, `top`, `left`, or `mask-<file stem>` for a PNG mask, so
    /// that fits with two different masks do not overwrite each other.
    pub fn name(&self) -> String {
        match self {
            Observe::All => "all".into(),
            Observe::Top => "top".into(),
            Observe::Left => "left".into(),
            Observe::Custom(p) => {
                let stem = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let safe: String = stem
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("mask-{safe}")
            }
        }
    }

    /// The observed-value mask (1 = observed) for rows of `dim` values; only `all` applies to
    /// data that are not 28×28 images.
    pub fn mask(&self, dim: usize) -> Result<Vec<f32>> {
        if dim != PIXELS && *self != Observe::All {
            return Err(Error::Usage(format!(
                "--observe {}: top, left and PNG masks cover 28×28 images, and this model's rows \
                 have {dim} values; use --observe all",
                self.name()
            )));
        }
        match self {
            Observe::All => Ok(vec![1.0; dim]),
            Observe::Top => Ok(top_rows_mask(IMAGE_SIDE / 2)),
            Observe::Left => Ok(left_cols_mask(IMAGE_SIDE / 2)),
            Observe::Custom(p) => {
                // A regular file of at most 1 MiB (a 28×28 PNG is a few hundred bytes): a FIFO
                // or a device is refused before any read.
                let bytes =
                    crate::data::input::read(p, 1 << 20).map_err(|e| unreadable_mask(p, e))?;
                mask_from_png(p, &bytes)
            }
        }
    }
}

fn unreadable_mask(p: &Path, e: impl std::fmt::Display) -> Error {
    Error::Usage(format!(
        "--observe {}: not a readable image ({e}); give all, top, left or a 28×28 PNG",
        p.display()
    ))
}

/// The observed-value mask of a PNG's bytes, read as `--observe FILE` reads the file `p` (which
/// names it in errors): 28×28 pixels, those brighter than 127 observed, at least one of them.
pub fn mask_from_png(p: &Path, bytes: &[u8]) -> Result<Vec<f32>> {
    use image::ImageDecoder as _;
    let decoder = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable_mask(p, e))?
        .into_decoder()
        .map_err(|e| unreadable_mask(p, e))?;
    // The size is checked before decoding: a header's claimed size allocates nothing.
    if decoder.dimensions() != (IMAGE_SIDE as u32, IMAGE_SIDE as u32) {
        return Err(Error::Usage(format!(
            "--observe {}: mask is {:?}, must be 28×28 pixels",
            p.display(),
            decoder.dimensions()
        )));
    }
    let img = image::DynamicImage::from_decoder(decoder)
        .map_err(|e| unreadable_mask(p, e))?
        .to_luma8();
    let m: Vec<f32> = img
        .pixels()
        .map(|p| if p.0[0] > 127 { 1.0 } else { 0.0 })
        .collect();
    if m.iter().all(|&v| v == 0.0) {
        return Err(Error::Usage(format!(
            "--observe {}: the mask observes no pixel (white = observed)",
            p.display()
        )));
    }
    Ok(m)
}

#[derive(Clone, Debug)]
pub struct SviRun {
    pub images: usize,
    pub observe: Observe,
    pub init: SviInit,
    pub opts: SviOptions,
    pub elbo_samples: usize,
}

/// One line of the SVI summary.
#[derive(Clone, Debug, Serialize)]
pub struct SviRow {
    pub image: usize,
    /// The digit (null for data without classes).
    pub label: Option<u8>,
    pub observe: String,
    pub steps: usize,
    pub converged: bool,
    /// q moved less than [`MIN_MOVE`](crate::inference::svi::MIN_MOVE) from its start: the
    /// learning rate is too small to fit anything (then `converged` is false).
    pub stalled: bool,
    /// Learning-rate drops the fit took (`--lr-drops`).
    pub lr_drops: usize,
    /// ELBO of the observed pixels under the fitted q (Monte Carlo, `elbo_samples` draws).
    pub elbo: f64,
    pub elbo_std_err: f64,
    /// The same for the encoder's q(z|x̃), x̃ = the image with unobserved pixels set to 0.
    pub encoder_elbo: f64,
    pub mu: Vec<f32>,
    pub sigma: Vec<f32>,
    /// KL(q ‖ p(z|x_obs)) on the integration grid (2-D latents only).
    pub kl_to_grid_posterior: Option<f64>,
    pub log_px_obs_grid: Option<f64>,
}

pub struct SviOutput {
    pub rows: Vec<SviRow>,
    pub files: Vec<PathBuf>,
    pub seconds: f64,
}

/// KL(q ‖ p) with q = N(μ, diag σ²) and p a grid posterior, both normalized on the grid.
fn kl_on_grid(grid: &LatentGrid, log_post: &[f64], mu: &[f32], sigma: &[f32]) -> f64 {
    let log_q: Vec<f64> = (0..grid.len())
        .map(|k| {
            let z = grid.coords(k);
            (0..grid.dims)
                .map(|d| {
                    LatentFamily::Gaussian.log_density(
                        z[d],
                        mu[d] as f64,
                        2.0 * (sigma[d] as f64).ln(),
                    )
                })
                .sum()
        })
        .collect();
    let log_zq = crate::inference::analysis::log_integral(&log_q, grid);
    let area = grid.cell_area();
    log_q
        .iter()
        .zip(log_post)
        .map(|(&lq, &lp)| {
            let q = (lq - log_zq).exp() * area;
            if q > 0.0 {
                q * (lq - log_zq - lp)
            } else {
                0.0
            }
        })
        .sum()
}

/// Fits q for the first `images` test images from their observed pixels, and writes the
/// completion figure, the posterior figure (2-D latents) and the summary as JSON and CSV.
pub fn svi(
    s: &mut Session,
    out: &Path,
    run: &SviRun,
    progress: &mut dyn FnMut(usize),
) -> Result<SviOutput> {
    let t0 = std::time::Instant::now();
    let (dz, d) = (s.ck.config.model.latent, s.dim());
    let mask = run.observe.mask(d)?;
    let (x, labels) = s.test_images(run.images);
    let n = labels.len();
    let masks: Vec<f32> = (0..n).flat_map(|_| mask.iter().copied()).collect();
    let x_obs: Vec<f32> = x.iter().zip(&masks).map(|(a, m)| a * m).collect();
    let enc = s.ops.encode(&x_obs)?;
    // SVI's q is Gaussian whatever the encoder's family: it starts at the prior's (or the
    // encoder's) location with the same standard deviation.
    let model = &s.ck.config.model;
    let init: Vec<f32> = match run.init {
        SviInit::Prior => (0..n)
            .flat_map(|_| {
                std::iter::repeat_n(0.0, dz).chain(std::iter::repeat_n(model.prior.log_std(), dz))
            })
            .collect(),
        SviInit::Encoder => enc
            .chunks(2 * dz)
            .flat_map(|r| {
                r[..dz]
                    .iter()
                    .copied()
                    .chain(r[dz..].iter().map(|&h| model.posterior.log_std_of_head(h)))
                    .collect::<Vec<_>>()
            })
            .collect(),
    };
    let fits = fit(s.ops.as_mut(), &x, &masks, &init, &run.opts, progress)?;
    // Each image's posterior is integrated on its own grid, centred on the fitted q and 14 of
    // its standard deviations wide with 81 points a side: a fixed [−4, 4]² grid of spacing 0.1
    // resolves the default model's posteriors (tenths wide) but not those of a Gaussian
    // likelihood (hundredths wide), where it put log p(x_obs) below the ELBO.
    let posts = if dz <= 2 {
        let mut posts = Vec::with_capacity(n);
        for (i, f) in fits.iter().enumerate() {
            let half =
                (7.0 * f.sigma().iter().fold(0.0f32, |a, &b| a.max(b)) as f64).clamp(1e-3, 8.0);
            let grid = LatentGrid::square(-half, half, half / 40.0)?
                .for_latent(dz)?
                .centred_on([f.mu[0] as f64, f.mu.get(1).map_or(0.0, |&m| m as f64)]);
            let rows = i * d..(i + 1) * d;
            posts.extend(grid_posteriors(
                s.ops.as_mut(),
                &grid,
                &x[rows.clone()],
                &masks[rows],
            )?);
        }
        if posts.iter().any(|p| p.edge_mass > 1e-3) {
            eprintln!(
                "warning: some p(z|x_obs) has more than 0.1% of its mass on the edge of its grid \
                 (±7σ of the fitted q): q is far from it, and log p(x_obs) and the KL are \
                 underestimated; try more --max-steps or a larger --window"
            );
        }
        Some(posts)
    } else {
        None
    };
    let mut rows = Vec::with_capacity(n);
    for (i, f) in fits.iter().enumerate() {
        let xi = &x[i * d..(i + 1) * d];
        let e = elbo_estimate(
            s.ops.as_mut(),
            xi,
            &mask,
            LatentFamily::Gaussian,
            &f.mu,
            &f.logvar(),
            run.elbo_samples,
            s.seed,
            i as u32,
        )?;
        let (emu, elv) = q_row(&enc, dz, i);
        let ee = elbo_estimate(
            s.ops.as_mut(),
            xi,
            &mask,
            s.ck.config.model.posterior,
            emu,
            elv,
            run.elbo_samples,
            s.seed,
            i as u32,
        )?;
        let (kl, lpx) = match &posts {
            Some(p) => (
                Some(kl_on_grid(
                    &p[i].grid,
                    &p[i].log_posterior(),
                    &f.mu,
                    &f.sigma(),
                )),
                Some(p[i].log_px),
            ),
            None => (None, None),
        };
        rows.push(SviRow {
            image: i,
            label: (labels[i] != NO_LABEL).then_some(labels[i]),
            observe: run.observe.name(),
            steps: f.steps,
            converged: f.converged,
            stalled: f.stalled(),
            lr_drops: f.lr_drops,
            elbo: e.mean,
            elbo_std_err: e.std_err,
            encoder_elbo: ee.mean,
            mu: f.mu.clone(),
            sigma: f.sigma(),
            kl_to_grid_posterior: kl,
            log_px_obs_grid: lpx,
        });
    }
    let seconds = t0.elapsed().as_secs_f64();
    let mut files = Vec::new();
    if s.is_image() {
        files.push(completion_figure(s, out, run, &x, &mask, &enc, &fits)?);
    }
    if let Some(posts) = &posts {
        let at = |v: &[f32], k: usize| v.get(k).map_or(0.0, |&a| a as f64);
        let specs: Vec<PosteriorSpec> = (0..n.min(6))
            .map(|i| PosteriorSpec {
                x: &x[i * d..(i + 1) * d],
                mask: &mask,
                post: &posts[i],
                q_family: LatentFamily::Gaussian,
                q_mean: [at(&fits[i].mu, 0), at(&fits[i].mu, 1)],
                q_scale: [at(&fits[i].sigma(), 0), at(&fits[i].sigma(), 1)],
                caption: if s.is_image() {
                    format!(
                        "test image {i} (digit {}), {} pixels observed",
                        labels[i],
                        run.observe.name()
                    )
                } else {
                    crate::report::vectors::row_caption(&s.test, &x[i * d..(i + 1) * d], i)
                },
            })
            .collect();
        let path = out.join(format!("svi_posterior_{}.png", run.observe.name()));
        let title = format!(
            "p(z|x_observed) (grid) and the q(z) fitted by SVI{}",
            crate::report::vectors::truth_note(&s.test)
        );
        let (p_label, q_label) = ("p(z|x_obs) (grid)", "q(z) fitted by SVI (Gaussian)");
        posterior_figure(s.ops.as_mut(), &path, &title, p_label, q_label, &specs)?;
        files.push(path);
    }
    let json = serde_json::to_vec_pretty(&rows).map_err(|e| Error::Io(e.to_string()))?;
    let jpath = out.join(format!("svi_{}.json", run.observe.name()));
    write_atomic(&jpath, &json)?;
    let mut csv = Vec::new();
    let _ = writeln!(csv, "image,label,observe,steps,converged,lr_drops,elbo,elbo_std_err,encoder_elbo,mu,sigma,kl_to_grid_posterior,log_px_obs_grid");
    let list = |v: &[f32]| {
        v.iter()
            .map(|x| format!("{x:.4}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_default();
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{:.4},{:.4},{:.4},{},{},{},{}",
            r.image,
            r.label.map_or(String::new(), |l| l.to_string()),
            r.observe,
            r.steps,
            r.converged,
            r.lr_drops,
            r.elbo,
            r.elbo_std_err,
            r.encoder_elbo,
            list(&r.mu),
            list(&r.sigma),
            opt(r.kl_to_grid_posterior),
            opt(r.log_px_obs_grid)
        );
    }
    let cpath = out.join(format!("svi_{}.csv", run.observe.name()));
    write_atomic(&cpath, &csv)?;
    files.extend([jpath, cpath]);
    Ok(SviOutput {
        rows,
        files,
        seconds,
    })
}

/// `all`: original | mean of p(x|μ) from the fitted q | mean through the encoder. Otherwise:
/// original | observed pixels (rest black) | completed with the decoder mean | completed with a
/// sample (z ~ q, missing pixels ~ p(x|z)); observed pixels are always kept from the input.
fn completion_figure(
    s: &mut Session,
    out: &Path,
    run: &SviRun,
    x: &[f32],
    mask: &[f32],
    enc: &[f32],
    fits: &[SviFit],
) -> Result<PathBuf> {
    let dz = s.ck.config.model.latent;
    let n = fits.len();
    let mu: Vec<f32> = fits.iter().flat_map(|f| f.mu.clone()).collect();
    let fitted_mean = s.decode_means(&mu)?;
    let path = out.join(format!("svi_{}.png", run.observe.name()));
    if run.observe == Observe::All {
        let enc_mu: Vec<f32> = enc.chunks(2 * dz).flat_map(|r| r[..dz].to_vec()).collect();
        let enc_mean = s.decode_means(&enc_mu)?;
        let tiles = interleave(&[x, &fitted_mean, &enc_mean]);
        plot::image_panels(
            &path,
            "Reconstruction without the encoder (SVI) vs through the encoder",
            &[Panel {
                caption: "original | p(x|z=μ) of the SVI q | p(x|z=μ) of the encoder's q",
                rows: n,
                cols: 3,
                images: &tiles,
            }],
        )?;
        return Ok(path);
    }
    let mut eps = vec![0.0f32; dz];
    let z: Vec<f32> = fits
        .iter()
        .enumerate()
        .flat_map(|(i, f)| {
            noise_row(
                LatentFamily::Gaussian,
                s.seed,
                stream::ANALYSIS,
                u32::MAX,
                i as u32,
                dz,
                &mut eps,
            );
            (0..dz)
                .map(|d| f.mu[d] + f.log_sigma[d].exp() * eps[d])
                .collect::<Vec<_>>()
        })
        .collect();
    let sampled = s.decode_samples(&z, 4)?;
    // Observed pixels come from the input; the rest from the decoder mean or the sample.
    let complete = |i: usize, fill: &[f32]| -> Vec<f32> {
        (0..PIXELS)
            .map(|p| {
                if mask[p] > 0.0 {
                    x[i * PIXELS + p]
                } else {
                    fill[i * PIXELS + p]
                }
            })
            .collect()
    };
    let mut tiles = Vec::with_capacity(n * 4 * PIXELS);
    for i in 0..n {
        let xi = &x[i * PIXELS..(i + 1) * PIXELS];
        tiles.extend_from_slice(xi);
        tiles.extend(crate::report::figures::observed_only(xi, mask));
        tiles.extend(complete(i, &fitted_mean));
        tiles.extend(complete(i, &sampled));
    }
    let title = format!(
        "Completing images from their {} pixels by SVI (no encoder)",
        run.observe.name()
    );
    plot::image_panels(
        &path,
        &title,
        &[Panel {
            caption: "original | observed (blue: hidden) | mean p(x|z=μ) | sample",
            rows: n,
            cols: 4,
            images: &tiles,
        }],
    )?;
    Ok(path)
}

/// The estimator study for one q.
#[derive(Clone, Debug, Serialize)]
pub struct EstimatorStudy {
    pub q: String,
    pub mu: Vec<f32>,
    pub sigma: Vec<f32>,
    pub samples_per_estimate: usize,
    pub repetitions: usize,
    pub estimators: Vec<EstimatorStats>,
    /// var(score function) / var(reparameterization), per component.
    pub variance_ratio_sf_over_rp: Vec<f64>,
    /// var(score function with baseline) / var(reparameterization), per component.
    pub variance_ratio_sfb_over_rp: Vec<f64>,
}

/// Reparameterization vs score-function (± baseline) estimates of ∇_μ ELBO for test image
/// `image` under the encoder's q(z|x) and under a free q = N(0, I); table, JSON and histograms.
pub fn estimators(
    s: &mut Session,
    out: &Path,
    image: usize,
    samples: usize,
    reps: usize,
) -> Result<(Vec<EstimatorStudy>, Vec<PathBuf>)> {
    let dz = s.ck.config.model.latent;
    // Checked before `image + 1`, which wrapped to 0 for usize::MAX ("past the 0 test images").
    if image >= s.test.len() {
        return Err(Error::Usage(format!(
            "--image {image} is past the last test image: the test set has {} images, numbered \
             0 to {}",
            s.test.len(),
            s.test.len().saturating_sub(1)
        )));
    }
    let (x_all, labels) = s.test_images(image + 1);
    let d = s.dim();
    let x = x_all[image * d..(image + 1) * d].to_vec();
    let mask = vec![1.0f32; d];
    let enc = s.ops.encode(&x)?;
    let enc_q = (
        enc[..dz].to_vec(),
        enc[dz..].iter().map(|lv| 0.5 * lv).collect::<Vec<f32>>(),
    );
    let free_q = (vec![0.0f32; dz], vec![0.0f32; dz]);
    let mut studies = Vec::new();
    let mut files = Vec::new();
    for (name, file, (mu, ls)) in [
        ("encoder q(z|x)", "encoder", enc_q),
        ("free q = N(0, I)", "free", free_q),
    ] {
        let est = gradient_estimators(s.ops.as_mut(), &x, &mask, &mu, &ls, samples, reps, s.seed)?;
        let ratio = |a: &EstimatorStats, b: &EstimatorStats| {
            a.variance
                .iter()
                .zip(&b.variance)
                .map(|(x, y)| x / y)
                .collect::<Vec<f64>>()
        };
        let path = out.join(format!("estimators_{file}.png"));
        let which = if s.is_image() {
            format!("test image {image} (digit {})", labels[image])
        } else {
            format!("test row {image}")
        };
        let title = format!(
            "∇μ₁ ELBO estimates, {which}, {name}, M = {samples}, {reps} repetitions (one x scale)"
        );
        let captions: Vec<String> = est
            .iter()
            .map(|e| {
                format!(
                    "{} (variance {})",
                    e.name,
                    crate::report::significant(e.variance[0], 3)
                )
            })
            .collect();
        let panels: Vec<(&str, &[f64])> = captions
            .iter()
            .zip(&est)
            .map(|(c, e)| (c.as_str(), e.first.as_slice()))
            .collect();
        // One x scale and the same bins for the three: on scales of their own the narrow
        // reparameterization histogram looked as wide as the score function's.
        plot::histograms_with(&path, &title, &panels, 60, true)?;
        files.push(path);
        studies.push(EstimatorStudy {
            q: name.to_string(),
            sigma: ls.iter().map(|l| l.exp()).collect(),
            mu,
            samples_per_estimate: samples,
            repetitions: reps,
            variance_ratio_sf_over_rp: ratio(&est[1], &est[0]),
            variance_ratio_sfb_over_rp: ratio(&est[2], &est[0]),
            estimators: est.to_vec(),
        });
    }
    let json = serde_json::to_vec_pretty(&studies).map_err(|e| Error::Io(e.to_string()))?;
    let jpath = out.join("estimators.json");
    write_atomic(&jpath, &json)?;
    files.push(jpath);
    Ok((studies, files))
}

/// The estimator table as aligned text.
pub fn format_estimators(studies: &[EstimatorStudy]) -> String {
    let mut t = String::new();
    for st in studies {
        t += &format!(
            "{} (μ = {:?}, σ = {:?}), M = {}, {} repetitions\n",
            st.q, st.mu, st.sigma, st.samples_per_estimate, st.repetitions
        );
        t += "  estimator                    component        mean ± s.e.        variance\n";
        let sig = |v: f64| crate::report::significant(v, 3);
        for e in &st.estimators {
            for d in 0..e.mean.len() {
                t += &format!(
                    "  {:<27}  {:>9}  {:>10.4} ± {:<8.4}  {:>12}\n",
                    e.name,
                    d,
                    e.mean[d],
                    e.std_err[d],
                    sig(e.variance[d])
                );
            }
        }
        let fmt = |v: &[f64]| v.iter().map(|&r| sig(r)).collect::<Vec<_>>().join(", ");
        t += &format!(
            "  variance ratio score function / reparameterization: {}\n",
            fmt(&st.variance_ratio_sf_over_rp)
        );
        t += &format!(
            "  variance ratio score function + baseline / reparameterization: {}\n",
            fmt(&st.variance_ratio_sfb_over_rp)
        );
    }
    t
}

/// What `eval --iwae K` measured.
pub struct IwaeResult {
    /// The importance-weighted log p(x) per row, mean ± standard error over rows.
    pub log_px: Estimate,
    /// The mean log-weight of the same K draws (a K-sample ELBO estimate), over rows.
    pub elbo: Estimate,
    pub csv: PathBuf,
    pub seconds: f64,
}

/// The importance-weighted estimate of log p(x) with `k` samples of the encoder's q for each of
/// the first `rows` test rows, on the session's device, any latent size and likelihood; a CSV
/// with one line per row (its IWAE estimate and the ELBO of the same draws).
pub fn iwae(
    s: &mut Session,
    out: &Path,
    k: usize,
    rows: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<IwaeResult> {
    let t0 = std::time::Instant::now();
    let (d, dz) = (s.dim(), s.latent());
    let (x, labels) = s.test_images(rows);
    let n = labels.len();
    let enc = s.ops.encode(&x)?;
    let mask = vec![1.0f32; d];
    let posterior = s.ck.config.model.posterior;
    let (mut log_px, mut elbo) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut csv = b"row,label,log_px_iwae,elbo_same_draws\n".to_vec();
    for i in 0..n {
        let (mu, head) = q_row(&enc, dz, i);
        let w = crate::inference::analysis::log_weights(
            s.ops.as_mut(),
            &x[i * d..(i + 1) * d],
            &mask,
            posterior,
            mu,
            head,
            k,
            s.seed,
            i as u32,
        )?;
        let (bound, mean) = (
            crate::inference::analysis::iwae_bound(&w),
            w.iter().sum::<f64>() / k as f64,
        );
        let label = (labels[i] != NO_LABEL).then(|| labels[i].to_string());
        let _ = writeln!(
            csv,
            "{i},{},{bound:.4},{mean:.4}",
            label.unwrap_or_default()
        );
        log_px.push(bound);
        elbo.push(mean);
        progress(i + 1);
    }
    let path = out.join(format!("iwae_k{k}.csv"));
    write_atomic(&path, &csv)?;
    Ok(IwaeResult {
        log_px: Estimate::from_samples(&log_px),
        elbo: Estimate::from_samples(&elbo),
        csv: path,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Variances spanning orders of magnitude in significant figures ("29434.950" hid the 3e4).
    #[test]
    fn the_estimator_table_prints_significant_figures() {
        let stats = |name: &str, v: f64| EstimatorStats {
            name: name.into(),
            mean: vec![1.0],
            variance: vec![v],
            std_err: vec![0.1],
            first: vec![],
        };
        let t = format_estimators(&[EstimatorStudy {
            q: "q".into(),
            mu: vec![0.0],
            sigma: vec![1.0],
            samples_per_estimate: 10,
            repetitions: 100,
            estimators: vec![stats("rp", 8.1734), stats("sf", 29434.95)],
            variance_ratio_sf_over_rp: vec![3601.3],
            variance_ratio_sfb_over_rp: vec![1.874],
        }]);
        assert!(
            t.contains("2.94e4") && t.contains("8.17") && !t.contains("29434"),
            "{t}"
        );
        assert!(t.contains(": 3601\n") && t.contains(": 1.87\n"), "{t}");
    }
}
