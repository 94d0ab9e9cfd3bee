//! The spool's files: entry names, the framing of an entry's bytes, the small number files
//! beside them, and the scan that indexes a spool directory. Entries are `<epoch>-<seq>.pb`
//! (both 20 digits, so names sort like the numbers); spools from before epochs hold
//! `<seq>.pb`, read as epoch 0.
//!
//! An entry is written whole (a temporary file, synced, renamed), yet a file system that
//! keeps the rename but not the data across a power cut can leave it short or garbled, and a
//! short protobuf still decodes (as a snapshot with fields missing). So each entry is framed:
//! [`MAGIC`], the payload's length and its CRC-32C (both little-endian u32), the payload. A
//! frame that is short or does not match is torn: set aside and counted as dropped, never
//! sent. Entries written before framing (no magic: a snapshot's first byte is never 0x46,
//! wire type 6 does not exist) are read as they are.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use firstline_support::files;

use super::SpoolError;

/// The epoch of the current numbering.
pub const EPOCH: &str = "epoch";
/// The highest sequence number used in the epoch, when no entry file shows it.
pub const LAST_SEQ: &str = "last_seq";
/// Snapshots the collector rejected that no snapshot has reported yet.
pub const REJECTED: &str = "rejected_count";
/// Snapshots dropped (spool full, or unreadable) that no snapshot has reported yet.
pub const DROPPED: &str = "dropped_count";
/// Where entries that cannot be read or decoded are set aside for inspection.
pub const UNREADABLE: &str = "unreadable";

const SUFFIX: &str = ".pb";

/// The first bytes of a framed entry.
pub const MAGIC: &[u8; 4] = b"FLS1";
const HEADER: usize = 12;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Why an entry's bytes cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TornEntry {
    #[error("torn entry: {got} of {expected} payload bytes")]
    Short { expected: u64, got: u64 },
    #[error("torn entry: {extra} bytes after the payload")]
    Long { extra: u64 },
    #[error("torn entry: the checksum does not match")]
    Checksum,
}

/// `payload` framed for the spool.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&CRC.checksum(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of an entry's bytes as read from disk: a framed entry checked whole, an
/// unframed one (from before framing) as it is.
pub fn unframe(bytes: &[u8]) -> Result<&[u8], TornEntry> {
    if bytes.len() < MAGIC.len() {
        // An unframed entry of fewer than four bytes, or the start of a frame.
        if !bytes.is_empty() && MAGIC.starts_with(bytes) {
            return Err(TornEntry::Short {
                expected: HEADER as u64,
                got: 0,
            });
        }
        return Ok(bytes);
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Ok(bytes);
    }
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
    };
    let (Some(len), Some(crc)) = (word(4), word(8)) else {
        return Err(TornEntry::Short {
            expected: HEADER as u64,
            got: 0,
        });
    };
    let payload = &bytes[HEADER..];
    let expected = u64::from(len);
    let got = payload.len() as u64;
    if got < expected {
        return Err(TornEntry::Short { expected, got });
    }
    if got > expected {
        return Err(TornEntry::Long {
            extra: got - expected,
        });
    }
    if CRC.checksum(payload) != crc {
        return Err(TornEntry::Checksum);
    }
    Ok(payload)
}

/// An entry file found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub epoch: u64,
    pub seq: u64,
    /// Named `<seq>.pb`, from before epochs.
    pub legacy: bool,
    pub len: u64,
}

/// What a number file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    Missing,
    Value(u64),
    /// Present but not a number (a damaged disk, a hand edit).
    Corrupt,
}

/// The file name of an entry.
pub fn entry_name(epoch: u64, seq: u64, legacy: bool) -> String {
    if legacy {
        format!("{seq:020}{SUFFIX}")
    } else {
        format!("{epoch:020}-{seq:020}{SUFFIX}")
    }
}

/// (epoch, seq, legacy) from an entry file name.
pub fn parse_name(name: &str) -> Option<(u64, u64, bool)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match stem.split_once('-') {
        Some((epoch, seq)) if digits(epoch) && digits(seq) => {
            Some((epoch.parse().ok()?, seq.parse().ok()?, false))
        }
        None if digits(stem) => Some((0, stem.parse().ok()?, true)),
        _ => None,
    }
}

/// Indexes the entries in `dir`; optionally removes temporary files a crash left behind.
pub fn scan(dir: &Path, remove_tmp: bool) -> Result<Vec<Found>, SpoolError> {
    let mut found = Vec::new();
    for item in fs::read_dir(dir).map_err(io("list", dir))? {
        let item = item.map_err(io("list", dir))?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") {
            if remove_tmp {
                let _ = fs::remove_file(item.path());
            }
            continue;
        }
        let Some((epoch, seq, legacy)) = parse_name(&name) else {
            continue;
        };
        match item.metadata() {
            Ok(meta) if meta.is_file() => found.push(Found {
                epoch,
                seq,
                legacy,
                len: meta.len(),
            }),
            Ok(_) => {}
            // Acknowledged and deleted by the running agent while we looked.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("read", &item.path())(e)),
        }
    }
    Ok(found)
}

/// Reads a number file.
pub fn read_number(path: &Path) -> Result<Number, SpoolError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(parse_number(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Number::Missing),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(Number::Corrupt),
        Err(e) => Err(io("read", path)(e)),
    }
}

/// What the text of a number file says.
pub fn parse_number(text: &str) -> Number {
    text.trim()
        .parse()
        .map(Number::Value)
        .unwrap_or(Number::Corrupt)
}

/// Replaces a number file atomically (synced; the directory entry is synced by the caller).
pub fn write_number(path: &Path, value: u64) -> Result<(), SpoolError> {
    files::write_atomic(path, value.to_string().as_bytes(), 0o600).map_err(io("write", path))
}

/// Makes the directory's new, renamed and removed entries durable.
pub fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    files::sync_dir(dir).map_err(io("sync", dir))
}

/// Maps an I/O error on `path` during `op` to a spool error.
pub fn io<'a>(op: &'static str, path: &'a Path) -> impl Fn(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        op,
        path: PathBuf::from(path),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_torn_one_is_told() {
        let payload = b"\x08\x01\x12\x04disk";
        let framed = frame(payload);
        assert_eq!(unframe(&framed), Ok(&payload[..]));
        assert_eq!(unframe(&frame(b"")), Ok(&b""[..]));
        // Every cut of the frame is torn, none decodes as a shorter snapshot.
        for cut in 1..framed.len() {
            assert!(unframe(&framed[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            unframe(&framed[..framed.len() - 3]),
            Err(TornEntry::Short {
                expected: payload.len() as u64,
                got: payload.len() as u64 - 3
            })
        );
        let mut flipped = framed.clone();
        *flipped.last_mut().expect("byte") ^= 1;
        assert_eq!(unframe(&flipped), Err(TornEntry::Checksum));
        let mut longer = framed;
        longer.push(0);
        assert_eq!(unframe(&longer), Err(TornEntry::Long { extra: 1 }));
        // Entries from before framing are read as they are.
        assert_eq!(unframe(payload), Ok(&payload[..]));
        assert_eq!(unframe(b"old"), Ok(&b"old"[..]));
        assert_eq!(unframe(b""), Ok(&b""[..]));
    }

    #[test]
    fn entry_names_round_trip_and_sort_like_numbers() {
        let cases = [(7, 1, false), (0, 42, true), (u64::MAX, u64::MAX, false)];
        for (epoch, seq, legacy) in cases {
            let name = entry_name(epoch, seq, legacy);
            assert_eq!(parse_name(&name), Some((epoch, seq, legacy)), "{name}");
        }
        assert!(entry_name(3, 9, false) < entry_name(3, 10, false));
        assert_eq!(entry_name(0, 5, true), "00000000000000000005.pb");
    }

    #[test]
    fn other_names_are_not_entries() {
        for name in [
            "last_seq", "epoch", "5.tmp", "x.pb", "-5.pb", "5-.pb", "1-2-3.pb", "+5.pb", ".pb",
        ] {
            assert_eq!(parse_name(name), None, "{name}");
        }
    }

    #[test]
    fn number_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n");
        assert_eq!(read_number(&path).expect("read"), Number::Missing);
        write_number(&path, 42).expect("write");
        assert_eq!(read_number(&path).expect("read"), Number::Value(42));
        fs::write(&path, "forty-two").expect("write");
        assert_eq!(read_number(&path).expect("read"), Number::Corrupt);
        assert_eq!(parse_number(" 7\n"), Number::Value(7));
        assert_eq!(parse_number("-1"), Number::Corrupt);
    }
}
