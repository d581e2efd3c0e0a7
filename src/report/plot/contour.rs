//! Contours of a density on a grid: the highest-density levels that hold given masses, smooth
//! upsampling so the traced curves do not kink at every cell, and marching squares.

/// Mass enclosed by the 1, 2 and 3 sigma ellipse of a 2-D Gaussian: 1 - exp(-k^2 / 2). Both p
/// and q are contoured at the highest-density regions of these masses, so the curves coincide
/// when q = p (for a Gaussian q they are its 1/2/3-sigma ellipses, for a Laplace q diamonds).
pub(super) const HPD_MASSES: [f64; 3] = [
    0.393_469_340_287_366_6,
    0.864_664_716_763_387_3,
    0.988_891_003_461_758,
];

/// Normalised density exp(log_density - max) (non-finite → 0), or None if nothing is finite.
pub(super) fn normalised_density(log_density: &[f64]) -> Option<Vec<f64>> {
    let max = log_density
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return None;
    }
    Some(
        log_density
            .iter()
            .map(|v| if v.is_finite() { (v - max).exp() } else { 0.0 })
            .collect(),
    )
}

/// Density thresholds whose superlevel sets hold the given fractions of the total grid mass.
pub(super) fn hpd_levels(density: &[f64], masses: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = density.iter().copied().filter(|v| *v > 0.0).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = sorted.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Vec::new();
    }
    masses
        .iter()
        .map(|m| {
            let target = m * total;
            let mut acc = 0.0;
            for &v in &sorted {
                acc += v;
                if acc >= target {
                    return v;
                }
            }
            sorted.last().copied().unwrap_or(0.0)
        })
        .collect()
}

/// Bilinear interpolation of a row-major grid at fractional grid coordinates (clamped).
pub(super) fn bilinear(f: &[f64], nx: usize, ny: usize, gx: f64, gy: f64) -> f64 {
    if nx < 2 || ny < 2 || !gx.is_finite() || !gy.is_finite() {
        return 0.0;
    }
    let gx = gx.clamp(0.0, (nx - 1) as f64);
    let gy = gy.clamp(0.0, (ny - 1) as f64);
    let j = (gx.floor() as usize).min(nx - 2);
    let i = (gy.floor() as usize).min(ny - 2);
    let (tx, ty) = (gx - j as f64, gy - i as f64);
    let at = |i: usize, j: usize| f.get(i * nx + j).copied().unwrap_or(0.0);
    let bottom = at(i, j) * (1.0 - tx) + at(i, j + 1) * tx;
    let top = at(i + 1, j) * (1.0 - tx) + at(i + 1, j + 1) * tx;
    bottom * (1.0 - ty) + top * ty
}

/// Contours are traced on the density upsampled by this factor.
pub(super) const CONTOUR_UPSAMPLE: usize = 4;

/// Catmull–Rom weights of the four samples around a point at fraction `t` past the second.
fn catmull_rom(t: f64) -> [f64; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// `f` (`ny` rows of `nx`) resampled at `k` points per cell by separable Catmull–Rom
/// interpolation, which passes through every original sample and has a continuous slope;
/// returns the values and the new `nx`, `ny` (`(n − 1)·k + 1`). Edges repeat the border sample.
pub(super) fn upsample_cubic(
    f: &[f64],
    nx: usize,
    ny: usize,
    k: usize,
) -> (Vec<f64>, usize, usize) {
    if nx < 2 || ny < 2 || k < 2 || f.len() < nx * ny {
        return (f.to_vec(), nx, ny);
    }
    let resample = |n: usize, get: &dyn Fn(usize) -> f64| -> Vec<f64> {
        (0..(n - 1) * k + 1)
            .map(|m| {
                let (cell, t) = (
                    (m / k).min(n - 2),
                    (m as f64 / k as f64) - (m / k).min(n - 2) as f64,
                );
                let w = catmull_rom(t);
                (0..4)
                    .map(|j| {
                        let idx =
                            (cell as isize + j as isize - 1).clamp(0, n as isize - 1) as usize;
                        w[j] * get(idx)
                    })
                    .sum()
            })
            .collect()
    };
    let rows: Vec<Vec<f64>> = (0..ny).map(|i| resample(nx, &|j| f[i * nx + j])).collect();
    let fnx = (nx - 1) * k + 1;
    let columns: Vec<Vec<f64>> = (0..fnx).map(|j| resample(ny, &|i| rows[i][j])).collect();
    let fny = (ny - 1) * k + 1;
    let mut out = vec![0.0; fnx * fny];
    for (j, col) in columns.iter().enumerate() {
        for (i, v) in col.iter().enumerate() {
            out[i * fnx + j] = *v;
        }
    }
    (out, fnx, fny)
}

/// Marching squares: line segments of the level set {f = level} of a grid `f[ny][nx]` (row-major), in grid coordinates (x = column index, y = row index, fractional, linear interpolation along cell edges). Public so it can be unit-tested.
///
/// Corners with `f >= level` count as inside. Cells with a NaN corner are skipped; saddle cells
/// are resolved by the mean of their four corners. Infinite corners are allowed (the crossing is
/// then put at the edge midpoint). Returns nothing for grids smaller than 2×2 or if
/// `f.len() < nx*ny`.
pub fn contour_segments(f: &[f64], nx: usize, ny: usize, level: f64) -> Vec<[(f64, f64); 2]> {
    let mut out = Vec::new();
    if nx < 2 || ny < 2 || level.is_nan() {
        return out;
    }
    match nx.checked_mul(ny) {
        Some(n) if n <= f.len() => {}
        _ => return out,
    }
    // Edges of a cell, as pairs of corner indices; corners are numbered
    // 0 = (j, i), 1 = (j+1, i), 2 = (j+1, i+1), 3 = (j, i+1).
    // Edge e joins corner e and corner (e+1) % 4.
    const AROUND_0_2: &[(usize, usize)] = &[(3, 0), (1, 2)];
    const AROUND_1_3: &[(usize, usize)] = &[(0, 1), (2, 3)];
    for i in 0..ny - 1 {
        for j in 0..nx - 1 {
            let v = [
                f[i * nx + j],
                f[i * nx + j + 1],
                f[(i + 1) * nx + j + 1],
                f[(i + 1) * nx + j],
            ];
            if v.iter().any(|x| x.is_nan()) {
                continue;
            }
            let (x0, y0, x1, y1) = (j as f64, i as f64, (j + 1) as f64, (i + 1) as f64);
            let corner = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)];
            let case =
                v.iter().enumerate().fold(
                    0usize,
                    |acc, (k, x)| if *x >= level { acc | (1 << k) } else { acc },
                );
            let center_in = (v[0] + v[1] + v[2] + v[3]) / 4.0 >= level;
            let pairs: &[(usize, usize)] = match case {
                1 | 14 => &[(3, 0)],
                2 | 13 => &[(0, 1)],
                4 | 11 => &[(1, 2)],
                8 | 7 => &[(2, 3)],
                3 | 12 => &[(3, 1)],
                6 | 9 => &[(0, 2)],
                5 if center_in => AROUND_1_3,
                5 => AROUND_0_2,
                10 if center_in => AROUND_0_2,
                10 => AROUND_1_3,
                _ => &[],
            };
            let cross = |e: usize| {
                let (a, b) = (e, (e + 1) % 4);
                let t = (level - v[a]) / (v[b] - v[a]);
                let t = if t.is_finite() {
                    t.clamp(0.0, 1.0)
                } else {
                    0.5
                };
                (
                    corner[a].0 + t * (corner[b].0 - corner[a].0),
                    corner[a].1 + t * (corner[b].1 - corner[a].1),
                )
            };
            for &(e1, e2) in pairs {
                out.push([cross(e1), cross(e2)]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_upsampling_keeps_samples_and_reproduces_a_quadratic() {
        let (nx, ny) = (5, 4);
        let f: Vec<f64> = (0..nx * ny)
            .map(|k| {
                let (x, y) = ((k % nx) as f64, (k / nx) as f64);
                x * x + 2.0 * y
            })
            .collect();
        let (g, gx, gy) = upsample_cubic(&f, nx, ny, 4);
        assert_eq!((gx, gy), (17, 13));
        for i in 0..ny {
            for j in 0..nx {
                assert!((g[4 * i * gx + 4 * j] - f[i * nx + j]).abs() < 1e-12);
            }
        }
        // Catmull–Rom is exact for quadratics away from the clamped border cells.
        let (x, y) = (1.75, 1.5);
        let v = g[(y * 4.0) as usize * gx + (x * 4.0) as usize];
        assert!((v - (x * x + 2.0 * y)).abs() < 1e-9, "{v}");
    }

    #[test]
    fn contour_of_radial_function_is_a_circle() {
        let (nx, ny) = (61usize, 51usize);
        let (cx, cy) = (30.0, 25.0);
        let f: Vec<f64> = (0..ny)
            .flat_map(|i| (0..nx).map(move |j| (j as f64 - cx).powi(2) + (i as f64 - cy).powi(2)))
            .collect();
        for level in [4.0, 50.0, 400.0] {
            let segs = contour_segments(&f, nx, ny, level);
            assert!(segs.len() > 8, "level {level}: {} segments", segs.len());
            let r = f64::sqrt(level);
            for s in &segs {
                for (x, y) in s {
                    let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
                    assert!(
                        (d - r).abs() <= 0.5,
                        "level {level}: point at radius {d}, want {r}"
                    );
                }
            }
        }
        // A contour that leaves the grid is simply cut off; nothing outside the grid.
        for s in contour_segments(&f, nx, ny, 900.0) {
            for (x, y) in s {
                assert!(
                    (0.0..=(nx - 1) as f64).contains(&x) && (0.0..=(ny - 1) as f64).contains(&y)
                );
            }
        }
    }

    #[test]
    fn contour_degenerate_inputs() {
        assert!(contour_segments(&[], 0, 0, 1.0).is_empty());
        assert!(contour_segments(&[1.0, 2.0], 2, 1, 1.5).is_empty());
        assert!(contour_segments(&[1.0, 2.0, 3.0], 2, 2, 1.5).is_empty());
        assert!(contour_segments(&[0.0; 4], usize::MAX, 2, 1.5).is_empty());
        let f = [
            f64::NAN,
            f64::NEG_INFINITY,
            1.0,
            f64::INFINITY,
            0.0,
            2.0,
            0.0,
            3.0,
            0.0,
        ];
        for s in contour_segments(&f, 3, 3, 0.5) {
            for (x, y) in s {
                assert!(x.is_finite() && y.is_finite());
            }
        }
        assert!(contour_segments(&[0.0, 1.0, 0.0, 1.0], 2, 2, f64::NAN).is_empty());
        // Saddle: exactly two segments.
        assert_eq!(contour_segments(&[1.0, 0.0, 0.0, 1.0], 2, 2, 0.5).len(), 2);
    }

    #[test]
    fn hpd_levels_hold_their_mass() {
        assert_eq!(hpd_levels(&[1.0, 1.0, 1.0, 1.0], &[0.5]), vec![1.0]);
        // Cells 4, 3, 2, 1 hold 40%, 30%, 20%, 10%: half the mass needs the two densest.
        assert_eq!(
            hpd_levels(&[1.0, 2.0, 3.0, 4.0], &[0.5, 0.05, 1.0]),
            vec![3.0, 4.0, 1.0]
        );
        assert!(hpd_levels(&[0.0, f64::NAN], &[0.5]).is_empty());
        assert_eq!(
            normalised_density(&[0.0, f64::NAN, -1.0]),
            Some(vec![1.0, 0.0, (-1f64).exp()])
        );
        assert_eq!(normalised_density(&[f64::NEG_INFINITY]), None);
        assert_eq!(bilinear(&[0.0, 1.0, 2.0, 3.0], 2, 2, 0.5, 0.5), 1.5);
    }
}
