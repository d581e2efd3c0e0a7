//! `grid-posterior`: log p(x) by numerical integration over a latent grid, and the grid options
//! `report` shares.

use clap::Args;

use super::{check_range, decoder_session, print_paths, ModelArgs};
use crate::error::Result;
use crate::inference::analysis::LatentGrid;
use crate::report::figures::{self, GridOptions};

#[derive(Args, Debug)]
pub struct GridArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub grid: GridOptionArgs,
}

#[derive(Args, Debug, Clone)]
pub struct GridOptionArgs {
    /// Number of test images (the first N) in the table
    #[arg(long, default_value_t = 10)]
    pub images: usize,
    /// Lower bound of the grid on both axes
    #[arg(long, default_value_t = -4.0, allow_hyphen_values = true)]
    pub lower: f64,
    /// Upper bound of the grid on both axes
    #[arg(long, default_value_t = 4.0, allow_hyphen_values = true)]
    pub upper: f64,
    /// Grid spacing [default: 0.1 for a 2-D latent; 0.01 for a 1-D one, where points are cheap and
    /// posteriors of a few tenths would span too few cells of 0.1]
    #[arg(long)]
    pub spacing: Option<f64>,
    /// Centre each image's grid on the mean of its q(z|x) (same extent as --lower/--upper)
    #[arg(long)]
    pub centre_on_q: bool,
    /// Samples of q(z|x) in each ELBO estimate
    #[arg(long, default_value_t = 1000)]
    pub elbo_samples: usize,
    /// Images drawn in the contour figures
    #[arg(long, default_value_t = 6)]
    pub plot_images: usize,
}

/// The grid options for a model with a `latent`-dimensional latent space (a line for Dz = 1).
pub(super) fn grid_options(g: &GridOptionArgs, latent: usize) -> Result<GridOptions> {
    check_range("--images", g.images, 1, 10_000)?;
    check_range("--elbo-samples", g.elbo_samples, 2, 1_000_000)?;
    check_range("--plot-images", g.plot_images, 1, 30)?;
    let grid = if latent == 1 {
        LatentGrid::line(g.lower, g.upper, g.spacing.unwrap_or(0.01))?
    } else {
        LatentGrid::square(g.lower, g.upper, g.spacing.unwrap_or(0.1))?
    };
    Ok(GridOptions {
        images: g.images,
        grid,
        centre_on_q: g.centre_on_q,
        elbo_samples: g.elbo_samples,
        plot_images: g.plot_images,
    })
}

pub(super) fn cmd_grid_posterior(a: &GridArgs) -> Result<()> {
    let mut s = decoder_session(&a.model)?;
    if s.ck.config.vem.is_some() {
        eprintln!(
            "note: a --inference vem checkpoint: log p(x) is the decoder's; its encoder is unused \
             (at initialization), so the ELBO column and the q contours are those of an untrained \
             encoder, not of the E-step's q (`eval` measures that ELBO)"
        );
    }
    let opts = grid_options(&a.grid, s.latent())?;
    let r = figures::grid_posterior(&mut s, &a.model.out, &opts)?;
    print!("{}", figures::format_grid_table(&r.rows));
    let grid = opts.grid.for_latent(s.latent())?;
    let points = if grid.dims == 2 {
        format!("{}×{}", grid.nx, grid.ny)
    } else {
        grid.nx.to_string()
    };
    println!(
        "grid of {points} points, spacing {}; {} rows in {:.2} s on {}",
        grid.dx,
        r.rows.len(),
        r.seconds,
        s.ops.describe()
    );
    for w in figures::grid_warnings(&r.rows, &opts.grid) {
        eprintln!("warning: {w}");
    }
    print_paths(&[vec![r.csv], r.figures].concat())
}
