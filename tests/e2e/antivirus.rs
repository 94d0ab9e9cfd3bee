//! The antivirus probe's accuracy against real parts: a real clamd listening on TCP only (with
//! on-access scanning configured but no clamonacc running), small fake clamd sockets that
//! answer late, hang or are missing, and new definitions in the database folder clamd.conf
//! names noticed by the file watcher. Facts are read from `firstline-agent check --json` or,
//! through the whole report path, the collector's admin API.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use firstline_tests::clamav::Clamd;
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::wait_for;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// Runs `check --json` with `[antivirus]` settings `av` and returns the report.
fn check(dir: &Path, av: &str) -> Value {
    let agent = AgentProc::new(dir, &format!("[antivirus]\n{av}"));
    let out = agent.cli(&["check", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// ClamAV's facts and `check`'s antivirus finding about it.
fn clamav(report: &Value) -> (Value, String) {
    let product = report["facts"]["antivirus"]["products"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "ClamAV"))
        .cloned()
        .unwrap_or_else(|| panic!("no ClamAV: {report}"));
    let finding = report["findings"]
        .as_array()
        .and_then(|a| {
            a.iter().find(|f| {
                f["section"] == "antivirus"
                    && f["text"].as_str().is_some_and(|t| t.starts_with("ClamAV"))
            })
        })
        .and_then(|f| f["text"].as_str())
        .unwrap_or_default()
        .to_owned();
    (product, finding)
}

#[test]
fn clamd_on_tcp_only_runs_and_on_access_needs_clamonacc() {
    let clamd = Clamd::start_tcp(27_462, "OnAccessIncludePath /home\n");
    assert!(clamd.command("PING").is_some_and(|r| r.starts_with("PONG")));
    let dir = tempfile::tempdir().expect("tempdir");
    let report = check(
        dir.path(),
        &format!("clamd_conf = {:?}\n", clamd.conf().display().to_string()),
    );
    let (clam, finding) = clamav(&report);
    assert_eq!(clam["running"], true, "{clam}");
    assert_eq!(clam["source"], "clamd-socket");
    assert_eq!(clam["definitions_version"], "27462");
    assert_eq!(
        clam["realtime_protection"], false,
        "on-access is configured but no clamonacc runs: {clam}"
    );
    assert!(finding.ends_with(": running"), "{finding}");
}

/// A fake clamd on a unix socket in `dir`: answers PING after `delay` (never, when `None`) and
/// VERSION at once. Serves until the test ends.
fn fake_clamd(dir: &Path, delay: Option<Duration>) -> String {
    let path = dir.join("fake.sock");
    let listener = UnixListener::bind(&path).expect("bind fake clamd");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut command = Vec::new();
                let mut byte = [0u8; 1];
                while stream.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != 0 {
                    command.push(byte[0]);
                }
                let reply: &[u8] = if command == b"zPING" {
                    match delay {
                        Some(delay) => std::thread::sleep(delay),
                        // Hung: holds the connection open and never answers.
                        None => std::thread::sleep(Duration::from_secs(3600)),
                    }
                    b"PONG\0"
                } else {
                    b"ClamAV 1.4.6/27462/Mon Nov 18 08:34:28 2024\0"
                };
                let _ = stream.write_all(reply);
            });
        }
    });
    let conf = dir.join("clamd.conf");
    std::fs::write(&conf, format!("LocalSocket {}\n", path.display())).expect("clamd.conf");
    format!("clamd_conf = {:?}\n", conf.display().to_string())
}

#[test]
fn a_slow_clamd_within_the_configured_timeout_is_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Longer than the old fixed 3 s wait, well within four fifths of the timeout.
    let av = fake_clamd(dir.path(), Some(Duration::from_secs(4)));
    let (clam, _) = clamav(&check(dir.path(), &format!("timeout = \"20s\"\n{av}")));
    assert_eq!(clam["running"], true, "{clam}");
    assert_eq!(clam["definitions_version"], "27462");
}

#[test]
fn a_hung_clamd_is_not_answering_and_a_missing_one_not_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let av = fake_clamd(dir.path(), None);
    let (clam, finding) = clamav(&check(dir.path(), &format!("timeout = \"2s\"\n{av}")));
    assert_eq!(clam["running"], false, "{clam}");
    let source = clam["source"].as_str().unwrap_or_default();
    assert!(
        source.starts_with("clamav-db-header; clamd not answering: ")
            && source.contains("fake.sock: no reply within"),
        "{clam}"
    );
    assert!(finding.contains("clamd not answering"), "{finding}");

    std::fs::remove_file(dir.path().join("fake.sock")).expect("remove the socket");
    let (clam, finding) = clamav(&check(dir.path(), &format!("timeout = \"2s\"\n{av}")));
    assert_eq!(clam["running"], false, "{clam}");
    let source = clam["source"].as_str().unwrap_or_default();
    assert!(
        source.starts_with("clamav-db-header; clamd not running: ") && source.contains("fake.sock"),
        "{clam}"
    );
    assert!(finding.contains("clamd not running"), "{finding}");
}

/// Writes a ClamAV database file whose header says `version`.
fn database(path: &Path, version: u32) {
    let mut header = format!(
        "ClamAV-VDB:01 Dec 2026 00-00 +0000:{version}:1:63:00000000000000000000000000000000:X:firstline:1795996800"
    )
    .into_bytes();
    header.resize(512, b' ');
    std::fs::write(path, header).expect("write database");
}

#[test]
fn new_definitions_in_the_folder_clamd_conf_names_are_reported_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("clamdb");
    std::fs::create_dir(&db).expect("mkdir");
    database(&db.join("daily.cvd"), 100);
    let clamd_conf = dir.path().join("clamd.conf");
    let socket = dir.path().join("none.sock");
    std::fs::write(
        &clamd_conf,
        format!(
            "LocalSocket {}\nDatabaseDirectory {}\n",
            socket.display(),
            db.display()
        ),
    )
    .expect("clamd.conf");
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let mut admin = collector.admin();
    // An hour between runs: only the file watcher can explain a quick report.
    let mut agent = AgentProc::new(
        dir.path(),
        &format!(
            "[antivirus]\ninterval = \"1h\"\nclamd_conf = {:?}\nclamav_db_dir = {:?}\n",
            clamd_conf.display().to_string(),
            dir.path().join("elsewhere").display().to_string()
        ),
    );
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    let definitions = |admin: &mut firstline_tests::admin::Admin, version: &str| {
        let h = admin.host_json(&agent_id)?;
        h["antivirus"]["products"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "ClamAV" && p["definitions_version"] == version)
            .cloned()
    };
    wait_for("the first definitions", LIMIT, || {
        definitions(&mut admin, "100")
    });
    database(&db.join("daily.cld"), 101);
    wait_for("the new definitions, through the watcher", LIMIT, || {
        definitions(&mut admin, "101")
    });
}
