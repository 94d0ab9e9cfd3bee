//! Files that hold keys and state: a private directory (0700), and whole-file writes that are
//! atomic (temporary file, sync, rename) with a chosen mode, so a crash never leaves half a key.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Creates `dir` and its parents; the directory itself gets mode 0700 on Unix.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Replaces `path` with `content` atomically; on Unix the file gets `mode`. On Windows the
/// state directory's ACL (set by the installer) protects private files instead.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp)?;
    file.write_all(content)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// Makes a directory's entries (new, renamed, removed files) durable. A no-op where the OS does
/// not support syncing a directory handle.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_private_and_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("a/b");
        create_private_dir(&state).expect("dir");
        let key = state.join("key.pem");
        write_atomic(&key, b"one", 0o600).expect("write");
        write_atomic(&key, b"two", 0o600).expect("rewrite");
        assert_eq!(fs::read(&key).expect("read"), b"two");
        assert!(!key.with_extension("tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&key), 0o600);
            assert_eq!(mode(&state), 0o700);
        }
    }
}
