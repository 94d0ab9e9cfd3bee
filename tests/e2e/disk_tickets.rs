//! The foundation's promise, end to end with the real binaries: a real filesystem fills past
//! the threshold, one ticket opens; further reports count occurrences on that ticket; usage
//! between the clear and open thresholds keeps it open; under the clear threshold it resolves.

use std::time::Duration;

use firstline_tests::fs::Tmpfs;
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::wait_for;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn tickets_for(collector: &CollectorProc, mount: &str) -> Vec<Value> {
    let all = collector.json(&["tickets", "--json"]);
    all.as_array()
        .expect("array")
        .iter()
        .filter(|t| t["subject"] == mount)
        .cloned()
        .collect()
}

fn reported_percent(collector: &CollectorProc, agent_id: &str, mount: &str) -> Option<f64> {
    let hosts = collector.json(&["hosts", "--json"]);
    let host = hosts
        .as_array()?
        .iter()
        .find(|h| h["agent_id"] == agent_id)?;
    let fs = host["filesystems"]
        .as_array()?
        .iter()
        .find(|f| f["mount_point"] == mount)?;
    fs["used_percent"].as_f64()
}

#[test]
fn a_filling_disk_opens_one_ticket_that_resolves_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let mut agent = AgentProc::new(dir.path(), "[disk]\ninterval = \"200ms\"\n");
    agent.enroll(&collector);
    let disk = Tmpfs::mount(8 * 1024 * 1024);
    let mount = disk.mount_point();
    agent.start();
    let agent_id = agent.agent_id();
    wait_for("the tmpfs to be reported", LIMIT, || {
        reported_percent(&collector, &agent_id, &mount)
    });
    assert!(
        tickets_for(&collector, &mount).is_empty(),
        "an empty disk has no ticket"
    );

    disk.fill_to(92.0);
    let ticket = wait_for("a ticket to open", LIMIT, || {
        tickets_for(&collector, &mount).pop()
    });
    assert_eq!(ticket["state"], "new");
    assert_eq!(ticket["priority"], 2);
    assert_eq!(ticket["rule_id"], "disk.usage");
    assert_eq!(ticket["agent_id"], agent_id.as_str());
    assert!(
        ticket["last_value"].as_f64().expect("value") >= 90.0,
        "{ticket}"
    );
    assert!(
        ticket["title"].as_str().expect("title").contains(&mount),
        "{ticket}"
    );

    // A technician acknowledges and comments through the admin API; the timeline says who.
    let id_text = ticket["id"].to_string();
    let ack = collector.cli(&["ticket", "ack", &id_text]);
    assert!(
        ack.status.success(),
        "{}",
        String::from_utf8_lossy(&ack.stderr)
    );
    let comment = collector.cli(&[
        "ticket",
        "comment",
        &id_text,
        "asked the user to clean Downloads",
    ]);
    assert!(
        comment.status.success(),
        "{}",
        String::from_utf8_lossy(&comment.stderr)
    );
    let detail = collector.json(&["ticket", "show", &id_text, "--json"]);
    let timeline: Vec<(String, String)> = detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(timeline[0].0, "opened");
    assert!(
        timeline.contains(&("acknowledged".into(), "local-admin".into())),
        "{timeline:?}"
    );
    assert!(
        timeline.contains(&("comment".into(), "local-admin".into())),
        "{timeline:?}"
    );
    assert!(
        detail["kb_markdown"]
            .as_str()
            .unwrap_or_default()
            .contains("Disk almost full")
    );
    let again = collector.cli(&["ticket", "ack", &id_text]);
    assert!(!again.status.success(), "acknowledging twice is refused");
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("cannot acknowledge a ticket that is acknowledged")
    );
    let handoff = collector.json(&["handoff", "--json"]);
    assert!(
        handoff["critical_open"]
            .as_array()
            .expect("list")
            .iter()
            .any(|t| t["id"] == ticket["id"]),
        "{handoff}"
    );

    // Heartbeats while still full count occurrences on the same ticket.
    let id = ticket["id"].clone();
    wait_for("occurrences to grow", LIMIT, || {
        let t = tickets_for(&collector, &mount);
        (t.len() == 1 && t[0]["occurrences"].as_u64() >= Some(3)).then_some(())
    });

    // Past 95% the same ticket is raised to P1.
    disk.fill_to(97.0);
    wait_for("the ticket to be raised to P1", LIMIT, || {
        let t = tickets_for(&collector, &mount);
        (t.len() == 1 && t[0]["priority"] == 1).then_some(())
    });

    // Past 95% the same ticket is raised to P1.
    disk.fill_to(97.0);
    wait_for("the ticket to be raised to P1", LIMIT, || {
        let t = tickets_for(&collector, &mount);
        (t.len() == 1 && t[0]["priority"] == 1).then_some(())
    });

    // Between clear (85%) and open (90%): still open.
    disk.fill_to(87.5);
    wait_for("87.5% to be reported", LIMIT, || {
        reported_percent(&collector, &agent_id, &mount).filter(|p| *p < 90.0)
    });
    let held = tickets_for(&collector, &mount);
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0]["state"], "acknowledged",
        "hysteresis: 87.5% must not resolve: {held:?}"
    );

    disk.empty();
    let resolved = wait_for("the ticket to resolve", LIMIT, || {
        tickets_for(&collector, &mount)
            .into_iter()
            .find(|t| t["state"] == "resolved")
    });
    assert_eq!(resolved["id"], id, "the same ticket resolves");
    assert!(resolved["resolved_at"].is_string(), "{resolved}");
    assert_eq!(
        tickets_for(&collector, &mount).len(),
        1,
        "exactly one ticket for this disk"
    );
    let open = collector.json(&["tickets", "--json", "--state", "open"]);
    assert!(
        open.as_array()
            .expect("array")
            .iter()
            .all(|t| t["subject"] != mount.as_str()),
        "resolved ticket listed as open"
    );
}
