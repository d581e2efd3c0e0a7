//! The GPU path on a given adapter (`device` chooses it): the WGSL kernels, the device-resident
//! trainer and `ModelOps` on the GPU.
//!
//! Host code follows wgpu's `hello_compute` example: one device and queue, storage buffers, compute
//! pipelines with layouts derived from the shaders, and `map_async` read-backs.

pub mod inference;
pub mod kernels;
pub mod layers;
pub mod network;
pub mod recorder;
mod step;
pub mod trainer;

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

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
    /// Opens a device and queue on `adapter` with all of its limits (`device::gpu_context`
    /// chooses the adapter).
    pub fn open(adapter: &wgpu::Adapter) -> Result<Self> {
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
