//! The probes against real parts: a real clamd with a database the test built, a real apt with a
//! local repository, the reboot marker seen through the file watcher, and connectivity checks in
//! network namespaces the test created. Facts are read where a user would read them: the
//! collector's admin API (through the whole report path; as JSON in the wire contract's field
//! names) or `firstline-agent check --json`.

use std::time::{Duration, Instant};

use firstline_tests::admin::Admin;
use firstline_tests::clamav::Clamd;
use firstline_tests::netns::NetLab;
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::{bins, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn host(admin: &mut Admin, agent_id: &str) -> Option<Value> {
    admin.host_json(agent_id)
}

fn clamav(admin: &mut Admin, agent_id: &str) -> Option<Value> {
    let h = host(admin, agent_id)?;
    h["antivirus"]["products"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == "ClamAV")
        .cloned()
}

#[test]
fn clamd_running_and_stopped_is_reported_with_its_database() {
    let mut clamd = Clamd::start(27_462);
    let version = clamd.command("VERSION").expect("clamd answers");
    assert!(
        version.starts_with("ClamAV ") && version.contains("/27462/"),
        "{version}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let mut admin = collector.admin();
    let mut agent = AgentProc::new(
        dir.path(),
        &format!(
            "[antivirus]\ninterval = \"1s\"\nclamd_conf = {:?}\n",
            clamd.conf().display().to_string()
        ),
    );
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    let running = wait_for("ClamAV reported running", LIMIT, || {
        clamav(&mut admin, &agent_id).filter(|p| p["running"] == true)
    });
    assert_eq!(running["definitions_version"], "27462", "{running}");
    assert_eq!(running["source"], "clamd-socket");
    let published = running["definitions_updated_ms"].as_i64().expect("date");
    let now = firstline_collector::clock::now_ms();
    assert!(
        (now - published).abs() < 3_600_000,
        "the database was built just now: {published} vs {now}"
    );
    assert!(
        !running["engine_version"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );

    clamd.stop();
    let stopped = wait_for("ClamAV reported stopped", LIMIT, || {
        clamav(&mut admin, &agent_id).filter(|p| p["running"] == false)
    });
    let source = stopped["source"].as_str().unwrap_or_default();
    assert!(
        source.starts_with("clamav-db-header; clamd not running: "),
        "stopped, not hung, and why: {stopped}"
    );
    assert_eq!(
        stopped["definitions_version"], "27462",
        "still known from the database header"
    );
}

#[test]
fn apt_pending_updates_and_the_reboot_marker() {
    let lab = tempfile::tempdir().expect("tempdir");
    let apt_conf = firstline_tests::fixtures::apt_lab(lab.path(), &[]);

    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("reboot-required");
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let mut admin = collector.admin();
    // An hour between patch runs: only the file watcher can explain a quick reboot report.
    let mut agent = AgentProc::new(
        dir.path(),
        &format!(
            "[patches]\ninterval = \"1h\"\nreboot_markers = [{:?}]\napt_history = {:?}\n",
            marker.display().to_string(),
            lab.path().join("log/history.log").display().to_string()
        ),
    );
    agent.enroll(&collector);
    agent.start_with_env(&[("APT_CONFIG", &apt_conf)]);
    let agent_id = agent.agent_id();
    let patches = wait_for("patches reported", LIMIT, || {
        host(&mut admin, &agent_id)
            .map(|h| h["patches"].clone())
            .filter(|p| p.is_object())
    });
    assert_eq!(patches["package_manager"], "apt");
    assert_eq!(patches["pending_count"], 2, "{patches}");
    assert_eq!(patches["security_count"], 1, "{patches}");
    let mut updates: Vec<(String, String, String, bool)> = patches["updates"]
        .as_array()
        .expect("updates")
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap_or_default().to_owned(),
                u["installed_version"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                u["candidate_version"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                u["security"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    updates.sort();
    assert_eq!(
        updates,
        [
            (
                "firstline-demo".into(),
                "1.0-1".into(),
                "2.0-1".into(),
                false
            ),
            ("firstline-sec".into(), "1.0-1".into(), "2.0-1".into(), true)
        ]
    );
    assert_eq!(patches["reboot_required"], false);

    let created = Instant::now();
    std::fs::write(&marker, "*** System restart required ***\n").expect("create marker");
    let reported = wait_for("the reboot marker to be reported", LIMIT, || {
        host(&mut admin, &agent_id).filter(|h| h["patches"]["reboot_required"] == true)
    });
    eprintln!("reboot marker reported after {:?}", created.elapsed());
    assert!(
        reported["patches"]["reboot_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("reboot-required")
    );
}

fn check_in(lab: &NetLab, config: &std::path::Path) -> Value {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.client])
        .arg(bins::agent())
        .arg("--config")
        .arg(config)
        .args(["check", "--json"])
        .output()
        .expect("run check in the client namespace");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn outcome(report: &Value, section: &str, target: &str) -> (bool, String) {
    let check = report["facts"]["connectivity"][section]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["target"] == target))
        .unwrap_or_else(|| panic!("no {section} check for {target}: {report}"));
    (
        check["ok"] == true,
        check["failure"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn connectivity_checks_pass_then_fail_with_the_right_reason() {
    let lab = NetLab::create();
    const NAMES: &[(&str, std::net::Ipv4Addr)] = &[(
        "intranet.firstline.test",
        std::net::Ipv4Addr::new(10, 213, 0, 80),
    )];
    let dns = lab.dns_responder(NAMES);
    let listener = lab.tcp_listener(8080);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agent.toml");
    let tcp_target = format!("{}:8080", lab.server_ip);
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[connectivity]\ntimeout = \"1s\"\ndns_servers = [\"{}\"]\ndns_names = [\"intranet.firstline.test\", \"typo.firstline.test\"]\ntcp_targets = [\"{tcp_target}\"]\n",
            dir.path().join("state").display().to_string(),
            lab.server_ip
        ),
    )
    .expect("config");

    let healthy = check_in(&lab, &config);
    let gateway = &healthy["facts"]["connectivity"]["gateway"];
    assert_eq!(gateway["present"], true, "{healthy}");
    assert_eq!(gateway["address"], lab.server_ip.to_string());
    assert_eq!(gateway["reachable"], true, "{healthy}");
    assert_eq!(
        outcome(&healthy, "dns", "intranet.firstline.test"),
        (true, String::new())
    );
    assert_eq!(
        outcome(&healthy, "dns", "typo.firstline.test"),
        (false, "nxdomain".into())
    );
    assert_eq!(outcome(&healthy, "tcp", &tcp_target), (true, String::new()));

    drop(listener);
    let refused = check_in(&lab, &config);
    assert_eq!(
        outcome(&refused, "tcp", &tcp_target),
        (false, "refused".into()),
        "listener stopped"
    );
    assert_eq!(
        outcome(&refused, "dns", "intranet.firstline.test"),
        (true, String::new())
    );

    lab.cut();
    let cut = check_in(&lab, &config);
    assert_eq!(
        outcome(&cut, "dns", "intranet.firstline.test"),
        (false, "timeout".into()),
        "link cut"
    );
    let (ok, reason) = outcome(&cut, "tcp", &tcp_target);
    assert!(
        !ok && (reason == "timeout" || reason == "unreachable"),
        "link cut: {reason}"
    );
    assert_eq!(cut["status"], "critical", "a failing DNS check is critical");
    drop(dns);
}

/// The mount points the collector has for `agent_id`.
fn mounts(admin: &mut Admin, agent_id: &str) -> Vec<String> {
    host(admin, agent_id)
        .and_then(|h| h["filesystems"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f["mount_point"].as_str().map(str::to_owned))
        .collect()
}

/// The disk probe reads the mount table again only when the kernel says it changed: a
/// filesystem mounted while the agent runs is reported, and is gone once unmounted.
#[test]
fn a_filesystem_mounted_and_unmounted_while_the_agent_runs_is_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let mut admin = collector.admin();
    let mut agent = AgentProc::new(dir.path(), "");
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    wait_for("first report", LIMIT, || {
        Some(mounts(&mut admin, &agent_id)).filter(|m| !m.is_empty())
    });
    let disk = firstline_tests::fs::Tmpfs::mount(8 * 1024 * 1024);
    let point = disk.mount_point();
    wait_for("the new mount reported", LIMIT, || {
        mounts(&mut admin, &agent_id).contains(&point).then_some(())
    });
    drop(disk);
    wait_for("the unmounted filesystem gone", LIMIT, || {
        (!mounts(&mut admin, &agent_id).contains(&point)).then_some(())
    });
}
