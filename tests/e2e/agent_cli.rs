//! `firstline-agent check` on the real binary, as a monitoring system runs it: the exit code
//! follows the worst finding (0 healthy, 1 warning, 2 critical, 3 when the check itself
//! fails), on a machine the test builds to be healthy; and the HTTPS check against a real TLS
//! server on loopback.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use firstline_agent::probe::disk::DEFAULT_EXCLUDED_FS_TYPES;
use firstline_tests::bins;
use firstline_tests::clamav::Clamd;
use firstline_tests::fs::Tmpfs;
use firstline_tests::https::HttpsServer;
use firstline_tests::netns::NetLab;
use serde_json::Value;

/// One `check --json` run: the exit code and the report.
pub(crate) struct Checked {
    pub(crate) code: Option<i32>,
    pub(crate) report: Value,
    pub(crate) stderr: String,
}

impl Checked {
    /// The level of the disk finding about `mount`.
    fn disk_level(&self, mount: &str) -> &str {
        self.report["findings"]
            .as_array()
            .and_then(|f| {
                f.iter().find(|f| {
                    f["section"] == "disk"
                        && f["text"]
                            .as_str()
                            .is_some_and(|t| t.starts_with(&format!("{mount} ")))
                })
            })
            .and_then(|f| f["level"].as_str())
            .unwrap_or_else(|| panic!("no disk finding for {mount}: {}", self.report))
    }
}

/// Runs `firstline-agent --config CONFIG check --json` with `fake_bin` first on PATH, inside
/// the network namespace `netns` when given.
pub(crate) fn check(config: &Path, fake_bin: &Path, netns: Option<&str>) -> Checked {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bins::agent());
            c
        }
        None => Command::new(bins::agent()),
    };
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = cmd
        .arg("--config")
        .arg(config)
        .args(["check", "--json"])
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .expect("run check");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    Checked {
        code: out.status.code(),
        report: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr,
    }
}

/// A directory with a fake `apt-get` that finds nothing to update (a patched machine).
pub(crate) fn patched_apt(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let apt = bin.join("apt-get");
    std::fs::write(&apt, "#!/bin/sh\nexit 0\n").expect("write fake apt-get");
    std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Disk filter settings that leave `mount` as the only filesystem judged, from the mounts the
/// agent itself reported in `report`: the others are excluded by mount point, and those above
/// `mount` (which a prefix would exclude with it) by filesystem type.
fn only_this_mount(report: &Value, mount: &str) -> String {
    let mut types: Vec<String> = DEFAULT_EXCLUDED_FS_TYPES
        .iter()
        .map(|t| t.to_string())
        .collect();
    let mut prefixes = vec!["/proc".to_owned(), "/sys".to_owned()];
    for fs in report["facts"]["filesystems"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (point, kind) = (
            fs["mount_point"].as_str().unwrap_or_default(),
            fs["fs_type"].as_str().unwrap_or_default(),
        );
        let above = point == "/" || mount.starts_with(&format!("{point}/"));
        if point == mount {
            continue;
        } else if !above {
            prefixes.push(point.to_owned());
        } else if kind != "tmpfs" && !types.iter().any(|t| t == kind) {
            types.push(kind.to_owned());
        }
    }
    format!(
        "[disk]\nexclude_fs_types = {}\nexclude_mount_prefixes = {}\n",
        toml_list(&types),
        toml_list(&prefixes)
    )
}

#[test]
fn check_exit_codes_follow_the_worst_finding() {
    // A healthy machine, built: a default gateway that answers (network namespaces), a running
    // ClamAV with fresh definitions, no pending updates, no reboot marker, and one small disk.
    let lab = NetLab::create();
    let clamd = Clamd::start(27_500);
    let disk = Tmpfs::mount(8 * 1024 * 1024);
    let mount = disk.mount_point();
    let dir = tempfile::tempdir().expect("tempdir");
    let fake_bin = patched_apt(dir.path());
    let config = dir.path().join("agent.toml");
    let base = format!(
        "state_dir = {:?}\n[patches]\nreboot_markers = [{:?}]\napt_history = {:?}\n\
         [antivirus]\nclamd_conf = {:?}\nclamav_db_dir = {:?}\n[connectivity]\ntimeout = \"2s\"\n",
        dir.path().join("state").display().to_string(),
        dir.path().join("no-reboot-marker").display().to_string(),
        dir.path().join("no-history.log").display().to_string(),
        clamd.conf().display().to_string(),
        clamd.db_dir().display().to_string(),
    );
    std::fs::write(&config, &base).expect("config");
    let seen = check(&config, &fake_bin, Some(lab.client.as_str()));
    std::fs::write(
        &config,
        format!("{base}{}", only_this_mount(&seen.report, &mount)),
    )
    .expect("config");

    // The disk finding's level is the overall status: nothing else is wrong on this machine.
    for (percent, code, level) in [
        (0.0, 0, "healthy"),
        (92.0, 1, "warning"),
        (97.0, 2, "critical"),
    ] {
        disk.fill_to(percent);
        let got = check(&config, &fake_bin, Some(lab.client.as_str()));
        assert_eq!(
            (
                got.code,
                got.report["status"].as_str(),
                got.disk_level(&mount)
            ),
            (Some(code), Some(level), level),
            "{percent}% full: {:#}\n{}",
            got.report["findings"],
            got.stderr
        );
    }

    // A check that cannot run at all is "unknown" to a monitoring system, not a warning.
    std::fs::write(&config, "[disk]\ninterval = \"often\"\n").expect("config");
    let broken = check(&config, &fake_bin, None);
    assert_eq!(broken.code, Some(3), "{}", broken.stderr);
    assert!(broken.stderr.contains("disk.interval"), "{}", broken.stderr);
}

/// The HTTPS check of `report` for `url`.
pub(crate) fn https_check<'a>(report: &'a Value, url: &str) -> &'a Value {
    report["facts"]["connectivity"]["https"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["url"] == url))
        .unwrap_or_else(|| panic!("no https check for {url}: {report}"))
}

#[test]
fn https_check_against_a_tls_server_on_loopback() {
    // A server whose certificate the test made itself (self-signed: it is its own CA), expiring
    // in 30 days and a half: trusted once the agent is given it in `https_ca_files`, by no one
    // otherwise (the agent trusts the web PKI roots).
    let valid_for = time::Duration::days(30) + time::Duration::hours(12);
    let expires = time::OffsetDateTime::now_utc() + valid_for;
    let server = HttpsServer::start(valid_for, "204 No Content");
    let url = server.url("/health");
    let dir = tempfile::tempdir().expect("tempdir");
    let fake_bin = patched_apt(dir.path());
    let ca_file = dir.path().join("company-ca.pem");
    std::fs::write(&ca_file, &server.certificate_pem).expect("CA file");
    let base = format!(
        "state_dir = {:?}\n[connectivity]\ntimeout = \"5s\"\nhttps_urls = [{url:?}]\n",
        dir.path().join("state").display().to_string()
    );
    let trusting = dir.path().join("trusting.toml");
    std::fs::write(
        &trusting,
        format!(
            "{base}https_ca_files = [{:?}]\n",
            ca_file.display().to_string()
        ),
    )
    .expect("config");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, &base).expect("config");

    // What a technician reads: reachable, the status as served, the days the certificate has left.
    let trusted = check(&trusting, &fake_bin, None);
    let result = https_check(&trusted.report, &url);
    let days_left = (expires - time::OffsetDateTime::now_utc()).whole_days();
    assert_eq!(days_left, 30, "the certificate expires in 30 days");
    assert_eq!(
        (
            result["ok"].as_bool(),
            result["status"].as_u64(),
            result["certificate_days_left"].as_i64(),
            result["failure"].as_str(),
        ),
        (Some(true), Some(204), Some(days_left), Some("")),
        "{result}\n{}",
        trusted.stderr
    );
    assert!(
        result["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("HTTP/1.1 204")),
        "the status line as served: {result}"
    );
    assert_eq!(
        (server.handshakes(), server.requests()),
        (1, 1),
        "one handshake, one request: {:?}",
        server.handshake_errors()
    );
    assert!(
        trusted.report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["level"] == "healthy"
                && f["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(&format!("https {url} status 204")))),
        "{}",
        trusted.report["findings"]
    );

    // Without the CA file the same server is refused at the handshake.
    let (connections, errors) = (server.connections(), server.handshake_errors().len());
    let untrusted = check(&config, &fake_bin, None);
    let result = https_check(&untrusted.report, &url);
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["failure"], "untrusted", "{result}");
    assert_eq!(
        result["certificate_days_left"].as_i64(),
        Some(days_left),
        "the expiry of the refused certificate: {result}"
    );
    assert_eq!(
        result["status"], 0,
        "no HTTP exchange without trust: {result}"
    );
    assert!(
        result["detail"]
            .as_str()
            .is_some_and(|d| d.to_lowercase().contains("certificate")),
        "the detail names the certificate problem: {result}"
    );
    assert!(
        server.connections() > connections,
        "the agent reached the server"
    );
    assert_eq!(server.handshakes(), 1, "the agent refused the certificate");
    assert_eq!(server.requests(), 1);
    // The server records the refused handshake on its own thread, possibly just after the
    // check has returned.
    firstline_tests::wait_for(
        "the server to see the refused handshake",
        std::time::Duration::from_secs(30),
        || (server.handshake_errors().len() > errors).then_some(()),
    );
    assert!(
        untrusted.report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["level"] == "warning"
                && f["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(&format!("https {url} failed: untrusted")))),
        "{}",
        untrusted.report["findings"]
    );

    let port = server.port;
    drop(server);
    let stopped = check(&trusting, &fake_bin, None);
    let result = https_check(&stopped.report, &url);
    assert_eq!(
        (result["ok"].as_bool(), result["failure"].as_str()),
        (Some(false), Some("refused")),
        "nothing listens on {port} any more: {result}"
    );
}
