// The optimizers on the flat parameter buffer, GPU twins of `optim::Optimizer::step`: the same
// updates as torch.optim.Adam and torch.optim.Adagrad without weight decay. Adam's t comes from the
// GPU step state so recorded steps need no host round trip. Dispatched as a 2-D grid because large
// models exceed 65535 workgroups in x. Adagrad binds only what it uses (its sum lives in `v`).

struct OptimizerParams {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: OptimizerParams;
@group(0) @binding(1) var<storage, read> state: StepState;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read> grads: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_thread(gid, nwg, 256u);
    if (i >= p.n) {
        return;
    }
    let t = f32(state.step + 1u);
    let g = grads[i];
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let m_hat = mi / (1.0 - pow(p.beta1, t));
    let v_hat = vi / (1.0 - pow(p.beta2, t));
    params[i] = params[i] - p.lr * m_hat / (sqrt(v_hat) + p.eps);
}

@compute @workgroup_size(256)
fn adagrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_thread(gid, nwg, 256u);
    if (i >= p.n) {
        return;
    }
    let g = grads[i];
    let s = v[i] + g * g;
    v[i] = s;
    params[i] = params[i] - p.lr * g / (sqrt(s) + p.eps);
}
