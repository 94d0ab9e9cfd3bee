//! Agent behaviour an operator relies on: a probe that hangs is cut off and reported without
//! holding up the others, and an edited configuration takes effect without a restart (an
//! invalid edit is refused and the running settings kept).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::{bins, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_hanging_package_manager_is_cut_off_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A package manager stuck on its lock: it never answers.
    let fake_bin = dir.path().join("bin");
    std::fs::create_dir(&fake_bin).expect("mkdir");
    let apt = fake_bin.join("apt-get");
    std::fs::write(&apt, "#!/bin/sh\nsleep 120\n").expect("write fake apt-get");
    std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "[patches]\ntimeout = \"1s\"\n").expect("config");
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let out = std::process::Command::new(bins::agent())
        .arg("--config")
        .arg(&config)
        .args(["check", "--json"])
        .env("PATH", path)
        .output()
        .expect("run check");
    let took = started.elapsed();
    let report: Value = serde_json::from_slice(&out.stdout).expect("check --json");
    let status = report["facts"]["probe_status"]
        .as_array()
        .expect("probe_status");
    let patches = status
        .iter()
        .find(|s| s["probe"] == "patches")
        .expect("patches probe status");
    assert_eq!(patches["state"], "timeout", "{report}");
    assert!(
        report["facts"]["filesystems"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "disk facts still there"
    );
    assert!(
        report["facts"]["system"].is_object(),
        "system facts still there"
    );
    assert!(
        took < Duration::from_secs(60),
        "check waited for the hung tool: {took:?}"
    );
}

fn tcp_checks(collector: &CollectorProc, agent_id: &str) -> Vec<String> {
    let hosts = collector.json(&["hosts", "--json"]);
    hosts
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["agent_id"] == agent_id))
        .and_then(|h| h["connectivity"]["tcp"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|c| c["ok"] == true)
        .filter_map(|c| c["target"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn an_edited_config_takes_effect_without_a_restart() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = listener.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let mut agent = AgentProc::new(dir.path(), "[connectivity]\ninterval = \"1s\"\n");
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    wait_for("the first report", LIMIT, || {
        collector
            .json(&["hosts", "--json"])
            .as_array()
            .filter(|h| {
                h.iter()
                    .any(|h| h["agent_id"] == agent_id.as_str() && h["connectivity"].is_object())
            })
            .map(|_| ())
    });
    assert!(tcp_checks(&collector, &agent_id).is_empty());

    // An invalid edit is refused; the agent keeps running.
    let state = format!("state_dir = {:?}\n", agent.state_dir.display().to_string());
    std::fs::write(
        &agent.config,
        format!("{state}[connectivity]\ninterval = \"1s\"\ntcp_targets = [\"no-port\"]\n"),
    )
    .expect("edit");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        agent.log().contains("configuration not reloaded"),
        "{}",
        agent.log()
    );

    std::fs::write(
        &agent.config,
        format!("{state}[connectivity]\ninterval = \"1s\"\ntcp_targets = [\"{target}\"]\n"),
    )
    .expect("edit");
    wait_for("the new TCP check to be reported", LIMIT, || {
        tcp_checks(&collector, &agent_id)
            .contains(&target)
            .then_some(())
    });
    assert!(agent.log().contains("configuration reloaded"));
    drop(listener);
}
