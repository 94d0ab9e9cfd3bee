//! Helpers for the end-to-end tests: the real binaries as child processes, a throwaway
//! PostgreSQL server, small tmpfs filesystems to fill, a TLS server on loopback, the collector's
//! admin API, and polling with an upper bound. Everything talks to loopback only.

pub mod admin;
pub mod bins;
pub mod clamav;
pub mod feedlab;
pub mod fixtures;
pub mod fs;
pub mod https;
pub mod inproc;
pub mod netns;
pub mod pg;
pub mod procs;
pub mod request_tracker;
pub mod smtp_sink;
pub mod webhook_receiver;

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How much of the last observed value a failed wait prints (the end of a log is what matters).
const SHOWN_CHARS: usize = 4000;

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`. The limit is a
/// safety net against hangs, not a performance assertion: benchmarks measure speed.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    wait_until(what, limit, || Seen(check()), |seen| seen.0.is_some())
        .0
        .unwrap_or_else(|| unreachable!("wait_until returns only a value that is done"))
}

/// Observes a value with `observe` until `done` accepts it, and returns it; after `limit` it
/// panics naming `what` it waited for and showing the last value seen (the end of it, when
/// long). Use it instead of a fixed sleep before an assertion: it is as fast as the system
/// allows and says what went wrong when it never happens.
pub fn wait_until<T: Debug>(
    what: &str,
    limit: Duration,
    mut observe: impl FnMut() -> T,
    mut done: impl FnMut(&T) -> bool,
) -> T {
    let start = Instant::now();
    loop {
        let value = observe();
        if done(&value) {
            return value;
        }
        if start.elapsed() >= limit {
            panic!(
                "gave up waiting for {what} after {limit:?}; last seen: {}",
                tail(&format!("{value:#?}"), SHOWN_CHARS)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Async variant of [`wait_for`].
pub async fn wait_for_async<T, F>(what: &str, limit: Duration, mut check: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < limit,
            "gave up waiting for {what} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What [`wait_for`] shows of an `Option` it gave up on: only whether there was a value.
struct Seen<T>(Option<T>);

impl<T> Debug for Seen<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

/// The last `max` characters of `text`, marked as cut when it is longer.
pub fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().skip(count - max).collect();
    format!("...{cut}")
}

/// One HTTP/1.0 GET (no chunked answers); the head and the body, `None` when it fails.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.to_owned(), body.to_owned()))
}

/// Prints one line of a latency benchmark: `what`, then the p50, p99 and max of `figures`.
pub fn print_latency_line(what: &str, figures: &mut [Duration]) {
    figures.sort();
    let at = |q: f64| {
        let i = ((figures.len() as f64 - 1.0) * q).round() as usize;
        figures.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{what:<36} p50 {:7.1} ms  p99 {:7.1} ms  max {:7.1} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "gave up waiting for the answer after 100ms; last seen: 41")]
    fn a_failed_wait_names_what_and_the_last_value() {
        wait_until(
            "the answer",
            Duration::from_millis(100),
            || 41,
            |n| *n == 42,
        );
    }

    #[test]
    fn a_wait_returns_the_accepted_value() {
        let mut n = 0;
        let got = wait_until(
            "three",
            Duration::from_secs(10),
            || {
                n += 1;
                n
            },
            |n| *n == 3,
        );
        assert_eq!(got, 3);
    }

    #[test]
    fn long_values_are_shown_by_their_end() {
        assert_eq!(tail("abcdef", 3), "...def");
        assert_eq!(tail("abc", 3), "abc");
    }
}
