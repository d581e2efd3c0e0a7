//! Epoch time of the default model (Dh=500, Dz=2, B=100, L=1) on each device: one pass over
//! 2,000 training images (20 steps); multiply by 30 for a full 60,000-image epoch. And of the
//! `--arch conv` model (Gaussian σ²(z), Dz=2, B=100) over 200 images (2 steps; ×250 for 50,000):
//! fewer, since lavapipe takes seconds per conv step.
//! `cargo bench` — GPU benches run on the best adapter and fail loudly when there is none.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vae_gpu::cpu::trainer::CpuBackend;
use vae_gpu::data::batch::{epoch_permutation, Representation};
use vae_gpu::data::{mnist, DataSource};
use vae_gpu::device::{gpu_context, DeviceKind};
use vae_gpu::gpu::trainer::{GpuBackend, OptimizerOn};
use vae_gpu::spec::layers::conv_arch;
use vae_gpu::spec::{GaussianMean, Likelihood, ModelSpec, Variance};
use vae_gpu::training::backend::{Backend, Splits, TrainConfig};
use vae_gpu::training::optim::OptimizerConfig;

const IMAGES: usize = 2_000;

fn setup() -> (TrainConfig, Arc<Splits>) {
    let m = mnist::embedded().unwrap_or_else(|e| panic!("{e}"));
    let splits = Splits {
        train: m.train.slice(0, IMAGES),
        val: None,
        test: m.test.slice(0, 100),
    };
    let cfg = TrainConfig {
        model: ModelSpec::mnist(500, 2),
        batch_size: 100,
        samples: 1,
        optimizer: OptimizerConfig::default(),
        seed: 0,
        pixels: Representation::Threshold,
        data: DataSource::Mnist,
        objective: Default::default(),
        vem: None,
    };
    (cfg, Arc::new(splits))
}

/// The `--arch conv --likelihood gaussian --variance decoder` model.
fn conv_config(cfg: &TrainConfig) -> TrainConfig {
    let (encoder, decoder) = conv_arch([1, 28, 28], [32, 64], &[256]);
    let model = ModelSpec {
        image: Some([1, 28, 28]),
        encoder,
        decoder,
        activation: vae_gpu::spec::Activation::Relu,
        likelihood: Likelihood::Gaussian {
            mean: GaussianMean::Identity,
            variance: Variance::Decoder,
        },
        ..cfg.model.clone()
    };
    TrainConfig {
        model,
        pixels: Representation::Grayscale,
        ..cfg.clone()
    }
}

fn bench_backend(c: &mut Criterion, name: &str, backend: &mut dyn Backend, images: usize) {
    let perm = epoch_permutation(images, 0, 1);
    let mut epoch = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            epoch += 1;
            backend
                .train_epoch(epoch, &perm, &mut |_| {})
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
}

fn epochs(c: &mut Criterion) {
    let (cfg, splits) = setup();
    let mut cpu = CpuBackend::new(&cfg, splits.clone());
    bench_backend(c, "epoch_2000_images/cpu", &mut cpu, IMAGES);
    for placement in [OptimizerOn::Gpu, OptimizerOn::Host] {
        let mut gpu = gpu_context(DeviceKind::Auto)
            .and_then(|ctx| GpuBackend::new(ctx, &cfg, &splits, placement))
            .unwrap_or_else(|e| {
                panic!("GPU bench needs an adapter ({e}); install mesa-vulkan-drivers for lavapipe")
            });
        let name = format!("epoch_2000_images/gpu_adam_on_{placement:?}").to_lowercase();
        bench_backend(c, &name, &mut gpu, IMAGES);
    }
    let conv = conv_config(&cfg);
    let mut cpu = CpuBackend::new(&conv, splits.clone());
    bench_backend(c, "conv_epoch_200_images/cpu", &mut cpu, 200);
    let mut gpu = gpu_context(DeviceKind::Auto)
        .and_then(|ctx| GpuBackend::new(ctx, &conv, &splits, OptimizerOn::Gpu))
        .unwrap_or_else(|e| panic!("{e}"));
    bench_backend(c, "conv_epoch_200_images/gpu_adam_on_gpu", &mut gpu, 200);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500));
    targets = epochs
}
criterion_main!(benches);
