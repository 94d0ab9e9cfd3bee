//! `firstline-loadgen`: many simulated agents, each enrolled and connected on its own,
//! reporting realistic snapshots to one collector, to measure it at fleet scale. The work is
//! in the modules; this file parses the command line and prints the error chain.

mod cli;
mod enroll;
mod fds;
mod histogram;
mod identities;
mod plan;
mod procstat;
mod run;
mod sim;
mod snapshot;
mod sources;
mod stats;
mod summary;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
