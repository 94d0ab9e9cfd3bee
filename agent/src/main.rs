//! `firstline-agent` binary: parse arguments, start logging, turn SIGINT/SIGTERM into a
//! cancellation, and run the command on a single-threaded runtime (the agent is small and
//! mostly waits).

use std::process::ExitCode;

use clap::Parser;
use firstline_agent::cli::{Cli, run};
use firstline_support::errors::chain;
use firstline_support::process::{cancel_on_signal, init_logging};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    // Before any thread exists: the local UTC offset can only be read safely now.
    firstline_agent::clock::init_local_offset();
    init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        let checking = matches!(cli.command, firstline_agent::cli::Command::Check { .. });
        match run(cli, shutdown).await {
            Ok(code) => ExitCode::from(code),
            Err(error) => {
                // Each cause once: error types leave their cause to the chain.
                eprintln!("error: {}", chain(error.as_ref()));
                // `check` follows the monitoring-plugin convention: 3 is "unknown".
                ExitCode::from(if checking { 3 } else { 1 })
            }
        }
    })
}
