//! The figure commands of one checkpoint: `samples`, `reconstructions`, `latent-scatter`,
//! `lattice`, `interpolate`, and `curves` (of a metrics.jsonl).

use std::path::PathBuf;

use clap::Args;

use super::{check_range, decoder_session, print_paths, session, ModelArgs};
use crate::error::{Error, Result};
use crate::report::figures;

#[derive(Args, Debug)]
pub struct ScatterArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of test images (the first N)
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
}

#[derive(Args, Debug)]
pub struct LatticeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Points per side
    #[arg(long, default_value_t = 20)]
    pub size: usize,
    /// z₁_min z₁_max z₂_min z₂_max [default: 1st–99th percentile of the test set's embedding]
    #[arg(long, num_args = 4, allow_hyphen_values = true)]
    pub bounds: Option<Vec<f64>>,
}

#[derive(Args, Debug)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Decoded points along each line
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Interpolate between sampled z ~ q(z|x) instead of the means
    #[arg(long)]
    pub sampled: bool,
}

#[derive(Args, Debug)]
pub struct CurvesArgs {
    /// metrics.jsonl written by `vae-gpu train`
    #[arg(long)]
    pub metrics: PathBuf,
    /// Directory for training_curves.png
    #[arg(long, default_value = "figures")]
    pub out: PathBuf,
}

pub(super) fn cmd_samples(a: &ModelArgs) -> Result<()> {
    // Prior samples need only the decoder: a --inference vem checkpoint draws them too.
    print_paths(&figures::prior_samples(&mut decoder_session(a)?, &a.out)?)
}

pub(super) fn cmd_reconstructions(a: &ModelArgs) -> Result<()> {
    print_paths(&figures::reconstructions(&mut session(a)?, &a.out)?)
}

pub(super) fn cmd_latent_scatter(a: &ScatterArgs) -> Result<()> {
    check_range("--n", a.n, 1, 10_000)?;
    let (p, _) = figures::latent_scatter(&mut session(&a.model)?, &a.model.out, a.n)?;
    print_paths(&[p])
}

pub(super) fn cmd_lattice(a: &LatticeArgs) -> Result<()> {
    check_range("--size", a.size, 2, 100)?;
    let mut s = session(&a.model)?;
    let bounds = match &a.bounds {
        Some(b)
            if b.len() == 4 && b.iter().all(|v| v.is_finite()) && b[0] < b[1] && b[2] < b[3] =>
        {
            [b[0], b[1], b[2], b[3]]
        }
        Some(b) => {
            return Err(Error::Usage(format!(
                "--bounds {b:?} must be z1_min z1_max z2_min z2_max with min < max"
            )))
        }
        None => figures::latent_scatter(&mut s, &a.model.out, 10_000)?.1,
    };
    print_paths(&[figures::lattice(&mut s, &a.model.out, a.size, bounds)?])
}

pub(super) fn cmd_interpolate(a: &InterpolateArgs) -> Result<()> {
    check_range("--steps", a.steps, 2, 50)?;
    print_paths(&[figures::interpolation(
        &mut session(&a.model)?,
        &a.model.out,
        a.steps,
        a.sampled,
    )?])
}

pub(super) fn cmd_curves(a: &CurvesArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out).map_err(|e| crate::error::io_err(&a.out, e))?;
    print_paths(&[figures::training_curves(&a.metrics, &a.out)?])
}
