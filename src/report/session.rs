//! What the figure modules share: the trained model a report draws from ([`Session`]), and one
//! panel of a posterior figure ([`PosteriorSpec`]), which `figures` draws as contours for a 2-D
//! latent and `vectors` as densities for a 1-D one. Kept apart from both so that `figures` can
//! hand vector data over to `vectors` without the two importing each other.

use crate::data::batch::{gather_batch, EVAL_EPOCH};
use crate::data::DataSet;
use crate::error::{Error, Result};
use crate::family::likelihood::{mean_rows, sample_rows};
use crate::inference::analysis::GridPosterior;
use crate::inference::ModelOps;
use crate::rng::{binarize_uniforms, noise_batch, stream};
use crate::spec::LatentFamily;
use crate::training::checkpoint::Checkpoint;

/// A trained model, its data and the device it runs on.
pub struct Session {
    pub ck: Checkpoint,
    pub test: DataSet,
    pub ops: Box<dyn ModelOps>,
    pub seed: u64,
}

/// The label of a row that has none (the circle, a data file); shown as "-".
pub const NO_LABEL: u8 = u8::MAX;

impl Session {
    /// The first `n` test rows as the model sees them in evaluation (binarized, grayscale or
    /// real-valued, `[n, D]`), and their labels ([`NO_LABEL`] for data without classes).
    pub fn test_images(&self, n: usize) -> (Vec<f32>, Vec<u8>) {
        let n = n.min(self.test.len());
        let index: Vec<u32> = (0..n as u32).collect();
        let mut x = vec![0.0f32; n * self.dim()];
        let c = &self.ck.config;
        gather_batch(
            &self.test, &index, 0, n, c.pixels, c.seed, EVAL_EPOCH, &mut x,
        );
        let labels = match self.test.labels.get(..n) {
            Some(l) => l.to_vec(),
            None => vec![NO_LABEL; n],
        };
        (x, labels)
    }

    /// `n` drawn test rows in words, for titles: the run's test split, or the first `n` of the
    /// loaded test set, with the run's own sizes ("a scatter of 10,000 images" of a run trained
    /// on 200 read as if the run had seen them).
    pub fn rows_note(&self, n: usize) -> String {
        let unit = self.ck.config.data.row_name();
        let trained = format!("trained on {}", self.ck.train_size);
        match self.ck.test_size {
            Some(t) if t == n && n <= self.test.len() => {
                format!("the {n} test {unit}s of the run's split (the run {trained})")
            }
            Some(t) => format!(
                "the first {n} of {} test {unit}s (the run {trained}, tested on {t})",
                self.test.len()
            ),
            None => format!(
                "the first {n} of {} test {unit}s (the run {trained})",
                self.test.len()
            ),
        }
    }

    /// Values per data row (784 for MNIST, 2 for the circle).
    pub fn dim(&self) -> usize {
        self.ck.config.model.input
    }

    /// Whether the data are 28×28 images, so digit figures apply.
    pub fn is_image(&self) -> bool {
        self.test.is_image()
    }

    /// An error for a figure of digits asked of vector data, pointing at what to use instead.
    pub fn require_images(&self, what: &str) -> Result<()> {
        if self.is_image() {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "{what} draws 28×28 digits, and this model was trained on {} ({} values per row); \
             `vae-gpu report` draws the figures for vector data (data, samples, decoder curve, \
             encoder map)",
            self.ck.config.data.describe(),
            self.dim()
        )))
    }

    pub fn latent(&self) -> usize {
        self.ck.config.model.latent
    }

    pub fn require_2d(&self, what: &str) -> Result<()> {
        if self.latent() != 2 {
            return Err(Error::Usage(format!(
                "{what} needs a 2-D latent space and this model has Dz = {}; train one with `--latent-dim 2`",
                self.latent()
            )));
        }
        Ok(())
    }

    /// The likelihood's per-pixel means E[x|z] for latents z (σ(logits) for a Bernoulli).
    pub fn decode_means(&mut self, z: &[f32]) -> Result<Vec<f32>> {
        let outputs = self.ops.decode(z)?;
        let free = self.ops.free_params()?;
        Ok(mean_rows(
            &self.ck.config.model.likelihood,
            self.dim(),
            &outputs,
            free.as_deref(),
        ))
    }

    /// One draw x ~ p(x|z) per latent, from Philox uniforms (the binarization stream, epoch slot
    /// `counter`) and normals (stream ANALYSIS, counter with the top bit set).
    pub fn decode_samples(&mut self, z: &[f32], counter: u32) -> Result<Vec<f32>> {
        let outputs = self.ops.decode(z)?;
        let free = self.ops.free_params()?;
        let (rows, d) = (z.len() / self.latent(), self.dim());
        let mut u = vec![0.0f32; rows * d];
        for (i, row) in u.chunks_mut(d).enumerate() {
            binarize_uniforms(self.seed ^ 0xb3e5, counter, i as u32, d, row);
        }
        let n = noise_batch(
            LatentFamily::Gaussian,
            self.seed,
            stream::ANALYSIS,
            counter | 1 << 31,
            rows,
            d,
        );
        Ok(sample_rows(
            &self.ck.config.model.likelihood,
            d,
            &outputs,
            free.as_deref(),
            &u,
            &n,
        ))
    }

    /// z ~ p(z), `n` rows, from Philox stream ANALYSIS under `counter`.
    pub fn prior_z(&self, n: usize, counter: u32) -> Vec<f32> {
        let prior = self.ck.config.model.prior;
        let mut z = noise_batch(
            prior.family,
            self.seed,
            stream::ANALYSIS,
            counter,
            n,
            self.latent(),
        );
        z.iter_mut().for_each(|v| *v = prior.from_standard(*v));
        z
    }

    /// z ~ q(z|x) for encoder rows `enc` `[n, 2Dz]`.
    pub fn sample_q(&self, enc: &[f32], counter: u32) -> Vec<f32> {
        let dz = self.latent();
        let n = enc.len() / (2 * dz);
        let q = self.ck.config.model.posterior;
        let eps = noise_batch(q, self.seed, stream::ANALYSIS, counter, n, dz);
        let mut z = vec![0.0f32; n * dz];
        for i in 0..n {
            for d in 0..dz {
                let (mu, head) = (enc[i * 2 * dz + d], enc[i * 2 * dz + dz + d]);
                z[i * dz + d] = q.reparameterize(mu, head, eps[i * dz + d]);
            }
        }
        z
    }

    pub fn means(&self, enc: &[f32]) -> Vec<f32> {
        let dz = self.latent();
        enc.chunks(2 * dz).flat_map(|r| r[..dz].to_vec()).collect()
    }
}

/// One panel of a posterior figure: an image (with its observed-pixel mask), its posterior on the
/// integration grid, and the q to draw over it (family, location, scale per axis).
pub struct PosteriorSpec<'a> {
    pub x: &'a [f32],
    pub mask: &'a [f32],
    pub post: &'a GridPosterior,
    pub q_family: LatentFamily,
    pub q_mean: [f64; 2],
    pub q_scale: [f64; 2],
    pub caption: String,
}
