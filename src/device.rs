//! Which device a run uses: `--device`, the adapter it resolves to, and the factories that build a
//! training [`Backend`] and a [`ModelOps`] on it.
//!
//! This is the one module that knows both paths. `cpu` and `gpu` implement the `training` and
//! `inference` traits without knowing about `--device`, so the dependencies point one way:
//! `device` → {`cpu`, `gpu`} → {`training`, `inference`}, and only the command line (and the
//! tests and benches) import `device`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cpu::trainer::CpuBackend;
use crate::error::{Error, Result};
use crate::gpu::inference::GpuModel;
use crate::gpu::trainer::{GpuBackend, OptimizerOn};
use crate::gpu::{describe_adapter, GpuContext};
use crate::inference::{CpuModel, ModelOps};
use crate::spec::ModelSpec;
use crate::training::backend::{Backend, Splits, TrainConfig};

/// `--device`: which adapter to train on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// A hardware GPU adapter if there is one (discrete > integrated > virtual), else the CPU
    /// path: a software adapter such as lavapipe is never chosen by `auto`, only by name.
    Auto,
    Vulkan,
    Metal,
    Dx12,
    Gl,
    /// The plain-Rust reference path; no adapter needed.
    Cpu,
}

impl DeviceKind {
    fn backends(self) -> wgpu::Backends {
        match self {
            DeviceKind::Auto => wgpu::Backends::PRIMARY,
            DeviceKind::Vulkan => wgpu::Backends::VULKAN,
            DeviceKind::Metal => wgpu::Backends::METAL,
            DeviceKind::Dx12 => wgpu::Backends::DX12,
            DeviceKind::Gl => wgpu::Backends::GL,
            DeviceKind::Cpu => wgpu::Backends::empty(),
        }
    }
}

/// The training backend for `kind` (already resolved by [`resolve_device`]); `placement` says
/// where a GPU backend runs the optimizer.
pub fn make_backend(
    kind: DeviceKind,
    placement: OptimizerOn,
    cfg: &TrainConfig,
    splits: Arc<Splits>,
) -> Result<Box<dyn Backend>> {
    match kind {
        DeviceKind::Cpu => match cfg.vem {
            Some(v) => Ok(Box::new(crate::cpu::vem::CpuVemBackend::new(
                cfg, v, splits,
            ))),
            None => Ok(Box::new(CpuBackend::new(cfg, splits))),
        },
        k => Ok(Box::new(GpuBackend::new(
            gpu_context(k)?,
            cfg,
            &splits,
            placement,
        )?)),
    }
}

/// The model on `kind` (`auto` resolved as for training: hardware GPU, else CPU).
pub fn model_ops(kind: DeviceKind, spec: &ModelSpec, params: &[f32]) -> Result<Box<dyn ModelOps>> {
    match resolve_device(kind) {
        DeviceKind::Cpu => Ok(Box::new(CpuModel::new(spec, params))),
        k => Ok(Box::new(GpuModel::new(gpu_context(k)?, spec, params)?)),
    }
}

/// Resolves `--device auto`: a hardware adapter if there is one; otherwise the CPU reference path,
/// which beats a software Vulkan rasterizer (lavapipe) at this model size. Explicit backends are
/// taken as asked.
pub fn resolve_device(kind: DeviceKind) -> DeviceKind {
    if kind != DeviceKind::Auto {
        return kind;
    }
    let hardware = list_adapters_on(wgpu::Backends::PRIMARY).iter().any(|a| {
        matches!(
            a.device_type,
            wgpu::DeviceType::DiscreteGpu
                | wgpu::DeviceType::IntegratedGpu
                | wgpu::DeviceType::VirtualGpu
        )
    });
    if hardware {
        DeviceKind::Auto
    } else {
        eprintln!("note: no hardware GPU adapter found; --device auto uses the CPU reference path");
        DeviceKind::Cpu
    }
}

/// Opens the best adapter of `kind` that has compute shaders (discrete > integrated > virtual >
/// software); the error lists what was found and how to get an adapter.
pub fn gpu_context(kind: DeviceKind) -> Result<GpuContext> {
    if kind == DeviceKind::Cpu {
        return Err(Error::Usage("--device cpu has no GPU context".into()));
    }
    let inst = instance(kind.backends());
    let adapters = pollster::block_on(inst.enumerate_adapters(kind.backends()));
    let Some(adapter) = adapters
        .into_iter()
        .filter(|a| {
            a.get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        })
        .max_by_key(|a| rank(a.get_info().device_type))
    else {
        return Err(Error::Gpu(no_adapter_message(kind, &list_adapters())));
    };
    GpuContext::open(&adapter)
}

fn rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    }
}

const INSTALL_HINT: &str = "install a Vulkan driver (on Debian/Ubuntu without a GPU: \
     `apt-get install -y mesa-vulkan-drivers` gives the lavapipe software adapter) or use `--device cpu`";

/// The operating systems a backend exists on, for backends that are not everywhere.
fn platform_of(kind: DeviceKind) -> Option<(&'static str, bool)> {
    match kind {
        DeviceKind::Metal => Some(("macOS and iOS", cfg!(target_vendor = "apple"))),
        DeviceKind::Dx12 => Some(("Windows", cfg!(windows))),
        _ => None,
    }
}

/// Why `kind` has no adapter and what to do: a backend this OS lacks is named as such, and
/// adapters present on other backends are offered before suggesting a driver install.
pub fn no_adapter_message(kind: DeviceKind, found: &[wgpu::AdapterInfo]) -> String {
    let name = format!("{kind:?}").to_lowercase();
    let listed = if found.is_empty() {
        "none".to_string()
    } else {
        found
            .iter()
            .map(describe_adapter)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut others: Vec<String> = found
        .iter()
        .map(|a| format!("{:?}", a.backend).to_lowercase())
        .filter(|b| *b != name)
        .collect();
    others.dedup();
    let advice = if others.is_empty() {
        INSTALL_HINT.to_string()
    } else {
        format!(
            "use {} or --device cpu",
            others
                .iter()
                .map(|b| format!("--device {b}"))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    };
    match platform_of(kind) {
        Some((os, false)) => format!(
            "--device {name} exists only on {os}, not on this system (adapters found: {listed}); {advice}"
        ),
        _ => format!(
            "no adapter with compute shaders for --device {name} (adapters found: {listed}); {advice}"
        ),
    }
}

/// Mesa's implicit Vulkan layer `VK_LAYER_MESA_device_select` connects to a Wayland display to
/// pick a default GPU, and without one libwayland prints "error: XDG_RUNTIME_DIR is invalid or not
/// set" twice — harmless here (we enumerate adapters and choose ourselves) but alarming. Call once,
/// first thing in `main`, before any thread exists; a user's own setting is left alone.
pub fn quiet_mesa_device_select() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu can see, on all backends.
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    list_adapters_on(wgpu::Backends::all())
}

/// The adapters of some backends (probing GL makes Mesa's EGL print warnings; avoid it when not asked).
pub fn list_adapters_on(backends: wgpu::Backends) -> Vec<wgpu::AdapterInfo> {
    let inst = instance(backends);
    pollster::block_on(inst.enumerate_adapters(backends))
        .iter()
        .map(|a| a.get_info())
        .collect()
}
