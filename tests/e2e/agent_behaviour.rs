//! Agent behaviour an operator relies on: a probe that hangs is cut off and reported without
//! holding up the others (and leaves no process behind), and an edited configuration takes
//! effect without a restart (an invalid edit is refused and the running settings kept).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use firstline_tests::admin::Admin;
use firstline_tests::procs::{AgentProc, CollectorProc, processes_with_env};
use firstline_tests::{bins, wait_for, wait_until};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_hanging_package_manager_is_cut_off_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A package manager stuck on its lock: it never answers. `exec`, so that the process the
    // agent kills is the one that hangs (a shell's child would outlive it).
    let fake_bin = dir.path().join("bin");
    std::fs::create_dir(&fake_bin).expect("mkdir");
    let apt = fake_bin.join("apt-get");
    std::fs::write(&apt, "#!/bin/sh\nexec sleep 120\n").expect("write fake apt-get");
    std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "[patches]\ntimeout = \"1s\"\n").expect("config");
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Everything started for this check inherits the marker, so what is left is findable.
    let marker = format!("FIRSTLINE_TEST_RUN={}", std::process::id());
    let (marker_name, marker_value) = marker.split_once('=').expect("NAME=value");
    // Found (and built, for the first test of a run) before the clock starts.
    let agent = bins::agent();
    let started = Instant::now();
    let out = std::process::Command::new(agent)
        .arg("--config")
        .arg(&config)
        .args(["check", "--json"])
        .env("PATH", path)
        .env(marker_name, marker_value)
        .output()
        .expect("run check");
    let took = started.elapsed();
    // A killed process may take a moment to go; one left behind stays for two minutes.
    wait_until(
        "the cut-off package manager to be gone",
        Duration::from_secs(10),
        || processes_with_env(&marker),
        Vec::is_empty,
    );
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

fn tcp_checks(admin: &mut Admin, agent_id: &str) -> Vec<String> {
    admin
        .host(agent_id)
        .and_then(|h| h.connectivity)
        .map(|c| c.tcp)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.ok)
        .map(|c| c.target)
        .collect()
}

#[test]
fn an_edited_config_takes_effect_without_a_restart() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = listener.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let mut admin = collector.admin();
    let mut agent = AgentProc::new(dir.path(), "[connectivity]\ninterval = \"1s\"\n");
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    wait_for("the first report with connectivity", LIMIT, || {
        admin.host(&agent_id).and_then(|h| h.connectivity)
    });
    assert!(tcp_checks(&mut admin, &agent_id).is_empty());

    // An invalid edit is refused; the agent keeps running.
    let state = format!("state_dir = {:?}\n", agent.state_dir.display().to_string());
    std::fs::write(
        &agent.config,
        format!("{state}[connectivity]\ninterval = \"1s\"\ntcp_targets = [\"no-port\"]\n"),
    )
    .expect("edit");
    wait_until(
        "the agent to refuse the invalid edit",
        LIMIT,
        || agent.log(),
        |log| log.contains("configuration not reloaded"),
    );

    std::fs::write(
        &agent.config,
        format!("{state}[connectivity]\ninterval = \"1s\"\ntcp_targets = [\"{target}\"]\n"),
    )
    .expect("edit");
    wait_until(
        "the new TCP check to be reported",
        LIMIT,
        || tcp_checks(&mut admin, &agent_id),
        |ok| ok.contains(&target),
    );
    assert!(agent.log().contains("configuration reloaded"));
    drop(listener);
}
