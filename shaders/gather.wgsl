// Batch gather and data representation on the device. The data set stays resident as packed u8
// pixels (four per u32 word; 47 MB for the training set, under lavapipe's 128 MiB binding limit
// where f32 would not be); each step reads its images through the epoch's permutation.
// `p.pixels` is one of the PIXELS_* / REAL_VALUES codes that `data::representation` emits above
// this file; stochastic modes draw u from Philox with counter (image, word, epoch, stream 2).
// CPU twin: `batch::gather_batch` with `Representation::pixel_value`.

struct GatherParams {
    batch: u32,
    words: u32,        // u32 words per row (196 for MNIST's packed pixels, D for real data)
    n_index: u32,      // length of the index array
    pixels: u32,
    seed_lo: u32,
    seed_hi: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<storage, read> state: StepState;
@group(0) @binding(2) var<storage, read> data: array<u32>;
@group(0) @binding(3) var<storage, read> index: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // `grid_1d` spills past 65,535 workgroups into y: a batch of more than ~21,400 images does.
    let t = flat_thread(gid, nwg, 64u);
    if (t >= p.batch * p.words) {
        return;
    }
    let b = t / p.words;
    let w = t % p.words;
    // Padding rows of a final partial batch re-read the last image; the loss masks them out.
    let pos = min(state.batch * p.batch + b, p.n_index - 1u);
    let image = index[pos];
    let word = data[image * p.words + w];
    if (p.pixels == REAL_VALUES) {
        x[b * p.words + w] = bitcast<f32>(word);
        return;
    }
    var u = vec4<f32>(0.0);
    if (p.pixels == PIXELS_STOCHASTIC || p.pixels == PIXELS_DEQUANTIZE) {
        let r = philox4x32(vec4<u32>(image, w, state.epoch, 2u), vec2<u32>(p.seed_lo, p.seed_hi));
        u = vec4<f32>(uniform_open(r.x), uniform_open(r.y), uniform_open(r.z), uniform_open(r.w));
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        let pix = (word >> (8u * j)) & 0xffu;
        var v = 0.0;
        if (p.pixels == PIXELS_STOCHASTIC) {
            v = select(0.0, 1.0, f32(pix) / 255.0 > u[j]);
        } else if (p.pixels == PIXELS_DEQUANTIZE) {
            // 255 + u rounds to 256 for u within 2⁻¹⁶ of 1
            v = min((f32(pix) + u[j]) / 256.0, BELOW_ONE);
        } else if (p.pixels == PIXELS_MIDPOINT) {
            v = (f32(pix) + 0.5) / 256.0;
        } else if (p.pixels == PIXELS_GRAYSCALE) {
            v = f32(pix) / 255.0;
        } else {
            v = select(0.0, 1.0, pix > 127u);
        }
        x[b * p.words * 4u + w * 4u + j] = v;
    }
}
