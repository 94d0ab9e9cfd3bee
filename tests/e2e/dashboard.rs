//! The technicians' dashboard in a real browser: a collector process with its HTTP listener,
//! a real agent process whose disk (a small tmpfs) this test fills, three users made with the
//! CLI, and `node tests/browser/dashboard.mjs` driving Debian's chromium through the pages (see
//! that script for what it checks). Before the browser starts, the collector is stopped for a
//! while: the agent spools snapshots carrying its diagnosis, flushes them when the collector is
//! back, and the host page must explain the outage. The script asks for the disk to be cleared
//! by writing a file; this side then empties the tmpfs and the page must show the ticket
//! resolved live. Screenshots of every page land in `target/dashboard-screenshots/`.
//!
//! A second test runs `tests/browser/host_live.mjs` against a real collector and a real agent
//! process (heartbeat an hour, so only "check now" brings a fresh report): the host page's
//! "Check now" moves "Last seen" forward, says "Offline since …" once this side stops the
//! agent, a technician's revoke is refused (403) while the agent stays accepted, and an
//! admin's Revoke (after the confirm dialog) makes the agent's next report refused.
//! `FIRSTLINE_CHECK_NOW_ROUNDS=N` makes the script time N presses and print the percentiles.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use firstline_tests::fs::Tmpfs;
use firstline_tests::procs::{AgentProc, CollectorProc, logged_addr};
use firstline_tests::wait_for;

/// A safety net for each wait, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(120);
const CHROMIUM: &str = "/usr/bin/chromium";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// `tests/browser` with its `node_modules` (installed from the lock file when missing, once
/// per run: the browser tests run at the same time, and one must not start on a half-written
/// `node_modules` while another installs it).
fn browser_dir() -> PathBuf {
    static READY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    READY.get_or_init(install_browser_dir).clone()
}

fn install_browser_dir() -> PathBuf {
    let dir = workspace().join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("npm (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "npm ci in tests/browser: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// Adds a user through `firstline-collector user add NAME --role ROLE --password-stdin`.
fn add_user(collector: &CollectorProc, name: &str, role: &str, password: &str) {
    let mut child = Command::new(firstline_tests::bins::collector())
        .arg("--config")
        .arg(&collector.config)
        .args(["user", "add", name, "--role", role, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("user add");
    assert!(
        out.status.success(),
        "user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dashboard_works_a_disk_ticket_in_a_real_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does)"
    );
    let browser = browser_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut collector = CollectorProc::start(
        dir.path(),
        "[report]\nheartbeat = \"1s\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
    );
    let users = [
        ("ada", "admin", "admin-password-1"),
        ("tess", "technician", "technician-password-1"),
        ("vic", "viewer", "viewer-password-1"),
    ];
    for (name, role, password) in users {
        add_user(&collector, name, role, password);
    }
    // A real agent process; its disk is a small tmpfs this test fills and empties.
    let disk = Tmpfs::mount(8 * 1024 * 1024);
    let mount = disk.mount_point();
    let mut agent = AgentProc::new(dir.path(), "[disk]\ninterval = \"200ms\"\n");
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    wait_for("the agent's first reports", LIMIT, || {
        collector
            .admin()
            .host(&agent_id)
            .filter(|h| h.last_seq >= 2)
    });

    // An outage: the agent spools snapshots carrying its diagnosis, and flushes them when the
    // collector is back; the host page explains it afterwards.
    collector.stop();
    wait_for(
        "snapshots spooled while the collector is down",
        LIMIT,
        || {
            let spooled = agent.status()["spooled_snapshots"].as_u64().unwrap_or(0);
            (spooled >= 3).then_some(())
        },
    );
    collector.restart();
    let spell = wait_for(
        "the outage's diagnosis kept after the recovery",
        LIMIT,
        || {
            let hosts = collector.json(&["hosts", "--json"]);
            let host = hosts
                .as_array()?
                .iter()
                .find(|h| h["agent_id"] == agent_id.as_str())?;
            let spell = host["last_uplink_failure"].clone();
            let recovered = host["uplink_recovered_at_ms"].as_i64().unwrap_or(0);
            (host["uplink"].is_null() && recovered > 0).then_some(spell)
        },
    );
    assert!(spell["consecutive_failures"].as_u64() > Some(0), "{spell}");
    assert_eq!(spell["last_code"], "Unavailable", "{spell}");
    let http = wait_for("the HTTP address in the collector's log", LIMIT, || {
        logged_addr(&collector.log(), "collector serving the HTTP API")
    });

    disk.fill_to(93.0);
    wait_for("the disk ticket to open", LIMIT, || {
        let tickets = collector
            .admin()
            .tickets_about(&agent_id, "disk.usage", &mount);
        (!tickets.is_empty()).then_some(())
    });

    let control = dir.path().join("control");
    std::fs::create_dir_all(&control).expect("control dir");
    let shots = workspace().join("target/dashboard-screenshots");
    let mut node = Command::new("node")
        .arg(browser.join("dashboard.mjs"))
        .current_dir(&browser)
        .env("DASHBOARD_URL", format!("http://{http}"))
        .env("DASHBOARD_HOST", &agent_id)
        .env("DASHBOARD_MOUNT", &mount)
        .env("SCREENSHOT_DIR", &shots)
        .env("CONTROL_DIR", &control)
        .env("CHROMIUM", CHROMIUM)
        .env("ADMIN_USER", users[0].0)
        .env("ADMIN_PASSWORD", users[0].2)
        .env("TECH_USER", users[1].0)
        .env("TECH_PASSWORD", users[1].2)
        .env("VIEWER_USER", users[2].0)
        .env("VIEWER_PASSWORD", users[2].2)
        .stdin(Stdio::null())
        .spawn()
        .expect("node (scripts/test.sh installs nodejs)");

    // The script acknowledges and comments, then asks for the disk to be cleared.
    let asked = control.join("clear-disk");
    let mut exited = None;
    wait_for(
        "the browser script to ask for the disk to clear",
        LIMIT,
        || {
            if exited.is_none() {
                exited = node.try_wait().expect("poll node");
            }
            (asked.exists() || exited.is_some()).then_some(())
        },
    );
    if let Some(status) = exited {
        panic!(
            "the browser script ended before the disk was cleared ({status}); collector log:\n{}",
            collector.log()
        );
    }
    disk.empty();

    let status = node.wait().expect("wait for node");
    assert!(
        status.success(),
        "the browser script failed ({status}); agent log:\n{}\ncollector log:\n{}",
        agent.log(),
        collector.log()
    );
    // The token the admin revoked in the page is refused at enrollment, and says why.
    let revoked = std::fs::read_to_string(control.join("revoked-token")).expect("revoked token");
    let late_dir = dir.path().join("late");
    std::fs::create_dir_all(&late_dir).expect("late agent dir");
    let late = AgentProc::new(&late_dir, "");
    let ca = collector.data_dir.join("ca.crt").display().to_string();
    let out = late.cli(&[
        "enroll",
        "--collector",
        &collector.url(),
        "--token",
        revoked.trim(),
        "--ca-file",
        &ca,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a revoked token enrolled: {stderr}");
    assert!(stderr.contains("revoked"), "{stderr}");

    for page in [
        "queue", "fleet", "host", "ticket", "handoff", "trends", "admin", "login",
    ] {
        for size in ["1280x720", "390x844"] {
            let shot = shots.join(format!("{page}-{size}.png"));
            assert!(shot.exists(), "{} missing", shot.display());
        }
    }
}

#[test]
fn host_page_checks_now_and_revokes_a_real_agent() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does)"
    );
    let browser = browser_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(
        dir.path(),
        "[report]\nheartbeat = \"1h\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
    );
    let http = wait_for("the HTTP address in the collector's log", LIMIT, || {
        logged_addr(&collector.log(), "collector serving the HTTP API")
    });
    let users = [
        ("ada", "admin", "admin-password-1"),
        ("tess", "technician", "technician-password-1"),
    ];
    for (name, role, password) in users {
        add_user(&collector, name, role, password);
    }
    let mut agent = AgentProc::new(dir.path(), "[report]\ncheck_now_min_interval = \"1s\"\n");
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    // A fresh admin client per read: the script runs for minutes, longer than an idle
    // connection lives.
    wait_for("the agent's startup report", LIMIT, || {
        collector.admin().host(&agent_id).filter(|h| h.last_seq > 0)
    });

    let control = dir.path().join("control");
    std::fs::create_dir_all(&control).expect("control dir");
    let shots = workspace().join("target/dashboard-screenshots");
    let rounds = std::env::var("FIRSTLINE_CHECK_NOW_ROUNDS").unwrap_or_default();
    let mut node = Command::new("node")
        .arg(browser.join("host_live.mjs"))
        .current_dir(&browser)
        .env("DASHBOARD_URL", format!("http://{http}"))
        .env("DASHBOARD_HOST", &agent_id)
        .env("SCREENSHOT_DIR", &shots)
        .env("CONTROL_DIR", &control)
        .env("CHROMIUM", CHROMIUM)
        .env("CHECK_NOW_ROUNDS", rounds)
        .env("ADMIN_USER", users[0].0)
        .env("ADMIN_PASSWORD", users[0].2)
        .env("TECH_USER", users[1].0)
        .env("TECH_PASSWORD", users[1].2)
        .stdin(Stdio::null())
        .spawn()
        .expect("node (scripts/test.sh installs nodejs)");

    // The script checks now (the technician's refused revoke before it: the agent is still
    // accepted), then asks for the agent to stop.
    let mut exited = None;
    wait_for(
        "the browser script to ask for the agent to stop",
        LIMIT,
        || {
            if exited.is_none() {
                exited = node.try_wait().expect("poll node");
            }
            (control.join("stop-agent").exists() || exited.is_some()).then_some(())
        },
    );
    if let Some(status) = exited {
        panic!(
            "the browser script ended before the agent was stopped ({status}); agent log:\n{}\ncollector log:\n{}",
            agent.log(),
            collector.log()
        );
    }
    let accepted = collector.admin().host(&agent_id).expect("host");
    assert!(!accepted.revoked, "the technician's revoke changed nothing");
    agent.stop();
    std::fs::write(control.join("agent-stopped"), "1").expect("write control file");

    let status = node.wait().expect("wait for node");
    assert!(
        status.success(),
        "the browser script failed ({status}); agent log:\n{}\ncollector log:\n{}",
        agent.log(),
        collector.log()
    );
    let revoked = collector.admin().host(&agent_id).expect("host");
    assert!(revoked.revoked, "the admin's revoke took effect");

    // The agent's next report (its startup report) is refused: the agent logs the refusal,
    // keeps the snapshot spooled, and nothing more is stored.
    let logged_before = agent.log().len();
    agent.start();
    wait_for("the agent to log its report refused", LIMIT, || {
        let log = agent.log();
        log.get(logged_before..)
            .is_some_and(|new| new.contains("is revoked"))
            .then_some(())
    });
    let spooled = agent.status()["spooled_snapshots"].as_u64();
    assert!(spooled.is_some_and(|n| n > 0), "still spooled: {spooled:?}");
    let after = collector.admin().host(&agent_id).expect("host");
    assert_eq!(
        after.last_seq, revoked.last_seq,
        "no report of a revoked agent is stored"
    );
    agent.stop();
}
