//! Mutation fuzzing of every parser of user input: IDX images and labels (raw and gzip), the
//! checkpoint (safetensors header, metadata and stored training configuration), the training
//! configuration JSON itself, `--data-file` CSV and `.npy`, `--model-file` model-spec JSON and the
//! PNG mask of `svi --observe FILE`.
//!
//! Each parser gets `VAE_GPU_FUZZ_CASES` cases (default 10 000, a few seconds for all of them)
//! made from valid files by 1–4 mutations (see `common/fuzz.rs`), and where a format has a
//! structure that random bytes would only ever break at its first check (a length prefix, CRCs, a
//! compressed body, JSON inside JSON), half of its cases mutate the inside and rebuild the outside.
//! No case may panic, or allocate more than its parser's stated bound, a linear function of the
//! input's length whose reasoning each target gives. A failing input is saved under
//! `target/fuzz-failures/`; replay one with
//! `VAE_GPU_FUZZ_REPLAY=FILE cargo test --release --test fuzz replay -- --nocapture`.
//! `found_inputs_are_errors_within_bounds` keeps one input of each finding so far.
//!
//! The long run: `VAE_GPU_FUZZ_CASES=1000000 cargo test --release --test fuzz -- --nocapture`
//! (`VAE_GPU_FUZZ_SEED` picks another stream of cases). Release builds have no overflow checks, so
//! arithmetic overflow shows up only in debug builds (`cargo test`), or as what it leads to.

#[path = "common/fuzz.rs"]
mod engine;

use std::io::Write;
use std::path::{Path, PathBuf};

use engine::{
    fuzz, mutate, mutate_text, mutate_text_format, Counting, Generate, Outcome, Rng, Target,
};
use vae_gpu::data::batch::Representation;
use vae_gpu::data::{files, mnist, DataSource, PIXELS};
use vae_gpu::report::experiments::mask_from_png;
use vae_gpu::spec::{layers::conv_arch, linear, LatentFamily, Likelihood, ModelSpec};
use vae_gpu::training::backend::{Objective, TrainConfig, TrainState};
use vae_gpu::training::checkpoint::{self, Checkpoint};
use vae_gpu::training::optim::{OptimizerConfig, OptimizerKind};

#[global_allocator]
static HEAP: Counting = Counting;

const MIB: usize = 1 << 20;

thread_local! {
    /// Set by `replay`: print each error a parser gives.
    static SHOW_ERRORS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn outcome<T, E: std::fmt::Display>(r: Result<T, E>) -> Outcome {
    match r {
        Ok(_) => Outcome::Accepted,
        Err(e) => {
            if SHOW_ERRORS.with(|s| s.get()) {
                eprintln!("error: {e}");
            }
            Outcome::Rejected
        }
    }
}

// ---------------------------------------------------------------------------------------------
// IDX images and labels, raw and gzip.

fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x0803, count, rows, cols] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend((0..count * rows * cols).map(|i| (i * 37 % 256) as u8));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0801u32.to_be_bytes());
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn image_corpus() -> Vec<Vec<u8>> {
    vec![
        idx_images(3, 28, 28),
        idx_images(1, 28, 28),
        idx_images(2, 2, 3),
    ]
}

fn label_corpus() -> Vec<Vec<u8>> {
    vec![
        idx_labels(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        idx_labels(&[5; 100]),
        idx_labels(&[7]),
    ]
}

/// The images parser, and the labels parser on what it rejects (a label file mutated into the
/// other magic is still parsed by one of them).
fn parse_idx(bytes: &[u8]) -> Outcome {
    match mnist::parse_idx_images(bytes, "fuzz") {
        Ok((n, r, c, px)) => {
            assert_eq!(px.len(), n * r * c);
            Outcome::Accepted
        }
        Err(_) => outcome(mnist::parse_idx_labels(bytes, "fuzz").inspect(|l| {
            assert!(l.iter().all(|&x| x <= 9));
        })),
    }
}

fn idx_target(name: &'static str, corpus: Vec<Vec<u8>>) -> Target {
    Target {
        name,
        corpus,
        generate: None,
        parse: Box::new(parse_idx),
        fixed: 64 << 10,
        per_byte: 2,
        why: "one copy of the payload, and an error message",
    }
}

fn idx_images_target() -> Target {
    idx_target("idx_images", image_corpus())
}

#[test]
fn idx_images_file() {
    fuzz(idx_images_target());
}

fn idx_labels_target() -> Target {
    idx_target("idx_labels", label_corpus())
}

#[test]
fn idx_labels_file() {
    fuzz(idx_labels_target());
}

fn idx_gzip_target() -> Target {
    let raw: Vec<Vec<u8>> = image_corpus().into_iter().chain(label_corpus()).collect();
    let mut corpus: Vec<Vec<u8>> = raw.iter().map(|b| gzip(b)).collect();
    // Two members, read as one stream: labels split across them.
    let labels = idx_labels(&[1, 2, 3, 4, 5, 6]);
    corpus.push([gzip(&labels[..9]), gzip(&labels[9..])].concat());
    let pool: Vec<Vec<u8>> = corpus.iter().chain(&raw).cloned().collect();
    Target {
        name: "idx_gzip",
        corpus,
        // Half the cases mutate the compressed bytes (the decoder's input), half a raw IDX file
        // that is then compressed (the parsers' input, behind a valid gzip stream).
        generate: Some(Box::new(move |rng: &mut Rng, corpus: &[Vec<u8>]| {
            if rng.one_in(2) {
                let seed = rng.pick(corpus).clone();
                mutate(rng, &seed, &pool)
            } else {
                let r = rng.pick(&raw).clone();
                gzip(&mutate(rng, &r, &pool))
            }
        })),
        parse: Box::new(
            |bytes: &[u8]| match mnist::gunzip(bytes, mnist::MAX_FILE_BYTES) {
                Ok(raw) => parse_idx(&raw),
                Err(e) => outcome::<(), _>(Err(e)),
            },
        ),
        // gunzip reserves min(limit, 128 MiB) up front; DEFLATE expands at most 1032:1 (a
        // 258-byte match per two bits); the inflate state; the parser copies the payload once.
        fixed: 128 * MIB + (256 << 10),
        per_byte: 2 * 1032,
        why: "gunzip's 128 MiB reservation, DEFLATE's 1032:1 expansion, one copy",
    }
}

#[test]
fn idx_gzip_file() {
    fuzz(idx_gzip_target());
}

// ---------------------------------------------------------------------------------------------
// `--data-file`: CSV and .npy.

fn csv_corpus() -> Vec<Vec<u8>> {
    let mut table = String::from("a,b,c\n");
    for i in 0..20 {
        table += &format!("{},{:.3},-{}e-2\n", i, i as f32 / 7.0, i * 3);
    }
    vec![
        b"x1,x2\n1, 2\n\n3,4.5\n# note\n-1e-3,0\n".to_vec(),
        b"0.5\n0.25\n".to_vec(),
        b"\"1\",\"2\"\r\n3,4\r\n".to_vec(),
        table.into_bytes(),
    ]
}

fn csv_target() -> Target {
    Target {
        name: "csv",
        corpus: csv_corpus(),
        generate: text_cases(),
        parse: Box::new(|bytes: &[u8]| outcome(files::parse(Path::new("fuzz.csv"), bytes))),
        // Each value takes at least two bytes of text ("1,"): at most len/2 f32s, doubled by the
        // Vec's growth; the csv reader's buffers and one record.
        fixed: MIB,
        per_byte: 16,
        why: "≤ len/2 f32 values with growth, the reader's record and buffers",
    }
}

#[test]
fn csv_file() {
    fuzz(csv_target());
}

/// A NumPy file as NumPy writes it: magic, version, header length (u16 for 1.0, u32 for 2.0),
/// the header dict padded to 64 bytes, the data.
fn npy(version: u8, descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let prefix = if version == 1 { 10 } else { 12 };
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    npy_with_header(version, header.as_bytes(), data)
}

fn npy_with_header(version: u8, header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut b = b"\x93NUMPY".to_vec();
    b.extend([version, 0]);
    if version == 1 {
        b.extend((header.len() as u16).to_le_bytes());
    } else {
        b.extend((header.len() as u32).to_le_bytes());
    }
    b.extend(header);
    b.extend(data);
    b
}

/// (version, header, data) of a file [`npy`] wrote.
fn npy_parts(file: &[u8]) -> (u8, Vec<u8>, Vec<u8>) {
    let version = file[6];
    let (at, len) = if version == 1 {
        (10, u16::from_le_bytes([file[8], file[9]]) as usize)
    } else {
        (
            12,
            u32::from_le_bytes(file[8..12].try_into().unwrap()) as usize,
        )
    };
    (
        version,
        file[at..at + len].to_vec(),
        file[at + len..].to_vec(),
    )
}

fn npy_corpus() -> Vec<Vec<u8>> {
    let f32s = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let f64s = |v: &[f64], big: bool| -> Vec<u8> {
        v.iter()
            .flat_map(|x| {
                if big {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                }
            })
            .collect()
    };
    let six = f32s(&[1., 2., 3., 4., 5., 6.]);
    vec![
        npy(1, "<f4", false, "(3, 2)", &six),
        npy(1, "<f4", true, "(3, 2)", &six),
        npy(1, "<f8", false, "(2,)", &f64s(&[0.5, -2.0], false)),
        npy(1, ">f8", true, "(2, 2)", &f64s(&[1.0, 2.0, 3.0, 4.0], true)),
        npy(2, "<f4", false, "(2, 3)", &six),
        npy(1, "<f4", false, "(0, 3)", &[]),
    ]
}

fn npy_target() -> Target {
    let corpus = npy_corpus();
    Target {
        name: "npy",
        corpus,
        // Half the cases mutate the header dict and write its new length in front of it.
        generate: Some(Box::new(|rng: &mut Rng, corpus: &[Vec<u8>]| {
            let file = rng.pick(corpus).clone();
            if rng.one_in(2) {
                return mutate(rng, &file, corpus);
            }
            let (version, header, data) = npy_parts(&file);
            let header = mutate_text_format(rng, &header, corpus);
            let data = if rng.one_in(4) {
                mutate(rng, &data, corpus)
            } else {
                data
            };
            npy_with_header(version, &header, &data)
        })),
        parse: Box::new(|bytes: &[u8]| outcome(files::parse(Path::new("fuzz.npy"), bytes))),
        // npyz's parse of the header (at most 10 000 bytes, 4 levels deep: about 270 bytes a
        // header byte at the worst), the values read (at most len/4 f32 or len/8 f64, then
        // converted) and the Fortran-order transpose.
        fixed: 4 * MIB,
        per_byte: 16,
        why: "npyz's parse of a header ≤ 10 000 bytes, ≤ len/4 values read, converted, transposed",
    }
}

#[test]
fn npy_file() {
    fuzz(npy_target());
}

// ---------------------------------------------------------------------------------------------
// Model-spec JSON (`--model-file`) and the training configuration stored in checkpoints.

fn spec_corpus() -> Vec<Vec<u8>> {
    let (encoder, decoder) = conv_arch([1, 28, 28], [4, 8], &[16]);
    let conv = ModelSpec {
        image: Some([1, 28, 28]),
        encoder,
        decoder,
        ..ModelSpec::mnist(1, 2)
    };
    let mut specs: Vec<String> = vec![
        // docs/reference/models.md: the spec-file example, and the checkpoints' form from before the family.
        r#"{"encoder": [512], "activation": "relu", "latent": 2, "init": {"kind": "normal", "std": 0.01},
 "likelihood": {"kind": "gaussian", "mean": "sigmoid", "variance": {"kind": "learned"}}}"#
            .into(),
        r#"{"input": 784, "hidden": 500, "latent": 2}"#.into(),
        r#"{"posterior": "laplace", "prior": {"family": "laplace", "scale": 1.0}, "kl": "analytic",
 "likelihood": {"kind": "categorical", "bins": 4}}"#
            .into(),
        r#"{"likelihood": {"kind": "beta"}, "encoder": [300, 200], "decoder": [100]}"#.into(),
        r#"{"likelihood": {"kind": "gaussian", "mean": "identity", "variance": {"kind": "fixed", "sigma": 0.1}}}"#
            .into(),
        r#"{"image": [1, 28, 28], "encoder": [{"conv2d": {"out": 32, "kernel": 4, "stride": 2, "padding": 1}}, 64],
 "decoder": [64, 1568, {"reshape": [32, 7, 7]}, {"conv_transpose2d": {"out": 16, "kernel": 4, "stride": 2, "padding": 1}},
 {"conv_transpose2d": {"kernel": 4, "stride": 2, "padding": 1}}]}"#
            .into(),
        serde_json::to_string(&ModelSpec::mnist(500, 2)).unwrap(),
        serde_json::to_string(&conv).unwrap(),
    ];
    // Deep stacks of transposed convolutions, where shapes grow fastest: 4 layers of stride 2
    // (valid), and 8 of kernel and stride 15 from 1×1×1 (rejected: 759 375² values a row after
    // five), one mutation from counts past usize.
    let deep = |n: usize, k: usize, out: usize| {
        let t =
            format!(r#"{{"conv_transpose2d": {{"out": {out}, "kernel": {k}, "stride": {k}}}}}"#);
        format!(
            r#"{{"input": 1, "image": [1, 1, 1], "encoder": [], "latent": 1,
 "decoder": [1, {{"reshape": [1, 1, 1]}}, {}]}}"#,
            vec![t; n].join(", ")
        )
    };
    specs.push(deep(4, 2, 3));
    specs.push(deep(8, 15, 1));
    for likelihood in vae_gpu::spec::members::likelihoods() {
        let s = ModelSpec {
            likelihood,
            encoder: linear(&[20, 10]),
            ..ModelSpec::mnist(5, 3)
        };
        specs.push(serde_json::to_string(&s).unwrap());
    }
    specs.into_iter().map(String::into_bytes).collect()
}

/// Reads a spec as `ModelSpec::from_file` does (UTF-8, JSON, `check`), then derives what every
/// command derives from it.
fn parse_spec(bytes: &[u8]) -> Outcome {
    outcome((|| -> Result<(), String> {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        let spec: ModelSpec = serde_json::from_str(text).map_err(|e| e.to_string())?;
        spec.check()?;
        let layout = spec.layout();
        let _ = (spec.describe(), layout.named_tensors(), layout.widest());
        Ok(())
    })())
}

fn model_spec_target() -> Target {
    Target {
        name: "model_spec",
        corpus: spec_corpus(),
        generate: text_cases(),
        parse: Box::new(parse_spec),
        // serde's buffered values of the untagged layer lists (tens of bytes per layer of a
        // couple of text bytes), the spec, its layout and names.
        fixed: MIB,
        per_byte: 64,
        why: "serde's buffered layer values, the spec, its layout and tensor names",
    }
}

#[test]
fn model_spec_json() {
    fuzz(model_spec_target());
}

fn config(model: ModelSpec, kind: OptimizerKind, data: DataSource) -> TrainConfig {
    let pixels = if data.is_mnist() {
        model.likelihood.default_representation()
    } else {
        Representation::Grayscale
    };
    TrainConfig {
        model,
        batch_size: 10,
        samples: 2,
        optimizer: OptimizerConfig::new(kind, None),
        seed: 7,
        pixels,
        data,
        objective: Objective::Elbo,
        vem: None,
    }
}

fn circle() -> DataSource {
    DataSource::Circle {
        n: 100,
        seed: 1,
        noise: 0.1,
    }
}

/// A real-valued model of 2-D rows: a Gaussian with a learned variance per value, so the
/// checkpoint also holds free parameters.
fn circle_model(posterior: LatentFamily) -> ModelSpec {
    ModelSpec {
        input: 2,
        encoder: linear(&[3]),
        decoder: linear(&[3]),
        latent: 1,
        posterior,
        likelihood: Likelihood::Gaussian {
            mean: vae_gpu::spec::GaussianMean::Identity,
            variance: vae_gpu::spec::Variance::Learned,
        },
        ..ModelSpec::mnist(3, 1)
    }
}

fn configs() -> Vec<TrainConfig> {
    let mut iwae = config(
        ModelSpec::mnist(4, 2),
        OptimizerKind::Adam,
        DataSource::Mnist,
    );
    iwae.objective = Objective::Iwae;
    vec![
        config(
            ModelSpec::mnist(4, 2),
            OptimizerKind::Adam,
            DataSource::Mnist,
        ),
        config(
            circle_model(LatentFamily::Gaussian),
            OptimizerKind::Adagrad,
            circle(),
        ),
        config(
            circle_model(LatentFamily::Laplace),
            OptimizerKind::Adam,
            DataSource::File {
                path: "rows.csv".into(),
            },
        ),
        iwae,
    ]
}

fn parse_config(bytes: &[u8]) -> Outcome {
    outcome((|| -> Result<(), String> {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        let config: TrainConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        let _ = (
            config.model.layout(),
            config.model.describe(),
            config.optimizer.describe(),
            config.data.describe(),
            config.units_note(),
        );
        Ok(())
    })())
}

fn train_config_target() -> Target {
    let mut corpus: Vec<Vec<u8>> = configs()
        .iter()
        .map(|c| serde_json::to_vec(c).unwrap())
        .collect();
    // The stored forms of older checkpoints: the bare Adam settings under `adam`.
    let old = String::from_utf8(corpus[0].clone()).unwrap();
    let old = old.replace(r#""optimizer":{"kind":"adam","#, r#""adam":{"#);
    corpus.push(old.into_bytes());
    Target {
        name: "train_config",
        corpus,
        generate: text_cases(),
        parse: Box::new(parse_config),
        fixed: MIB,
        per_byte: 64,
        why: "serde's buffered values, the config, its layout",
    }
}

#[test]
fn train_config_json() {
    fuzz(train_config_target());
}

// ---------------------------------------------------------------------------------------------
// Checkpoints.

fn checkpoint_file(dir: &Path, i: usize, config: TrainConfig) -> Vec<u8> {
    let n = config.model.layout().total;
    let values = |k: usize| -> Vec<f32> {
        (0..n)
            .map(|j| ((j * 7 + k * 13) % 101) as f32 / 50.0 - 1.0)
            .collect()
    };
    let ck = Checkpoint {
        state: TrainState {
            lambda: Vec::new(),
            params: values(1),
            m: match config.optimizer {
                OptimizerConfig::Adam(_) => values(2),
                OptimizerConfig::Adagrad(_) => vec![0.0; n],
            },
            v: values(3).iter().map(|v| v.abs()).collect(),
            step: 17,
        },
        config,
        epoch: 2,
        train_size: 100,
        val_size: 0,
        test_size: Some(50),
        run_id: Some("abc".into()),
        metrics: (i == 0).then(|| r#"{"epoch":2,"train_elbo":-150.5}"#.into()),
    };
    let path = dir.join(format!("{i}.safetensors"));
    checkpoint::save(&path, &ck).unwrap();
    assert_eq!(checkpoint::load(&path).unwrap(), ck);
    std::fs::read(&path).unwrap()
}

/// (header JSON, tensor bytes) of a safetensors file.
fn safetensors_parts(file: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&file[8..8 + n]).unwrap(),
        file[8 + n..].to_vec(),
    )
}

fn safetensors_file(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = header.to_vec();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

fn checkpoint_target() -> Target {
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-checkpoints");
    std::fs::create_dir_all(&dir).unwrap();
    let corpus: Vec<Vec<u8>> = configs()
        .into_iter()
        .take(3)
        .enumerate()
        .map(|(i, c)| checkpoint_file(&dir, i, c))
        .collect();
    let parts: Vec<(serde_json::Value, Vec<u8>)> =
        corpus.iter().map(|f| safetensors_parts(f)).collect();
    Target {
        name: "checkpoint",
        corpus,
        // A third of the cases mutate the file's bytes; a third the header JSON, with its length
        // prefix rewritten; a third one metadata value (the config JSON, epoch, step, sizes, …)
        // inside a valid header.
        generate: Some(Box::new(move |rng: &mut Rng, corpus: &[Vec<u8>]| {
            let k = rng.below(parts.len());
            let (header, data) = &parts[k];
            match rng.below(3) {
                0 => mutate(rng, &corpus[k], corpus),
                1 => {
                    let text = serde_json::to_vec(header).unwrap();
                    safetensors_file(&mutate_text_format(rng, &text, corpus), data)
                }
                _ => {
                    let mut header = header.clone();
                    let meta = header["__metadata__"].as_object_mut().unwrap();
                    let keys: Vec<String> = meta.keys().cloned().collect();
                    let key = rng.pick(&keys).clone();
                    let value = meta[&key].as_str().unwrap().to_string();
                    meta[&key] = mutate_text(rng, &value, corpus).into();
                    safetensors_file(&serde_json::to_vec(&header).unwrap(), data)
                }
            }
        })),
        parse: Box::new(|bytes: &[u8]| {
            let ck = checkpoint::from_bytes(bytes, Path::new("fuzz.safetensors"));
            outcome(ck.inspect(|ck| {
                ck.state.check_len(ck.config.model.layout().total).unwrap();
            }))
        }),
        // The header's parsed JSON and metadata copies (a few times the header), the stored
        // config, and the three state vectors of `total` f32 each, which the file must hold at
        // least once (4·total ≤ len), plus one tensor's copy.
        fixed: MIB,
        per_byte: 16,
        why: "the parsed header, 3 state vectors no larger than the file, one tensor copy",
    }
}

#[test]
fn checkpoint_file_bytes() {
    fuzz(checkpoint_target());
}

// ---------------------------------------------------------------------------------------------
// PNG masks (`svi --observe FILE`).

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn png_corpus() -> Vec<Vec<u8>> {
    let side = 28;
    let gray = image::GrayImage::from_fn(side, side, |x, y| {
        image::Luma([if y < 14 { 255 } else { (x * 9) as u8 }])
    });
    let rgb = image::RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([x as u8 * 9, y as u8 * 9, 200])
    });
    let rgba16 = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_fn(side, side, |x, _| {
        image::Rgba([x as u16 * 2000, 65535, 0, 65535])
    });
    let la = image::GrayAlphaImage::from_fn(side, side, |x, _| image::LumaA([x as u8 * 9, 255]));
    vec![
        png(gray.into()),
        png(rgb.into()),
        png(image::DynamicImage::ImageRgba16(rgba16)),
        png(la.into()),
        png(image::GrayImage::from_pixel(32, 32, image::Luma([255])).into()),
    ]
}

/// Cases of a text format: [`mutate_text_format`] of a corpus entry.
fn text_cases() -> Option<Generate> {
    Some(Box::new(|rng: &mut Rng, corpus: &[Vec<u8>]| {
        let seed = rng.pick(corpus).clone();
        mutate_text_format(rng, &seed, corpus)
    }))
}

/// Rewrites the CRC of every chunk whose length fits the file, so that a mutation inside a chunk
/// reaches the decoder instead of stopping at the checksum.
fn fix_png_crcs(png: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e + 4 <= png.len()) else {
            return;
        };
        let mut crc = flate2::Crc::new();
        crc.update(&png[at + 4..end]);
        png[end..end + 4].copy_from_slice(&crc.sum().to_be_bytes());
        at = end + 4;
    }
}

fn png_mask_target() -> Target {
    Target {
        name: "png_mask",
        corpus: png_corpus(),
        generate: Some(Box::new(|rng: &mut Rng, corpus: &[Vec<u8>]| {
            let seed = rng.pick(corpus).clone();
            let mut data = mutate(rng, &seed, corpus);
            if rng.below(4) != 0 {
                fix_png_crcs(&mut data);
            }
            data
        })),
        parse: Box::new(|bytes: &[u8]| {
            outcome(mask_from_png(Path::new("fuzz.png"), bytes).inspect(|m| {
                assert_eq!(m.len(), PIXELS);
            }))
        }),
        // A 28×28 image of at most 8 bytes a pixel, its grey copy and the mask; the decoder's
        // inflate state and row buffers; chunk data read (at most the file).
        fixed: MIB,
        per_byte: 16,
        why: "one 28×28 image decoded, the decoder's buffers, chunks no larger than the file",
    }
}

#[test]
fn png_mask() {
    fuzz(png_mask_target());
}

// ---------------------------------------------------------------------------------------------
// The inputs the fuzzer found, and replaying a saved one.

fn target(name: &str) -> Target {
    match name {
        "idx_images" => idx_images_target(),
        "idx_labels" => idx_labels_target(),
        "idx_gzip" => idx_gzip_target(),
        "csv" => csv_target(),
        "npy" => npy_target(),
        "model_spec" => model_spec_target(),
        "train_config" => train_config_target(),
        "checkpoint" => checkpoint_target(),
        "png_mask" => png_mask_target(),
        other => panic!("no fuzz target {other}"),
    }
}

/// Runs one input through a target; returns its outcome and heap peak.
fn run_one(target: &Target, input: &[u8]) -> (Outcome, usize) {
    let base = engine::reset_peak();
    let outcome = (target.parse)(input);
    (outcome, engine::peak_since(base))
}

/// What the fuzzer found before the parsers were fixed, one input per finding: each is now an
/// error (no panic, no hang) within its target's heap bound.
#[test]
fn found_inputs_are_errors_within_bounds() {
    let npy_head = |shape: &str, fortran: bool| npy(1, ">f8", fortran, shape, &[0; 16]);
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    v2.extend(u32::MAX.to_le_bytes());
    v2.extend(b"{'descr': '<f4'");
    // A 28×28 grey PNG whose header claims 16 384 × 16 384, with its CRC rewritten.
    let mut png = png_corpus()[0].clone();
    png[16..20].copy_from_slice(&16384u32.to_be_bytes());
    png[20..24].copy_from_slice(&16384u32.to_be_bytes());
    fix_png_crcs(&mut png);
    // A valid checkpoint whose stored config asks for a 16 384-wide encoder.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-found");
    std::fs::create_dir_all(&dir).unwrap();
    let file = checkpoint_file(&dir, 0, configs().remove(0));
    let (mut header, data) = safetensors_parts(&file);
    let config = header["__metadata__"]["config"]
        .as_str()
        .unwrap()
        .to_string();
    let wide = config.replacen(r#""encoder":[4]"#, r#""encoder":[16384]"#, 1);
    assert_ne!(wide, config);
    header["__metadata__"]["config"] = wide.into();
    let wide = safetensors_file(&serde_json::to_vec(&header).unwrap(), &data);
    let conv = String::from_utf8(spec_corpus().remove(5)).unwrap();
    let deep = String::from_utf8(spec_corpus().remove(9)).unwrap();
    assert!(conv.contains("[32, 7, 7]") && deep.contains(r#""kernel": 15"#));
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "npy",
            "an empty Fortran array of 2^53 rows",
            npy_head("(9007199254740993, 0)", true),
        ),
        (
            "npy",
            "a shape whose count overflows",
            npy_head("(9223372036854775807, 3)", false),
        ),
        (
            "npy",
            "a shape whose count overflows",
            npy_head("(3, 18446744073709551615)", true),
        ),
        ("png_mask", "a header claiming 16384×16384", png),
        ("checkpoint", "a config with a 16 384-wide encoder", wide),
        (
            "model_spec",
            "an image shape whose count overflows",
            conv.replacen("[1, 28, 28]", "[18446744073709551615, 28, 28]", 1)
                .into_bytes(),
        ),
        (
            "model_spec",
            "a reshape whose count overflows",
            conv.replacen("[32, 7, 7]", "[32, 9223372036854775807, 7]", 1)
                .into_bytes(),
        ),
        (
            "model_spec",
            "eight 15×15 transposed convolutions of 3 channels",
            deep.replace(r#""out": 1,"#, r#""out": 3,"#).into_bytes(),
        ),
        (
            "npy",
            "a header of 15 nested braces (2.9 s and 14 MB)",
            npy_with_header(1, b"{{{{{{{{{{{{{{{'d", &[0; 16]),
        ),
        (
            "npy",
            "a 20 000-byte version-1 header",
            npy_with_header(1, &[b' '; 20_000], &[]),
        ),
        // Last: before its fix this one stops the test binary at the hard cap.
        ("npy", "a version-2 header claiming 4 GiB", v2),
    ];
    let mut wrong = Vec::new();
    for (name, what, input) in cases {
        let t = target(name);
        let bound = t.bound(input.len());
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_one(&t, &input))) {
            Ok((Outcome::Rejected, peak)) if peak <= bound => {}
            Ok((outcome, peak)) => wrong.push(format!(
                "{name}, {what}: {outcome:?}, {peak} bytes from {} (bound {bound})",
                input.len()
            )),
            Err(_) => wrong.push(format!("{name}, {what}: panicked")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `VAE_GPU_FUZZ_REPLAY=target/fuzz-failures/<target>-<what>.bin`: runs that input through its
/// target's parser once (a panic fails this test) and prints the error, the outcome and the heap
/// peak against the target's bound.
#[test]
fn replay() {
    let Ok(file) = std::env::var("VAE_GPU_FUZZ_REPLAY") else {
        return;
    };
    let input = std::fs::read(&file).expect("VAE_GPU_FUZZ_REPLAY: a readable file");
    let name = Path::new(&file)
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('-').next())
        .expect("a saved input's name starts with its target")
        .to_string();
    let t = target(&name);
    SHOW_ERRORS.with(|s| s.set(true));
    let (outcome, peak) = run_one(&t, &input);
    eprintln!(
        "replay {file} through {name}: {outcome:?}, heap peak {peak} bytes (bound {})",
        t.bound(input.len())
    );
}
