//! Checkpoints in `safetensors`, loadable from PyTorch (`safetensors.torch.load_file`).
//!
//! Tensors (f32, PyTorch `nn.Linear` convention, weight `[out, in]`):
//! `encoder.fc1.{weight,bias}` `[Dh,784]`/`[Dh]`, `encoder.mean.{weight,bias}` `[Dz,Dh]`/`[Dz]`,
//! `encoder.logvar.{weight,bias}` `[Dz,Dh]`/`[Dz]`, `decoder.fc1.{weight,bias}` `[Dh,Dz]`/`[Dh]`,
//! `decoder.logits.{weight,bias}` `[784,Dh]`/`[784]`, and Adam's moments under
//! `optimizer.exp_avg.<name>` / `optimizer.exp_avg_sq.<name>`. Metadata: `format`, `config` (the
//! training configuration as JSON), `epoch`, `step`, `train_size`, `val_size`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::backend::{TrainConfig, TrainState};
use crate::error::{io_err, Error, Result};

pub const FORMAT: &str = "vae-gpu/1";

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub config: TrainConfig,
    pub state: TrainState,
    /// Epochs completed.
    pub epoch: u32,
    pub train_size: usize,
    pub val_size: usize,
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// crash or a full disk never leaves a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let res = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}

pub fn save(path: &Path, ck: &Checkpoint) -> Result<()> {
    let layout = ck.config.model.layout();
    let s = &ck.state;
    s.check_len(layout.total)?;
    let mut tensors = Vec::new();
    for (name, shape, off, len) in layout.named_tensors() {
        for (prefix, src) in [
            ("", &s.params),
            ("optimizer.exp_avg.", &s.m),
            ("optimizer.exp_avg_sq.", &s.v),
        ] {
            let bytes: &[u8] = bytemuck::cast_slice(&src[off..off + len]);
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map_err(|e| Error::Checkpoint(e.to_string()))?;
            tensors.push((format!("{prefix}{name}"), view));
        }
    }
    let config = serde_json::to_string(&ck.config).map_err(|e| Error::Checkpoint(e.to_string()))?;
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("config".to_string(), config),
        ("epoch".to_string(), ck.epoch.to_string()),
        ("step".to_string(), s.step.to_string()),
        ("train_size".to_string(), ck.train_size.to_string()),
        ("val_size".to_string(), ck.val_size.to_string()),
    ]);
    let bytes = safetensors::serialize(tensors, Some(meta))
        .map_err(|e| Error::Checkpoint(e.to_string()))?;
    write_atomic(path, &bytes)
}

pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let bad = |what: String| Error::Checkpoint(format!("{}: {what}", path.display()));
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        meta.get(k)
            .ok_or_else(|| bad(format!("metadata has no `{k}`; not written by vae-gpu?")))
    };
    if get("format")? != FORMAT {
        return Err(bad(format!(
            "format `{}`, expected `{FORMAT}`",
            get("format")?
        )));
    }
    let config: TrainConfig =
        serde_json::from_str(get("config")?).map_err(|e| bad(format!("bad config ({e})")))?;
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
    let st =
        SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("corrupt tensor data ({e})")))?;
    let layout = config.model.layout();
    let mut state = TrainState {
        params: vec![0.0; layout.total],
        m: vec![0.0; layout.total],
        v: vec![0.0; layout.total],
        step: step as u32,
    };
    for (name, shape, off, len) in layout.named_tensors() {
        for (prefix, dst) in [
            ("", &mut state.params),
            ("optimizer.exp_avg.", &mut state.m),
            ("optimizer.exp_avg_sq.", &mut state.v),
        ] {
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
    if state.params.iter().any(|p| !p.is_finite()) {
        return Err(bad("parameters contain NaN or infinity".into()));
    }
    Ok(Checkpoint {
        config,
        state,
        epoch: epoch as u32,
        train_size: train_size as usize,
        val_size: val_size as usize,
    })
}
