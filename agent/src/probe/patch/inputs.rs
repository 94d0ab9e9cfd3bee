//! What apt's answer depends on, as one number, and the last answer kept with it: `apt-get -s
//! dist-upgrade` costs seconds of CPU and tens of MiB, while its answer changes only when
//! dpkg's status, apt's package lists or apt's configuration change. The patch probe runs apt
//! only when that number differs from the one its last answer was computed from (or that
//! answer is a day old), and keeps the answer in the state folder, so a restart does not run
//! apt either. The reboot state and the time of the last upgrade are read on every run (a
//! few file checks); only the package list is reused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{PatchFacts, PatchSettings};

/// An answer older than this is computed again even when nothing seems to have changed.
pub const MAX_REUSE: Duration = Duration::from_secs(86_400);

/// One input file as the kernel describes it; a rewrite changes at least its time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileStamp {
    pub path: String,
    pub len: u64,
    pub modified_ns: i128,
    pub inode: u64,
}

/// The stamp of everything in `files` (order does not matter), with the agent's version:
/// a newer agent may read apt's output differently. FNV-1a, stable across builds (the number
/// is kept on disk).
pub fn fingerprint(files: &[FileStamp]) -> u64 {
    let mut sorted: Vec<&FileStamp> = files.iter().collect();
    sorted.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(env!("CARGO_PKG_VERSION").as_bytes());
    for f in sorted {
        eat(f.path.as_bytes());
        eat(&[0]);
        eat(&f.len.to_le_bytes());
        eat(&f.modified_ns.to_le_bytes());
        eat(&f.inode.to_le_bytes());
    }
    hash
}

/// The files apt's simulation reads: `APT_CONFIG`'s file, dpkg's status, apt's lists and
/// extended states, and `/etc/apt`'s configuration, sources and preferences (with their `.d`
/// folders); and the `apt-get` and `apt-mark` found on PATH (a new apt may answer otherwise). A file that is missing is simply not in the list (its appearance changes the
/// stamp). Blocks (a `stat` per file).
pub fn apt_inputs(settings: &PatchSettings) -> Vec<FileStamp> {
    let mut out = Vec::new();
    let config = settings
        .apt_config
        .clone()
        .or_else(|| std::env::var_os("APT_CONFIG").map(PathBuf::from));
    let lists = settings.apt_lists_dir();
    let state = lists.parent().map(Path::to_path_buf).unwrap_or_default();
    let files = config.into_iter().chain([
        settings.dpkg_status_file(),
        state.join("extended_states"),
        "/etc/apt/apt.conf".into(),
        "/etc/apt/sources.list".into(),
        "/etc/apt/preferences".into(),
    ]);
    let tools = ["apt-get", "apt-mark"].into_iter().filter_map(on_path);
    for file in files.chain(tools) {
        stamp(&file, &mut out);
    }
    for dir in [
        lists,
        "/etc/apt/apt.conf.d".into(),
        "/etc/apt/sources.list.d".into(),
        "/etc/apt/preferences.d".into(),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        // `lock` and `partial/` change while apt downloads; the finished lists are what counts.
        for entry in entries.flatten().take(10_000) {
            let name = entry.file_name();
            if name != "lock" && name != "partial" {
                stamp(&entry.path(), &mut out);
            }
        }
    }
    out
}

/// The first `program` on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn stamp(path: &Path, out: &mut Vec<FileStamp>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    out.push(FileStamp {
        path: path.display().to_string(),
        len: meta.len(),
        modified_ns,
        inode,
    });
}

/// An answer of the package manager and the inputs it was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub inputs: u64,
    /// When it was computed, ms since the epoch.
    pub taken_at_ms: i64,
    pub facts: PatchFacts,
}

impl Answer {
    /// The facts, when they were computed from `inputs` less than [`MAX_REUSE`] before
    /// `now_ms` (a clock set back makes them stale too).
    pub fn reusable(&self, inputs: u64, now_ms: i64) -> Option<&PatchFacts> {
        let age = now_ms.checked_sub(self.taken_at_ms)?;
        let fresh = (0..i64::try_from(MAX_REUSE.as_millis()).unwrap_or(i64::MAX)).contains(&age);
        (self.inputs == inputs && fresh).then_some(&self.facts)
    }

    /// Where the answer is kept in the state folder.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("last").join("apt-answer.json")
    }

    /// The kept answer; none when missing or unreadable (apt runs again). Blocks.
    pub fn load(file: &Path) -> Option<Self> {
        let text = std::fs::read(file).ok()?;
        // A kept answer is small (the update list is bounded); a huge file is not ours.
        if text.len() > 4 * 1024 * 1024 {
            return None;
        }
        serde_json::from_slice(&text).ok()
    }

    /// Keeps the answer, atomically (a temporary file renamed over the old one). Blocks.
    pub fn save(&self, file: &Path) -> std::io::Result<()> {
        let dir = file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = file.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, file)
    }
}

/// The last answer, in memory; loaded from the state folder on first use.
#[derive(Debug, Default)]
pub struct Memo {
    last: std::sync::Mutex<Option<Answer>>,
}

impl Memo {
    pub fn get(&self) -> Option<Answer> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, answer: Answer) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, len: u64, modified_ns: i128) -> FileStamp {
        FileStamp {
            path: path.into(),
            len,
            modified_ns,
            inode: 7,
        }
    }

    #[test]
    fn the_fingerprint_changes_with_any_input_and_not_with_order() {
        let a = [file("/var/lib/dpkg/status", 10, 1), file("/l/x", 5, 2)];
        let b = [a[1].clone(), a[0].clone()];
        assert_eq!(fingerprint(&a), fingerprint(&b));
        for changed in [
            [file("/var/lib/dpkg/status", 11, 1), a[1].clone()],
            [file("/var/lib/dpkg/status", 10, 3), a[1].clone()],
            [file("/var/lib/dpkg/statuz", 10, 1), a[1].clone()],
        ] {
            assert_ne!(fingerprint(&a), fingerprint(&changed), "{changed:?}");
        }
        assert_ne!(fingerprint(&a), fingerprint(&a[..1]), "a file gone");
    }

    #[test]
    fn an_answer_is_reused_only_for_the_same_inputs_within_a_day() {
        let answer = Answer {
            inputs: 42,
            taken_at_ms: 1_000_000,
            facts: PatchFacts::from_updates("apt", Vec::new()),
        };
        let day = i64::try_from(MAX_REUSE.as_millis()).expect("fits");
        assert!(answer.reusable(42, 1_000_000 + 5_000).is_some());
        assert!(
            answer.reusable(43, 1_000_000 + 5_000).is_none(),
            "inputs changed"
        );
        assert!(answer.reusable(42, 1_000_000 + day).is_none(), "a day old");
        assert!(answer.reusable(42, 999_999).is_none(), "clock set back");
    }

    #[test]
    fn inputs_follow_the_settings_and_skip_apt_s_download_area() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lists = dir.path().join("lists");
        std::fs::create_dir_all(lists.join("partial")).expect("mkdir");
        std::fs::write(lists.join("lock"), "").expect("lock");
        std::fs::write(lists.join("deb_Packages"), "Package: a\n").expect("list");
        let status = dir.path().join("status");
        std::fs::write(&status, "Package: a\n").expect("status");
        let settings = PatchSettings {
            dpkg_status: Some(status.clone()),
            apt_lists: Some(lists.clone()),
            ..PatchSettings::default()
        };
        let before = apt_inputs(&settings);
        let paths: Vec<&str> = before.iter().map(|f| f.path.as_str()).collect();
        assert!(
            paths.contains(&status.to_str().expect("utf-8")),
            "{paths:?}"
        );
        assert!(
            paths.iter().any(|p| p.ends_with("deb_Packages")),
            "{paths:?}"
        );
        assert!(
            !paths
                .iter()
                .any(|p| p.ends_with("lock") || p.ends_with("partial"))
        );
        // apt downloading into partial/ changes nothing; a new list does.
        std::fs::write(lists.join("partial/x"), "half").expect("partial");
        assert_eq!(fingerprint(&before), fingerprint(&apt_inputs(&settings)));
        std::fs::write(status, "Package: a\nPackage: b\n").expect("status");
        assert_ne!(fingerprint(&before), fingerprint(&apt_inputs(&settings)));
    }

    #[test]
    fn a_kept_answer_survives_a_restart_and_garbage_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = Answer::path(dir.path());
        let answer = Answer {
            inputs: 9,
            taken_at_ms: 5,
            facts: PatchFacts::from_updates("apt", Vec::new()),
        };
        answer.save(&file).expect("save");
        assert_eq!(Answer::load(&file), Some(answer));
        std::fs::write(&file, "{not json").expect("write");
        assert_eq!(Answer::load(&file), None);
    }
}
