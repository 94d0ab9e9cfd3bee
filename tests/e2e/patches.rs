//! The patch probe's accuracy against a real apt and a local repository: a held package
//! (`hold ok installed`, as `apt-mark hold` leaves it) with a newer security fix is reported
//! apart from the pending updates, and apt's paths come from the agent's `[patches]` settings
//! (no `APT_CONFIG` in the agent's environment), with the dpkg status file they name watched.
//! An install's many writes to dpkg's status make one apt run, after them (`rerun_gap`), and a
//! restart with nothing changed runs apt not at all: its kept answer stands.

use std::path::Path;
use std::time::Duration;

use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::wait_for;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// `(name, installed, candidate, security)` of a list of updates.
fn listed(updates: &Value) -> Vec<(String, String, String, bool)> {
    let text = |u: &Value, key: &str| u[key].as_str().unwrap_or_default().to_owned();
    let mut out: Vec<_> = updates
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|u| {
            (
                text(u, "name"),
                text(u, "installed_version"),
                text(u, "candidate_version"),
                u["security"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

fn update(name: &str, security: bool) -> (String, String, String, bool) {
    (name.into(), "1.0-1".into(), "2.0-1".into(), security)
}

#[test]
fn held_security_fix_is_reported_apart_with_apt_paths_from_the_settings() {
    let lab = tempfile::tempdir().expect("tempdir");
    let apt_conf = firstline_tests::fixtures::apt_lab(lab.path(), &["firstline-sec"]);
    let dir = tempfile::tempdir().expect("tempdir");
    // A copy of dpkg's status elsewhere than the lab's apt.conf says: only the setting leads
    // apt (and the watcher) to it.
    let status = dir.path().join("dpkg-status");
    std::fs::copy(lab.path().join("dpkg/status"), &status).expect("copy dpkg status");
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let mut admin = collector.admin();
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    let mut agent = AgentProc::new(
        dir.path(),
        &format!(
            "[patches]\ninterval = \"1h\"\nrerun_gap = \"5s\"\napt_config = {:?}\ndpkg_status = {}\napt_lists = {}\napt_history = {}\nreboot_markers = []\n",
            apt_conf,
            path(&status),
            path(&lab.path().join("state/lists")),
            path(&lab.path().join("log/history.log")),
        ),
    );
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    let patches = wait_for("patches reported", LIMIT, || {
        admin
            .host_json(&agent_id)
            .map(|h| h["patches"].clone())
            .filter(|p| p.is_object())
    });
    assert_eq!(patches["package_manager"], "apt", "{patches}");
    assert_eq!(
        patches["pending_count"], 1,
        "the held one is not pending: {patches}"
    );
    assert_eq!(patches["security_count"], 0, "{patches}");
    assert_eq!(
        listed(&patches["updates"]),
        [update("firstline-demo", false)]
    );
    assert_eq!(patches["held_count"], 1, "{patches}");
    assert_eq!(listed(&patches["held"]), [update("firstline-sec", true)]);

    // dpkg installs firstline-demo 2.0-1; an hour between runs: only the watcher explains a
    // quick report.
    let text = std::fs::read_to_string(&status).expect("read status");
    let (demo, sec) = text
        .split_once("Package: firstline-sec")
        .expect("two packages");
    let upgraded = format!(
        "{}Package: firstline-sec{sec}",
        // The stanza dpkg writes from 2.0-1's control file, which has no Installed-Size (apt
        // tells versions apart by it too).
        demo.replace("Version: 1.0-1", "Version: 2.0-1")
            .replace("Installed-Size: 9\n", "")
    );
    assert_eq!(simulations(&agent), 1, "{}", agent.log());
    // dpkg writes its status several times in an install (unpack, configure, triggers): one
    // apt run after the last of them, not one each.
    for _ in 0..4 {
        std::fs::write(&status, &text).expect("write status");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(&status, upgraded).expect("write status");
    let after = wait_for("the install, through the watcher", LIMIT, || {
        admin
            .host_json(&agent_id)
            .map(|h| h["patches"].clone())
            .filter(|p| p["pending_count"] == 0)
    });
    assert_eq!(after["held_count"], 1, "still held: {after}");
    assert_eq!(
        simulations(&agent),
        2,
        "one run for the burst\n{}",
        agent.log()
    );

    // Restarted with nothing changed: the kept answer is reported, apt does not run.
    agent.stop();
    let seq = admin
        .host_json(&agent_id)
        .and_then(|h| h["last_seq"].as_u64());
    agent.start();
    let fresh = wait_for("a snapshot of the restarted agent", LIMIT, || {
        admin
            .host_json(&agent_id)
            .filter(|h| h["last_seq"].as_u64() > seq && h["patches"]["pending_count"] == 0)
    });
    assert_eq!(fresh["patches"]["held_count"], 1, "{fresh}");
    assert_eq!(
        simulations(&agent),
        2,
        "no apt run after the restart\n{}",
        agent.log()
    );
    assert!(
        agent
            .log()
            .contains("apt's inputs unchanged; its last answer stands"),
        "{}",
        agent.log()
    );
}

/// How many times the agent ran apt's simulation (its log says so at each).
fn simulations(agent: &AgentProc) -> usize {
    agent
        .log()
        .matches("apt's inputs changed; simulating the upgrade")
        .count()
}
