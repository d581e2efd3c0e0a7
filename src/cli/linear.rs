//! `pca` and `ppca`: the linear baselines.

use std::path::PathBuf;

use clap::Args;

use super::{check_range, load_data, print_paths, DataSetArgs};
use crate::error::{Error, Result};

/// `pca` and `ppca`: fitted on the first --train-size training rows (MNIST: pixels/255),
/// evaluated on the test rows.
#[derive(Args, Debug)]
pub struct LinearArgs {
    /// Directory with the four MNIST IDX files (.gz or raw) [default: the copy compiled into the binary]
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub dataset: DataSetArgs,
    /// Principal components k (1 to D − 1)
    #[arg(long, default_value_t = 2)]
    pub components: usize,
    /// Fit on the first N training images [default: all]
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Evaluate on the first N test images [default: all]
    #[arg(long)]
    pub test_size: Option<usize>,
    /// Output directory for figures and tables
    #[arg(long, default_value = "figures")]
    pub out: PathBuf,
    /// Seed of the samples
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `pca` (`probabilistic` false) or `ppca`.
pub(super) fn cmd_linear(a: &LinearArgs, probabilistic: bool) -> Result<()> {
    use crate::report::linear_models::{pca_report, ppca_report};
    let source = a.dataset.source()?;
    let data = load_data(&source, &a.data)?;
    let (n_train, n_test, d) = (data.train.len(), data.test.len(), data.train.dim);
    let train_size = a.train_size.unwrap_or(n_train);
    let test_size = a.test_size.unwrap_or(n_test);
    check_range("--train-size", train_size, 2, n_train)?;
    check_range("--test-size", test_size, 1, n_test)?;
    if d < 2 {
        return Err(Error::Usage(format!(
            "{} has 1 value per row: there is no lower-dimensional subspace to find",
            source.describe()
        )));
    }
    check_range("--components", a.components, 1, d - 1)?;
    let (train, test) = (
        data.train.slice(0, train_size),
        data.test.slice(0, test_size),
    );
    let rows = if source.is_mnist() {
        format!("{train_size} training images (pixels/255)")
    } else {
        format!("{train_size} training rows of {}", source.describe())
    };
    std::fs::create_dir_all(&a.out).map_err(|e| crate::error::io_err(&a.out, e))?;
    if probabilistic {
        let r = ppca_report(&train, &test, a.components, a.seed, &a.out)?;
        let ll = r.test_log_likelihood;
        println!(
            "probabilistic PCA, {}, fitted on {rows}",
            crate::report::linear_models::components(a.components)
        );
        println!("σ² = {:.6}", r.sigma2);
        println!(
            "test log-likelihood: {} nats/row over {test_size} rows ({:.4} bits/dim{})",
            ll.pm(3),
            -ll.mean / (d as f64 * std::f64::consts::LN_2),
            if source.is_mnist() {
                ": a density of [0, 1] pixels, not of 8-bit values"
            } else {
                ""
            }
        );
        print_paths(&r.files)
    } else {
        let r = pca_report(&train, &test, a.components, &a.out)?;
        println!(
            "PCA fitted on {rows}: {} {} {:.2}% of the variance; test \
             reconstruction MSE {:.5} per value",
            crate::report::linear_models::components(r.components),
            if r.components == 1 {
                "explains"
            } else {
                "explain"
            },
            100.0 * r.explained,
            r.test_mse
        );
        print_paths(&r.files)
    }
}
