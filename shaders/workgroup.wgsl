// Helpers every kernel module shares, concatenated before it by `gpu::kernels`.

// The flat index of a thread in a 1-D grid of `size`-thread workgroups that `grid_1d` spills into
// y past 65,535 workgroups.
fn flat_thread(gid: vec3<u32>, nwg: vec3<u32>, size: u32) -> u32 {
    return gid.x + gid.y * nwg.x * size;
}

// The flat index of a workgroup in such a grid (`grid_1d(n, 1)`: one workgroup per item).
fn flat_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

var<workgroup> acc: array<f32, 256>;

// The sum of `value` over the 256 threads of a workgroup (a tree in shared memory); every thread
// must call it.
fn workgroup_sum(thread: u32, value: f32) -> f32 {
    acc[thread] = value;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w >> 1u) {
        if (thread < w) {
            acc[thread] = acc[thread] + acc[thread + w];
        }
        workgroupBarrier();
    }
    return acc[0];
}
