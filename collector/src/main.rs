//! `firstline-collector` binary: parse arguments, start logging, turn SIGINT/SIGTERM into a
//! cancellation, and run the command.

use std::process::ExitCode;

use clap::Parser;
use firstline_collector::cli::{Cli, run};
use firstline_support::process::{cancel_on_signal, init_logging};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    match run(cli, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "error: {}",
                firstline_support::errors::chain(error.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}
