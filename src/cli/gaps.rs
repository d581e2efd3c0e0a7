//! `gaps`: the approximation and amortization gaps of a checkpoint (Cremer, Li & Duvenaud 2018).

use clap::Args;

use super::{check_range, print_paths, session, ModelArgs};
use crate::error::{Error, Result};
use crate::inference::gaps::{GapOptions, LogPxMethod};
use crate::inference::svi::SviOptions;
use crate::report::gaps::{self, default_method, format_table};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GapMethod {
    /// Numerical integration over the latent grid (Dz ≤ 2)
    Grid,
    /// The importance-weighted bound with --k draws of q* (any Dz; a lower bound on log p(x))
    Iwae,
}

#[derive(Args, Debug)]
pub struct GapsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Test images (the first N of the run's test split)
    #[arg(long, default_value_t = 100, value_parser = super::whole_usize)]
    pub images: usize,
    /// How log p(x) is measured [default: grid for Dz ≤ 2, iwae otherwise]
    #[arg(long, value_enum)]
    pub method: Option<GapMethod>,
    /// Draws of q* in the IWAE estimate of log p(x) [default: 5000]
    #[arg(long, value_parser = super::whole_usize)]
    pub k: Option<usize>,
    /// Draws in each final ELBO estimate (q_φ, q*, q*_full; the same ε for all three)
    #[arg(long, default_value_t = 2000, value_parser = super::whole_usize)]
    pub elbo_samples: usize,
    /// Skip the full-covariance Gaussian q* (the diagonal family's own approximation gap)
    #[arg(long)]
    pub no_full: bool,
    /// SVI: reparameterized samples per image per step (M)
    #[arg(long, default_value_t = 10, value_parser = super::whole_usize)]
    pub samples: usize,
    /// SVI: Adam learning rate
    #[arg(long, default_value_t = 0.05, value_parser = super::positive_f32)]
    pub lr: f32,
    /// SVI: stop after this many steps at most
    #[arg(long, default_value_t = 3000, value_parser = super::whole_usize)]
    pub max_steps: usize,
    /// SVI: the stopping rule's window W (the mean ELBO of the last W steps beats the W before by less than --tol)
    #[arg(long, default_value_t = 100, value_parser = super::whole_usize)]
    pub window: usize,
    /// SVI: the stopping rule's threshold, in nats
    #[arg(long, default_value_t = 0.02)]
    pub tol: f64,
    /// SVI: times the stopping rule divides --lr by 10 before it stops an image
    #[arg(long, default_value_t = 2, value_parser = super::whole_usize)]
    pub lr_drops: usize,
    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
}

pub(super) fn cmd_gaps(a: &GapsArgs) -> Result<()> {
    check_range("--elbo-samples", a.elbo_samples, 2, 1_000_000)?;
    check_range("--samples", a.samples, 1, 10_000)?;
    check_range("--max-steps", a.max_steps, 1, 1_000_000)?;
    check_range("--window", a.window, 20, 1_000_000)?;
    if 2 * a.window > a.max_steps {
        return Err(Error::Usage(format!(
            "--window {} needs at least {} steps to compare two windows; raise --max-steps {}",
            a.window,
            2 * a.window,
            a.max_steps
        )));
    }
    if !(a.tol.is_finite() && a.tol >= 0.0) {
        return Err(Error::Usage("--tol must be a number ≥ 0".into()));
    }
    if let Some(k) = a.k {
        check_range("--k", k, 1, 1_000_000)?;
    }
    let mut s = session(&a.model)?;
    // The run's own test split, as eval scores it.
    let split = s.ck.test_size.unwrap_or(s.test.len()).min(s.test.len());
    s.test = s.test.slice(0, split);
    if a.images == 0 || a.images > split {
        return Err(Error::Usage(format!(
            "--images {} must be from 1 to the {split} images of the run's test split",
            a.images
        )));
    }
    let k = a.k.unwrap_or(5000);
    let method = match a.method {
        None => default_method(s.latent(), k),
        Some(GapMethod::Grid) => LogPxMethod::Grid,
        Some(GapMethod::Iwae) => LogPxMethod::Iwae { k },
    };
    if method == LogPxMethod::Grid && a.k.is_some() {
        return Err(Error::Usage(
            "--k is the IWAE sample count and log p(x) is measured on the grid here; drop --k \
             or add --method iwae"
                .into(),
        ));
    }
    let o = GapOptions {
        svi: SviOptions {
            samples: a.samples,
            lr: a.lr,
            max_steps: a.max_steps,
            window: a.window,
            tol: a.tol,
            lr_drops: a.lr_drops,
            seed: a.model.seed,
        },
        elbo_samples: a.elbo_samples,
        method,
        full: !a.no_full,
        seed: a.model.seed,
    };
    crate::inference::gaps::check(s.ops.as_ref(), &o)?;
    let pb = if a.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(a.max_steps as u64)
    };
    let mut stage_now = usize::MAX;
    let r = gaps::gaps(
        &mut s,
        &a.model.out,
        &a.model.checkpoint,
        a.images,
        &o,
        &mut |stage, n| {
            if stage != stage_now {
                stage_now = stage;
                pb.set_position(0);
                pb.set_length(if stage == 2 { a.images } else { a.max_steps } as u64);
                pb.set_message(["SVI q*", "SVI q*_full", "estimates"][stage.min(2)]);
            }
            pb.set_position(n as u64);
        },
    )?;
    pb.finish_and_clear();
    print!("{}", format_table(&r.summary));
    let edge = r
        .rows
        .iter()
        .filter(|g| g.edge_mass.is_some_and(|m| m > 1e-3))
        .count();
    if edge > 0 {
        eprintln!(
            "warning: for {edge} image(s) more than 0.1% of p(z|x) lies on the edge of its grid \
             (widened up to ±8 around q*): log p(x) and the approximation gap are underestimated there"
        );
    }
    if r.summary.svi_not_converged > 0 {
        eprintln!(
            "note: {} SVI fit(s) reached --max-steps {} before the stopping rule: their q* may \
             not be the best of the family, which moves gap from approximation to amortization; \
             raise --max-steps",
            r.summary.svi_not_converged, a.max_steps
        );
    }
    print_paths(&r.files)
}
