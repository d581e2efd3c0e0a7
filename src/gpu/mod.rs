//! The GPU path: adapter selection, the WGSL kernels and the device-resident trainer.
//!
//! Host code follows wgpu's `hello_compute` example: one device and queue, storage buffers, compute
//! pipelines with layouts derived from the shaders, and `map_async` read-backs.

pub mod inference;
pub mod kernels;
pub mod network;
pub mod trainer;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

fn rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    }
}

pub fn describe_adapter(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} ({:?}, {:?}, driver {} {})",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    )
}

/// A device and queue plus a sink for validation errors, which wgpu would otherwise turn into a
/// panic: kernels report them as `Error::Gpu` instead.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    errors: Arc<Mutex<Vec<String>>>,
}

impl GpuContext {
    /// Opens the best adapter of `kind`; the error lists what was found and how to get an adapter.
    pub fn new(kind: DeviceKind) -> Result<Self> {
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
        let info = adapter.get_info();
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("vae-gpu"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Gpu(format!("could not open {}: {e}", describe_adapter(&info))))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        Ok(Self {
            device,
            queue,
            info,
            limits,
            errors,
        })
    }

    /// Fails with the first validation or device error recorded since the last check.
    pub fn check_errors(&self) -> Result<()> {
        let mut v = self
            .errors
            .lock()
            .map_err(|_| Error::Gpu("error sink poisoned".into()))?;
        if v.is_empty() {
            return Ok(());
        }
        let msg = v.join("\n");
        v.clear();
        Err(Error::Gpu(msg))
    }

    pub fn describe(&self) -> String {
        describe_adapter(&self.info)
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device failed: {e}")))?;
        self.check_errors()
    }

    /// Copies `len` bytes of `buf` from `offset` to the host (one staging buffer, one map).
    pub fn read_bytes(&self, buf: &wgpu::Buffer, offset: u64, len: u64) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("staging"),
            size: len,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buf, offset, &staging, 0, len);
        self.queue.submit(Some(enc.finish()));
        self.map_read(&staging)
    }

    /// Maps a MAP_READ buffer (after its copy was submitted) and returns its contents.
    pub fn map_read(&self, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
        let slice = staging.slice(..);
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            tx.send(r).ok();
        });
        self.wait()?;
        match pollster::block_on(rx.receive()) {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::Gpu(format!("buffer map failed: {e}"))),
            None => return Err(Error::Gpu("buffer map was dropped".into())),
        }
        let data = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("mapped range unavailable: {e}")))?
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    pub fn read_f32(
        &self,
        buf: &wgpu::Buffer,
        offset_elems: usize,
        len: usize,
    ) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buf, (offset_elems * 4) as u64, (len * 4) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}
