// The step state lives on the GPU so that many steps can be recorded into one submit: every kernel
// reads its batch index / optimizer step from here and `advance` moves it on at the end of a step.
// Twin: `StepState` in src/gpu/kernels.rs.

struct StepState {
    // Optimizer steps completed before the current one (Adam's t - 1; the training noise counter).
    step: u32,
    // Index of the current batch within this pass over a data split.
    batch: u32,
    // Epoch, for stochastic binarization.
    epoch: u32,
    // Number of real images in this pass; rows past it are padding and are masked out of the loss.
    n_valid: u32,
}
