//! The figures and tables of the course assignments, computed on the selected device through
//! `ModelOps` and drawn by `plot`. Each function writes its files into `out` and returns their
//! paths so `report` can link them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::inference::analysis::{
    elbo_estimate, grid_posteriors, pca_2d, top_rows_mask, Estimate, GridPosterior, LatentGrid,
};
use crate::inference::ModelOps;
use crate::report::plot::{self, Panel, PosteriorPanel};
use crate::report::session::{PosteriorSpec, Session, NO_LABEL};
use crate::training::checkpoint::write_atomic;

/// Row `i` of the encoder's outputs `[n, 2·Dz]` as q's (location μ, scale head).
pub fn q_row(enc: &[f32], dz: usize, i: usize) -> (&[f32], &[f32]) {
    enc[i * 2 * dz..(i + 1) * 2 * dz].split_at(dz)
}

/// A label for tables and captions: the digit, or "-" for [`NO_LABEL`].
pub fn label_text(label: u8) -> String {
    if label == NO_LABEL {
        "-".into()
    } else {
        label.to_string()
    }
}

/// Interleaves images of several equally long lists tile by tile: [a0, b0, a1, b1, ...].
pub fn interleave(lists: &[&[f32]]) -> Vec<f32> {
    let n = lists.first().map_or(0, |l| l.len() / PIXELS);
    let mut out = Vec::with_capacity(n * PIXELS * lists.len());
    for i in 0..n {
        for l in lists {
            out.extend_from_slice(&l[i * PIXELS..(i + 1) * PIXELS]);
        }
    }
    out
}

/// Prior samples: for 10 z ~ p(z) the Bernoulli means and a sample (10×2), and a 10×10 grid of
/// samples beside 10×10 real test digits.
pub fn prior_samples(s: &mut Session, out: &Path) -> Result<Vec<PathBuf>> {
    if !s.is_image() {
        return crate::report::vectors::samples(s, out);
    }
    let z = s.prior_z(100, 1);
    let means = s.decode_means(&z)?;
    let samples = s.decode_samples(&z, 1)?;
    let p1 = out.join("prior_samples.png");
    let pairs = interleave(&[&means[..10 * PIXELS], &samples[..10 * PIXELS]]);
    plot::image_panels(
        &p1,
        "Ancestral samples: z ~ p(z), x ~ p(x|z)",
        &[Panel {
            caption: "p(x|z) mean | sample",
            rows: 10,
            cols: 2,
            images: &pairs,
        }],
    )?;
    // A data directory may hold fewer than 100 test images: as many as there are.
    let (real, labels) = s.test_images(100);
    let p2 = out.join("sample_grid.png");
    plot::image_panels(
        &p2,
        &format!(
            "100 samples from the model beside {} test digit{}",
            labels.len(),
            if labels.len() == 1 { "" } else { "s" }
        ),
        &[
            Panel {
                caption: "samples x ~ p(x|z), z ~ p(z)",
                rows: 10,
                cols: 10,
                images: &samples,
            },
            Panel::fill(
                if s.ck.config.pixels.binary() {
                    "binarized test digits"
                } else {
                    "test digits (grayscale)"
                },
                10,
                &real,
            ),
        ],
    )?;
    Ok(vec![p1, p2])
}

/// Reconstructions: 10 rows of input / p(x|z) mean / sample with z ~ q(z|x); and the first 32
/// test images beside their reconstructions (mean of p(x|z) at z ~ q(z|x)) in an 8×8 grid.
pub fn reconstructions(s: &mut Session, out: &Path) -> Result<Vec<PathBuf>> {
    if !s.is_image() {
        return crate::report::vectors::reconstructions(s, out);
    }
    // Up to 32 test images (fewer when the data have fewer), the first 10 in the rows figure.
    let (x, labels) = s.test_images(32);
    let n = labels.len();
    let enc = s.ops.encode(&x)?;
    let z = s.sample_q(&enc, 2);
    let means = s.decode_means(&z)?;
    let samples = s.decode_samples(&z, 2)?;
    let p1 = out.join("reconstructions.png");
    let shown = 10.min(n) * PIXELS;
    let rows = interleave(&[&x[..shown], &means[..shown], &samples[..shown]]);
    plot::image_panels(
        &p1,
        "Reconstructions through q(z|x)",
        &[Panel::fill("input | p(x|z) mean | sample", 3, &rows)],
    )?;
    let p2 = out.join("reconstruction_grid.png");
    let grid = interleave(&[&x, &means]);
    plot::image_panels(
        &p2,
        &format!(
            "First {n} test digit{}, each followed by its reconstruction",
            if n == 1 { "" } else { "s" }
        ),
        &[Panel::fill("input, reconstruction, input, ...", 8, &grid)],
    )?;
    Ok(vec![p1, p2])
}

/// Scatter of the means of q(z|x) of the first `n` test images, coloured by class (first two
/// principal components when Dz > 2). Returns the path and the 1st/99th percentile box of the
/// embedding, which sets the lattice bounds.
/// The first `n` test images placed in the plane the latent space is shown in: the means of
/// q(z|x) for a 2-D latent, their first two principal components otherwise.
pub struct LatentEmbedding {
    pub points: Vec<[f32; 2]>,
    pub labels: Vec<u8>,
    /// The images, 784 pixels each, in the order of `points`.
    pub images: Vec<f32>,
}

pub fn latent_embedding(s: &mut Session, n: usize) -> Result<LatentEmbedding> {
    let (images, labels) = s.test_images(n);
    let enc = s.ops.encode(&images)?;
    let mu = s.means(&enc);
    Ok(LatentEmbedding {
        points: pca_2d(&mu, s.latent()),
        labels,
        images,
    })
}

pub fn latent_scatter(s: &mut Session, out: &Path, n: usize) -> Result<(PathBuf, [f64; 4])> {
    if s.latent() == 1 {
        let path = crate::report::vectors::latent_1d(s, out, n)?;
        return Ok((path, [0.0; 4]));
    }
    let LatentEmbedding {
        points: pts,
        labels,
        ..
    } = latent_embedding(s, n)?;
    let dz = s.latent();
    let (xl, yl) = if dz == 2 {
        ("z₁ (mean of q(z|x))", "z₂ (mean of q(z|x))")
    } else {
        ("principal component 1", "principal component 2")
    };
    let path = out.join("latent_scatter.png");
    if s.is_image() {
        plot::class_scatter(
            &path,
            &format!("Means of q(z|x) for {}", s.rows_note(labels.len())),
            xl,
            yl,
            &pts,
            &labels,
        )?;
    } else {
        let (values, what) = crate::report::vectors::colouring(&s.test, pts.len());
        plot::value_scatter(
            &path,
            &format!("Means of q(z|x) for {}", s.rows_note(pts.len())),
            xl,
            yl,
            &pts,
            &values,
            what,
            &[],
            false,
        )?;
    }
    let pct = |axis: usize, q: f64| {
        let mut v: Vec<f64> = pts
            .iter()
            .map(|p| p[axis] as f64)
            .filter(|v| v.is_finite())
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(((v.len().saturating_sub(1)) as f64 * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok((
        path,
        [pct(0, 0.01), pct(0, 0.99), pct(1, 0.01), pct(1, 0.99)],
    ))
}

/// Decoder means on an n×n lattice of z over `bounds` = [x_lo, x_hi, y_lo, y_hi] (Fig. 4b).
pub fn lattice(s: &mut Session, out: &Path, n: usize, bounds: [f64; 4]) -> Result<PathBuf> {
    s.require_images("the latent lattice")?;
    s.require_2d("the latent lattice")?;
    let axis = |lo: f64, hi: f64| -> Vec<f32> {
        (0..n)
            .map(|i| (lo + (hi - lo) * i as f64 / (n - 1).max(1) as f64) as f32)
            .collect()
    };
    let (xs, ys) = (axis(bounds[0], bounds[1]), axis(bounds[2], bounds[3]));
    let z: Vec<f32> = ys
        .iter()
        .flat_map(|&y| xs.iter().flat_map(move |&x| [x, y]))
        .collect();
    let means = s.decode_means(&z)?;
    let path = out.join("lattice.png");
    plot::latent_lattice(
        &path,
        &format!("Decoder means p(x|z) on a {n}×{n} lattice"),
        &xs,
        &ys,
        &means,
    )?;
    Ok(path)
}

/// For 3 pairs of test images of different classes, decoder means along the straight line between
/// their encodings (means of q, or sampled z with `sampled`), originals at both ends.
pub fn interpolation(s: &mut Session, out: &Path, steps: usize, sampled: bool) -> Result<PathBuf> {
    s.require_images("interpolation")?;
    let (x, labels) = s.test_images(200);
    let mut pairs = Vec::new();
    let mut i = 0;
    while pairs.len() < 3 && i + 1 < labels.len() {
        if let Some(j) = (i + 1..labels.len())
            .find(|&j| labels[j] != labels[i] && !pairs.iter().any(|&(a, b)| a == j || b == j))
        {
            pairs.push((i, j));
        }
        i += 7;
    }
    if pairs.is_empty() {
        return Err(Error::Usage(format!(
            "interpolation needs two test images of different digits, and the {} test image(s) \
             of the data are all {}",
            labels.len(),
            labels.first().map_or("-".into(), |&l| label_text(l))
        )));
    }
    let dz = s.latent();
    let enc = s.ops.encode(&x)?;
    let codes = if sampled {
        s.sample_q(&enc, 3)
    } else {
        s.means(&enc)
    };
    let mut z = Vec::new();
    for &(a, b) in &pairs {
        for t in 0..steps {
            let alpha = t as f32 / (steps - 1).max(1) as f32;
            z.extend(
                (0..dz).map(|d| (1.0 - alpha) * codes[a * dz + d] + alpha * codes[b * dz + d]),
            );
        }
    }
    let means = s.decode_means(&z)?;
    let mut tiles = Vec::new();
    for (p, &(a, b)) in pairs.iter().enumerate() {
        tiles.extend_from_slice(&x[a * PIXELS..(a + 1) * PIXELS]);
        tiles.extend_from_slice(&means[p * steps * PIXELS..(p + 1) * steps * PIXELS]);
        tiles.extend_from_slice(&x[b * PIXELS..(b + 1) * PIXELS]);
    }
    let names: Vec<String> = pairs
        .iter()
        .map(|&(a, b)| format!("{}→{}", labels[a], labels[b]))
        .collect();
    let path = out.join(if sampled {
        "interpolation_sampled.png"
    } else {
        "interpolation.png"
    });
    let how = if sampled {
        "sampled z"
    } else {
        "means of q(z|x)"
    };
    let caption = format!(
        "original | p(x|z) along the line ({}) | original",
        names.join(", ")
    );
    plot::image_panels(
        &path,
        &format!("Interpolation between encodings ({how})"),
        &[Panel {
            caption: &caption,
            rows: pairs.len(),
            cols: steps + 2,
            images: &tiles,
        }],
    )?;
    Ok(path)
}

/// Train, validation and test ELBO per epoch from a metrics file, with the full-pass training
/// ELBO where the run recorded it (`--eval-train`) and the epoch of the highest validation ELBO
/// marked (the model `best.safetensors` holds, unless the run set `--min-delta`).
pub fn training_curves(metrics: &Path, out: &Path) -> Result<PathBuf> {
    let history = crate::training::run_dir::read_history(metrics)?;
    let keys = [
        ("train_elbo", "train ELBO (running mean over the epoch)"),
        ("train_elbo_full", "train ELBO (full pass, end of epoch)"),
        ("val_elbo", "validation ELBO"),
        ("test_elbo", "test ELBO"),
    ];
    let mut series: Vec<(String, Vec<(f64, f64)>)> = keys
        .iter()
        .map(|(_, name)| (name.to_string(), vec![]))
        .collect();
    for v in &history {
        let Some(epoch) = v["epoch"].as_f64() else {
            continue;
        };
        for ((key, _), (_, pts)) in keys.iter().zip(series.iter_mut()) {
            if let Some(y) = v[*key].as_f64() {
                pts.push((epoch, y));
            }
        }
    }
    series.retain(|(_, p)| !p.is_empty());
    if series.is_empty() {
        return Err(Error::Data(format!("{} has no epochs", metrics.display())));
    }
    let validation: Vec<(u32, f64)> = history
        .iter()
        .filter_map(|v| Some((v["epoch"].as_u64()? as u32, v["val_elbo"].as_f64()?)))
        .collect();
    let (y_range, notes) = curve_range(&series);
    let mut opts = plot::LineOptions {
        y_range,
        notes,
        ..Default::default()
    };
    if let Some(best) = crate::training::Progress::replay(&validation, 0.0) {
        let x = best.best_epoch as f64;
        let val = validation
            .iter()
            .find(|(e, _)| *e == best.best_epoch)
            .map(|v| v.1);
        opts.vline = Some((
            x,
            format!(
                "best validation epoch ({}{})",
                best.best_epoch,
                val.map_or(String::new(), |v| format!(", {v:.2}"))
            ),
        ));
        opts.ring = val.map(|v| (x, v));
    }
    let named: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    let path = out.join("training_curves.png");
    plot::line_chart_with(
        &path,
        "ELBO per epoch",
        "epoch",
        "ELBO (nats per image or row)",
        &named,
        &opts,
    )?;
    Ok(path)
}

/// The y range of the training curves: the span of the values after the first tenth of the
/// epochs (at least the first epoch), padded by a tenth of it, taking in earlier values within
/// one span of it. The first epoch's running mean starts at the untrained model (−392 against a
/// −165…−175 band) and would squash the band that matters; earlier values outside are clipped,
/// and a note per series says which epochs and how far. `None` (the data's own range) when
/// there is nothing after the first epoch.
fn curve_range(series: &[(String, Vec<(f64, f64)>)]) -> (Option<(f64, f64)>, Vec<String>) {
    let mut epochs: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .filter(|e| e.is_finite())
        .collect();
    epochs.sort_by(f64::total_cmp);
    epochs.dedup();
    let skip = (epochs.len() / 10).max(1);
    let Some(&start) = epochs.get(skip) else {
        return (None, vec![]);
    };
    let later: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().filter(|q| q.0 >= start).map(|q| q.1))
        .filter(|v| v.is_finite())
        .collect();
    let Some((mut lo, mut hi)) = later.iter().fold(None, |acc: Option<(f64, f64)>, &v| {
        Some(acc.map_or((v, v), |(a, b)| (a.min(v), b.max(v))))
    }) else {
        return (None, vec![]);
    };
    let span = (hi - lo).max(1e-3 * hi.abs()).max(1e-9);
    let (reach_lo, reach_hi) = (lo - span, hi + span);
    for (_, pts) in series {
        for &(_, y) in pts.iter().filter(|q| q.0 < start) {
            if (reach_lo..=reach_hi).contains(&y) {
                lo = lo.min(y);
                hi = hi.max(y);
            }
        }
    }
    let mut notes = Vec::new();
    for (name, pts) in series {
        let out: Vec<(f64, f64)> = pts
            .iter()
            .copied()
            .filter(|q| q.0 < start && q.1.is_finite() && !(reach_lo..=reach_hi).contains(&q.1))
            .collect();
        let (Some(a), Some(b)) = (out.first(), out.last()) else {
            continue;
        };
        let short = name.split(" (").next().unwrap_or(name);
        let which = if out.len() == 1 {
            format!("epoch {}", a.0)
        } else {
            format!("epochs {}–{}", a.0, b.0)
        };
        let (side, extreme) = if a.1 < reach_lo {
            (
                "below",
                out.iter().map(|q| q.1).fold(f64::INFINITY, f64::min),
            )
        } else {
            (
                "above",
                out.iter().map(|q| q.1).fold(f64::NEG_INFINITY, f64::max),
            )
        };
        notes.push(format!("{short}: {which} {side} the axis ({extreme:.1})"));
    }
    let pad = 0.1 * (hi - lo).max(span);
    (Some((lo - pad, hi + pad)), notes)
}

/// Options of `grid-posterior`.
#[derive(Clone, Debug)]
pub struct GridOptions {
    pub images: usize,
    pub grid: LatentGrid,
    pub centre_on_q: bool,
    pub elbo_samples: usize,
    /// Images drawn in the contour figures.
    pub plot_images: usize,
}

/// One row of the integration table.
#[derive(Clone, Debug)]
pub struct GridRow {
    pub image: usize,
    pub label: u8,
    pub log_px: f64,
    pub elbo: Estimate,
    pub norm_error: f64,
    pub edge_mass: f64,
    /// About how many grid cells the posterior spans (`GridPosterior::cells_spanned`).
    pub cells_spanned: f64,
    /// log p(x_top) of the image's top half (images only).
    pub log_px_top: Option<f64>,
}

impl GridRow {
    pub fn gap(&self) -> f64 {
        self.log_px - self.elbo.mean
    }
    /// log p(x) ≥ ELBO up to three standard errors of the ELBO estimate.
    pub fn bound_holds(&self) -> bool {
        self.log_px >= self.elbo.mean - 3.0 * self.elbo.std_err
    }
}

pub struct GridResult {
    pub rows: Vec<GridRow>,
    pub csv: PathBuf,
    pub figures: Vec<PathBuf>,
    pub seconds: f64,
}

fn posteriors_for(
    s: &mut Session,
    o: &GridOptions,
    x: &[f32],
    mask: &[f32],
    enc: &[f32],
) -> Result<Vec<GridPosterior>> {
    let (d, dz) = (s.dim(), s.latent());
    let n = x.len() / d;
    if !o.centre_on_q {
        let masks: Vec<f32> = (0..n).flat_map(|_| mask.iter().copied()).collect();
        return grid_posteriors(s.ops.as_mut(), &o.grid, x, &masks);
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (mu, _) = q_row(enc, dz, i);
        let g = o
            .grid
            .for_latent(dz)?
            .centred_on([mu[0] as f64, mu.get(1).map_or(0.0, |&v| v as f64)]);
        out.extend(grid_posteriors(
            s.ops.as_mut(),
            &g,
            &x[i * d..(i + 1) * d],
            mask,
        )?);
    }
    Ok(out)
}

/// The image with its unobserved pixels marked NaN, which the figures draw as a blue tint.
pub fn observed_only(x: &[f32], mask: &[f32]) -> Vec<f32> {
    x.iter()
        .zip(mask)
        .map(|(&a, &m)| if m > 0.0 { a } else { f32::NAN })
        .collect()
}

/// Points per side of the zoomed grids the contour figures are drawn from.
const PLOT_GRID: usize = 71;

/// A square window around where `post` has mass (cells above 1e-4 of the peak) and around q's
/// 99.8% contour, padded by 25%: posteriors of a trained model are a few tenths wide, far
/// smaller than the [−4, 4]² integration grid, and would show as specks on it.
fn zoom_window(post: &GridPosterior, q: &PosteriorSpec) -> Result<LatentGrid> {
    let (mut lo, mut hi) = post.mass_box(1e-4);
    let curve = q.q_family.level_curve(q.q_mean, q.q_scale, 0.998);
    for (x, y) in std::iter::once((q.q_mean[0], q.q_mean[1])).chain(curve) {
        if x.is_finite() && y.is_finite() {
            lo = [lo[0].min(x), lo[1].min(y)];
            hi = [hi[0].max(x), hi[1].max(y)];
        }
    }
    // The content (extent E) sits in the lower right of a 1.5·E window: margins of 0.4·E on the
    // left and top leave the top-left corner, where the digit thumbnail goes (about 20% of the
    // side), free of contours; 0.1·E on the right and bottom.
    let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(0.05);
    let centre = [
        (lo[0] + hi[0]) / 2.0 - 0.15 * extent,
        (lo[1] + hi[1]) / 2.0 + 0.15 * extent,
    ];
    let half = 0.75 * extent;
    let h = 2.0 * half / (PLOT_GRID - 1) as f64;
    let g = LatentGrid::square(-half, half, h)?;
    Ok(g.centred_on(centre))
}

/// Contours of each posterior, recomputed on a fine grid zoomed onto its mass, with q's contours
/// of the same masses over them; the digit inset shows the observed pixels only. For a 1-D latent,
/// the two densities side by side instead ([`vectors::posterior_densities`]).
///
/// [`vectors::posterior_densities`]: crate::report::vectors::posterior_densities
pub fn posterior_figure(
    ops: &mut dyn ModelOps,
    path: &Path,
    title: &str,
    p_label: &str,
    q_label: &str,
    specs: &[PosteriorSpec],
) -> Result<()> {
    if ops.spec().latent == 1 {
        return crate::report::vectors::posterior_densities(
            ops, path, title, p_label, q_label, specs,
        );
    }
    let mut zoomed = Vec::with_capacity(specs.len());
    for sp in specs {
        let g = zoom_window(sp.post, sp)?;
        zoomed.extend(grid_posteriors(ops, &g, sp.x, sp.mask)?);
    }
    let logs: Vec<Vec<f64>> = zoomed.iter().map(|p| p.log_posterior()).collect();
    let observed: Vec<Vec<f32>> = specs
        .iter()
        .map(|sp| observed_only(sp.x, sp.mask))
        .collect();
    let panels: Vec<PosteriorPanel> = specs
        .iter()
        .zip(&zoomed)
        .enumerate()
        .map(|(i, (sp, p))| PosteriorPanel {
            caption: &sp.caption,
            log_density: &logs[i],
            nx: p.grid.nx,
            ny: p.grid.ny,
            x_min: p.grid.x_min,
            y_min: p.grid.y_min,
            dx: p.grid.dx,
            dy: p.grid.dy,
            q_family: sp.q_family,
            q_mean: sp.q_mean,
            q_scale: sp.q_scale,
            digit: (sp.x.len() == PIXELS).then_some(&observed[i][..]),
            p_label,
            q_label,
        })
        .collect();
    plot::posterior_contours(path, title, 3.min(specs.len().max(1)), &panels)
}

/// log p(x) by grid integration vs the ELBO for the first `images` test rows (for images also on
/// their top half); table as CSV plus figures of p(z|x) with q(z|x) over them: contours for a 2-D
/// latent, densities for a 1-D one.
pub fn grid_posterior(s: &mut Session, out: &Path, o: &GridOptions) -> Result<GridResult> {
    let (d, dz) = (s.dim(), s.latent());
    o.grid.for_latent(dz)?;
    let halves = s.is_image();
    // The tables (whole image, and top half for images) per row, checked before anything is decoded.
    let tables = if halves { 2 } else { 1 } * o.images.min(s.test.len());
    crate::inference::analysis::check_grid_memory(tables, o.grid.for_latent(dz)?.len())?;
    let t0 = Instant::now();
    let (x, labels) = s.test_images(o.images);
    let n = labels.len();
    let enc = s.ops.encode(&x)?;
    let full = vec![1.0f32; d];
    let top = top_rows_mask(14);
    let post = posteriors_for(s, o, &x, &full, &enc)?;
    let post_top = if halves {
        Some(posteriors_for(s, o, &x, &top, &enc)?)
    } else {
        None
    };
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        let (mu, head) = q_row(&enc, dz, i);
        let elbo = elbo_estimate(
            s.ops.as_mut(),
            xi,
            &full,
            s.ck.config.model.posterior,
            mu,
            head,
            o.elbo_samples,
            s.seed,
            i as u32,
        )?;
        rows.push(GridRow {
            image: i,
            label: labels[i],
            log_px: post[i].log_px,
            elbo,
            norm_error: post[i].norm_error,
            edge_mass: post[i].edge_mass,
            cells_spanned: post[i].cells_spanned,
            log_px_top: post_top.as_ref().map(|p| p[i].log_px),
        });
    }
    let seconds = t0.elapsed().as_secs_f64();

    let mut csv = Vec::new();
    let _ = writeln!(
        csv,
        "image,label,log_px,elbo,elbo_std_err,gap,bound_holds,norm_error,edge_mass,log_px_top_half"
    );
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{:.4},{:.4},{:.4},{:.4},{},{:.3e},{:.3e},{}",
            r.image,
            label_text(r.label),
            r.log_px,
            r.elbo.mean,
            r.elbo.std_err,
            r.gap(),
            r.bound_holds(),
            r.norm_error,
            r.edge_mass,
            r.log_px_top.map_or(String::new(), |v| format!("{v:.4}"))
        );
    }
    let csv_path = out.join("grid_posterior.csv");
    write_atomic(&csv_path, &csv)?;

    let shown = o.plot_images.min(n);
    let posterior = s.ck.config.model.posterior;
    let captions: Vec<String> = (0..shown)
        .map(|i| {
            if s.is_image() {
                format!("test image {i} (digit {})", labels[i])
            } else {
                crate::report::vectors::row_caption(&s.test, &x[i * d..(i + 1) * d], i)
            }
        })
        .collect();
    let mut figures = Vec::new();
    let title = format!(
        "True posterior p(z|x) (grid) and q(z|x){}",
        crate::report::vectors::truth_note(&s.test)
    );
    let mut variants = vec![(
        &post,
        &full,
        "posterior.png",
        title.as_str(),
        "p(z|x) (grid)",
    )];
    if let Some(post_top) = &post_top {
        variants.push((
            post_top,
            &top,
            "posterior_top_half.png",
            "Posterior of the top half p(z|x_top) (grid) and q(z|x) of the full image",
            "p(z|x_top) (grid)",
        ));
    }
    for (posts, mask, name, title, p_label) in variants {
        let specs: Vec<PosteriorSpec> = (0..shown)
            .map(|i| {
                let (mu, head) = q_row(&enc, dz, i);
                let at = |v: &[f32], k: usize| v.get(k).map_or(0.0, |&a| a as f64);
                PosteriorSpec {
                    x: &x[i * d..(i + 1) * d],
                    mask,
                    post: &posts[i],
                    q_family: posterior,
                    q_mean: [at(mu, 0), at(mu, 1)],
                    q_scale: [
                        posterior.scale(at(head, 0)).0,
                        posterior.scale(at(head, 1)).0,
                    ],
                    caption: captions[i].clone(),
                }
            })
            .collect();
        let path = out.join(name);
        posterior_figure(
            s.ops.as_mut(),
            &path,
            title,
            p_label,
            "q(z|x) (encoder)",
            &specs,
        )?;
        figures.push(path);
    }
    Ok(GridResult {
        rows,
        csv: csv_path,
        figures,
        seconds,
    })
}

/// Posterior mass on the grid's edge above which a row's log p(x) is not trusted.
pub const EDGE_MASS_LIMIT: f64 = 1e-3;
/// Fewest grid cells a posterior may span for its Riemann sum to be trusted.
pub const MIN_CELLS: f64 = 3.0;

/// What is wrong with a grid's log p(x) values, one sentence per problem (empty when nothing
/// is): `grid-posterior` and `report` print them, and `report` puts them on its page.
pub fn grid_warnings(rows: &[GridRow], grid: &LatentGrid) -> Vec<String> {
    let mut w = Vec::new();
    let cut: Vec<&GridRow> = rows
        .iter()
        .filter(|r| r.edge_mass > EDGE_MASS_LIMIT)
        .collect();
    if let Some(worst) = cut
        .iter()
        .max_by(|a, b| a.edge_mass.total_cmp(&b.edge_mass))
    {
        w.push(format!(
            "more than 0.1% of the posterior's mass lies on the grid's edge for {} of {} \
             images (image {}: {:.1}%), so their log p(x) is underestimated; widen \
             --lower/--upper or use --centre-on-q",
            cut.len(),
            rows.len(),
            worst.image,
            100.0 * worst.edge_mass
        ));
    }
    // A Gaussian-like posterior of width σ spans about 4π(σ/h)² cells at spacing h, and the
    // Riemann sum's relative error is about exp(−2π²σ²/h²): below 5 cells (h > 1.6σ) that passes
    // 1e-3 and grows fast, so the grid is too coarse for this posterior.
    if let Some(row) = rows.iter().find(|row| row.cells_spanned < MIN_CELLS) {
        let finer = grid.dx / 10.0;
        w.push(format!(
            "the posterior of image {} spans only about {:.1} grid cells: spacing {} is \
             wider than the posterior, so log p(x) is unreliable; integrate on a finer grid, e.g. \
             --centre-on-q --lower {} --upper {} --spacing {finer}",
            row.image,
            row.cells_spanned,
            grid.dx,
            -40.0 * finer,
            40.0 * finer
        ));
    }
    if rows.iter().any(|row| !row.bound_holds()) {
        w.push(
            "log p(x) < ELBO beyond 3 standard errors for some image: the grid misses \
             posterior mass"
                .into(),
        );
    }
    w
}

/// The table of `grid_posterior` as aligned text. The bound column says `ok` only where the
/// bound holds on a grid that holds the posterior; `edge` or `coarse` where the grid does not
/// (see [`grid_warnings`]), `FAIL` where log p(x) < ELBO beyond 3 standard errors.
pub fn format_grid_table(rows: &[GridRow]) -> String {
    let mut t = String::from("image  digit     log p(x)   ELBO ± s.e.          gap    bound  |∫p(z|x)-1|  edge mass  log p(x_top)\n");
    for r in rows {
        t += &format!(
            "{:>5}  {:>5}  {:>11.3}  {:>9.3} ± {:<6.3}  {:>7.3}  {:>5}  {:>11.1e}  {:>9.1e}  {:>12}\n",
            r.image,
            label_text(r.label),
            r.log_px,
            r.elbo.mean,
            r.elbo.std_err,
            r.gap(),
            if !r.bound_holds() {
                "FAIL"
            } else if r.edge_mass > EDGE_MASS_LIMIT {
                "edge"
            } else if r.cells_spanned < MIN_CELLS {
                "coarse"
            } else {
                "ok"
            },
            r.norm_error,
            r.edge_mass,
            r.log_px_top.map_or("-".into(), |v| format!("{v:.3}"))
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first epoch's running mean (the untrained model) sets no range: the curves' range
    /// is the later epochs' band, and a note says where the clipped value went.
    #[test]
    fn curves_range_over_the_later_epochs_and_note_what_is_clipped() {
        let series = vec![
            (
                "train ELBO (running mean over the epoch)".to_string(),
                vec![(1.0, -392.0), (2.0, -175.0), (3.0, -170.0), (4.0, -166.0)],
            ),
            (
                "test ELBO".to_string(),
                vec![(1.0, -180.0), (2.0, -174.0), (3.0, -171.0), (4.0, -169.0)],
            ),
        ];
        let (range, notes) = curve_range(&series);
        let (lo, hi) = range.expect("a range");
        assert!(
            (-200.0..=-180.0).contains(&lo) && (-166.0..-160.0).contains(&hi),
            "{lo}..{hi}"
        );
        assert_eq!(notes, ["train ELBO: epoch 1 below the axis (-392.0)"]);
        // A long run: the range starts after its first tenth, the early climb is one note.
        let climb: Vec<(f64, f64)> = (1..=50)
            .map(|e| {
                (
                    e as f64,
                    -140.0 - 50.0 * (-(e as f64) / 3.0).exp() - 0.01 * e as f64,
                )
            })
            .collect();
        let (range, notes) = curve_range(&[("validation ELBO".into(), climb)]);
        let (lo, hi) = range.unwrap();
        assert!(lo > -160.0 && hi < -138.0, "{lo}..{hi}");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("validation ELBO: epochs 1–"),
            "{notes:?}"
        );
        // One epoch: the data's own range.
        assert_eq!(curve_range(&[("t".into(), vec![(1.0, -392.0)])]).0, None);
    }
}
