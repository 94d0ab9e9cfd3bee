//! The on-disk spool: every snapshot is written here, under its sequence number, before it is
//! sent, and deleted only after the collector acknowledges it. It survives collector outages,
//! agent restarts and reboots. It is bounded in count and bytes; when full, the oldest entry is
//! dropped and the drop is counted into the next snapshot, so the collector learns of it.
//!
//! Layout: `<dir>/<seq, 20 digits>.pb` (one encoded snapshot each, written to a temporary file,
//! synced and renamed), and `<dir>/last_seq` (the highest sequence ever acknowledged), so that
//! sequence numbers keep growing across restarts even when the spool is empty.

use firstline_support::files;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Errors of the spool, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt last_seq")]
    Corrupt { path: PathBuf },
}

/// Bounds of the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    pub max_entries: usize,
    pub max_bytes: u64,
}

/// The spool. Not shared between processes; one agent owns its state directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    /// seq -> encoded size, of every entry on disk.
    entries: BTreeMap<u64, u64>,
    bytes: u64,
    last_seq: u64,
    /// Entries dropped because the spool was full, not yet reported.
    dropped: u64,
}

/// One spooled entry read back for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub data: Vec<u8>,
}

const SUFFIX: &str = ".pb";
const LAST_SEQ: &str = "last_seq";

impl Spool {
    /// Opens (creating) the spool in `dir` and indexes what is on disk. Leftover temporary files
    /// from a crash are removed.
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<Self, SpoolError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let (entries, last_seq) = scan(dir, true)?;
        let bytes = entries.values().sum();
        Ok(Self {
            dir: dir.to_owned(),
            limits,
            entries,
            bytes,
            last_seq,
            dropped: 0,
        })
    }

    /// Looks at a spool without changing anything (for `status` while the agent runs):
    /// returns how many entries wait and the newest sequence number.
    pub fn inspect(dir: &Path) -> Result<(usize, u64), SpoolError> {
        if !dir.exists() {
            return Ok((0, 0));
        }
        let (entries, last_seq) = scan(dir, false)?;
        Ok((entries.len(), last_seq))
    }

    /// Appends a snapshot. `build` receives its sequence number and the count of entries dropped
    /// since the last append (to carry in the snapshot) and returns the encoded bytes.
    pub fn push(&mut self, build: impl FnOnce(u64, u64) -> Vec<u8>) -> Result<u64, SpoolError> {
        let seq = self.last_seq + 1;
        // Make room first, so the new snapshot can report every drop including its own.
        while self.entries.len() >= self.limits.max_entries.max(1) {
            self.drop_oldest()?;
        }
        let data = build(seq, self.dropped);
        while !self.entries.is_empty() && self.bytes + data.len() as u64 > self.limits.max_bytes {
            self.drop_oldest()?;
        }
        let path = self.path(seq);
        files::write_atomic(&path, &data, 0o600).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        self.last_seq = seq;
        self.dropped = 0;
        self.entries.insert(seq, data.len() as u64);
        self.bytes += data.len() as u64;
        Ok(seq)
    }

    /// The oldest entries, up to `max_entries` of them and `max_bytes` in all (at least one).
    pub fn peek(&self, max_entries: usize, max_bytes: u64) -> Result<Vec<Entry>, SpoolError> {
        let mut out = Vec::new();
        let mut total = 0;
        for (&seq, &len) in self.entries.iter().take(max_entries) {
            if !out.is_empty() && total + len > max_bytes {
                break;
            }
            let path = self.path(seq);
            let data = fs::read(&path).map_err(io(&path))?;
            total += len;
            out.push(Entry { seq, data });
        }
        Ok(out)
    }

    /// Deletes acknowledged entries. The highest acknowledged sequence number is recorded first,
    /// so a crash between the two steps can only resend, never reuse, a number.
    pub fn acknowledge(&mut self, seqs: &[u64]) -> Result<usize, SpoolError> {
        let Some(&highest) = seqs.iter().filter(|s| self.entries.contains_key(s)).max() else {
            return Ok(0);
        };
        let path = self.dir.join(LAST_SEQ);
        let stored = fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        if stored.is_none_or(|s| s < highest) {
            files::write_atomic(&path, highest.to_string().as_bytes(), 0o600).map_err(io(&path))?;
        }
        let mut removed = 0;
        for seq in seqs {
            if let Some(len) = self.entries.remove(seq) {
                self.bytes -= len;
                let p = self.path(*seq);
                fs::remove_file(&p).map_err(io(&p))?;
                removed += 1;
            }
        }
        sync_dir(&self.dir)?;
        Ok(removed)
    }

    /// Moves an entry the collector refuses for good out of the queue, into `rejected/`, so it
    /// cannot block the ones behind it; it is kept for inspection.
    pub fn reject(&mut self, seq: u64) -> Result<(), SpoolError> {
        let Some(len) = self.entries.remove(&seq) else {
            return Ok(());
        };
        self.bytes -= len;
        let rejected = self.dir.join("rejected");
        fs::create_dir_all(&rejected).map_err(io(&rejected))?;
        let from = self.path(seq);
        let to = rejected.join(format!("{seq:020}{SUFFIX}"));
        fs::rename(&from, &to).map_err(io(&from))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sequence number of the newest snapshot ever spooled.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn drop_oldest(&mut self) -> Result<(), SpoolError> {
        if let Some((seq, len)) = self.entries.pop_first() {
            self.bytes -= len;
            self.dropped += 1;
            let p = self.path(seq);
            fs::remove_file(&p).map_err(io(&p))?;
            tracing::warn!(seq, "spool full: dropped the oldest snapshot");
        }
        Ok(())
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}{SUFFIX}"))
    }
}

/// Indexes the entries in `dir` and finds the newest sequence number; optionally removes
/// temporary files a crash left behind.
fn scan(dir: &Path, remove_tmp: bool) -> Result<(BTreeMap<u64, u64>, u64), SpoolError> {
    let mut entries = BTreeMap::new();
    for item in fs::read_dir(dir).map_err(io(dir))? {
        let item = item.map_err(io(dir))?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") {
            if remove_tmp {
                let _ = fs::remove_file(item.path());
            }
            continue;
        }
        let Some(seq) = name
            .strip_suffix(SUFFIX)
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        match item.metadata() {
            Ok(meta) => {
                entries.insert(seq, meta.len());
            }
            // Acknowledged and deleted by the running agent while we looked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&item.path())(e)),
        }
    }
    let last_path = dir.join(LAST_SEQ);
    let acked = match fs::read_to_string(&last_path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| SpoolError::Corrupt {
                path: last_path.clone(),
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io(&last_path)(e)),
    };
    let newest = entries.keys().next_back().copied().unwrap_or(0);
    Ok((entries, acked.max(newest)))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    files::sync_dir(dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: SpoolLimits = SpoolLimits {
        max_entries: 100,
        max_bytes: 1 << 20,
    };

    fn push(spool: &mut Spool, text: &str) -> u64 {
        spool.push(|_, _| text.as_bytes().to_vec()).expect("push")
    }

    #[test]
    fn entries_survive_reopen_and_leave_only_after_ack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), ROOMY).expect("open");
        assert_eq!(
            (
                push(&mut spool, "a"),
                push(&mut spool, "b"),
                push(&mut spool, "c")
            ),
            (1, 2, 3)
        );
        drop(spool);
        let mut spool = Spool::open(dir.path(), ROOMY).expect("reopen");
        let seqs: Vec<u64> = spool
            .peek(10, 1 << 20)
            .expect("peek")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(spool.acknowledge(&[1, 2, 99]).expect("ack"), 2);
        assert_eq!(spool.peek(10, 1 << 20).expect("peek")[0].data, b"c");
    }

    #[test]
    fn sequence_numbers_never_repeat_after_the_spool_empties() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), ROOMY).expect("open");
        push(&mut spool, "a");
        push(&mut spool, "b");
        spool.acknowledge(&[1, 2]).expect("ack");
        assert!(spool.is_empty());
        drop(spool);
        let mut spool = Spool::open(dir.path(), ROOMY).expect("reopen");
        assert_eq!(push(&mut spool, "c"), 3);
    }

    #[test]
    fn full_spool_drops_the_oldest_and_reports_the_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = SpoolLimits {
            max_entries: 2,
            max_bytes: 1 << 20,
        };
        let mut spool = Spool::open(dir.path(), limits).expect("open");
        push(&mut spool, "a");
        push(&mut spool, "b");
        let mut reported = None;
        spool
            .push(|seq, dropped| {
                reported = Some((seq, dropped));
                b"c".to_vec()
            })
            .expect("push");
        assert_eq!(reported, Some((3, 1)));
        let seqs: Vec<u64> = spool
            .peek(10, 1 << 20)
            .expect("peek")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, [2, 3]);
    }

    #[test]
    fn peek_respects_the_byte_budget_but_always_returns_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), ROOMY).expect("open");
        push(&mut spool, "0123456789");
        push(&mut spool, "0123456789");
        assert_eq!(spool.peek(10, 15).expect("peek").len(), 1);
        assert_eq!(spool.peek(10, 5).expect("peek").len(), 1);
        assert_eq!(spool.peek(10, 20).expect("peek").len(), 2);
    }

    #[test]
    fn rejected_entries_leave_the_queue_but_stay_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), ROOMY).expect("open");
        push(&mut spool, "bad");
        spool.reject(1).expect("reject");
        assert!(spool.is_empty());
        assert!(
            dir.path()
                .join("rejected")
                .join(format!("{:020}.pb", 1))
                .exists()
        );
    }
}
