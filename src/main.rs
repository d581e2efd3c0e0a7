use clap::Parser;

fn main() -> std::process::ExitCode {
    vae_gpu::gpu::quiet_mesa_device_select();
    let cli = vae_gpu::cli::Cli::parse();
    match vae_gpu::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
