//! Checkpoints in `safetensors`, loadable from PyTorch (`safetensors.torch.load_file`).
//!
//! Tensors (f32, PyTorch `nn.Linear` convention, weight `[out, in]`), named by
//! `spec::Layout::named_tensors`: hidden layers `encoder.fc1…`, `decoder.fc1…`, the encoder heads
//! `encoder.mean`, `encoder.logvar`, the decoder head(s) of the likelihood (`decoder.logits`, or
//! `decoder.mean` [+ `decoder.variance`], or `decoder.alpha` + `decoder.beta`), a learned per-pixel
//! variance `decoder.pixel_variance`; for the Appendix C model `encoder.fc1.{weight,bias}`
//! `[Dh,784]`/`[Dh]`, `encoder.mean.{weight,bias}` `[Dz,Dh]`/`[Dz]`, `encoder.logvar.{weight,bias}`
//! `[Dz,Dh]`/`[Dz]`, `decoder.fc1.{weight,bias}` `[Dh,Dz]`/`[Dh]`, `decoder.logits.{weight,bias}`
//! `[784,Dh]`/`[784]`. The optimizer state uses PyTorch's state keys: Adam's moments
//! `optimizer.exp_avg.<name>` / `optimizer.exp_avg_sq.<name>`, Adagrad's sum of squared gradients
//! `optimizer.sum.<name>`. A run of `--inference vem` adds its λ table, `vem.mean` and
//! `vem.logvar` `[N_train, Dz]` (row n: μ_n and log σ²_n of training image n, in the split's
//! order), and its inference settings in `config` under `vem` (`e_steps`, `e_lr`, `step_decay`,
//! `test_e_steps`); the E-step is plain SGD, so λ has no optimizer state. Metadata: `format`, `config` (the
//! training configuration as JSON), `epoch`, `step`, `train_size`, `val_size`, and since the run
//! records were added `test_size`, `run_id` and `metrics` (the `metrics.jsonl` line of the
//! checkpoint's epoch, so a crash between the two writes can be repaired on resume). Older
//! checkpoints without the last three keep loading.
//!
//! The file is written by [`encode`] rather than `safetensors::serialize`, whose metadata is a
//! `HashMap`: its random key order made two identical runs give different bytes. Here keys and
//! tensors are sorted, so the same run always gives the same sha256.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::data::input::{self, InputError};
use crate::error::{io_err, Error, Result};
use crate::training::backend::{TrainConfig, TrainState};

/// Written by this version; `vae-gpu/1` (the Appendix C model only, `hidden` as one width) still
/// loads, its spec read as that model.
pub const FORMAT: &str = "vae-gpu/2";
const READABLE_FORMATS: [&str; 2] = ["vae-gpu/1", FORMAT];

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub config: TrainConfig,
    pub state: TrainState,
    /// Epochs completed.
    pub epoch: u32,
    pub train_size: usize,
    pub val_size: usize,
    /// Test images the run evaluates on (absent in checkpoints older than the run records).
    pub test_size: Option<usize>,
    /// Identifies one training run across resumes; every metrics line carries it.
    pub run_id: Option<String>,
    /// The `metrics.jsonl` line of this epoch.
    pub metrics: Option<String>,
}

/// Writes `bytes` to `path` through a temporary file in the same directory, an fsync and a
/// rename, so a crash or a full disk never leaves a half-written file under the final name.
///
/// The temporary file is created exclusively (`O_EXCL`) under an unpredictable name by
/// `tempfile`, so nothing planted in the directory beforehand — a symbolic link under a guessed
/// name — is ever opened or written through; the rename replaces a link at `path` itself rather
/// than the file it points to. Permissions are the usual ones for a new file (0666 less the
/// umask). Checkpoints, metrics and every figure and table are written through here.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(|e| io_err(path, e))?;
    // On any error below, dropping `tmp` removes the temporary file.
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| io_err(path, e))?;
    tmp.persist(path).map_err(|e| io_err(path, e.error))?;
    // The rename is on disk once the directory is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads older stored settings as what they meant: Beta runs from before the `midpoint`
/// representation stored `grayscale` and read each pixel/255 as its bin's middle inside the
/// likelihood, the values the gather now makes under `midpoint`.
fn upgrade(config: &mut TrainConfig) {
    use crate::data::batch::Representation;
    if config.model.likelihood == crate::spec::Likelihood::Beta
        && config.pixels == Representation::Grayscale
    {
        config.pixels = Representation::Midpoint;
    }
}

/// The safetensors bytes of named f32 tensors plus string metadata, deterministically: tensors in
/// name order, JSON keys sorted (serde_json's map is a BTreeMap), header padded with spaces to a
/// multiple of 8 bytes as the format asks.
pub fn encode(
    tensors: &BTreeMap<String, (Vec<usize>, &[f32])>,
    meta: &BTreeMap<&str, String>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(meta));
    let mut offset = 0usize;
    for (name, (shape, data)) in tensors {
        let end = offset + data.len() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, data) in tensors.values() {
        out.extend_from_slice(bytemuck::cast_slice(data));
    }
    out
}

pub fn save(path: &Path, ck: &Checkpoint) -> Result<()> {
    let layout = ck.config.model.layout();
    let s = &ck.state;
    s.check_len(layout.total)?;
    let mut tensors = BTreeMap::new();
    for t in layout.named_tensors() {
        let (off, len) = (t.offset, t.len());
        let (first, second) = ck.config.optimizer.state_prefixes();
        let mut slots = vec![("", &s.params), (second, &s.v)];
        slots.extend(first.map(|prefix| (prefix, &s.m)));
        for (prefix, src) in slots {
            tensors.insert(
                format!("{prefix}{}", t.name),
                (t.shape.clone(), &src[off..off + len]),
            );
        }
    }
    let (vem_mean, vem_logvar) = split_lambda(&s.lambda, ck.config.model.latent);
    if ck.config.vem.is_some() {
        let dz = ck.config.model.latent;
        if s.lambda.len() != ck.train_size * 2 * dz {
            return Err(Error::Checkpoint(format!(
                "the λ table has {} values, {} training images need {}",
                s.lambda.len(),
                ck.train_size,
                ck.train_size * 2 * dz
            )));
        }
        tensors.insert("vem.mean".into(), (vec![ck.train_size, dz], &vem_mean[..]));
        tensors.insert(
            "vem.logvar".into(),
            (vec![ck.train_size, dz], &vem_logvar[..]),
        );
    }
    let config = serde_json::to_string(&ck.config).map_err(|e| Error::Checkpoint(e.to_string()))?;
    let mut meta = BTreeMap::from([
        ("format", FORMAT.to_string()),
        ("config", config),
        ("epoch", ck.epoch.to_string()),
        ("step", s.step.to_string()),
        ("train_size", ck.train_size.to_string()),
        ("val_size", ck.val_size.to_string()),
    ]);
    if let Some(n) = ck.test_size {
        meta.insert("test_size", n.to_string());
    }
    if let Some(id) = &ck.run_id {
        meta.insert("run_id", id.clone());
    }
    if let Some(m) = &ck.metrics {
        meta.insert("metrics", m.clone());
    }
    write_atomic(path, &encode(&tensors, &meta))
}

/// The λ table's rows `[μ | log σ²]` as the two `[N, Dz]` tensors `vem.mean`, `vem.logvar`.
fn split_lambda(lambda: &[f32], dz: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut mean, mut logvar) = (Vec::new(), Vec::new());
    for row in lambda.chunks(2 * dz) {
        mean.extend_from_slice(&row[..dz]);
        logvar.extend_from_slice(&row[dz..]);
    }
    (mean, logvar)
}

/// Largest safetensors header read (the format's own limit).
const MAX_HEADER: u64 = 100 << 20;
/// Tensor bytes a checkpoint may hold beyond those its model needs (tensors a user added).
const SPARE_TENSOR_BYTES: u64 = 16 << 20;

/// Reads a checkpoint: a regular file (a FIFO or device is refused before any read) whose
/// header is read first, so that its configuration fixes how many tensor bytes there may be
/// before they are read (a huge sparse file or a lying header is refused without allocating
/// for it).
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bad = |what: String| Error::Checkpoint(format!("{}: {what}", path.display()));
    let (file, len) = input::open(path, u64::MAX - 1).map_err(|e| match e {
        InputError::Io(e) => io_err(path, e),
        e => bad(e.to_string()),
    })?;
    from_reader(file, len, path)
}

/// The checkpoint in `bytes`, read as [`load`] reads a file `path` of that content (which names
/// it in errors): the fuzzer's entry point.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    from_reader(bytes, bytes.len() as u64, path)
}

/// A checkpoint of `len` bytes from `file`: the header first, then only as many tensor bytes as
/// its configuration can need.
fn from_reader<R: std::io::Read>(mut file: R, len: u64, path: &Path) -> Result<Checkpoint> {
    use std::io::Read;
    let bad = |what: String| Error::Checkpoint(format!("{}: {what}", path.display()));
    let read_err = |e: std::io::Error| io_err(path, e);
    let mut n8 = [0u8; 8];
    if len < 8 {
        return Err(bad(format!(
            "not a safetensors file ({len} bytes, shorter than its 8-byte header length)"
        )));
    }
    file.read_exact(&mut n8).map_err(read_err)?;
    let n = u64::from_le_bytes(n8);
    if n > MAX_HEADER || n > len - 8 {
        return Err(bad(format!(
            "not a safetensors file (its header claims {n} bytes; the file has {len})"
        )));
    }
    let mut bytes = Vec::with_capacity(8 + n as usize);
    bytes.extend_from_slice(&n8);
    (&mut file)
        .take(n)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..])
        .map_err(|e| {
            bad(format!(
                "not a safetensors file (its header is not JSON: {e})"
            ))
        })?;
    let meta: std::collections::HashMap<String, String> = match header.get("__metadata__") {
        Some(m) => serde_json::from_value(m.clone())
            .map_err(|e| bad(format!("not a safetensors file (bad __metadata__: {e})")))?,
        None => Default::default(),
    };
    let data_end = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if data_end != len - 8 - n {
        return Err(bad(format!(
            "not a safetensors file (its header describes {data_end} bytes of tensors; the file \
             holds {})",
            len - 8 - n
        )));
    }
    let get = |k: &str| {
        meta.get(k)
            .ok_or_else(|| bad(format!("metadata has no `{k}`; not written by vae-gpu?")))
    };
    if !READABLE_FORMATS.contains(&get("format")?.as_str()) {
        return Err(bad(format!(
            "format `{}`, expected one of {READABLE_FORMATS:?} (written by a newer vae-gpu?)",
            get("format")?
        )));
    }
    let mut config: TrainConfig =
        serde_json::from_str(get("config")?).map_err(|e| bad(format!("bad config ({e})")))?;
    upgrade(&mut config);
    let num = |k: &str| -> Result<u64> {
        get(k)?
            .parse::<u64>()
            .map_err(|e| bad(format!("bad `{k}` ({e})")))
    };
    let (epoch, step, train_size, val_size) = (
        num("epoch")?,
        num("step")?,
        num("train_size")?,
        num("val_size")?,
    );
    let test_size = match meta.get("test_size") {
        Some(_) => Some(num("test_size")? as usize),
        None => None,
    };
    config
        .check()
        .map_err(|e| bad(format!("its stored configuration is invalid: {e}")))?;
    if step > u32::MAX as u64 || epoch > u32::MAX as u64 {
        return Err(bad(format!("epoch {epoch} / step {step} out of range")));
    }
    let layout = config.model.layout();
    let slots = 2 + config.optimizer.state_prefixes().0.is_some() as u64;
    let lambda_len = match config.vem {
        Some(_) => train_size.saturating_mul(2 * config.model.latent as u64),
        None => 0,
    };
    let needed = layout.total as u64 * 4 * slots + lambda_len.saturating_mul(4);
    // The file holds every parameter at least once: a config claiming more allocates nothing.
    if (layout.total as u64 + lambda_len).saturating_mul(4) > data_end {
        return Err(bad(format!(
            "its stored model has {} parameters, more than its {} of tensors can hold",
            layout.total,
            input::size(data_end)
        )));
    }
    if data_end > needed + SPARE_TENSOR_BYTES {
        return Err(bad(format!(
            "holds {} of tensors; its model and optimizer need {}",
            input::size(data_end),
            input::size(needed)
        )));
    }
    bytes.reserve_exact(data_end as usize);
    file.take(data_end)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 != len {
        return Err(bad(format!(
            "changed while it was read ({} bytes, then {})",
            len,
            bytes.len()
        )));
    }
    let st =
        SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("corrupt tensor data ({e})")))?;
    let mut state = TrainState {
        params: vec![0.0; layout.total],
        m: vec![0.0; layout.total],
        v: vec![0.0; layout.total],
        step: step as u32,
        lambda: Vec::new(),
    };
    if config.vem.is_some() {
        let (n, dz) = (train_size as usize, config.model.latent);
        let mut halves = Vec::new();
        for name in ["vem.mean", "vem.logvar"] {
            let t = st.tensor(name).map_err(|_| {
                bad(format!(
                    "tensor `{name}` (the λ table of --inference vem) missing"
                ))
            })?;
            if t.dtype() != Dtype::F32 || t.shape() != [n, dz] {
                return Err(bad(format!(
                    "tensor `{name}` is {:?} {:?}, expected F32 [{n}, {dz}]",
                    t.dtype(),
                    t.shape()
                )));
            }
            halves.push(bytemuck::pod_collect_to_vec::<u8, f32>(t.data()));
        }
        state.lambda = (0..n)
            .flat_map(|i| {
                let (m, l) = (
                    &halves[0][i * dz..(i + 1) * dz],
                    &halves[1][i * dz..(i + 1) * dz],
                );
                m.iter().chain(l).copied().collect::<Vec<_>>()
            })
            .collect();
    }
    for tensor in layout.named_tensors() {
        let (name, shape, off, len) = (&tensor.name, &tensor.shape, tensor.offset, tensor.len());
        let (first, second) = config.optimizer.state_prefixes();
        let mut slots = vec![("", &mut state.params), (second, &mut state.v)];
        slots.extend(first.map(|prefix| (prefix, &mut state.m)));
        for (prefix, dst) in slots {
            let full = format!("{prefix}{name}");
            let t = st
                .tensor(&full)
                .map_err(|_| bad(format!("tensor `{full}` missing")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape.as_slice() {
                return Err(bad(format!(
                    "tensor `{full}` is {:?} {:?}, expected F32 {:?}",
                    t.dtype(),
                    t.shape(),
                    shape
                )));
            }
            let vals: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
            dst[off..off + len].copy_from_slice(&vals);
        }
    }
    state.check_values().map_err(bad)?;
    Ok(Checkpoint {
        config,
        state,
        epoch: epoch as u32,
        train_size: train_size as usize,
        val_size: val_size as usize,
        test_size,
        run_id: meta.get("run_id").cloned(),
        metrics: meta.get("metrics").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::Representation;
    use crate::spec::{members, LatentFamily, ModelSpec};
    use crate::training::optim::{OptimizerConfig, OptimizerKind};

    /// Every likelihood, both latent families and both optimizers: save → load gives back the
    /// identical checkpoint (parameters, the optimizer state it keeps, config, metadata).
    #[test]
    fn old_beta_runs_load_as_midpoint() {
        let mut c = TrainConfig {
            model: ModelSpec {
                likelihood: crate::spec::Likelihood::Beta,
                ..ModelSpec::mnist(3, 2)
            },
            batch_size: 10,
            samples: 1,
            optimizer: OptimizerConfig::default(),
            seed: 0,
            pixels: Representation::Grayscale,
            data: crate::data::DataSource::Mnist,
            objective: Default::default(),
            vem: None,
        };
        assert!(c.check().is_err());
        upgrade(&mut c);
        assert_eq!(c.pixels, Representation::Midpoint);
        assert!(c.check().is_ok());
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vae-gpu-ck-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A symbolic link planted under the temporary name the writer used to use
    /// (`.NAME.tmp-<pid>`), or under the final name, is never written through: the file it
    /// points to keeps its bytes and the result is a regular file of the new bytes.
    #[cfg(unix)]
    #[test]
    fn write_atomic_never_follows_a_planted_link() {
        let d = scratch("planted");
        let (out, outside) = (d.join("out"), d.join("outside"));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let victim = outside.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = out.join("checkpoint.safetensors");
        let planted = out.join(format!(
            ".checkpoint.safetensors.tmp-{}",
            std::process::id()
        ));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomic(&path, b"new bytes").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file(), "{path:?} is a link");
        assert_eq!(std::fs::read(&path).unwrap(), b"new bytes");
        // A link at the final name is replaced, not followed.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_atomic(&path, b"again").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        // Nothing but the planted link and the result is left in the directory.
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        // And a new file gets the usual permissions, as `File::create` gives them.
        use std::os::unix::fs::PermissionsExt;
        let plain = out.join("plain");
        std::fs::File::create(&plain).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&plain));
        std::fs::remove_dir_all(&d).ok();
    }

    /// What is not a checkpoint file is refused at once: a device, a FIFO, a huge sparse file,
    /// a header that claims more than the file holds.
    #[test]
    fn load_refuses_what_is_not_a_checkpoint_file_at_once() {
        let d = scratch("notfile");
        let t0 = std::time::Instant::now();
        let m = load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(m.contains("character device"), "{m}");
        #[cfg(unix)]
        {
            let fifo = d.join("fifo");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            let m = load(&fifo).unwrap_err().to_string();
            assert!(m.contains("FIFO"), "{m}");
        }
        let sparse = d.join("sparse.safetensors");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(20 << 30)
            .unwrap();
        let m = load(&sparse).unwrap_err().to_string();
        assert!(m.contains("not a safetensors file"), "{m}");
        let mut lying = (1u64 << 40).to_le_bytes().to_vec();
        lying.extend_from_slice(b"{}");
        std::fs::write(&sparse, &lying).unwrap();
        let m = load(&sparse).unwrap_err().to_string();
        assert!(m.contains("its header claims 1099511627776 bytes"), "{m}");
        assert!(t0.elapsed().as_secs() < 2, "{:?}", t0.elapsed());
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn every_member_saves_and_loads_identically() {
        let dir = std::env::temp_dir().join(format!("vae-gpu-ck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, likelihood) in members::likelihoods().into_iter().enumerate() {
            let kind = [OptimizerKind::Adam, OptimizerKind::Adagrad][i % 2];
            let model = ModelSpec {
                encoder: crate::spec::linear(&[6, 5]),
                decoder: crate::spec::linear(&[4]),
                posterior: [LatentFamily::Gaussian, LatentFamily::Laplace][i / 2 % 2],
                likelihood,
                ..ModelSpec::mnist(1, 3)
            };
            let n = model.layout().total;
            let values = |k: usize| -> Vec<f32> {
                (0..n)
                    .map(|j| ((j * 7 + k * 13) % 101) as f32 / 50.0 - 1.0)
                    .collect()
            };
            let ck = Checkpoint {
                config: TrainConfig {
                    model,
                    batch_size: 10,
                    samples: 1,
                    optimizer: OptimizerConfig::new(kind, None),
                    seed: 3,
                    pixels: likelihood.default_representation(),
                    data: crate::data::DataSource::Mnist,
                    objective: Default::default(),
                    vem: None,
                },
                state: TrainState {
                    lambda: Vec::new(),
                    params: values(1),
                    // Adagrad keeps no first moment; what it does not store loads as zeros.
                    m: match kind {
                        OptimizerKind::Adam => values(2),
                        OptimizerKind::Adagrad => vec![0.0; n],
                    },
                    v: values(3).iter().map(|v| v.abs()).collect(),
                    step: 17,
                },
                epoch: 2,
                train_size: 100,
                val_size: 0,
                test_size: Some(50),
                run_id: Some("abc".into()),
                metrics: None,
            };
            let path = dir.join(format!("{i}.safetensors"));
            save(&path, &ck).unwrap();
            assert_eq!(load(&path).unwrap(), ck, "{likelihood:?} with {kind:?}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
