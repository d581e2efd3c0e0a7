// Philox4x32-10 counter-based RNG; the twin of src/rng.rs (same counters give the same words).
// Prepended to every shader that draws random numbers.

const PI: f32 = 3.14159265358979;

// 32x32 -> 64-bit product as (hi, lo) without 64-bit integers (WGSL has none).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var i = 0u; i < 10u; i = i + 1u) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

// (0, 1) exclusive, so log(u) is finite.
fn uniform_open(x: u32) -> f32 {
    return (f32(x >> 8u) + 0.5) * (1.0 / 16777216.0);
}

// Box-Muller with the angle in (-pi, pi): GPU sin/cos are only accurate on that range.
fn normal4(counter: vec4<u32>, key: vec2<u32>) -> vec4<f32> {
    let r = philox4x32(counter, key);
    let rad0 = sqrt(-2.0 * log(uniform_open(r.x)));
    let th0 = PI * (2.0 * uniform_open(r.y) - 1.0);
    let rad1 = sqrt(-2.0 * log(uniform_open(r.z)));
    let th1 = PI * (2.0 * uniform_open(r.w) - 1.0);
    return vec4<f32>(rad0 * cos(th0), rad0 * sin(th0), rad1 * cos(th1), rad1 * sin(th1));
}

// Four standard Laplace variates by the inverse CDF: ln(2u) for u < ½, −ln(2(1 − u)) otherwise.
fn laplace4(counter: vec4<u32>, key: vec2<u32>) -> vec4<f32> {
    let r = philox4x32(counter, key);
    var out: vec4<f32>;
    for (var j = 0u; j < 4u; j = j + 1u) {
        let u = uniform_open(r[j]);
        if (u < 0.5) {
            out[j] = log(2.0 * u);
        } else {
            out[j] = -log(2.0 * (1.0 - u));
        }
    }
    return out;
}
