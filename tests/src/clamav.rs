//! A throwaway `clamd` (Debian's clamav-daemon) with a signature database the test builds
//! itself: an unsigned `daily.cud` made by `sigtool --unsigned` from one hash signature, so
//! clamd starts in milliseconds and its `VERSION` reports the database version and date. It
//! listens on a unix socket, or (`start_tcp`) only on a TCP port of the loopback address.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait_for;

/// A running clamd, stopped on drop.
pub struct Clamd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The TCP port when clamd listens on TCP only.
    port: Option<u16>,
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} not found: install the clamav-daemon and clamav packages (scripts/test.sh does)"
    );
}

impl Clamd {
    /// Builds a database of version `db_version` and starts clamd on it, on a unix socket.
    pub fn start(db_version: u32) -> Self {
        Self::start_with(db_version, None, "")
    }

    /// Like [`Clamd::start`], but clamd.conf names only `TCPSocket` (a free port) and
    /// `TCPAddr 127.0.0.1`, and has the lines `extra` too.
    pub fn start_tcp(db_version: u32, extra: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self::start_with(db_version, Some(port), extra)
    }

    fn start_with(db_version: u32, port: Option<u16>, extra: &str) -> Self {
        // Short path: a unix socket path must fit in 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("flc")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let build = dir.path().join("build");
        let db = dir.path().join("db");
        let empty = dir.path().join("empty");
        for d in [&build, &db, &empty] {
            std::fs::create_dir(d).expect("mkdir");
        }
        std::fs::write(build.join("COPYING"), "firstline test database\n").expect("COPYING");
        // md5 and size of "firstline-test-marker\n", named as a test signature.
        std::fs::write(
            build.join("daily.hdb"),
            "4443e486086fc98b4fd89fcdc967cf82:22:Firstline.Test.Marker\n",
        )
        .expect("hdb");
        let out = Command::new(tool("sigtool"))
            .current_dir(&build)
            .env("SIGNDUSER", "firstline")
            .arg("--build=daily.cud")
            .arg("--unsigned")
            .arg(format!("--cvd-version={db_version}"))
            .arg(format!("--datadir={}", empty.display()))
            .output()
            .expect("run sigtool");
        assert!(
            out.status.success(),
            "sigtool failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(build.join("daily.cud"), db.join("daily.cud")).expect("move database");
        let conf = dir.path().join("clamd.conf");
        let listen = match port {
            Some(port) => format!("TCPSocket {port}\nTCPAddr 127.0.0.1\n"),
            None => format!("LocalSocket {}\n", dir.path().join("s").display()),
        };
        std::fs::write(
            &conf,
            format!(
                "Foreground yes\n{listen}DatabaseDirectory {}\nTemporaryDirectory {}\nBytecode no\nSelfCheck 0\n{extra}",
                db.display(),
                dir.path().display()
            ),
        )
        .expect("clamd.conf");
        let mut me = Self {
            dir,
            child: None,
            port,
        };
        me.restart();
        me
    }

    /// Starts clamd (again) and waits until it answers PING.
    pub fn restart(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("clamd.log")).expect("log");
        let child = Command::new(tool("clamd"))
            .arg(format!("--config-file={}", self.conf().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start clamd");
        self.child = Some(child);
        wait_for("clamd to answer PING", Duration::from_secs(60), || {
            self.command("PING")
                .filter(|r| r.starts_with("PONG"))
                .map(|_| ())
        });
    }

    /// Stops clamd and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("clamd.conf")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("s")
    }

    pub fn db_dir(&self) -> PathBuf {
        self.dir.path().join("db")
    }

    /// Sends one `z`-command and returns the reply, or None when clamd does not answer.
    pub fn command(&self, command: &str) -> Option<String> {
        fn exchange(mut stream: impl Read + Write, command: &str) -> Option<String> {
            stream.write_all(format!("z{command}\0").as_bytes()).ok()?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply).ok()?;
            Some(reply)
        }
        let timeout = Some(Duration::from_secs(5));
        match self.port {
            Some(port) => {
                let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
                stream.set_read_timeout(timeout).ok()?;
                exchange(stream, command)
            }
            None => {
                let stream = UnixStream::connect(self.socket()).ok()?;
                stream.set_read_timeout(timeout).ok()?;
                exchange(stream, command)
            }
        }
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}
