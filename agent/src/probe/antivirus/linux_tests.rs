//! The Linux antivirus shell against small fake clamd sockets made by the test: one that
//! answers, one that accepts and never answers, one that refuses, and clamd.conf variants
//! (TCP only, on-access configured without clamonacc running).

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// How a fake clamd treats a connection.
#[derive(Clone, Copy)]
enum Fake {
    /// Answers PING with PONG and VERSION with a version line.
    Answers,
    /// Reads the command and says nothing, keeping the connection open.
    Hangs,
}

async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S, how: Fake) {
    let mut command = Vec::new();
    let mut byte = [0u8; 1];
    while s.read(&mut byte).await.is_ok_and(|n| n == 1) && byte[0] != 0 {
        command.push(byte[0]);
    }
    match how {
        Fake::Hangs => std::future::pending::<()>().await,
        Fake::Answers if command == b"zPING" => {
            let _ = s.write_all(b"PONG\0").await;
        }
        Fake::Answers => {
            let _ = s
                .write_all(b"ClamAV 1.4.6/27462/Mon Nov 18 08:34:28 2024\0")
                .await;
        }
    }
}

/// A fake clamd on a unix socket in `dir`; returns its clamd.conf line.
fn fake_unix(dir: &Path, how: Fake) -> String {
    let path = dir.join("clamd.sock");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind unix socket");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s, how));
        }
    });
    format!("LocalSocket {}\n", path.display())
}

/// A fake clamd on a TCP port of the loopback address; returns its clamd.conf lines.
async fn fake_tcp(how: Fake) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind tcp");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s, how));
        }
    });
    format!("TCPSocket {port}\nTCPAddr 127.0.0.1\n")
}

/// Runs the probe with `conf` as clamd.conf (and an empty database folder) and returns ClamAV.
async fn clamav_with(dir: &Path, conf: &str, budget: Duration) -> AvProduct {
    let clamd_conf = dir.join("clamd.conf");
    std::fs::write(&clamd_conf, conf).expect("clamd.conf");
    let settings = AvSettings {
        clamd_conf,
        clamav_db_dir: dir.join("db"),
        clamd_budget: budget,
    };
    let products = collect(&settings, &Offload::default())
        .await
        .expect("probe runs");
    products
        .into_iter()
        .find(|p| p.name == "ClamAV")
        .expect("ClamAV is reported")
}

#[tokio::test]
async fn clamd_on_tcp_only_is_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = fake_tcp(Fake::Answers).await;
    let clam = clamav_with(dir.path(), &conf, Duration::from_secs(10)).await;
    assert!(clam.running, "{clam:?}");
    assert_eq!(clam.source, "clamd-socket");
    assert_eq!(clam.definitions_version, "27462");
    assert_eq!(clam.engine_version, "1.4.6");
}

#[tokio::test]
async fn hung_clamd_is_not_answering_and_a_missing_one_not_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hung = fake_unix(dir.path(), Fake::Hangs);
    let clam = clamav_with(dir.path(), &hung, Duration::from_millis(300)).await;
    assert!(!clam.running);
    assert!(
        clam.source
            .starts_with("clamav-db-header; clamd not answering: ")
            && clam.source.ends_with("clamd.sock: no reply within 0.3s"),
        "{clam:?}"
    );

    let hung_tcp = fake_tcp(Fake::Hangs).await;
    let clam = clamav_with(dir.path(), &hung_tcp, Duration::from_millis(300)).await;
    assert!(
        clam.source
            .starts_with("clamav-db-header; clamd not answering: 127.0.0.1:"),
        "{clam:?}"
    );

    let gone = format!("LocalSocket {}\n", dir.path().join("none.sock").display());
    let clam = clamav_with(dir.path(), &gone, Duration::from_secs(10)).await;
    assert!(!clam.running);
    assert!(
        clam.source
            .starts_with("clamav-db-header; clamd not running: ")
            && clam.source.contains("none.sock"),
        "{clam:?}"
    );
}

#[tokio::test]
async fn on_access_configured_without_clamonacc_is_no_realtime_protection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = format!(
        "{}OnAccessIncludePath /home\n",
        fake_unix(dir.path(), Fake::Answers)
    );
    let clam = clamav_with(dir.path(), &conf, Duration::from_secs(10)).await;
    assert!(clam.running, "{clam:?}");
    assert!(
        !clam.realtime_protection,
        "no clamonacc process runs here: {clam:?}"
    );
}

#[test]
fn long_reasons_are_cut_to_what_the_collector_accepts() {
    let long = format!("clamav-db-header; {}é", "x".repeat(MAX_SOURCE - 19));
    let cut = bounded(long);
    assert!(cut.len() <= MAX_SOURCE && cut.ends_with('x'), "{cut}");
}
