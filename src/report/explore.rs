//! The explorable part of `report/index.html`: a latent plane to hover over. For a 2-D latent the
//! decoder means on a fine lattice are precomputed here and shipped with the page, so moving the
//! pointer shows the digit decoded there; for any latent size, the test points show their image.
//! Everything is static files beside `index.html` (`explore_data.js`, `explore.js` from
//! `assets/`): no server, no network, works from `file://`. `tools/check_report.sh` opens the page
//! in headless Chromium and checks that the script built its elements.

use std::path::Path;

use base64::Engine;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::report::figures::{latent_embedding, LatentEmbedding};
use crate::report::session::Session;
use crate::training::checkpoint::write_atomic;

/// The page script, kept as a plain file in `assets/` so it can be read and edited as JavaScript.
const EXPLORE_JS: &str = include_str!("../../assets/explore.js");

/// Lattice points per side for a 2-D latent: 41² decoded digits are 1.3 MB, and bilinear blending
/// between neighbours in the page makes the motion continuous.
pub const LATTICE_SIDE: usize = 41;

/// Test images shipped with the scatter (each 784 bytes).
pub const SCATTER_POINTS: usize = 1500;

/// `window.VAE_EXPLORE` as `assets/explore.js` reads it.
#[derive(Serialize)]
struct ExploreData {
    latent_dim: usize,
    side: usize,
    axes: [&'static str; 2],
    lattice: Option<Lattice>,
    scatter: Scatter,
}

#[derive(Serialize)]
struct Lattice {
    n: usize,
    z1: [f64; 2],
    z2: [f64; 2],
    /// n·n images of side² bytes, image `iy·n + ix` at (z1[0] + ix·Δ1, z2[0] + iy·Δ2).
    images: String,
}

#[derive(Serialize)]
struct Scatter {
    x: Vec<f32>,
    y: Vec<f32>,
    label: Vec<u8>,
    /// The test image of each point, side² bytes each.
    images: String,
}

/// Pixel means in [0, 1] as bytes, base64-encoded for the page.
fn pixels_base64(values: &[f32]) -> String {
    let bytes: Vec<u8> = values
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The lattice of decoder means over the bounding box of `points` (a 2-D latent only).
fn lattice(s: &mut Session, points: &[[f32; 2]]) -> Result<Lattice> {
    let range = |axis: usize| {
        let (lo, hi) = points
            .iter()
            .map(|p| f64::from(p[axis]))
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if lo < hi {
            [lo, hi]
        } else {
            [-3.0, 3.0]
        }
    };
    let (z1, z2) = (range(0), range(1));
    let n = LATTICE_SIDE;
    let at = |r: [f64; 2], i: usize| (r[0] + (r[1] - r[0]) * i as f64 / (n - 1) as f64) as f32;
    let z: Vec<f32> = (0..n * n)
        .flat_map(|k| [at(z1, k % n), at(z2, k / n)])
        .collect();
    let means = s.decode_means(&z)?;
    Ok(Lattice {
        n,
        z1,
        z2,
        images: pixels_base64(&means),
    })
}

/// Writes `explore_data.js` and `explore.js` into `out`; returns the HTML section that shows them.
pub fn write_explorer(s: &mut Session, out: &Path) -> Result<String> {
    let LatentEmbedding {
        points,
        labels,
        images,
    } = latent_embedding(s, SCATTER_POINTS)?;
    let two_d = s.latent() == 2;
    let data = ExploreData {
        latent_dim: s.latent(),
        side: crate::data::IMAGE_SIDE,
        axes: if two_d { ["z1", "z2"] } else { ["PC1", "PC2"] },
        lattice: if two_d {
            Some(lattice(s, &points)?)
        } else {
            None
        },
        scatter: Scatter {
            x: points.iter().map(|p| p[0]).collect(),
            y: points.iter().map(|p| p[1]).collect(),
            label: labels,
            images: pixels_base64(&images),
        },
    };
    let json = serde_json::to_string(&data).map_err(|e| Error::Io(e.to_string()))?;
    write_atomic(
        &out.join("explore_data.js"),
        format!("window.VAE_EXPLORE = {json};\n").as_bytes(),
    )?;
    write_atomic(&out.join("explore.js"), EXPLORE_JS.as_bytes())?;
    let what = if two_d {
        "Move the pointer over the latent plane (or drag on a touch screen) to see the decoder's mean \
         image at that point; hover near a test point to see its image."
    } else {
        "The plane shows the first two principal components of the encoder means; hover near a \
         test point to see its image (a decoded lattice needs a 2-D latent)."
    };
    Ok(format!(
        "<h2>Explore the latent space</h2><p>{what}</p><div id=\"explore\"></div>\
         <script src=\"explore_data.js\" charset=\"utf-8\"></script><script src=\"explore.js\" charset=\"utf-8\"></script>"
    ))
}
