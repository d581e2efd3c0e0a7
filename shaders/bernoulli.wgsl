// Bernoulli log-likelihood log p(x|z) from logits and its gradient, fused: one workgroup per sample
// row reads each logit once, writes dLoss/dlogit = scale·(σ(l) - x) and reduces the row's
// log-likelihood. Stable forms: log p = x·l - softplus(l) with softplus(l) = max(l, 0) + log(1 + e^-|l|)
// (never exponentiates a positive number), and σ(l) evaluated on the side that cannot overflow.
// CPU twin: `cpu::reference::bernoulli_rows`.

struct BernoulliParams {
    rows: u32,
    batch: u32,
    dim: u32,
    _pad0: u32,
    scale: f32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> p: BernoulliParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;               // [B, D] binary pixels
@group(0) @binding(2) var<storage, read> logits: array<f32>;          // [B·L, D]
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;   // [B·L, D]
@group(0) @binding(4) var<storage, read_write> loglik: array<f32>;    // [B·L]

var<workgroup> partial: array<f32, 256>;

fn softplus(l: f32) -> f32 {
    return max(l, 0.0) + log(1.0 + exp(-abs(l)));
}

fn sigmoid(l: f32) -> f32 {
    let e = exp(-abs(l));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), l >= 0.0);
}

@compute @workgroup_size(256)
fn bernoulli_loglik(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let r = wid.x;
    let b = r % p.batch;
    var s = 0.0;
    for (var i = lid.x; i < p.dim; i = i + 256u) {
        let l = logits[r * p.dim + i];
        let xv = x[b * p.dim + i];
        s = s + xv * l - softplus(l);
        dlogits[r * p.dim + i] = p.scale * (sigmoid(l) - xv);
    }
    partial[lid.x] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w >> 1u) {
        if (lid.x < w) {
            partial[lid.x] = partial[lid.x] + partial[lid.x + w];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        loglik[r] = partial[0];
    }
}
