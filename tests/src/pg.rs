//! A throwaway PostgreSQL server started from the system's binaries in a temporary directory on
//! a free port, so the PostgreSQL tests do not depend on whatever else runs on this machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::free_port;

/// A running server, stopped and deleted on drop.
pub struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

/// The directory with `initdb` and `pg_ctl`: on PATH, or Debian's /usr/lib/postgresql/N/bin.
fn find_bin_dir() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            // Debian links initdb and pg_ctl into /usr/local/bin or /usr/bin; the other tools
            // (createdb) live beside the real ones.
            if let Ok(real) = std::fs::canonicalize(dir.join("initdb"))
                && let Some(real_dir) = real.parent()
                && real_dir.join("pg_ctl").exists()
                && real_dir.join("createdb").exists()
            {
                return real_dir.to_owned();
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|d| d.join("initdb").exists());
    versions.sort();
    versions.pop().expect(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the `postgresql` package \
         (scripts/test.sh does)",
    )
}

impl TempPostgres {
    /// Initialises and starts a server; returns once it accepts connections.
    pub fn start() -> Self {
        let bin = find_bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let me = Self { dir, bin, port };
        if rustix::process::geteuid().is_root() {
            // PostgreSQL refuses to run as root.
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(me.dir.path())
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "chown to postgres failed (is there a postgres user?)"
            );
        }
        let data = me.data_dir();
        me.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            me.dir.path().display()
        );
        let log = me.dir.path().join("server.log").display().to_string();
        me.run(
            "pg_ctl",
            &[
                "-D", &data, "-o", &options, "-l", &log, "-w", "-t", "60", "start",
            ],
        );
        me
    }

    /// Creates a fresh database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        let port = self.port.to_string();
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", name],
        );
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let output = if rustix::process::geteuid().is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        } else {
            Command::new(&program)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        }
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            output.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        let program = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if rustix::process::geteuid().is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        };
    }
}
