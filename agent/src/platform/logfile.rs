//! A log file that rotates by size: `agent.log`, then `agent.log.1` ... `agent.log.N`, the
//! oldest dropped. The Windows service has no stderr anyone reads, so it logs here (under
//! `%ProgramData%\Firstline\logs`); the file is plain text a technician can open, and its size
//! is bounded without a log rotation service.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use firstline_support::process::parse_filter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// A size-rotated log file, shared by every writer of the process.
#[derive(Debug, Clone)]
pub struct RotatingLog {
    inner: Arc<Mutex<State>>,
}

/// One write's hold on the file.
#[derive(Debug)]
pub struct Guard<'a>(MutexGuard<'a, State>);

#[derive(Debug)]
struct State {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<File>,
    size: u64,
}

/// The service's log: 10 MiB per file, the current one and 5 older.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
pub const KEEP: u32 = 5;

impl RotatingLog {
    /// Opens (appending) `dir/name`, creating `dir`. A file grows to about `max_bytes`; `keep`
    /// older files are kept.
    pub fn open(dir: &Path, name: &str, max_bytes: u64, keep: u32) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(name);
        let file = append(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            inner: Arc::new(Mutex::new(State {
                path,
                max_bytes,
                keep,
                file: Some(file),
                size,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while writing a log line leaves the file usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Renames `name.k` to `name.k+1` from the oldest down, `name` to `name.1`, and starts a
    /// new file.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let numbered = |k: u32| PathBuf::from(format!("{}.{k}", self.path.display()));
        let _ = std::fs::remove_file(numbered(self.keep));
        for k in (1..self.keep).rev() {
            let _ = std::fs::rename(numbered(k), numbered(k + 1));
        }
        if self.keep > 0 {
            std::fs::rename(&self.path, numbered(1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        self.file = Some(append(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

impl Write for Guard<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let state = &mut self.0;
        if state.size > 0 && state.size + buf.len() as u64 > state.max_bytes {
            state.rotate()?;
        }
        if state.file.is_none() {
            // A failed rotation left no file: try again at each write.
            state.file = Some(append(&state.path)?);
        }
        if let Some(file) = &mut state.file {
            file.write_all(buf)?;
        }
        state.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl<'a> MakeWriter<'a> for RotatingLog {
    type Writer = Guard<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Guard(self.lock())
    }
}

/// Starts logging into `dir/agent.log` (rotated), with the filter from `RUST_LOG` as on a
/// terminal. Call first, instead of `init_logging`.
pub fn init(dir: &Path) -> io::Result<()> {
    let log = RotatingLog::open(dir, "agent.log", MAX_BYTES, KEEP)?;
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let (filter, invalid) = parse_filter(&spec);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(log)
                .with_ansi(false),
        )
        .with(filter)
        .init();
    if invalid {
        tracing::warn!(rust_log = spec, "RUST_LOG not understood; logging at info");
    }
    Ok(())
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &Path, name: &str) -> Option<String> {
        std::fs::read_to_string(dir.join(name)).ok()
    }

    #[test]
    fn files_rotate_by_size_and_the_oldest_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = RotatingLog::open(dir.path(), "agent.log", 10, 2).expect("open");
        for line in ["one 1234\n", "two 1234\n", "three 12\n", "four 123\n"] {
            log.make_writer().write_all(line.as_bytes()).expect("write");
        }
        assert_eq!(read(dir.path(), "agent.log").as_deref(), Some("four 123\n"));
        assert_eq!(
            read(dir.path(), "agent.log.1").as_deref(),
            Some("three 12\n")
        );
        assert_eq!(
            read(dir.path(), "agent.log.2").as_deref(),
            Some("two 1234\n")
        );
        assert_eq!(
            read(dir.path(), "agent.log.3"),
            None,
            "only two old files kept"
        );
    }

    #[test]
    fn an_existing_file_is_appended_to_and_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("agent.log"), "before restart\n").expect("write");
        let log = RotatingLog::open(dir.path(), "agent.log", 30, 1).expect("open");
        log.make_writer().write_all(b"after\n").expect("write");
        assert_eq!(
            read(dir.path(), "agent.log").as_deref(),
            Some("before restart\nafter\n")
        );
        log.make_writer()
            .write_all(b"past the limit now\n")
            .expect("write");
        assert_eq!(
            read(dir.path(), "agent.log").as_deref(),
            Some("past the limit now\n")
        );
        assert_eq!(
            read(dir.path(), "agent.log.1").as_deref(),
            Some("before restart\nafter\n")
        );
    }
}
