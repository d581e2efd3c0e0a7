//! Test data shared by the figure modules' tests, and one figure of every kind.

use std::path::{Path, PathBuf};

use super::*;
use crate::error::Error;
use crate::spec::LatentFamily;

pub(super) fn test_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vae_plots_test_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Decodes the PNG at `path` and returns its size.
pub(super) fn check_png(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    assert!(img.width() > 0 && img.height() > 0);
    (img.width(), img.height())
}

/// Small deterministic RNG (xorshift) with Box–Muller normals.
pub(super) struct Rng(pub u64);

impl Rng {
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// An "L": a vertical bar down the left and a horizontal bar along the bottom. Its
/// orientation shows at a glance whether digits are transposed or flipped.
/// `arm` (0..1) scales the foot's length, `height` (0..1) the stem's height.
pub(super) fn l_digit(arm: f64, height: f64) -> Vec<f32> {
    let mut img = vec![0f32; PIXELS];
    let bottom = 22usize;
    let top = bottom - (4.0 + 14.0 * height) as usize;
    let right = 8 + (4.0 + 12.0 * arm) as usize;
    for r in top..=bottom {
        for c in 6..9 {
            img[r * SIDE + c] = 1.0;
        }
    }
    for r in bottom - 2..=bottom {
        for c in 6..right {
            img[r * SIDE + c] = 1.0;
        }
    }
    // a soft edge so grey levels show too
    img[(bottom + 1) * SIDE + 7] = 0.5;
    img
}

/// Noisy points on the unit circle with their angle as the value.
pub(super) fn circle(n: usize, rng: &mut Rng) -> (Vec<[f32; 2]>, Vec<f32>) {
    (0..n)
        .map(|k| {
            let z = -3.0 + 6.0 * k as f64 / n as f64;
            let a = z * std::f64::consts::PI / 3.0;
            let p = [
                (a.cos() + 0.05 * rng.normal()) as f32,
                (a.sin() + 0.05 * rng.normal()) as f32,
            ];
            (p, z as f32)
        })
        .unzip()
}

/// A banana-shaped log density on an `n × n` grid over [-3, 3]², bent by `bend`.
fn banana(n: usize, bend: f64) -> Vec<f64> {
    (0..n * n)
        .map(|k| {
            let x = -3.0 + 6.0 * (k % n) as f64 / (n - 1) as f64;
            let y = -3.0 + 6.0 * (k / n) as f64 / (n - 1) as f64;
            let yy = y - bend * x * x + 0.5;
            -0.5 * (x * x / 1.2 + yy * yy / 0.3)
        })
        .collect()
}

#[test]
fn extreme_text_and_counts_do_not_panic() {
    let dir = test_dir("extreme");
    let path = dir.join("x.png");
    let long: String = "very long title ".repeat(10_000);
    let many: Vec<(&str, Vec<(f64, f64)>)> =
        (0..1000).map(|k| ("s", vec![(k as f64, 1.0)])).collect();
    line_chart(&path, &long, &long, &long, &many).unwrap();
    check_png(&path);
    let empty: Vec<Panel> = (0..10_000)
        .map(|_| Panel {
            caption: "",
            rows: 0,
            cols: 0,
            images: &[],
        })
        .collect();
    assert!(matches!(
        image_panels(&path, &long, &empty),
        Err(Error::Usage(_))
    ));
    let one = l_digit(0.5, 0.5);
    let panel = [Panel {
        caption: &long,
        rows: 1,
        cols: 1,
        images: &one,
    }];
    image_panels(&path, &long, &panel).unwrap();
    latent_lattice(
        &path,
        &long,
        &[-3e38, 3e38],
        &[1e-30],
        &[&one[..], &one[..]].concat(),
    )
    .unwrap();
    check_png(&path);
    std::fs::remove_dir_all(&dir).ok();
}

/// Renders one figure of each kind with realistic data and checks its size, that it decodes,
/// and that the title was inked. With `VAE_PLOT_PREVIEW_DIR` set the figures are written there
/// and kept, for looking at.
#[test]
fn every_kind_of_figure_renders() {
    let keep = std::env::var_os("VAE_PLOT_PREVIEW_DIR").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| test_dir("every_kind"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(12345);
    // (file, expected height, least width)
    let mut made: Vec<(&str, u32, u32)> = Vec::new();

    let imgs: Vec<f32> = (0..6)
        .flat_map(|k| l_digit(k as f64 / 5.0, (k % 3) as f64 / 2.0))
        .collect();
    let panel = |caption| Panel {
        caption,
        rows: 2,
        cols: 3,
        images: &imgs,
    };
    let title = "Reconstructions through q(z|x)";
    image_panels(
        &dir.join("panels.png"),
        title,
        &[panel("data"), panel("p(x|z) mean")],
    )
    .unwrap();
    // Tiles at 3 px per pixel with 2 px gaps: 2 rows of 84 px under the title and caption.
    made.push((
        "panels.png",
        46 + 28 + 2 * 84 + 2 + 16,
        2 * (3 * 84 + 4) + 28,
    ));

    let (mut pts, mut labels) = (Vec::new(), Vec::new());
    for k in 0..600 {
        let c = (k % 10) as u8;
        let a = f64::from(c) / 10.0 * std::f64::consts::TAU;
        pts.push([
            (2.0 * a.cos() + 0.5 * rng.normal()) as f32,
            (2.0 * a.sin() + 0.5 * rng.normal()) as f32,
        ]);
        labels.push(c);
    }
    let title = "Latent means of the test set";
    class_scatter(&dir.join("scatter.png"), title, "z₁", "z₂", &pts, &labels).unwrap();
    made.push(("scatter.png", 740, 840));

    let lin: Vec<f32> = (0..3).map(|k| -1.0 + k as f32).collect();
    let title = "Learned MNIST manifold";
    latent_lattice(&dir.join("lattice.png"), title, &lin, &lin[..2], &imgs).unwrap();
    made.push(("lattice.png", 46 + 50 + 8 + 2 * 84, 3 * 84));

    let curve = |scale: f64, step: usize| -> Vec<(f64, f64)> {
        (1..=50)
            .step_by(step)
            .map(|e| (e as f64, -95.0 - scale * (-(e as f64) / 8.0).exp()))
            .collect()
    };
    let series = [
        ("train ELBO", curve(120.0, 1)),
        ("test ELBO", curve(115.0, 5)),
    ];
    let title = "ELBO per datapoint";
    line_chart(
        &dir.join("elbo.png"),
        title,
        "epoch",
        "ELBO (nats)",
        &series,
    )
    .unwrap();
    made.push(("elbo.png", 580, 860));

    let n = 61;
    let digit = l_digit(0.7, 0.9);
    let lds = [banana(n, 0.0), banana(n, 0.4)];
    let panels: Vec<PosteriorPanel> = lds
        .iter()
        .zip([LatentFamily::Gaussian, LatentFamily::Laplace])
        .map(|(ld, q_family)| PosteriorPanel {
            caption: "test image 0 (digit 7)",
            log_density: ld,
            nx: n,
            ny: n,
            x_min: -3.0,
            y_min: -3.0,
            dx: 0.1,
            dy: 0.1,
            q_family,
            q_mean: [0.0, 0.1],
            q_scale: [1.0, 0.55],
            digit: Some(&digit),
            p_label: "p(z|x) (grid)",
            q_label: "q(z|x)",
        })
        .collect();
    let title = "True posterior p(z|x) (grid) and q(z|x)";
    posterior_contours(&dir.join("posterior.png"), title, 2, &panels).unwrap();
    // Two 380 px panels side by side, 390 px tall, under the title and the legend row.
    made.push(("posterior.png", 72 + 390 + 8, 2 * 380));

    let a: Vec<f64> = (0..2000)
        .map(|_| -95.0 - 8.0 * rng.normal().abs())
        .collect();
    let b: Vec<f64> = (0..2000).map(|_| (0.5 * rng.normal()).exp()).collect();
    let title = "Per-datapoint estimates";
    let hist = [("log p(x) estimate", &a[..]), ("importance weight", &b[..])];
    histograms(&dir.join("hist.png"), title, &hist, 30).unwrap();
    made.push(("hist.png", 390 + 46 + 8, 2 * 440));

    let (circ, zs) = circle(400, &mut rng);
    let g: Vec<(f64, f64)> = (0..=100)
        .map(|k| {
            let a = (-3.0 + 0.06 * k as f64) * std::f64::consts::PI / 3.0;
            (0.95 * a.cos(), 0.95 * a.sin())
        })
        .collect();
    let title = "Circle data coloured by the true latent z";
    let curves = [("decoder mean g(z)", g)];
    let path = dir.join("value_scatter.png");
    value_scatter(
        &path, title, "x₁", "x₂", &circ, &zs, "true z", &curves, true,
    )
    .unwrap();
    made.push(("value_scatter.png", 740, 840));

    let m = 41;
    let mu: Vec<f64> = (0..m * m)
        .map(|k| {
            let (x, y) = (-1.5 + 0.075 * (k % m) as f64, -1.5 + 0.075 * (k / m) as f64);
            y.atan2(x) * 3.0 / std::f64::consts::PI
        })
        .collect();
    let grid = FieldGrid {
        values: &mu,
        nx: m,
        ny: m,
        x_min: -1.5,
        y_min: -1.5,
        dx: 0.075,
        dy: 0.075,
    };
    let title = "Encoder mean μ(x) of the 1-D latent";
    field_map(
        &dir.join("field.png"),
        title,
        "x₁",
        "x₂",
        grid,
        "μ(x)",
        &circ,
        true,
    )
    .unwrap();
    made.push(("field.png", 740, 840));

    let z: Vec<f64> = (0..201).map(|k| -4.0 + 0.04 * k as f64).collect();
    let normal = |m: f64, s: f64| -> Vec<f64> {
        z.iter()
            .map(|v| (-0.5 * ((v - m) / s).powi(2)).exp() / (s * 2.5066))
            .collect()
    };
    let (p1, q1, p2, q2) = (
        normal(-0.5, 0.6),
        normal(-0.3, 0.5),
        normal(1.0, 0.4),
        normal(1.2, 0.7),
    );
    let dens = |caption, p, q| DensityPanel {
        caption,
        z: &z,
        p,
        q,
        p_label: "p(z|x) (grid)",
        q_label: "q(z|x)",
    };
    let title = "True posterior vs q for two test points";
    let panels = [
        dens("x = (0.3, 0.9)", &p1, &q1),
        dens("x = (-0.8, 0.1)", &p2, &q2),
    ];
    density_panels(&dir.join("density.png"), title, "z", &panels, 2).unwrap();
    made.push(("density.png", 72 + 380 * 3 / 4 + 28 + 8, 2 * 380));

    for (name, height, min_width) in made {
        let path = dir.join(name);
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.height(), height, "{name}: height");
        assert!(img.width() >= min_width, "{name}: {} px wide", img.width());
        let title_ink = (0..TITLE_H)
            .flat_map(|y| (0..img.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&v| v < 100))
            .count();
        assert!(
            title_ink > 50,
            "{name}: no title drawn ({title_ink} dark pixels)"
        );
    }
    if keep.is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
}
