//! Process plumbing shared by both binaries: logging to stderr (filter from `RUST_LOG`, default
//! `info`, colour only on a terminal), and SIGINT/SIGTERM (Ctrl-C elsewhere) turned into one
//! cancellation.

use std::ffi::OsStr;
use std::io::IsTerminal;

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
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour_wanted(std::io::stderr().is_terminal())),
        )
        .with(filter)
        .init();
    if invalid {
        tracing::warn!(rust_log = spec, "RUST_LOG not understood; logging at info");
    }
}

/// Whether output that is (`is_terminal`) or is not a terminal gets ANSI colours: only a
/// terminal does, and not when `NO_COLOR` is set to a non-empty value (no-color.org).
pub fn colour_wanted(is_terminal: bool) -> bool {
    colour_allowed(is_terminal, std::env::var_os("NO_COLOR").as_deref())
}

/// [`colour_wanted`] with the value of `NO_COLOR` given.
pub fn colour_allowed(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(OsStr::is_empty)
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

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let cases = [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (false, None, false),
            (false, Some("1"), false),
        ];
        for (terminal, no_color, expected) in cases {
            assert_eq!(
                colour_allowed(terminal, no_color.map(OsStr::new)),
                expected,
                "terminal {terminal}, NO_COLOR {no_color:?}"
            );
        }
    }
}
