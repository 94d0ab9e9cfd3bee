//! `firstline-agent` binary: parse arguments, start logging, turn SIGINT/SIGTERM into a
//! cancellation, and run the command on a single-threaded runtime (the agent is small and
//! mostly waits). `service` hands the process to the Windows Service Control Manager instead
//! (`platform::windows_service`), which logs to a file and stops on the SCM's request.

use std::process::ExitCode;

use clap::Parser;
use firstline_agent::cli::{Cli, Command, run};
use firstline_support::errors::chain;
use firstline_support::process::{cancel_on_signal, init_logging};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    // Before any thread exists: the local UTC offset can only be read safely now.
    firstline_agent::clock::init_local_offset();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Service) {
        return service(cli);
    }
    init_logging();
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
        let checking = matches!(cli.command, Command::Check { .. });
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

/// `service`: runs as a Windows service until the SCM stops it.
#[cfg(windows)]
fn service(cli: Cli) -> ExitCode {
    let cli = Cli {
        command: Command::Run,
        ..cli
    };
    let agent: firstline_agent::platform::windows_service::Agent =
        Box::new(move |shutdown| Box::pin(run(cli, shutdown)));
    match firstline_agent::platform::windows_service::run(agent) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// `service` exists only on Windows; systemd and launchd run `firstline-agent run`.
#[cfg(not(windows))]
fn service(_cli: Cli) -> ExitCode {
    eprintln!(
        "error: `service` runs the agent as a Windows service; here, let the service manager \
         (systemd, launchd) run `firstline-agent run`"
    );
    ExitCode::FAILURE
}
