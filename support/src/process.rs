//! Process plumbing shared by both binaries: logging to stderr (filter from `RUST_LOG`, default
//! `info`), and SIGINT/SIGTERM (Ctrl-C elsewhere) turned into one cancellation.

use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Starts logging. Call first in `main`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
#[cfg(unix)]
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutdown requested");
    shutdown.cancel();
}

/// Cancels `shutdown` on Ctrl-C.
#[cfg(not(unix))]
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_ok() {
        tracing::info!("shutdown requested");
        shutdown.cancel();
    }
}
