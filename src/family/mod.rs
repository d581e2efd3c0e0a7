//! The members of the model family on the CPU: activations, likelihoods and latent families (one
//! file each) and the special functions they need. Each function here is the twin of a WGSL
//! function with the same name in `shaders/` and is checked against it in the parity tests.

pub mod activation;
pub mod latent;
pub mod likelihood;
pub mod special;
