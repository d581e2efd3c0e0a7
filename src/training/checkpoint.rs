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
//! `optimizer.sum.<name>`. Metadata: `format`, `config` (the
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
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let res = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, e));
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

pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    from_bytes(&bytes, path)
}

/// The checkpoint in `bytes`, read as [`load`] reads the file `path` (which names it in errors).
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    let bad = |what: String| Error::Checkpoint(format!("{}: {what}", path.display()));
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
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
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| bad(format!("corrupt tensor data ({e})")))?;
    let layout = config.model.layout();
    // The file holds every parameter at least once: a config claiming more allocates nothing.
    if layout.total.checked_mul(4).is_none_or(|n| n > bytes.len()) {
        return Err(bad(format!(
            "its stored model has {} parameters, more than the file's {} bytes can hold",
            layout.total,
            bytes.len()
        )));
    }
    let mut state = TrainState {
        params: vec![0.0; layout.total],
        m: vec![0.0; layout.total],
        v: vec![0.0; layout.total],
        step: step as u32,
    };
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
        };
        assert!(c.check().is_err());
        upgrade(&mut c);
        assert_eq!(c.pixels, Representation::Midpoint);
        assert!(c.check().is_ok());
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
                },
                state: TrainState {
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
