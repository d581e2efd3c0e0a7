// The λ table of `--inference vem` (variational EM with a λ_n = [μ_n | log σ²_n] per training
// image, Algorithm 7 of the lecture notes): the minibatch's rows are gathered from the table into
// the q buffer the latent layer reads (where the amortized step has the encoder's output), moved
// by plain-SGD E-steps there, and scattered back. One entry point, four modes, elementwise over the
// B × 2·Dz values of a batch. CPU twin: `cpu::vem::{lambda_gather, lambda_prior, lambda_sgd,
// lambda_scatter}`.

const VEM_GATHER: u32 = 0u;   // q[b] = table[index[batch·B + b]]
const VEM_PRIOR: u32 = 1u;    // q[b] = 0: μ = 0, log σ² = 0, the prior N(0, I)
const VEM_SGD: u32 = 2u;      // q[b] -= α·B·denc[b]: ascent on image b's ELBO (denc = dLoss/dq, Loss = −mean)
const VEM_SCATTER: u32 = 3u;  // table[index[batch·B + b]] = q[b]

struct VemParams {
    batch: u32,
    width: u32,      // 2·Dz values per row
    n_index: u32,    // length of the index array
    mode: u32,
}

@group(0) @binding(0) var<uniform> p: VemParams;
@group(0) @binding(1) var<storage, read> state: StepState;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> table: array<f32>;   // [N, 2·Dz]
@group(0) @binding(4) var<storage, read_write> q: array<f32>;       // [B, 2·Dz]
@group(0) @binding(5) var<storage, read> denc: array<f32>;          // [B, 2·Dz]
@group(0) @binding(6) var<storage, read> alpha: array<f32>;         // [1]: this epoch's α_i

@compute @workgroup_size(64)
fn vem_lambda(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_thread(gid, nwg, 64u);
    if (t >= p.batch * p.width) {
        return;
    }
    let b = t / p.width;
    let j = t % p.width;
    if (p.mode == VEM_PRIOR) {
        q[t] = 0.0;
        return;
    }
    if (p.mode == VEM_SGD) {
        q[t] = q[t] - alpha[0] * f32(p.batch) * denc[t];
        return;
    }
    let row = index[min(state.batch * p.batch + b, p.n_index - 1u)];
    if (p.mode == VEM_GATHER) {
        q[t] = table[row * p.width + j];
    } else {
        table[row * p.width + j] = q[t];
    }
}
