//! Process plumbing shared by both binaries: logging to stderr (filter from `RUST_LOG`, default
//! `info`), and SIGINT/SIGTERM (Ctrl-C elsewhere) turned into one cancellation.

use tokio_util::sync::CancellationToken;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Starts logging. Call first in `main`. `RUST_LOG` takes `level` and `target=level` directives
/// (e.g. `info,firstline_agent=debug`); an invalid value falls back to `info` and says so.
pub fn init_logging() {
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let (filter, invalid) = parse_filter(&spec);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    if invalid {
        tracing::warn!(rust_log = spec, "RUST_LOG not understood; logging at info");
    }
}

/// The log filter for a `RUST_LOG` value, and whether the value was invalid. The plain
/// `Targets` filter is enough for these directives and keeps a regex engine out of the agent.
pub fn parse_filter(spec: &str) -> (Targets, bool) {
    if spec.trim().is_empty() {
        return (Targets::new().with_default(LevelFilter::INFO), false);
    }
    match spec.parse::<Targets>() {
        Ok(t) => (t, false),
        Err(_) => (Targets::new().with_default(LevelFilter::INFO), true),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_directives() {
        let (t, invalid) = parse_filter("warn,firstline_agent=debug");
        assert!(!invalid);
        assert!(t.would_enable("firstline_agent::spool", &tracing::Level::DEBUG));
        assert!(!t.would_enable("h2", &tracing::Level::INFO));
        let (t, invalid) = parse_filter("");
        assert!(!invalid && t.would_enable("anything", &tracing::Level::INFO));
        assert!(parse_filter("=nonsense=").1);
    }
}
