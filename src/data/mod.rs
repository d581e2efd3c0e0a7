//! The data sets a model trains on: MNIST images ([`mnist`]), the lecture notes' synthetic circle
//! ([`circle`]) and a user's own real-valued vectors from a CSV or NumPy file ([`files`]).
//!
//! Every set is a [`DataSet`]: rows of `dim` values, stored as 8-bit pixels (MNIST: a quarter
//! of the memory, and the device gather binarizes or scales them) or as f32 values used as they
//! are. Which set a run used is its [`DataSource`], stored in the checkpoint with the sha256 of the
//! content read, so analysis commands and `--resume` rebuild the same data without being told
//! again, and refuse (naming both hashes) when the files have changed or are gone.
//!
//! [`input`]: reading a user's files (regular files only, sizes capped before reading).
//!
//! [`batch`]: the epoch order and the CPU gather of a minibatch; [`representation`]: how pixels
//! become data values.

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

/// Where a run's data comes from; stored in its checkpoint's config (`"data"`, absent in
/// checkpoints from before there was a choice, which all used MNIST).
///
/// A run records what it read: [`DataSource::MnistChecked`] and [`DataSource::FileChecked`] carry
/// the sha256 of the content, and reading them again checks it. [`DataSource::Mnist`] and
/// [`DataSource::File`] are what the flags name before anything is read, and what checkpoints
/// from before the hashes hold; those load as before (`Mnist` is the built-in copy, or `--data
/// DIR` when given).
///
/// Stored as JSON: `{"kind":"mnist"}`, `{"kind":"mnist","sha256":…}` (the built-in copy),
/// `{"kind":"mnist","dir":…,"sha256":…}`, `{"kind":"circle","n":…,"seed":…,"noise":…}`,
/// `{"kind":"file","path":…}` and `{"kind":"file","path":…,"sha256":…}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(try_from = "Stored", into = "Stored")]
pub enum DataSource {
    /// MNIST from `--data DIR` or the embedded copy, not yet read (or from an older checkpoint).
    #[default]
    Mnist,
    /// MNIST as a run read it: from `dir` (absolute), or the built-in copy when `None`; `sha256`
    /// of its four files decompressed, in the order of [`mnist::BUILTIN_SHA256`].
    MnistChecked {
        dir: Option<PathBuf>,
        sha256: String,
    },
    /// The lecture notes' circle: z ~ N(0, 1), x = (cos z, sin z) + noise·N(0, I₂); `n` rows,
    /// the first ¾ for training.
    Circle { n: usize, seed: u64, noise: f32 },
    /// Real-valued rows from a CSV or `.npy` file; the first ¾ for training.
    File { path: PathBuf },
    /// [`DataSource::File`] as a run read it, with the file's sha256.
    FileChecked { path: PathBuf, sha256: String },
}

/// The stored form of [`DataSource`]: one JSON object per kind, the hash an optional field.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum Stored {
    Mnist {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir: Option<PathBuf>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    Circle {
        n: usize,
        seed: u64,
        noise: f32,
    },
    File {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
}

fn check_sha256(s: &str) -> Result<(), String> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(format!(
            "data.sha256 `{s}` is not a sha256 (64 lower-case hex digits)"
        ))
    }
}

impl TryFrom<Stored> for DataSource {
    type Error = String;
    fn try_from(s: Stored) -> Result<Self, String> {
        Ok(match s {
            Stored::Mnist {
                dir: None,
                sha256: None,
            } => DataSource::Mnist,
            Stored::Mnist {
                dir: Some(_),
                sha256: None,
            } => return Err("data.dir without its data.sha256".into()),
            Stored::Mnist {
                dir,
                sha256: Some(sha256),
            } => {
                check_sha256(&sha256)?;
                DataSource::MnistChecked { dir, sha256 }
            }
            Stored::Circle { n, seed, noise } => DataSource::Circle { n, seed, noise },
            Stored::File { path, sha256: None } => DataSource::File { path },
            Stored::File {
                path,
                sha256: Some(sha256),
            } => {
                check_sha256(&sha256)?;
                DataSource::FileChecked { path, sha256 }
            }
        })
    }
}

impl From<DataSource> for Stored {
    fn from(d: DataSource) -> Self {
        match d {
            DataSource::Mnist => Stored::Mnist {
                dir: None,
                sha256: None,
            },
            DataSource::MnistChecked { dir, sha256 } => Stored::Mnist {
                dir,
                sha256: Some(sha256),
            },
            DataSource::Circle { n, seed, noise } => Stored::Circle { n, seed, noise },
            DataSource::File { path } => Stored::File { path, sha256: None },
            DataSource::FileChecked { path, sha256 } => Stored::File {
                path,
                sha256: Some(sha256),
            },
        }
    }
}

/// `dir` made absolute, so analysis commands run from another directory find it again.
fn absolute(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

impl DataSource {
    /// The data, with `mnist_dir` standing for `--data DIR` (MNIST only); see [`DataSource::read`].
    pub fn load(&self, mnist_dir: Option<&Path>) -> Result<Corpus, DataError> {
        self.read(mnist_dir).map(|(corpus, _)| corpus)
    }

    /// The data and what was read: the source with the sha256 of its content, to be recorded in
    /// a checkpoint. A source that already carries a hash (a run's) must read back the same
    /// content: a changed or missing file or directory is an error that names both.
    ///
    /// `--data DIR` (`mnist_dir`) may point a run's MNIST elsewhere, to a copy of the same images;
    /// for [`DataSource::Mnist`] (the flags, or a checkpoint older than the hashes) it is taken as
    /// given, as before.
    pub fn read(&self, mnist_dir: Option<&Path>) -> Result<(Corpus, DataSource), DataError> {
        match self {
            DataSource::Mnist => match mnist_dir {
                None => Ok((
                    mnist::embedded()?,
                    DataSource::MnistChecked {
                        dir: None,
                        sha256: mnist::BUILTIN_SHA256.into(),
                    },
                )),
                Some(d) => {
                    let (corpus, sha256) = mnist::load_hashed(d)?;
                    let dir = Some(absolute(d));
                    Ok((corpus, DataSource::MnistChecked { dir, sha256 }))
                }
            },
            DataSource::MnistChecked { dir, sha256 } => {
                // The built-in copy's content needs no reading to be known: use it when the run's
                // data is that content, unless --data points elsewhere.
                if sha256 == mnist::BUILTIN_SHA256 && mnist_dir.is_none() {
                    return Ok((mnist::embedded()?, self.clone()));
                }
                let trained = self.identity();
                let Some(d) = mnist_dir.or(dir.as_deref()) else {
                    return Err(DataError(format!(
                        "the run was trained on {trained}, but this build's built-in copy is \
                         sha256 {}; pass --data DIR with the images it was trained on",
                        mnist::BUILTIN_SHA256
                    )));
                };
                if mnist_dir.is_none() && std::fs::metadata(d).is_err() {
                    return Err(DataError(format!(
                        "the run was trained on {trained}, and {} is gone; pass --data DIR with \
                         a copy of those files, or train a new run",
                        d.display()
                    )));
                }
                let (corpus, got) = mnist::load_hashed(d)
                    .map_err(|e| DataError(format!("{e} (the run was trained on {trained})")))?;
                if got != *sha256 {
                    let now = match mnist_dir {
                        Some(flag) => format!("--data {}", flag.display()),
                        None => d.display().to_string(),
                    };
                    return Err(DataError(format!(
                        "{now} now holds other images than the run was trained on: sha256 {got}, \
                         while the run was trained on {trained}. Restore those files, pass --data \
                         DIR with a copy of them, or train a new run on these"
                    )));
                }
                let dir = Some(absolute(d));
                Ok((corpus, DataSource::MnistChecked { dir, sha256: got }))
            }
            DataSource::Circle { n, seed, noise } => Ok((
                Corpus::split_three_quarters(circle::generate(*n, *seed, *noise)?)?,
                self.clone(),
            )),
            DataSource::File { path } => {
                let (set, sha256) = files::read_hashed(path)?;
                let path = path.clone();
                Ok((
                    Corpus::split_three_quarters(set)?,
                    DataSource::FileChecked { path, sha256 },
                ))
            }
            DataSource::FileChecked { path, sha256 } => {
                let trained = self.identity();
                if std::fs::symlink_metadata(path).is_err() {
                    return Err(DataError(format!(
                        "the run was trained on {trained}, and that file is gone; restore it, \
                         or train a new run"
                    )));
                }
                let (set, got) = files::read_hashed(path)
                    .map_err(|e| DataError(format!("{e} (the run was trained on {trained})")))?;
                if got != *sha256 {
                    return Err(DataError(format!(
                        "--data-file {} has changed since the run was trained on it: sha256 {got} \
                         now, while the run was trained on {trained}. Restore it, or train a new \
                         run on the new file",
                        path.display()
                    )));
                }
                Ok((Corpus::split_three_quarters(set)?, self.clone()))
            }
        }
    }

    /// A phrase for headers and reports, e.g. "the circle (n = 20000, noise 0.1, seed 0)".
    pub fn describe(&self) -> String {
        match self {
            DataSource::Mnist | DataSource::MnistChecked { dir: None, .. } => "MNIST".into(),
            DataSource::MnistChecked { dir: Some(d), .. } => {
                format!("MNIST from {}", d.display())
            }
            DataSource::Circle { n, seed, noise } => {
                format!("the circle (n = {n}, noise {noise}, data seed {seed})")
            }
            DataSource::File { path } | DataSource::FileChecked { path, .. } => {
                format!("{}", path.display())
            }
        }
    }

    /// [`DataSource::describe`] with the content hash, for messages that compare two data sets:
    /// "MNIST from /data/inv (sha256 3f…)", "MNIST (the built-in copy, sha256 b2d8…)".
    pub fn identity(&self) -> String {
        match self {
            DataSource::MnistChecked { dir: None, sha256 } => {
                format!("MNIST (the built-in copy, sha256 {sha256})")
            }
            DataSource::MnistChecked { sha256, .. } | DataSource::FileChecked { sha256, .. } => {
                format!("{} (sha256 {sha256})", self.describe())
            }
            _ => self.describe(),
        }
    }

    /// The source without its content hash: what the flags would name.
    pub fn unchecked(&self) -> DataSource {
        match self {
            DataSource::MnistChecked { .. } => DataSource::Mnist,
            DataSource::FileChecked { path, .. } => DataSource::File { path: path.clone() },
            other => other.clone(),
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
        matches!(self, DataSource::Mnist | DataSource::MnistChecked { .. })
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
            DataSource::MnistChecked {
                dir: None,
                sha256: mnist::BUILTIN_SHA256.into(),
            },
            DataSource::MnistChecked {
                dir: Some("/data/inv".into()),
                sha256: "ab".repeat(32),
            },
            DataSource::FileChecked {
                path: "/x.csv".into(),
                sha256: "0f".repeat(32),
            },
        ] {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<DataSource>(&j).unwrap(), s, "{j}");
        }
        assert!(serde_json::from_str::<DataSource>(r#"{"kind":"circle","n":5}"#).is_err());
        // Older checkpoints' forms read as before; the hash is one more field of the same kind.
        let read = |j: &str| serde_json::from_str::<DataSource>(j);
        assert_eq!(read(r#"{"kind":"mnist"}"#).unwrap(), DataSource::Mnist);
        assert_eq!(
            serde_json::to_string(&DataSource::MnistChecked {
                dir: Some("/d".into()),
                sha256: "ab".repeat(32)
            })
            .unwrap(),
            format!(
                r#"{{"kind":"mnist","dir":"/d","sha256":"{}"}}"#,
                "ab".repeat(32)
            )
        );
        for bad in [
            r#"{"kind":"mnist","dir":"/d"}"#,
            r#"{"kind":"mnist","sha256":"XYZ"}"#,
            r#"{"kind":"file","path":"/x","sha256":""}"#,
            r#"{"kind":"mnist","other":1}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    /// A run's recorded data must read back the same: a changed file names both hashes, a gone
    /// one says so, and one restored reads again; older records without a hash read as before.
    #[test]
    fn recorded_data_reads_back_or_names_both_identities() {
        let dir = std::env::temp_dir().join(format!("vae_gpu_source_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("rows.csv");
        std::fs::write(&f, "1,2\n3,4\n5,6\n7,8\n").unwrap();
        let (corpus, read) = DataSource::File { path: f.clone() }.read(None).unwrap();
        assert_eq!((corpus.train.len(), corpus.test.len()), (3, 1));
        let DataSource::FileChecked { sha256, .. } = &read else {
            panic!("{read:?}")
        };
        let old = sha256.clone();
        assert!(read.load(None).is_ok());
        std::fs::write(&f, "1,2\n3,4\n5,6\n7,8\n9,10\n").unwrap();
        let m = read.load(None).err().unwrap().0;
        assert!(m.contains("has changed") && m.contains(&old), "{m}");
        let (_, new) = DataSource::File { path: f.clone() }.read(None).unwrap();
        let DataSource::FileChecked { sha256: new, .. } = new else {
            panic!()
        };
        assert!(m.contains(&new), "{m}");
        std::fs::remove_file(&f).unwrap();
        let m = read.load(None).err().unwrap().0;
        assert!(m.contains("gone") && m.contains(&old), "{m}");
        std::fs::write(&f, "1,2\n3,4\n5,6\n7,8\n").unwrap();
        assert!(read.load(None).is_ok());
        // The built-in copy is known by its hash; one that is not this build's is refused.
        let builtin = DataSource::Mnist.read(None).unwrap().1;
        assert_eq!(
            builtin,
            DataSource::MnistChecked {
                dir: None,
                sha256: mnist::BUILTIN_SHA256.into()
            }
        );
        let other = DataSource::MnistChecked {
            dir: None,
            sha256: "ab".repeat(32),
        };
        let m = other.load(None).err().unwrap().0;
        assert!(
            m.contains(&"ab".repeat(32)) && m.contains(mnist::BUILTIN_SHA256),
            "{m}"
        );
        let gone = DataSource::MnistChecked {
            dir: Some(dir.join("no-such-dir")),
            sha256: "ab".repeat(32),
        };
        let m = gone.load(None).err().unwrap().0;
        assert!(m.contains("is gone") && m.contains("no-such-dir"), "{m}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
