//! The on-disk spool: every snapshot is written here, under its epoch and sequence number,
//! before it is sent, and deleted only after the collector acknowledges it (or rejects it for
//! good). It survives collector outages, agent restarts and reboots. It is bounded in count and
//! bytes; when full, the oldest entry is dropped and the drop is counted into the next
//! snapshot, so the collector learns of it. Rejections are counted the same way, and that count
//! is kept on disk until a snapshot carries it.
//!
//! Sequence numbers never repeat within an epoch. A spool that is new or was lost starts a
//! random epoch (1..=i64::MAX), so the collector cannot mistake its numbers for old ones; an
//! epoch whose numbers run low ([`ROLLOVER_AT`]) is replaced by a new one at the first push that
//! finds the spool empty. Spools from before epochs keep numbering in epoch 0.
//!
//! Layout: `<dir>/<epoch>-<seq>.pb` entries (see `files`), `<dir>/epoch`, `<dir>/last_seq`
//! (the highest number used, when no entry shows it), `<dir>/rejected_count` and
//! `<dir>/dropped_count` (counts not yet reported, kept across restarts). The spool is
//! shared through [`SharedSpool`], which does all file work on the blocking pool.

mod files;
mod numbering;
mod shared;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use firstline_proto::v1;
use prost::Message;

pub use files::{Number, TornEntry, frame, parse_name, parse_number, unframe};
pub use numbering::SpoolSummary;
pub use shared::SharedSpool;

use files::{DROPPED, REJECTED, UNREADABLE, io, sync_dir, write_number};

/// The highest sequence number (the collector stores them as signed 64-bit numbers).
pub const MAX_SEQ: u64 = i64::MAX as u64;
/// From this sequence number on, the next push that finds the spool empty starts a new epoch.
pub const ROLLOVER_AT: u64 = MAX_SEQ - (1 << 32);

/// Errors of the spool, naming the file involved; the cause is the error's source.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot {op} spool file {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "spool {dir}: the sequence numbers of epoch {epoch} are used up while {waiting} snapshots \
         wait for the collector; new snapshots are refused until it acknowledges them"
    )]
    Exhausted {
        dir: PathBuf,
        epoch: u64,
        waiting: usize,
    },
}

/// The snapshot a spooled entry's bytes hold (an entry is the encoded snapshot that
/// [`Spool::push`] was given). One that does not decode can never be sent: the uplink sets it
/// aside.
pub fn decode_entry(data: &[u8]) -> Result<v1::Snapshot, prost::DecodeError> {
    v1::Snapshot::decode(data)
}

/// Bounds of the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    pub max_entries: usize,
    pub max_bytes: u64,
}

/// Names one entry: its epoch and its sequence number within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    pub epoch: u64,
    pub seq: u64,
}

/// One spooled entry read back for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    pub data: Vec<u8>,
}

/// What a new snapshot must carry: where it goes in the numbering, and what was lost since the
/// previous snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub epoch: u64,
    pub seq: u64,
    /// Entries dropped because the spool was full (or unreadable).
    pub dropped: u64,
    /// Snapshots the collector rejected.
    pub rejected: u64,
}

/// The spool. Not shared between processes; one agent owns its state directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    /// Every entry on disk, oldest first.
    entries: BTreeMap<Key, Meta>,
    bytes: u64,
    epoch: u64,
    /// The highest sequence number used in the current epoch.
    last_seq: u64,
    /// What `last_seq` on disk says.
    recorded_seq: u64,
    /// Entries dropped, not yet reported.
    dropped: u64,
    /// Rejections not yet reported (also on disk).
    rejected: u64,
}

/// Index order: entries of earlier epochs first (they were written before the current epoch
/// started), then by epoch and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    current: bool,
    id: EntryId,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    len: u64,
    legacy: bool,
}

impl Spool {
    /// Appends a snapshot. `build` receives its [`Stamp`] and returns the encoded bytes.
    pub fn push(&mut self, build: impl FnOnce(Stamp) -> Vec<u8>) -> Result<Stamp, SpoolError> {
        if self.last_seq >= ROLLOVER_AT && self.entries.is_empty() {
            tracing::info!(
                old_epoch = self.epoch,
                last_seq = self.last_seq,
                "spool sequence numbers run low; starting a new epoch"
            );
            self.start_epoch()?;
        }
        if self.last_seq >= MAX_SEQ {
            return Err(SpoolError::Exhausted {
                dir: self.dir.clone(),
                epoch: self.epoch,
                waiting: self.entries.len(),
            });
        }
        let id = EntryId {
            epoch: self.epoch,
            seq: self.last_seq + 1,
        };
        // Make room first, so the new snapshot can report every drop including its own.
        while self.entries.len() >= self.limits.max_entries.max(1) {
            self.drop_oldest()?;
        }
        let stamp = Stamp {
            epoch: id.epoch,
            seq: id.seq,
            dropped: self.dropped,
            rejected: self.rejected,
        };
        let data = files::frame(&build(stamp));
        while !self.entries.is_empty() && self.bytes + data.len() as u64 > self.limits.max_bytes {
            self.drop_oldest()?;
        }
        let path = self.dir.join(files::entry_name(id.epoch, id.seq, false));
        firstline_support::files::write_atomic(&path, &data, 0o600).map_err(io("write", &path))?;
        sync_dir(&self.dir)?;
        self.last_seq = id.seq;
        self.insert(id, data.len() as u64, false);
        if self.dropped > 0 {
            self.dropped = 0;
            if let Err(error) = self.save_dropped() {
                // The snapshot carries the count; on disk it would be counted again after a restart.
                tracing::warn!(error = %firstline_support::errors::chain(&error), "cannot reset the dropped count");
            }
        }
        if self.rejected > 0 {
            self.rejected = 0;
            if let Err(error) = self.save_rejected() {
                // The snapshot carries the count; on disk it would be counted again after a restart.
                tracing::warn!(error = %firstline_support::errors::chain(&error), "cannot reset the rejected count");
            }
        }
        Ok(stamp)
    }

    /// The oldest entries, all of one epoch, up to `max_entries` of them and `max_bytes` in all
    /// (at least one). An entry that cannot be read is set aside and counted as dropped, so it
    /// never blocks the ones behind it.
    pub fn peek(&mut self, max_entries: usize, max_bytes: u64) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut total = 0;
        let mut unreadable = Vec::new();
        let candidates: Vec<(Key, Meta)> = self.entries.iter().map(|(k, m)| (*k, *m)).collect();
        for (key, meta) in candidates {
            if out.len() >= max_entries.max(1)
                || out
                    .first()
                    .is_some_and(|e: &Entry| e.id.epoch != key.id.epoch)
            {
                break;
            }
            let read = fs::read(self.path(key.id, meta)).map_err(|e| e.to_string());
            let data = match read.and_then(|d| {
                files::unframe(&d)
                    .map(<[u8]>::to_vec)
                    .map_err(|e| e.to_string())
            }) {
                Ok(data) => data,
                Err(error) => {
                    unreadable.push((key.id, error));
                    continue;
                }
            };
            // The budget counts what is sent: the snapshots, not their frames.
            if !out.is_empty() && total + data.len() as u64 > max_bytes {
                break;
            }
            total += data.len() as u64;
            out.push(Entry { id: key.id, data });
        }
        for (id, error) in unreadable {
            tracing::error!(epoch = id.epoch, seq = id.seq, %error, "spooled snapshot unreadable; set aside");
            if let Err(error) = self.set_aside(id) {
                tracing::error!(error = %firstline_support::errors::chain(&error), "cannot set the snapshot aside");
            }
        }
        out
    }

    /// Deletes acknowledged entries of `epoch`; returns how many were spooled.
    pub fn acknowledge(&mut self, epoch: u64, seqs: &[u64]) -> Result<usize, SpoolError> {
        let ids: Vec<EntryId> = seqs.iter().map(|&seq| EntryId { epoch, seq }).collect();
        self.remove(&ids)
    }

    /// Deletes entries of `epoch` the collector rejected for good and counts them into the next
    /// snapshot (the count is kept on disk until then); returns how many were spooled.
    pub fn discard_rejected(&mut self, epoch: u64, seqs: &[u64]) -> Result<usize, SpoolError> {
        let ids: Vec<EntryId> = seqs.iter().map(|&seq| EntryId { epoch, seq }).collect();
        let removed = self.remove(&ids)?;
        if removed > 0 {
            self.rejected = self.rejected.saturating_add(removed as u64);
            self.save_rejected()?;
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// Moves an entry that can never be sent (unreadable, or not a snapshot) out of the queue
    /// into `unreadable/`, counted as dropped. If it cannot be moved it is deleted, and if that
    /// fails too it is forgotten: it must not block the queue.
    pub fn set_aside(&mut self, id: EntryId) -> Result<(), SpoolError> {
        let Some((key, meta)) = self.lookup(id) else {
            return Ok(());
        };
        self.keep_numbering(&[id])?;
        self.forget(key, meta);
        self.dropped = self.dropped.saturating_add(1);
        self.save_dropped()?;
        let from = self.path(id, meta);
        let aside = self.dir.join(UNREADABLE);
        let to = aside.join(files::entry_name(id.epoch, id.seq, false));
        let moved = fs::create_dir_all(&aside).and_then(|()| fs::rename(&from, &to));
        if moved.is_err() {
            let _ = fs::remove_file(&from);
        }
        sync_dir(&self.dir)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The epoch new snapshots are numbered in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The sequence number of the newest snapshot ever spooled in the current epoch.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Rejections not yet carried by a snapshot.
    pub fn rejected_pending(&self) -> u64 {
        self.rejected
    }

    fn insert(&mut self, id: EntryId, len: u64, legacy: bool) {
        let key = Key {
            current: id.epoch == self.epoch,
            id,
        };
        self.entries.insert(key, Meta { len, legacy });
        self.bytes += len;
    }

    fn lookup(&self, id: EntryId) -> Option<(Key, Meta)> {
        [true, false].into_iter().find_map(|current| {
            let key = Key { current, id };
            self.entries.get(&key).map(|m| (key, *m))
        })
    }

    fn forget(&mut self, key: Key, meta: Meta) {
        if self.entries.remove(&key).is_some() {
            self.bytes -= meta.len;
        }
    }

    /// Deletes entries from disk and the index; returns how many were spooled.
    fn remove(&mut self, ids: &[EntryId]) -> Result<usize, SpoolError> {
        let present: Vec<(Key, Meta)> = ids.iter().filter_map(|id| self.lookup(*id)).collect();
        if present.is_empty() {
            return Ok(0);
        }
        let removing: Vec<EntryId> = present.iter().map(|(k, _)| k.id).collect();
        self.keep_numbering(&removing)?;
        for (key, meta) in &present {
            let path = self.path(key.id, *meta);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("delete", &path)(e)),
            }
            self.forget(*key, *meta);
        }
        sync_dir(&self.dir)?;
        Ok(present.len())
    }

    fn drop_oldest(&mut self) -> Result<(), SpoolError> {
        if let Some((&key, _)) = self.entries.first_key_value() {
            self.remove(&[key.id])?;
            self.dropped = self.dropped.saturating_add(1);
            self.save_dropped()?;
            tracing::warn!(
                epoch = key.id.epoch,
                seq = key.id.seq,
                "spool full: dropped the oldest snapshot"
            );
        }
        Ok(())
    }

    fn save_rejected(&self) -> Result<(), SpoolError> {
        write_number(&self.dir.join(REJECTED), self.rejected)
    }

    /// Keeps the count of drops not yet reported, so a restart does not lose it.
    fn save_dropped(&self) -> Result<(), SpoolError> {
        write_number(&self.dir.join(DROPPED), self.dropped)
    }

    fn path(&self, id: EntryId, meta: Meta) -> PathBuf {
        self.dir
            .join(files::entry_name(id.epoch, id.seq, meta.legacy))
    }
}
