//! A throwaway PostgreSQL server started from the system's binaries in a temporary directory on
//! a free port, so the PostgreSQL tests do not depend on whatever else runs on this machine.
//! PostgreSQL cannot be told to pick a port itself: a port that was free when chosen but is
//! taken by the time the server binds it (parallel tests) is detected and another one tried.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Ports tried before giving up.
const ATTEMPTS: u32 = 10;

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

/// A loopback port that was free a moment ago (the kernel's pick for port 0).
pub fn candidate_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// How one `pg_ctl start` ended.
enum Started {
    Yes,
    PortTaken,
}

impl TempPostgres {
    /// Initialises and starts a server; returns once it accepts connections.
    pub fn start() -> Self {
        Self::start_trying(candidate_port)
    }

    /// Like [`start`](Self::start), on the first port from `next_port` that the server can
    /// bind: a port someone else holds is skipped, up to a few times.
    pub fn start_trying(mut next_port: impl FnMut() -> u16) -> Self {
        let bin = find_bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut me = Self { dir, bin, port: 0 };
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
                // The port check below reads the server's log: English, whatever the locale.
                "--lc-messages=C",
            ],
        );
        let mut taken = Vec::new();
        for attempt in 1..=ATTEMPTS {
            let port = next_port();
            match me.start_on(port, attempt) {
                Started::Yes => {
                    me.port = port;
                    return me;
                }
                Started::PortTaken => taken.push(port),
            }
        }
        panic!("PostgreSQL found every port it tried taken: {taken:?}");
    }

    /// `pg_ctl start` on `port`, logging to a file of this attempt's own.
    fn start_on(&self, port: u16, attempt: u32) -> Started {
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.dir.path().display()
        );
        let log_path = self.dir.path().join(format!("server-{attempt}.log"));
        let log = log_path.display().to_string();
        let data = self.data_dir();
        let out = self.command(
            "pg_ctl",
            &[
                "-D", &data, "-o", &options, "-l", &log, "-w", "-t", "60", "start",
            ],
        );
        if out.status.success() {
            return Started::Yes;
        }
        let server_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if server_log.contains("Address already in use") {
            return Started::PortTaken;
        }
        panic!(
            "pg_ctl start failed: {}{}\n{server_log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
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

    /// Runs one of the server's tools (as the postgres user when we are root).
    fn command(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        if rustix::process::geteuid().is_root() {
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
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }

    /// Runs a tool that must succeed.
    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let output = self.command(tool, args);
        assert!(
            output.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    pub fn port(&self) -> u16 {
        self.port
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_taken_meanwhile_is_skipped() {
        // Someone else binds the port between our choice and the server's start.
        let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let taken = holder.local_addr().expect("addr").port();
        let mut ports = std::iter::once(taken).chain(std::iter::repeat_with(candidate_port));
        let pg = TempPostgres::start_trying(|| ports.next().expect("a port"));
        assert_ne!(pg.port(), taken);
        let url = pg.database("retried");
        assert!(url.contains(&format!(":{}/", pg.port())), "{url}");
        drop(holder);
    }
}
