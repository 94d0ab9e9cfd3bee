//! The spool as the agent's tasks share it: a cloneable handle whose methods run the file work
//! and its `fsync`s on the blocking pool, one operation at a time. It is the only way into the
//! spool; no other module locks it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{Entry, EntryId, Spool, SpoolError, SpoolLimits, Stamp};

/// A handle on the agent's spool.
#[derive(Debug, Clone)]
pub struct SharedSpool {
    spool: Arc<Mutex<Spool>>,
}

/// What the agent logs about its spool at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub waiting: usize,
    pub epoch: u64,
    pub last_seq: u64,
}

impl SharedSpool {
    /// Opens (creating) the spool in `dir`.
    pub async fn open(dir: PathBuf, limits: SpoolLimits) -> Result<Self, SpoolError> {
        let spool = firstline_support::blocking::run(move || Spool::open(&dir, limits)).await?;
        Ok(Self::new(spool))
    }

    /// Shares an open spool.
    pub fn new(spool: Spool) -> Self {
        Self {
            spool: Arc::new(Mutex::new(spool)),
        }
    }

    /// See [`Spool::push`]; `build` runs on the blocking pool too.
    pub async fn push(
        &self,
        build: impl FnOnce(Stamp) -> Vec<u8> + Send + 'static,
    ) -> Result<Stamp, SpoolError> {
        self.with(move |s| s.push(build)).await
    }

    /// See [`Spool::peek`].
    pub async fn peek(&self, max_entries: usize, max_bytes: u64) -> Vec<Entry> {
        self.with(move |s| s.peek(max_entries, max_bytes)).await
    }

    /// See [`Spool::acknowledge`].
    pub async fn acknowledge(&self, epoch: u64, seqs: Vec<u64>) -> Result<usize, SpoolError> {
        self.with(move |s| s.acknowledge(epoch, &seqs)).await
    }

    /// See [`Spool::discard_rejected`].
    pub async fn discard_rejected(&self, epoch: u64, seqs: Vec<u64>) -> Result<usize, SpoolError> {
        self.with(move |s| s.discard_rejected(epoch, &seqs)).await
    }

    /// See [`Spool::set_aside`].
    pub async fn set_aside(&self, id: EntryId) -> Result<(), SpoolError> {
        self.with(move |s| s.set_aside(id)).await
    }

    pub async fn counts(&self) -> Counts {
        self.with(|s| Counts {
            waiting: s.len(),
            epoch: s.epoch(),
            last_seq: s.last_seq(),
        })
        .await
    }

    async fn with<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Spool) -> T + Send + 'static,
    ) -> T {
        let spool = self.spool.clone();
        firstline_support::blocking::run(move || {
            // After a panic in another operation the spool is still files on disk and their
            // index; the worst case is an entry indexed that is gone, which `peek` forgets.
            let mut guard = spool.lock().unwrap_or_else(|p| p.into_inner());
            op(&mut guard)
        })
        .await
    }
}
