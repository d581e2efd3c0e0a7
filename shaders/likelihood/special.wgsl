// log Γ and ψ for x > 0, which WGSL lacks: shift up to z ≥ 8 by the recurrences, then the
// Stirling series (truncation below 3·10⁻¹⁰). The same algorithm as `family::special` on the CPU.

fn lgamma(x: f32) -> f32 {
    var z = x;
    var product = 1.0;
    while (z < 8.0) {
        product = product * z;
        z = z + 1.0;
    }
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    let series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0)));
    return (z - 0.5) * log(z) - z + 0.9189385332046727 + series - log(product);
}

fn digamma(x: f32) -> f32 {
    var z = x;
    var shift = 0.0;
    while (z < 8.0) {
        shift = shift + 1.0 / z;
        z = z + 1.0;
    }
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    let series = inv2 * (1.0 / 12.0 - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0)));
    return log(z) - 0.5 * inv - series - shift;
}
