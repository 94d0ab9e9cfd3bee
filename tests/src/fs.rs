//! A small tmpfs the test mounts (root required) and fills to a chosen usage, so the disk
//! probe sees a real filesystem cross a threshold. Usage moves straight from its current level
//! to the target (the fill file grows or shrinks in place): an agent measuring in between sees
//! a value between the two, never an empty disk that would rightly resolve a ticket.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Size of one write while the fill file grows.
const CHUNK: usize = 64 * 1024;

/// A mounted tmpfs, unmounted on drop.
pub struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_bytes`.
    pub fn mount(size_bytes: u64) -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "this test mounts a tmpfs and must run as root (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_bytes}"),
                "firstline-test",
            ])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed");
        Self { _dir: dir, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mount point as the agent reports it.
    pub fn mount_point(&self) -> String {
        self.path.display().to_string()
    }

    /// The filesystem's usage now, as the agent computes it: used / (used + available).
    pub fn used_percent(&self) -> f64 {
        let st = rustix::fs::statvfs(&self.path).expect("statvfs");
        let used = st.f_blocks.saturating_sub(st.f_bfree);
        let usable = used + st.f_bavail;
        if usable == 0 {
            return 0.0;
        }
        used as f64 * 100.0 / usable as f64
    }

    /// Grows or shrinks the fill file so that it holds `percent` of the filesystem's size.
    /// Growing appends real data (tmpfs allocates pages only for what is written); shrinking
    /// cuts the file at the new size. Either way usage moves monotonically to the target.
    pub fn fill_to(&self, percent: f64) {
        let st = rustix::fs::statvfs(&self.path).expect("statvfs");
        let total = st.f_blocks * st.f_frsize;
        let target = (total as f64 * percent / 100.0) as u64;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.fill_file())
            .expect("open fill file");
        let current = file.metadata().expect("fill file size").len();
        if target <= current {
            file.set_len(target).expect("shrink fill file");
            return;
        }
        file.seek(SeekFrom::Start(current)).expect("seek to end");
        let chunk = [0x5a_u8; CHUNK];
        let mut left = target - current;
        while left > 0 {
            let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
            file.write_all(&chunk[..n]).expect("grow fill file");
            left -= n as u64;
        }
    }

    /// Removes the fill file.
    pub fn empty(&self) {
        let _ = std::fs::remove_file(self.fill_file());
    }

    fn fill_file(&self) -> PathBuf {
        self.path.join("fill")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
