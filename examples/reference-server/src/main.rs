//! The finsec reference server binary. See the crate documentation of the library for
//! what it does; `--help` lists the settings.

use std::process::ExitCode;

use finsec_reference_server::{Cli, run_cli, telemetry};

// mimalloc instead of the system allocator: a request allocates and frees many small
// objects on two or more threads, where glibc's malloc spent a fifth of the server's time
// under load (`scripts/load.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::parse_from_env() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("finsec-reference-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = telemetry::init(cli.config.log_format) {
        eprintln!("finsec-reference-server: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            eprintln!("finsec-reference-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match runtime.block_on(run_cli(cli, &mut out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "failed");
            eprintln!("finsec-reference-server: {e}");
            ExitCode::FAILURE
        }
    }
}
