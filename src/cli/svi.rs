//! `svi` (stochastic variational inference without the encoder) and `estimators` (the variance
//! of gradient estimators of the ELBO).

use clap::Args;

use super::{check_range, print_paths, session, ModelArgs};
use crate::error::{Error, Result};
use crate::inference::svi::{SviInit, SviOptions};
use crate::report::experiments::{self, Observe, SviRun};

#[derive(Args, Debug)]
pub struct SviArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of test images (the first N), fitted together
    #[arg(long, default_value_t = 5)]
    pub images: usize,
    /// Observed pixels: all, top (top 14 rows), left (left 14 columns), or a 28×28 PNG mask (white = observed) [default: top for 28×28 images, all for other data]
    #[arg(long)]
    pub observe: Option<String>,
    /// Starting point of q: the prior N(0, I) or the encoder's q for the observed pixels
    #[arg(long, value_enum, default_value_t = SviInit::Prior)]
    pub init: SviInit,
    /// Reparameterized samples per image per step (M)
    #[arg(long, default_value_t = 10)]
    pub samples: usize,
    /// Adam learning rate for μ and log σ
    #[arg(long, default_value_t = 0.05, value_parser = super::positive_f32)]
    pub lr: f32,
    /// Stop after this many steps at most
    #[arg(long, default_value_t = 3000)]
    pub max_steps: usize,
    /// Stop when the mean ELBO of the last W steps beats the W before by less than --tol nats (W ≥ 20: a mean of fewer noisy steps stops on noise)
    #[arg(long, default_value_t = 100)]
    pub window: usize,
    /// Convergence threshold of the window rule, in nats
    #[arg(long, default_value_t = 0.02)]
    pub tol: f64,
    /// Times the window rule divides --lr by 10 before it stops an image (Adam's steps are ~lr, so a narrow posterior needs a smaller one)
    #[arg(long, default_value_t = 2)]
    pub lr_drops: usize,
    /// Samples in the final ELBO estimates
    #[arg(long, default_value_t = 1000)]
    pub elbo_samples: usize,
    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct EstimatorArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Test image index (0 is the first)
    #[arg(long, default_value_t = 0, value_parser = super::whole_usize)]
    pub image: usize,
    /// Samples per gradient estimate (M)
    #[arg(long, default_value_t = 10)]
    pub samples: usize,
    /// Independent estimates (R)
    #[arg(long, default_value_t = 1000)]
    pub reps: usize,
}

/// Smallest SVI convergence window: the mean of 20 single-step ELBO estimates has about a fifth
/// of their spread, enough to compare with --tol.
const MIN_SVI_WINDOW: usize = 20;

pub(super) fn cmd_svi(a: &SviArgs) -> Result<()> {
    check_range("--images", a.images, 1, 1000)?;
    check_range("--samples", a.samples, 1, 10_000)?;
    check_range("--max-steps", a.max_steps, 1, 1_000_000)?;
    check_range("--elbo-samples", a.elbo_samples, 2, 1_000_000)?;
    // Two windows must fit in the run, and each must average enough steps that the comparison
    // is not decided by Monte Carlo noise (a window of 1 "converged" after 3 steps).
    check_range("--window", a.window, MIN_SVI_WINDOW, 1_000_000)?;
    if 2 * a.window > a.max_steps {
        return Err(Error::Usage(format!(
            "--window {} needs at least {} steps to compare two windows; raise --max-steps {}",
            a.window,
            2 * a.window,
            a.max_steps
        )));
    }
    if !(a.lr.is_finite() && a.lr > 0.0 && a.tol.is_finite() && a.tol >= 0.0) {
        return Err(Error::Usage(
            "--lr must be positive and --tol non-negative".into(),
        ));
    }
    let mut s = session(&a.model)?;
    // Masks of rows and columns cover digits; vector data are observed whole unless told.
    let observe = match &a.observe {
        Some(o) => Observe::parse(o),
        None if s.is_image() => Observe::Top,
        None => Observe::All,
    };
    let run = SviRun {
        images: a.images,
        observe,
        init: a.init,
        opts: SviOptions {
            samples: a.samples,
            lr: a.lr,
            max_steps: a.max_steps,
            window: a.window,
            tol: a.tol,
            lr_drops: a.lr_drops,
            seed: a.model.seed,
        },
        elbo_samples: a.elbo_samples,
    };
    run.observe.mask(s.dim())?;
    let pb = if a.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(a.max_steps as u64)
    };
    let r = experiments::svi(&mut s, &a.model.out, &run, &mut |step| {
        pb.set_position(step as u64)
    })?;
    pb.finish_and_clear();
    println!(
        "image  digit  steps  conv   SVI ELBO ± s.e.    encoder ELBO   KL(q‖p_grid)   log p(x_obs)"
    );
    for row in &r.rows {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.3}"));
        println!(
            "{:>5}  {:>5}  {:>5}  {:>4}  {:>9.3} ± {:<6.3}  {:>12.3}  {:>13}  {:>13}",
            row.image,
            row.label.map_or("-".into(), |l| l.to_string()),
            row.steps,
            if row.stalled {
                "stuck"
            } else if row.converged {
                "yes"
            } else {
                "no"
            },
            row.elbo,
            row.elbo_std_err,
            row.encoder_elbo,
            opt(row.kl_to_grid_posterior),
            opt(row.log_px_obs_grid)
        );
    }
    println!(
        "fitted {} {} ({} {} observed) in {:.2} s on {}",
        r.rows.len(),
        if s.is_image() { "images" } else { "rows" },
        run.observe.name(),
        if s.is_image() { "pixels" } else { "values" },
        r.seconds,
        s.ops.describe()
    );
    let stuck = r.rows.iter().filter(|row| row.stalled).count();
    if stuck > 0 {
        eprintln!(
            "warning: for {stuck} image(s) q moved less than {} from where it started: --lr {} \
             is too small for Adam to move it (its steps are about lr), so these fits are not \
             converged (\"stuck\"); raise --lr (default 0.05)",
            crate::inference::svi::MIN_MOVE,
            a.lr
        );
    }
    let far = r
        .rows
        .iter()
        .filter(|row| row.kl_to_grid_posterior.is_some_and(|kl| kl > 1.0))
        .count();
    if far > 0 {
        eprintln!(
            "note: for {far} image(s) the fitted q is more than 1 nat of KL from the grid \
             posterior: the window rule stopped while the noisy ELBO still improved (narrow \
             posteriors, e.g. of a Gaussian likelihood, do this); a larger --window (e.g. 400, \
             with --max-steps 8000) lets SVI settle further"
        );
    }
    print_paths(&r.files)
}

pub(super) fn cmd_estimators(a: &EstimatorArgs) -> Result<()> {
    check_range("--samples", a.samples, 2, 100_000)?;
    check_range("--reps", a.reps, 2, 1_000_000)?;
    check_range("--samples × --reps", a.samples * a.reps, 4, 2_000_000)?;
    let mut s = session(&a.model)?;
    let t0 = std::time::Instant::now();
    let (studies, files) =
        experiments::estimators(&mut s, &a.model.out, a.image, a.samples, a.reps)?;
    print!("{}", experiments::format_estimators(&studies));
    println!(
        "{:.2} s on {}",
        t0.elapsed().as_secs_f64(),
        s.ops.describe()
    );
    print_paths(&files)
}
