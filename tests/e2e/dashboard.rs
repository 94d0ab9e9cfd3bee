//! The technicians' dashboard in a real browser: a collector process with its HTTP listener,
//! an in-test agent whose full disk opens a ticket, three users made with the CLI, and
//! `node tests/browser/dashboard.mjs` driving Debian's chromium through the pages (see that
//! script for what it checks). The script asks for the disk to be cleared by writing a file;
//! this side then reports the disk empty and the page must show the ticket resolved live.
//! Screenshots of every page land in `target/dashboard-screenshots/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use firstline_tests::feedlab::TestHost;
use firstline_tests::procs::{CollectorProc, logged_addr};
use firstline_tests::{wait_for, wait_for_async};

/// A safety net for each wait, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(120);
const CHROMIUM: &str = "/usr/bin/chromium";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// `tests/browser` with its `node_modules` (installed from the lock file when missing).
fn browser_dir() -> PathBuf {
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

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_works_a_disk_ticket_in_a_real_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does)"
    );
    let browser = browser_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "[http]\nlisten = \"127.0.0.1:0\"\n");
    let http = wait_for("the HTTP address in the collector's log", LIMIT, || {
        logged_addr(&collector.log(), "collector serving the HTTP API")
    });
    let users = [
        ("ada", "admin", "admin-password-1"),
        ("tess", "technician", "technician-password-1"),
        ("vic", "viewer", "viewer-password-1"),
    ];
    for (name, role, password) in users {
        add_user(&collector, name, role, password);
    }
    let mut host = TestHost::enroll(&collector, &dir.path().join("hosts"), "pc-dash").await;
    host.report_disk(93).await;

    let control = dir.path().join("control");
    std::fs::create_dir_all(&control).expect("control dir");
    let shots = workspace().join("target/dashboard-screenshots");
    let mut node = Command::new("node")
        .arg(browser.join("dashboard.mjs"))
        .current_dir(&browser)
        .env("DASHBOARD_URL", format!("http://{http}"))
        .env("DASHBOARD_HOST", "pc-dash")
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
    wait_for_async(
        "the browser script to ask for the disk to clear",
        LIMIT,
        || {
            let done = asked.exists();
            if !done && exited.is_none() {
                exited = node.try_wait().expect("poll node");
            }
            let over = exited.is_some();
            async move { (done || over).then_some(()) }
        },
    )
    .await;
    if let Some(status) = exited {
        panic!(
            "the browser script ended before the disk was cleared ({status}); collector log:\n{}",
            collector.log()
        );
    }
    host.report_disk(10).await;

    let status = tokio::task::spawn_blocking(move || node.wait().expect("wait for node"))
        .await
        .expect("join");
    assert!(
        status.success(),
        "the browser script failed ({status}); collector log:\n{}",
        collector.log()
    );
    for page in [
        "queue", "fleet", "host", "ticket", "handoff", "trends", "admin", "login",
    ] {
        for size in ["1280x720", "390x844"] {
            let shot = shots.join(format!("{page}-{size}.png"));
            assert!(shot.exists(), "{} missing", shot.display());
        }
    }
}
