//! Which numbering a spool continues: opening one (its epoch and `last_seq` from disk, or a
//! new random epoch when they are lost), starting a new epoch, keeping a removed entry's number
//! used, and looking at a spool without changing it (`status`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::files::{
    self, DROPPED, EPOCH, LAST_SEQ, Number, REJECTED, io, read_number, sync_dir, write_number,
};
use super::{EntryId, Key, MAX_SEQ, Spool, SpoolError, SpoolLimits};

/// What `status` shows of a spool, read without changing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolSummary {
    pub waiting: usize,
    /// None until the spool has numbered anything.
    pub epoch: Option<u64>,
    pub last_seq: u64,
    pub rejected_pending: u64,
    /// The newest entry of the current epoch, encoded.
    pub newest: Option<Vec<u8>>,
}

impl Spool {
    /// Opens (creating) the spool in `dir` and indexes what is on disk. Leftover temporary files
    /// from a crash are removed. Blocks: call it through [`super::SharedSpool::open`].
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<Self, SpoolError> {
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        let found = files::scan(dir, true)?;
        let epoch_file = read_number(&dir.join(EPOCH))?;
        let seq_file = read_number(&dir.join(LAST_SEQ))?;
        let mut spool = Self {
            dir: dir.to_owned(),
            limits,
            entries: BTreeMap::new(),
            bytes: 0,
            epoch: 0,
            last_seq: 0,
            recorded_seq: 0,
            dropped: 0,
            rejected: 0,
        };
        match (epoch_file, seq_file) {
            (Number::Value(epoch), Number::Value(seq)) => {
                (spool.epoch, spool.recorded_seq) = (epoch, seq)
            }
            // A spool from before epochs: its numbering continues as epoch 0.
            (Number::Missing, Number::Value(seq)) => {
                spool.recorded_seq = seq;
                write_number(&dir.join(EPOCH), 0)?;
                sync_dir(dir)?;
            }
            // New, lost, or damaged so that the numbers used are unknown (a new epoch writes
            // `last_seq` at once, so an epoch without it lost it): a new numbering.
            (epoch, seq) => {
                if epoch == Number::Corrupt || seq == Number::Corrupt {
                    tracing::warn!(dir = %dir.display(), "spool epoch or last_seq unreadable; starting a new epoch");
                }
                spool.start_epoch()?;
            }
        }
        spool.last_seq = spool.recorded_seq;
        for f in found {
            spool.index(f);
        }
        spool.rejected = match read_number(&dir.join(REJECTED))? {
            Number::Value(n) => n,
            Number::Missing => 0,
            Number::Corrupt => {
                tracing::warn!(dir = %dir.display(), "spool rejected_count unreadable; counting from 0");
                0
            }
        };
        spool.dropped = match read_number(&dir.join(DROPPED))? {
            Number::Value(n) => n,
            Number::Missing => 0,
            Number::Corrupt => {
                tracing::warn!(dir = %dir.display(), "spool dropped_count unreadable; counting from 0");
                0
            }
        };
        Ok(spool)
    }
    /// Looks at a spool without changing anything (for `status` while the agent runs). Blocks.
    pub fn inspect(dir: &Path) -> Result<SpoolSummary, SpoolError> {
        if !dir.exists() {
            return Ok(SpoolSummary::default());
        }
        let found = files::scan(dir, false)?;
        let number = |name| match read_number(&dir.join(name)) {
            Ok(Number::Value(n)) => Ok(Some(n)),
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        };
        let recorded = number(LAST_SEQ)?;
        let epoch = number(EPOCH)?.or(recorded.map(|_| 0));
        let newest = found
            .iter()
            .filter(|f| Some(f.epoch) == epoch)
            .max_by_key(|f| f.seq);
        Ok(SpoolSummary {
            waiting: found.len(),
            epoch,
            last_seq: recorded.unwrap_or(0).max(newest.map_or(0, |f| f.seq)),
            rejected_pending: number(REJECTED)?.unwrap_or(0),
            newest: newest
                .and_then(|f| fs::read(dir.join(files::entry_name(f.epoch, f.seq, f.legacy))).ok())
                .and_then(|d| files::unframe(&d).ok().map(<[u8]>::to_vec)),
        })
    }
    /// A new random epoch, numbering from 1. The epoch is written before `last_seq` is reset,
    /// so a crash in between leaves a new epoch with a high `last_seq` (which rolls over again),
    /// never the old epoch with low numbers.
    pub(super) fn start_epoch(&mut self) -> Result<(), SpoolError> {
        let old = self.epoch;
        let mut epoch = old;
        while epoch == old {
            epoch = fastrand::u64(1..=MAX_SEQ);
        }
        write_number(&self.dir.join(EPOCH), epoch)?;
        write_number(&self.dir.join(LAST_SEQ), 0)?;
        sync_dir(&self.dir)?;
        self.epoch = epoch;
        (self.last_seq, self.recorded_seq) = (0, 0);
        // Whatever is left of other epochs now sorts before the new epoch's entries.
        self.entries = std::mem::take(&mut self.entries)
            .into_iter()
            .map(|(k, m)| {
                (
                    Key {
                        current: false,
                        ..k
                    },
                    m,
                )
            })
            .collect();
        Ok(())
    }
    /// Adds a found file to the index.
    pub(super) fn index(&mut self, f: files::Found) {
        if f.epoch == self.epoch {
            self.last_seq = self.last_seq.max(f.seq);
        }
        let id = EntryId {
            epoch: f.epoch,
            seq: f.seq,
        };
        // A legacy and a new name for the same entry: keep the one indexed first.
        if self.lookup(id).is_none() {
            self.insert(id, f.len, f.legacy);
        }
    }
    /// Before entries are removed: if no remaining file would show the highest number used,
    /// records it in `last_seq`, so numbers never repeat after a restart.
    pub(super) fn keep_numbering(&mut self, removing: &[EntryId]) -> Result<(), SpoolError> {
        // The current epoch's entries sort last: the first one kept, from the end, is the
        // highest shown.
        let shown = self
            .entries
            .keys()
            .rev()
            .take_while(|k| k.current)
            .find(|k| !removing.contains(&k.id))
            .map_or(0, |k| k.id.seq);
        if shown.max(self.recorded_seq) < self.last_seq {
            // Durable before any file that showed the number is deleted.
            write_number(&self.dir.join(LAST_SEQ), self.last_seq)?;
            sync_dir(&self.dir)?;
            self.recorded_seq = self.last_seq;
        }
        Ok(())
    }
}
