//! `report`: every figure and the integration table of one checkpoint, with an index.html.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::grid::{grid_options, GridOptionArgs};
use super::{load_data, session, ModelArgs};
use crate::device::{make_backend, resolve_device};
use crate::error::Result;
use crate::gpu::trainer::OptimizerOn;
use crate::report::{write_report, ReportInputs};
use crate::training::backend::Split;
use crate::training::checkpoint;
use crate::training::make_splits;

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub grid: GridOptionArgs,
    /// metrics.jsonl for the training curves [default: next to the checkpoint]
    #[arg(long)]
    pub metrics: Option<PathBuf>,
}

pub(super) fn cmd_report(a: &ReportArgs) -> Result<()> {
    let ck = checkpoint::load(&a.model.checkpoint)?;
    let opts = grid_options(&a.grid, ck.config.model.latent)?;
    let data = load_data(&ck.config.data, &a.model.data)?;
    // The run's test split, so the test ELBO is the one `train` printed (every test row for
    // checkpoints that do not record it); the figures draw from the same rows.
    let test_size = ck.test_size.unwrap_or(data.test.len());
    let splits = Arc::new(make_splits(data, ck.train_size, ck.val_size, test_size)?);
    let mut backend = make_backend(
        resolve_device(a.model.device),
        OptimizerOn::Gpu,
        &ck.config,
        splits,
    )?;
    backend.set_state(&ck.state)?;
    let (train_elbo, test_elbo) = (
        backend.evaluate(Split::Train)?,
        backend.evaluate(Split::Test)?,
    );
    let device = backend.describe();
    drop(backend);
    let mut s = session(&a.model)?;
    s.test = s.test.slice(0, test_size);
    let metrics = a
        .metrics
        .clone()
        .or_else(|| a.model.checkpoint.parent().map(|d| d.join("metrics.jsonl")));
    let inputs = ReportInputs {
        metrics,
        train_elbo,
        test_elbo,
        device,
        grid: opts,
    };
    let html = write_report(&mut s, &a.model.out, &inputs)?;
    println!(
        "train ELBO {train_elbo:.3} ({} rows), test ELBO {test_elbo:.3} (the first {test_size} \
         test rows: {})",
        ck.train_size,
        if ck.test_size.is_some() {
            "the run's test split"
        } else {
            "all; the checkpoint records no test split"
        }
    );
    println!("wrote {}", html.display());
    Ok(())
}
