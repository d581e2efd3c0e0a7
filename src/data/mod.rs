//! The data sets a model trains on: MNIST images ([`mnist`]), the lecture notes' synthetic circle
//! ([`circle`]) and a user's own real-valued vectors from a CSV or NumPy file ([`files`]).
//!
//! Every set is a [`DataSet`]: rows of `dim` values, stored as 8-bit pixels (MNIST: a quarter
//! of the memory, and the device gather binarizes or scales them) or as f32 values used as they
//! are. Which set a run used is its [`DataSource`], stored in the checkpoint, so analysis commands
//! rebuild the same data without being told again.
//!
//! [`batch`]: the epoch order and the CPU gather of a minibatch; [`representation`]: how pixels
//! become data values; [`input`]: reading a user's files (regular files only, sizes capped before
//! reading).

pub mod batch;
pub mod circle;
pub mod files;
pub mod input;
pub mod mnist;
pub mod representation;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use mnist::{IMAGE_SIDE, PIXELS};

/// Error type for data loading, with messages that say which file, what was wrong, and what to
/// do (e.g. "run tools/fetch_mnist.sh or pass --data DIR").
#[derive(Debug)]
pub struct DataError(pub String);

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DataError {}

/// The values of a data set, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// 8-bit pixels: binarized or divided by 255 when a batch is gathered.
    Pixels(Vec<u8>),
    /// Real values, used as they are.
    Real(Vec<f32>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Pixels(v) => v.len(),
            Values::Real(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the GPU holds: pixels packed four per u32 word, or f32 values.
    pub fn device_bytes(&self) -> &[u8] {
        match self {
            Values::Pixels(v) => v,
            Values::Real(v) => bytemuck::cast_slice(v),
        }
    }
}

/// Rows of `dim` values with what is known about each row: a class label (MNIST digits) and the
/// latent value that generated it (the circle's z), each empty when the data has none.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSet {
    pub dim: usize,
    pub values: Values,
    pub labels: Vec<u8>,
    pub truth: Vec<f32>,
}

impl DataSet {
    pub fn pixels(dim: usize, images: Vec<u8>, labels: Vec<u8>) -> Self {
        Self {
            dim,
            values: Values::Pixels(images),
            labels,
            truth: Vec::new(),
        }
    }

    pub fn real(dim: usize, values: Vec<f32>, truth: Vec<f32>) -> Self {
        Self {
            dim,
            values: Values::Real(values),
            labels: Vec::new(),
            truth,
        }
    }

    /// Number of rows (derived from the values, so it is also valid for unlabeled sets).
    pub fn len(&self) -> usize {
        self.values.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the rows are 28×28 images (figures of digits apply) rather than plain vectors.
    pub fn is_image(&self) -> bool {
        matches!(self.values, Values::Pixels(_)) && self.dim == PIXELS
    }

    /// Pixels of image `i`. Panics for real-valued data or `i >= len()` (caller bugs).
    pub fn image(&self, i: usize) -> &[u8] {
        match &self.values {
            Values::Pixels(v) => &v[i * self.dim..(i + 1) * self.dim],
            Values::Real(_) => panic!("image() of a real-valued data set"),
        }
    }

    /// Rows `[start, start+count)` as a new set (caller guarantees range validity); labels and
    /// true latents are sliced with them when present.
    pub fn slice(&self, start: usize, count: usize) -> DataSet {
        debug_assert!(
            start
                .checked_add(count)
                .is_some_and(|end| end <= self.len()),
            "slice [{start}, {start}+{count}) out of range for {} rows",
            self.len()
        );
        let part = |v: &[u8]| {
            if v.is_empty() {
                Vec::new()
            } else {
                v[start..start + count].to_vec()
            }
        };
        let values = match &self.values {
            Values::Pixels(v) => {
                Values::Pixels(v[start * self.dim..(start + count) * self.dim].to_vec())
            }
            Values::Real(v) => {
                Values::Real(v[start * self.dim..(start + count) * self.dim].to_vec())
            }
        };
        let truth = if self.truth.is_empty() {
            Vec::new()
        } else {
            self.truth[start..start + count].to_vec()
        };
        DataSet {
            dim: self.dim,
            values,
            labels: part(&self.labels),
            truth,
        }
    }
}

/// A training and a test set of the same kind.
pub struct Corpus {
    pub train: DataSet,
    pub test: DataSet,
}

impl Corpus {
    /// The notes' split of one list of rows: the first ¾ train, the rest test.
    pub fn split_three_quarters(all: DataSet) -> Result<Corpus, DataError> {
        let n = all.len();
        let n_train = 3 * n / 4;
        if n_train == 0 || n_train == n {
            return Err(DataError(format!(
                "{n} rows cannot be split ¾ : ¼ into a training and a test set; at least 2 are needed"
            )));
        }
        Ok(Corpus {
            train: all.slice(0, n_train),
            test: all.slice(n_train, n - n_train),
        })
    }
}

/// Where a run's data comes from; stored in its checkpoint (`"data"`, absent in checkpoints
/// from before there was a choice, which all used MNIST).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DataSource {
    /// MNIST from `--data DIR` or the embedded copy.
    #[default]
    Mnist,
    /// The lecture notes' circle: z ~ N(0, 1), x = (cos z, sin z) + noise·N(0, I₂); `n` rows,
    /// the first ¾ for training.
    Circle { n: usize, seed: u64, noise: f32 },
    /// Real-valued rows from a CSV or `.npy` file; the first ¾ for training.
    File { path: PathBuf },
}

impl DataSource {
    /// The data, with `mnist_dir` standing for `--data DIR` (MNIST only).
    pub fn load(&self, mnist_dir: Option<&Path>) -> Result<Corpus, DataError> {
        match self {
            DataSource::Mnist => mnist::from_flag(mnist_dir),
            DataSource::Circle { n, seed, noise } => {
                Corpus::split_three_quarters(circle::generate(*n, *seed, *noise)?)
            }
            DataSource::File { path } => Corpus::split_three_quarters(files::read(path)?),
        }
    }

    /// A phrase for headers and reports, e.g. "the circle (n = 20000, noise 0.1, seed 0)".
    pub fn describe(&self) -> String {
        match self {
            DataSource::Mnist => "MNIST".into(),
            DataSource::Circle { n, seed, noise } => {
                format!("the circle (n = {n}, noise {noise}, data seed {seed})")
            }
            DataSource::File { path } => format!("{}", path.display()),
        }
    }

    /// What one row is called in printed numbers ("nats/image", "nats/row").
    pub fn row_name(&self) -> &'static str {
        if self.is_mnist() {
            "image"
        } else {
            "row"
        }
    }

    /// Whether the rows are 8-bit images (so binarization and image figures apply).
    pub fn is_mnist(&self) -> bool {
        matches!(self, DataSource::Mnist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_sets_slice_with_their_truth() {
        let set = DataSet::real(
            2,
            (0..10).map(|v| v as f32).collect(),
            vec![0., 1., 2., 3., 4.],
        );
        assert_eq!(set.len(), 5);
        assert!(!set.is_image());
        let s = set.slice(1, 2);
        assert_eq!(s.values, Values::Real(vec![2., 3., 4., 5.]));
        assert_eq!(s.truth, vec![1., 2.]);
        assert!(s.labels.is_empty());
        let c = Corpus::split_three_quarters(set).unwrap();
        assert_eq!((c.train.len(), c.test.len()), (3, 2));
        let one = DataSet::real(2, vec![1.0, 2.0], vec![]);
        assert!(Corpus::split_three_quarters(one).is_err());
    }

    #[test]
    fn sources_round_trip_through_json() {
        for s in [
            DataSource::Mnist,
            DataSource::Circle {
                n: 20_000,
                seed: 3,
                noise: 0.1,
            },
            DataSource::File {
                path: "x.csv".into(),
            },
        ] {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<DataSource>(&j).unwrap(), s, "{j}");
        }
        assert!(serde_json::from_str::<DataSource>(r#"{"kind":"circle","n":5}"#).is_err());
    }
}
