//! `devices`: the GPU adapters wgpu can see.

use crate::device::list_adapters;
use crate::error::Result;
use crate::gpu::describe_adapter;

pub(super) fn cmd_devices() -> Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapters found; `--device cpu` works everywhere, or install a Vulkan driver (e.g. mesa-vulkan-drivers)");
    }
    for a in adapters {
        println!("{}", describe_adapter(&a));
    }
    Ok(())
}
