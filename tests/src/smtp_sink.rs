//! A real SMTP server for the e-mail tests: `tests/python/smtp_sink.py` (Python's aiosmtpd)
//! on a free loopback port, with STARTTLS (a certificate for 127.0.0.1 from a private CA of
//! the test's) and AUTH required, writing every message it takes, decoded, to a file the
//! test reads. Needs python3 with aiosmtpd (scripts/test.sh installs it); stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::https::{CertSpec, certificate};

/// One message as the server took it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub plain: String,
    pub html: String,
    /// Whether it came over TLS (after STARTTLS).
    pub tls: bool,
    /// Who authenticated.
    pub user: String,
}

pub struct SmtpSink {
    child: Option<Child>,
    pub port: u16,
    /// What the server is started with: certificate, key, user, password.
    args: [String; 4],
    /// The CA that signed the server's certificate (PEM), for the client to trust.
    pub ca_file: PathBuf,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts with one user allowed to send.
    pub fn start(user: &str, password: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key, ca_pem) = certificate(&CertSpec {
            names: &["127.0.0.1", "localhost"],
            valid_from: -time::Duration::days(1),
            valid_for: time::Duration::days(30),
            private_ca: true,
        });
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let cert_file = write("cert.pem", &cert.pem());
        let key_file = write("key.pem", &key.serialize_pem());
        let ca_file = write("ca.pem", &ca_pem);
        let out = dir.path().join("mail.jsonl");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut me = Self {
            child: None,
            port,
            args: [
                cert_file.display().to_string(),
                key_file.display().to_string(),
                user.to_owned(),
                password.to_owned(),
            ],
            ca_file,
            out,
            _dir: dir,
        };
        me.start_again();
        me
    }

    /// Stops the server: connections to its port are refused.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on its port, with the same certificate and user.
    pub fn start_again(&mut self) {
        self.stop();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(self.port.to_string())
            .args(&self.args)
            .arg(&self.out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (scripts/test.sh installs it with aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the SMTP server's first line");
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP server did not start (is aiosmtpd installed for python3?)"
        );
        self.child = Some(child);
    }

    /// Every message taken so far, in order.
    pub fn mails(&self) -> Vec<Mail> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a record of the SMTP server"))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
