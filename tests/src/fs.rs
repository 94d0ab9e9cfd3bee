//! A small tmpfs the test mounts (root required) and fills to a chosen usage, so the disk
//! probe sees a real filesystem cross a threshold.

use std::path::{Path, PathBuf};
use std::process::Command;

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

    /// Sets the fill file to `percent` of the filesystem's size.
    pub fn fill_to(&self, percent: f64) {
        let st = rustix::fs::statvfs(&self.path).expect("statvfs");
        let total = st.f_blocks * st.f_frsize;
        let bytes = (total as f64 * percent / 100.0) as usize;
        let file = self.path.join("fill");
        std::fs::write(&file, vec![0x5a_u8; bytes]).expect("write fill file");
    }

    /// Removes the fill file.
    pub fn empty(&self) {
        let _ = std::fs::remove_file(self.path.join("fill"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
