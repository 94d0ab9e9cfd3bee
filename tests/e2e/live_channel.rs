//! "Check now" over the live channel, with the real binaries: a collector whose heartbeat is an
//! hour, so the only fresh report can come from the check. `firstline-collector check-now
//! HOST` answers "done" once the fresh report is stored, and the host's snapshot time moved
//! forward within the call; with the agent stopped it answers "offline" with the host's last
//! seen time; after a collector restart the agent opens its live channel again by itself.

use std::time::Duration;

use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::wait_for;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// `check-now HOST --json`: the answer, whatever the exit code (non-zero unless "done").
fn check_now(collector: &CollectorProc, host: &str) -> Value {
    let out = collector.cli(&["check-now", host, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check-now printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit")
}

/// Waits until the agent's live channel answers, and returns that first answer.
fn first_done(collector: &CollectorProc, host: &str, agent: &AgentProc) -> Value {
    wait_for("check-now to answer done", LIMIT, || {
        let answer = check_now(collector, host);
        match answer["status"].as_str() {
            Some("done") => Some(answer),
            Some("offline" | "busy") => {
                std::thread::sleep(Duration::from_millis(300));
                None
            }
            _ => panic!("unexpected answer {answer}\nagent log:\n{}", agent.log()),
        }
    })
}

#[test]
fn check_now_refreshes_a_host_and_says_when_it_is_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1h\"\n");
    let mut agent = AgentProc::new(dir.path(), "[report]\ncheck_now_min_interval = \"1s\"\n");
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    let mut admin = collector.admin();
    let startup = wait_for("the startup report", LIMIT, || {
        admin.host(&agent_id).filter(|h| h.last_seq > 0)
    });
    let hostname = startup.hostname.clone();
    first_done(&collector, &agent_id, &agent);

    // With the agent connected: done, and the stored snapshot is from within the call.
    std::thread::sleep(Duration::from_millis(1100));
    let before = admin.host(&agent_id).expect("host");
    let asked_at = now_ms();
    let answer = check_now(&collector, &hostname);
    let answered_at = now_ms();
    assert_eq!(answer["status"], "done", "{answer}\n{}", agent.log());
    assert_eq!(answer["agent_id"], agent_id.as_str());
    let snapshot_at = answer["snapshot_at_ms"].as_i64().expect("snapshot_at_ms");
    assert!(
        (asked_at - 1000..=answered_at).contains(&snapshot_at),
        "snapshot at {snapshot_at}, asked at {asked_at}, answered at {answered_at}"
    );
    let after = admin.host(&agent_id).expect("host");
    assert!(after.last_seq > before.last_seq, "{before:?} -> {after:?}");
    assert!(after.last_seen_at_ms > before.last_seen_at_ms);
    assert_eq!(after.last_seen_at_ms, snapshot_at);
    assert!(answer["seconds"].as_f64().expect("seconds") < 10.0);

    // Asked again at once: the agent's rate limit says busy rather than spinning.
    let again = check_now(&collector, &agent_id);
    assert!(
        matches!(again["status"].as_str(), Some("busy" | "done")),
        "{again}"
    );

    // Agent stopped: offline, with when it was last seen.
    agent.stop();
    let last_seen = admin.host(&agent_id).expect("host").last_seen_at_ms;
    let offline = wait_for("check-now to say offline", LIMIT, || {
        let a = check_now(&collector, &agent_id);
        (a["status"] == "offline").then_some(a)
    });
    assert_eq!(
        offline["last_seen_at_ms"].as_i64(),
        Some(last_seen),
        "{offline}"
    );
    assert!(offline["snapshot_at_ms"].is_null(), "{offline}");
    let out = collector.cli(&["check-now", &agent_id]);
    assert!(!out.status.success(), "offline is not success");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("offline (last seen"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Collector restarted under a running agent: the agent reconnects and check-now works.
    agent.start();
    first_done(&collector, &agent_id, &agent);
    collector.stop();
    collector.restart();
    let answer = first_done(&collector, &agent_id, &agent);
    assert!(answer["snapshot_at_ms"].as_i64().expect("snapshot_at_ms") > 0);
    assert!(agent.log().contains("live channel open"), "{}", agent.log());

    // An unknown host is an error, not "offline".
    let out = collector.cli(&["check-now", "no-such-host"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no host"));
}
