// Reductions: bias gradients (column sums of an upstream gradient, or channel sums of a
// convolution's) and the per-batch ELBO sum.
// CPU twins: `cpu::layers::colsum` and the loss in `cpu::reference::step`. Needs
// workgroup.wgsl (`workgroup_sum`, `flat_thread`).

struct ColsumParams {
    rows: u32,
    cols: u32,
    in_rs: u32,
    out_off: u32,
    inner: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> cp: ColsumParams;
@group(0) @binding(1) var<storage, read> cin: array<f32>;
@group(0) @binding(2) var<storage, read_write> cout: array<f32>;

// One thread per column: rows are few (the batch), columns many, and each thread's reads are
// coalesced across the warp.
@compute @workgroup_size(64)
fn colsum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_thread(gid, nwg, 64u);
    if (j >= cp.cols) {
        return;
    }
    var s = 0.0;
    for (var i = 0u; i < cp.rows; i = i + 1u) {
        s = s + cin[i * cp.in_rs + j];
    }
    cout[cp.out_off + j] = s;
}

// cout[out_off + c] = Σ_r Σ_s cin[r, c, s] for rows of `cols` channels × `inner` positions (a
// convolution's bias gradient): one workgroup per channel, since each sums rows·inner values
// (19,600 for 32×14×14 maps of 100 images), far too many for one thread.
@compute @workgroup_size(256)
fn channel_sum(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let c = flat_group(wid, nwg);
    if (c >= cp.cols) {
        return;
    }
    let per_row = cp.cols * cp.inner;
    var s = 0.0;
    for (var t = lid.x; t < cp.rows * cp.inner; t = t + 256u) {
        s = s + cin[(t / cp.inner) * per_row + c * cp.inner + t % cp.inner];
    }
    let total = workgroup_sum(lid.x, s);
    if (lid.x == 0u) {
        cout[cp.out_off + c] = total;
    }
}

struct LossParams {
    rows: u32,
    batch: u32,
    _pad0: u32,
    _pad1: u32,
}

// Bindings 5..9 so that both entry points can live in one module without sharing numbers.
@group(0) @binding(5) var<uniform> lp: LossParams;
@group(0) @binding(6) var<storage, read> state: StepState;
@group(0) @binding(7) var<storage, read> loglik: array<f32>;
@group(0) @binding(8) var<storage, read> prior_minus_q: array<f32>;
@group(0) @binding(9) var<storage, read_write> elbo_sums: array<f32>;

// elbo_sums[batch] = Σ over real images of the image's ELBO averaged over its L samples; padding
// rows (image index ≥ n_valid in a final partial batch) count zero. Summing per batch on the GPU
// lets a whole epoch run without a read-back; the host reads the array once at the end.
@compute @workgroup_size(256)
fn elbo_sum(@builtin(local_invocation_id) lid: vec3<u32>) {
    let samples = lp.rows / lp.batch;
    var s = 0.0;
    for (var r = lid.x; r < lp.rows; r = r + 256u) {
        let image = state.batch * lp.batch + r % lp.batch;
        if (image < state.n_valid) {
            s = s + loglik[r] + prior_minus_q[r];
        }
    }
    let total = workgroup_sum(lid.x, s);
    if (lid.x == 0u) {
        elbo_sums[state.batch] = total / f32(samples);
    }
}
