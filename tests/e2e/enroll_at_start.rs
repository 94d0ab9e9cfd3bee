//! Enrollment at install, as the MSI, the .pkg and the Linux packages rely on it: `run` with
//! no identity and an `[enrollment]` section enrolls by itself. A refused token is logged
//! (which collector, why, when next) and retried while the probes keep spooling; a good token
//! written into the config is picked up without a restart and what was spooled arrives; a
//! restart with other values keeps the one identity. Also `check-config`'s enrollment lines
//! and the Debian commands `firstline-collector package-config` prints, run through bash.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::{bins, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// An `[enrollment]` section for `collector` with `token`.
fn enrollment(collector: &CollectorProc, token: &str) -> String {
    format!(
        "[disk]\ninterval = \"200ms\"\n[enrollment]\ncollector_url = {:?}\ntoken = {token:?}\nca_file = {:?}\n",
        collector.url(),
        collector.data_dir.join("ca.crt").display().to_string()
    )
}

/// Rewrites the agent's config with `extra`, as an administrator editing it would.
fn rewrite_config(agent: &AgentProc, extra: &str) {
    let text = format!(
        "state_dir = {:?}\n{extra}\n",
        agent.state_dir.display().to_string()
    );
    std::fs::write(&agent.config, text).expect("rewrite agent config");
}

/// The collector's host entries.
fn hosts(collector: &CollectorProc) -> Vec<Value> {
    collector
        .json(&["hosts", "--json"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Snapshot files waiting in the agent's spool.
fn spooled(agent: &AgentProc) -> usize {
    std::fs::read_dir(agent.state_dir.join("spool"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".pb"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn run_enrolls_by_itself_and_a_refused_token_is_retried_until_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let mut agent = AgentProc::new(dir.path(), &enrollment(&collector, "flt_not_a_real_token"));
    agent.start();

    let refused = wait_for("the refusal in the agent's log", LIMIT, || {
        let log = agent.log();
        log.lines()
            .find(|l| l.contains("enrollment refused"))
            .map(str::to_owned)
    });
    // Which collector (a string field: quoted), what went wrong, when next.
    for part in [
        &format!("collector=\"{}\"", collector.url()),
        "code=\"Unauthenticated\"",
        "enrollment token is not known",
        "retry_in=",
        "next_at=",
        "replaced in the config",
    ] {
        assert!(refused.contains(part), "{part:?} missing from: {refused}");
    }
    assert!(
        !refused.contains("flt_not_a_real_token"),
        "the token is logged: {refused}"
    );
    assert!(hosts(&collector).is_empty(), "no host with a refused token");
    // The probes run and spool meanwhile, and the agent is still there.
    wait_for("snapshots spooled before enrollment", LIMIT, || {
        (spooled(&agent) >= 2).then_some(())
    });
    let not_enrolled = agent.cli(&["status"]);
    assert!(!not_enrolled.status.success(), "no identity yet");

    rewrite_config(&agent, &enrollment(&collector, &collector.token()));
    let host = wait_for("the host in the collector, with reports", LIMIT, || {
        hosts(&collector)
            .into_iter()
            .find(|h| h["last_seq"].as_u64().is_some_and(|s| s >= 2))
    });
    let agent_id = agent.agent_id();
    assert_eq!(host["agent_id"], agent_id.as_str());
    assert!(
        agent
            .log()
            .contains("configuration changed; trying to enroll again now"),
        "{}",
        agent.log()
    );
    wait_for("the spool drained", LIMIT, || {
        (agent.status()["spooled_snapshots"].as_u64() == Some(0)).then_some(())
    });

    // A restart (or an upgrade) with new enrollment values keeps the identity.
    agent.stop();
    rewrite_config(&agent, &enrollment(&collector, &collector.token()));
    agent.start();
    wait_for("the values ignored after the restart", LIMIT, || {
        agent
            .log()
            .contains("already enrolled; the enrollment values are ignored")
            .then_some(())
    });
    assert_eq!(agent.agent_id(), agent_id, "the same identity");
    assert_eq!(hosts(&collector).len(), 1, "no second host");
}

#[test]
fn check_config_shows_the_enrollment_state_without_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "");
    let token = collector.token();
    let agent = AgentProc::new(dir.path(), &enrollment(&collector, &token));
    let show = |env: &[(&str, &str)]| {
        let out = Command::new(bins::agent())
            .arg("--config")
            .arg(&agent.config)
            .arg("check-config")
            .envs(env.iter().copied())
            .output()
            .expect("check-config");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = show(&[]);
    assert!(!text.contains(&token), "the token is printed:\n{text}");
    for line in [
        format!(
            "enrollment.collector_url = {} (from enrollment.collector_url)",
            collector.url()
        ),
        "enrollment.token: set (from enrollment.token; not shown)".to_owned(),
        "; readable)".to_owned(),
        "identity: none yet; `run` enrolls with the values above".to_owned(),
    ] {
        assert!(text.contains(&line), "{line:?} missing:\n{text}");
    }
    let text = show(&[
        ("FIRSTLINE_ENROLL_TOKEN", "flt_env_token"),
        ("FIRSTLINE_CA_FILE", "/nonexistent/ca.crt"),
    ]);
    assert!(!text.contains("flt_env_token"), "{text}");
    assert!(
        text.contains(
            "enrollment.token: set (from FIRSTLINE_ENROLL_TOKEN (environment); not shown)"
        ),
        "{text}"
    );
    assert!(text.contains("enrollment.ca_file = /nonexistent/ca.crt (from FIRSTLINE_CA_FILE (environment); missing)"), "{text}");

    agent.enroll(&collector);
    let text = show(&[]);
    assert!(text.contains("(enrollment values are ignored)"), "{text}");
}

#[test]
fn the_printed_debian_commands_enroll_a_machine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "");
    let out = collector.cli(&[
        "package-config",
        "--os",
        "debian",
        "--uses",
        "1",
        "--label",
        "floor 3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        printed.contains("### Debian / Ubuntu (as root)"),
        "{printed}"
    );
    let tokens = collector.json(&["token", "list", "--json"]);
    let made = tokens.as_array().expect("tokens");
    assert!(made.iter().any(|t| t["label"] == "floor 3"), "{tokens}");

    // This machine has no package: the install and service lines are skipped, the paths moved
    // into the test's folder; the rest runs as printed.
    let root = dir.path().join("root");
    let script = substitute(&printed, &root);
    let run = Command::new("bash")
        .args(["-euc", &script])
        .output()
        .expect("bash");
    assert!(
        run.status.success(),
        "the printed commands failed:\n{script}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let state = root.join("var/lib/firstline-agent");
    let status = Command::new(bins::agent())
        .arg("--state-dir")
        .arg(&state)
        .args(["status", "--json"])
        .output()
        .expect("status");
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["collector_url"], collector.url().as_str());
    let agent_id = status["agent_id"].as_str().expect("agent id");
    assert!(
        hosts(&collector).iter().any(|h| h["agent_id"] == agent_id),
        "the machine is enrolled"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/firstline/ca.crt"))
            .expect("ca.crt")
            .trim(),
        std::fs::read_to_string(collector.data_dir.join("ca.crt"))
            .expect("collector CA")
            .trim(),
        "the CA written is the collector's"
    );
}

/// The printed commands with the package manager and systemctl lines dropped, `/etc` and
/// `/var/lib` under `root`, and the agent binary of this workspace.
fn substitute(printed: &str, root: &Path) -> String {
    let agent = bins::agent().display().to_string();
    let root = root.display().to_string();
    printed
        .lines()
        .filter(|l| !l.starts_with("apt-get ") && !l.starts_with("systemctl "))
        .map(|l| {
            l.replace("/etc/firstline", &format!("{root}/etc/firstline"))
                .replace(
                    "/var/lib/firstline-agent",
                    &format!("{root}/var/lib/firstline-agent"),
                )
                .replace("  firstline-agent ", &format!("  {agent} "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
