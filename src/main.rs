use clap::Parser;

fn main() -> std::process::ExitCode {
    vae_gpu::device::quiet_mesa_device_select();
    // Flag errors exit 1 like every other error (clap's own convention is 2); help and
    // --version print to stdout and exit 0.
    let cli = match vae_gpu::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
    match vae_gpu::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
