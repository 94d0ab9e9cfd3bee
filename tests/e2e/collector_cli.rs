//! The collector's command line against real processes, as a technician uses it: hosts named
//! by host name, unknown names refused, used-up tokens, a machine enrolled twice, labels in
//! `hosts`, errors that say their cause once, plain logs in a file, the sweep running inside
//! `serve`, and an agent that lost its spool being heard again.

use std::process::{Command, Stdio};
use std::time::Duration;

use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::{bins, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// An agent whose files live in `dir/name`.
fn agent_in(dir: &std::path::Path, name: &str) -> AgentProc {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).expect("agent dir");
    AgentProc::new(&home, AGENT)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An agent config that only watches what the test needs and reports at once.
const AGENT: &str = "[report]\nheartbeat = \"1s\"\n";

fn enroll(agent: &AgentProc, collector: &CollectorProc, token: &str) -> std::process::Output {
    let ca = collector.data_dir.join("ca.crt").display().to_string();
    agent.cli(&[
        "enroll",
        "--collector",
        &collector.url(),
        "--token",
        token,
        "--ca-file",
        &ca,
    ])
}

#[test]
fn admin_commands_name_hosts_refuse_unknown_ones_and_say_what_is_wrong_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut collector = CollectorProc::start(dir.path(), "");
    // One token for two agents on this machine: the second is told it is a second enrollment.
    let out = collector.cli(&["token", "create", "--uses", "2", "--label", "twins"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let first = agent_in(dir.path(), "one");
    let second = agent_in(dir.path(), "two");
    let out = enroll(&first, &collector, &token);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("already enrolled"),
        "{}",
        stderr(&out)
    );
    let out = enroll(&second, &collector, &token);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already enrolled as"),
        "the second enrollment says so: {}",
        stderr(&out)
    );
    let tokens = collector.json(&["token", "list", "--json"]);
    assert_eq!(tokens[0]["state"], "used up", "{tokens}");

    // A token revoked by the start of its hash (as listed) is refused at enrollment.
    let out = collector.cli(&["token", "create", "--label", "revoked"]);
    let revoked = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let tokens = collector.json(&["token", "list", "--json"]);
    let hash = tokens[0]["hash"].as_str().expect("hash")[..12].to_owned();
    let out = collector.cli(&["token", "revoke", &hash]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tokens = collector.json(&["token", "list", "--json"]);
    assert_eq!(tokens[0]["state"], "revoked", "{tokens}");
    let out = collector.cli(&["token", "revoke", &hash]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already revoked"), "{}", stderr(&out));
    let out = collector.cli(&["token", "revoke", "0123"]);
    assert!(!out.status.success(), "too short a hash is refused");
    let third = agent_in(dir.path(), "third");
    let out = enroll(&third, &collector, &revoked);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("enrollment token was revoked"),
        "{}",
        stderr(&out)
    );
    let hosts = collector.json(&["hosts", "--json"]);
    let twins: Vec<usize> = hosts
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| h["same_machine_as"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(twins, [1, 1], "{hosts}");
    let table = collector.cli(&["hosts"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("same machine as"));

    // Hosts by host name; unknown names are refused, not answered with nothing.
    let id = first.agent_id();
    let hostname = hosts[0]["hostname"].as_str().expect("hostname").to_owned();
    let out = collector.cli(&["label", &id, "lab", "floor-3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hosts = collector.json(&["hosts", "--json"]);
    let labelled: Vec<&Value> = hosts
        .as_array()
        .expect("hosts")
        .iter()
        .filter(|h| h["agent_id"] == id.as_str())
        .collect();
    assert_eq!(labelled[0]["labels"], serde_json::json!(["lab", "floor-3"]));
    assert!(String::from_utf8_lossy(&collector.cli(&["hosts"]).stdout).contains("lab,floor-3"));
    for args in [
        vec!["tickets", "--host", "nosuchhost"],
        vec!["tickets", "--agent", "nosuchhost"],
        vec!["silence", "--host", "nosuchhost", "--for", "1h"],
        vec!["label", "nosuchhost", "x"],
    ] {
        let out = collector.cli(&args);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            stderr(&out).contains("no host \"nosuchhost\""),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // Two agents share the host name: naming it is ambiguous, the agent id works.
    let out = collector.cli(&["tickets", "--host", &hostname]);
    assert!(
        stderr(&out).contains("matches 2 agents"),
        "{}",
        stderr(&out)
    );
    assert!(collector.cli(&["tickets", "--host", &id]).status.success());
    // Silences end early.
    let out = collector.cli(&["silence", "--host", &id, "--for", "2h", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let silence: Value = serde_json::from_slice(&out.stdout).expect("json");
    let sid = silence["id"].to_string();
    let out = collector.cli(&["silence", "end", &sid]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        collector.json(&["silences", "--json"]),
        serde_json::json!([])
    );

    // With the collector down, commands that need it say so once; store commands still work.
    collector.stop();
    let out = collector.cli(&["tickets"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("is `firstline-collector serve` running?"),
        "{text}"
    );
    for cause in ["transport error", "tcp connect error", "Connection refused"] {
        assert!(
            text.matches(cause).count() <= 1,
            "{cause:?} said more than once: {text}"
        );
    }
    assert!(collector.cli(&["token", "create"]).status.success());
    // A packaged install's CLI finds its data through FIRSTLINE_DATA_DIR, without flags.
    let elsewhere = dir.path().join("from-env");
    let out = Command::new(bins::collector())
        .args(["token", "create"])
        .env("FIRSTLINE_DATA_DIR", &elsewhere)
        .current_dir(dir.path())
        .output()
        .expect("token create");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        elsewhere.join("firstline.db").is_file(),
        "the store is in FIRSTLINE_DATA_DIR"
    );
    let help = String::from_utf8_lossy(&collector.cli(&["--help"]).stdout).into_owned();
    assert!(help.contains("needs the running collector"), "{help}");
    assert!(help.contains("the collector may be stopped"), "{help}");
}

#[test]
fn logs_in_a_file_have_no_colour_and_plain_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new(bins::collector())
        .args(["--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "serve"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve");
    let text = wait_for("the serving line in the log", LIMIT, || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        text.contains("collector serving gRPC").then_some(text)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(!text.contains('\u{1b}'), "colour codes in a file: {text:?}");
    assert!(!text.contains("Some("), "debug wrappers in the log: {text}");
    assert!(text.contains("addr=127.0.0.1:"), "{text}");
}

#[test]
fn the_sweep_inside_serve_opens_a_silent_agent_ticket() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Three heartbeats of one second make an agent silent; the sweep runs every 15 s.
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let mut agent = agent_in(dir.path(), "a");
    agent.enroll(&collector);
    agent.start();
    let id = agent.agent_id();
    wait_for("the agent's first report", LIMIT, || {
        let hosts = collector.json(&["hosts", "--json"]);
        (hosts[0]["last_seq"].as_u64() > Some(0)).then_some(())
    });
    agent.stop();
    let ticket = wait_for("a silent-agent ticket from the sweep", LIMIT, || {
        let tickets = collector.json(&["tickets", "--state", "open", "--json", "--host", &id]);
        tickets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["rule_id"] == "agent.silent").cloned())
    });
    assert_eq!(ticket["priority"], 3, "{ticket}");
    assert!(
        ticket["title"]
            .as_str()
            .unwrap_or_default()
            .contains("has not reported since")
    );
}

#[test]
fn an_agent_that_lost_its_spool_is_heard_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "");
    let mut agent = agent_in(dir.path(), "a");
    agent.enroll(&collector);
    agent.start();
    let before = wait_for("a few stored snapshots", LIMIT, || {
        let hosts = collector.json(&["hosts", "--json"]);
        let h = hosts[0].clone();
        (h["last_seq"].as_u64() >= Some(2)).then_some(h)
    });
    agent.stop();
    // The identity stays; the spool (with its numbering) is gone.
    std::fs::remove_dir_all(agent.state_dir.join("spool")).expect("remove the spool");
    agent.start();
    let after = wait_for("snapshots of the new spool stored", LIMIT, || {
        let hosts = collector.json(&["hosts", "--json"]);
        let h = hosts[0].clone();
        (h["spool_epoch"] != before["spool_epoch"]
            && h["snapshots_stored"].as_u64() > before["snapshots_stored"].as_u64())
        .then_some(h)
    });
    assert!(
        after["last_seq"].as_u64() < before["last_seq"].as_u64().map(|s| s + 5),
        "numbering started again: {after}"
    );
    assert_eq!(after["agent_id"], before["agent_id"]);
}

#[test]
fn a_token_bound_to_a_group_labels_every_agent_it_enrolls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "");
    let out = collector.cli(&[
        "token",
        "create",
        "--uses",
        "2",
        "--label",
        "lab batch",
        "--host-labels",
        "lab,floor-2,lab",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        created["host_labels"],
        serde_json::json!(["lab", "floor-2"])
    );
    let token = created["token"].as_str().expect("token").to_owned();
    let mut ids = Vec::new();
    for name in ["lab-1", "lab-2"] {
        let agent = agent_in(dir.path(), name);
        let out = enroll(&agent, &collector, &token);
        assert!(out.status.success(), "{}", stderr(&out));
        ids.push(agent.agent_id());
    }
    let hosts = collector.json(&["hosts", "--json"]);
    for id in &ids {
        let host = hosts
            .as_array()
            .expect("hosts")
            .iter()
            .find(|h| h["agent_id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} in {hosts}"));
        assert_eq!(
            host["labels"],
            serde_json::json!(["lab", "floor-2"]),
            "{host}"
        );
    }
    let tokens = collector.json(&["token", "list", "--json"]);
    assert_eq!(
        tokens[0]["host_labels"],
        serde_json::json!(["lab", "floor-2"])
    );
    // A label that is not one is refused, and no token is made.
    let out = collector.cli(&["token", "create", "--host-labels", "no spaces"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("label \"no spaces\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        collector
            .json(&["token", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
