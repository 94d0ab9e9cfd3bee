//! The foundation's promise, end to end with the real binaries: a real filesystem fills past
//! the threshold, one ticket opens; further reports count occurrences on that ticket; usage
//! between the clear and open thresholds keeps it open; under the clear threshold it resolves.
//! With the shipped settings the crossing travels at once, not with the next heartbeat. Hosts
//! and tickets are read through the admin API (typed wire messages); actions go through the CLI.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use firstline_collector::store::Store;
use firstline_proto::v1::{Snapshot, Trigger};
use firstline_tests::fs::Tmpfs;
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::{wait_for, wait_until};

const LIMIT: Duration = Duration::from_secs(60);
const SHIPPED_AGENT_CONFIG: &str = include_str!("../../deploy/agent/agent.toml");

#[test]
fn a_filling_disk_opens_one_ticket_that_resolves_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let (mut admin, mut ticket_admin) = (collector.admin(), collector.admin());
    let mut agent = AgentProc::new(dir.path(), "[disk]\ninterval = \"200ms\"\n");
    agent.enroll(&collector);
    let disk = Tmpfs::mount(8 * 1024 * 1024);
    let mount = disk.mount_point();
    agent.start();
    let agent_id = agent.agent_id();
    let mut tickets = || ticket_admin.tickets_about(&agent_id, "disk.usage", &mount);
    wait_for("the tmpfs to be reported", LIMIT, || {
        admin.used_percent(&agent_id, &mount)
    });
    assert!(tickets().is_empty(), "an empty disk has no ticket");

    disk.fill_to(92.0);
    let ticket = wait_until("a ticket to open", LIMIT, &mut tickets, |t| !t.is_empty()).remove(0);
    assert_eq!(ticket.state, "new");
    assert_eq!(ticket.priority, 2);
    assert_eq!(ticket.agent_id, agent_id);
    assert!(ticket.last_value >= 90.0, "{ticket:?}");
    assert!(ticket.title.contains(&mount), "{ticket:?}");

    // A technician acknowledges and comments through the admin API; the timeline says who.
    let id_text = ticket.id.to_string();
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
            .any(|t| t["id"] == ticket.id),
        "{handoff}"
    );

    // Heartbeats while still full count occurrences on the same ticket.
    wait_until("occurrences to grow", LIMIT, &mut tickets, |t| {
        t.len() == 1 && t[0].occurrences >= 3
    });

    // Past 95% the same ticket is raised to P1.
    disk.fill_to(97.0);
    wait_until("the ticket to be raised to P1", LIMIT, &mut tickets, |t| {
        t.len() == 1 && t[0].priority == 1
    });

    // Between clear (85%) and open (90%): still open.
    disk.fill_to(87.5);
    wait_for("87.5% to be reported", LIMIT, || {
        admin.used_percent(&agent_id, &mount).filter(|p| *p < 90.0)
    });
    let held = tickets();
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].state, "acknowledged",
        "hysteresis: 87.5% must not resolve: {held:?}"
    );

    disk.empty();
    let resolved = wait_until("the ticket to resolve", LIMIT, &mut tickets, |t| {
        t.iter().any(|t| t.state == "resolved")
    });
    assert_eq!(resolved.len(), 1, "exactly one ticket for this disk");
    assert_eq!(resolved[0].id, ticket.id, "the same ticket resolves");
    assert!(resolved[0].resolved_at_ms > 0, "{resolved:?}");
    let open = collector.json(&["tickets", "--json", "--state", "open"]);
    assert!(
        open.as_array()
            .expect("array")
            .iter()
            .all(|t| t["subject"] != mount.as_str()),
        "resolved ticket listed as open"
    );
}

/// Usage on the way from one fill level to the next, as a reader measuring all along sees it.
fn usage_while_filling(disk: &Tmpfs, target: f64) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let sampler = {
        let (stop, path) = (stop.clone(), disk.path().to_owned());
        std::thread::spawn(move || {
            let (mut low, mut high) = (f64::MAX, f64::MIN);
            let mut first = true;
            while first || !stop.load(Ordering::Acquire) {
                let st = rustix::fs::statvfs(&path).expect("statvfs");
                let used = st.f_blocks.saturating_sub(st.f_bfree);
                let p = used as f64 * 100.0 / (used + st.f_bavail).max(1) as f64;
                (low, high) = (low.min(p), high.max(p));
                if first {
                    first = false;
                    let _ = ready_tx.send(());
                }
            }
            (low, high)
        })
    };
    ready_rx.recv().expect("sampler running");
    disk.fill_to(target);
    stop.store(true, Ordering::Release);
    sampler.join().expect("sampler")
}

#[test]
fn fills_move_usage_straight_to_the_target() {
    let disk = Tmpfs::mount(8 * 1024 * 1024);
    disk.fill_to(92.0);
    // Up and down a few times: a fill that rewrites its file passes through an empty disk,
    // which an agent measuring at that moment rightly reports (and a ticket resolves).
    for target in [97.0, 87.5, 97.0, 92.0, 95.5, 86.0] {
        let before = disk.used_percent();
        let (low, high) = usage_while_filling(&disk, target);
        let after = disk.used_percent();
        assert!((after - target).abs() < 1.0, "{target}%: now {after:.2}%");
        let (floor, ceiling) = (before.min(after) - 0.5, before.max(after) + 0.5);
        assert!(
            low >= floor && high <= ceiling,
            "from {before:.2}% to {after:.2}% the disk went through {low:.2}%..{high:.2}%"
        );
    }
    disk.empty();
    assert!(disk.used_percent() < 1.0);
}

/// The stored snapshots of `agent_id`, oldest first.
fn stored_snapshots(collector: &CollectorProc, agent_id: &str) -> Vec<Snapshot> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = Store::open(&collector.store_url()).await.expect("store");
        let mut snapshots = Vec::new();
        for seq in store.stored_seqs(agent_id).await.expect("stored seqs") {
            let payload = store
                .snapshot_payload(agent_id, seq)
                .await
                .expect("read snapshot")
                .expect("stored");
            snapshots
                .push(<Snapshot as prost::Message>::decode(payload.as_slice()).expect("decodes"));
        }
        store.close().await;
        snapshots
    })
}

fn percent_in(snapshot: &Snapshot, mount: &str) -> Option<f64> {
    let fs = snapshot
        .filesystems
        .iter()
        .find(|f| f.mount_point == mount)?;
    Some(fs.used_bytes as f64 * 100.0 / (fs.used_bytes + fs.available_bytes).max(1) as f64)
}

#[test]
fn with_the_shipped_settings_a_crossing_is_reported_before_any_heartbeat() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing overridden: the collector's defaults are the shipped file (tests/e2e/cli.rs),
    // and the agent runs on the shipped file itself.
    let collector = CollectorProc::start(dir.path(), "");
    let mut admin = collector.admin();
    let mut agent = AgentProc::new(dir.path(), SHIPPED_AGENT_CONFIG);
    agent.enroll(&collector);
    let disk = Tmpfs::mount(8 * 1024 * 1024);
    let mount = disk.mount_point();
    agent.start();
    let agent_id = agent.agent_id();
    wait_for("the tmpfs to be reported", LIMIT, || {
        admin.used_percent(&agent_id, &mount)
    });
    assert_eq!(
        agent.status()["heartbeat_seconds"],
        60,
        "the collector's shipped policy: a heartbeat a minute"
    );

    disk.fill_to(92.0);
    let ticket = wait_until(
        "a ticket to open",
        LIMIT * 2,
        || admin.tickets_about(&agent_id, "disk.usage", &mount),
        |t| !t.is_empty(),
    )
    .remove(0);
    assert!(ticket.last_value >= 90.0, "{ticket:?}");

    // The snapshot that first showed the full disk was sent at once, because of the crossing
    // itself (or of a change that happened at the same moment: the mount table is the whole
    // machine's, and another test mounting a filesystem makes every agent report), never by
    // the heartbeat a minute later.
    let snapshots = stored_snapshots(&collector, &agent_id);
    let first_full = snapshots
        .iter()
        .find(|s| percent_in(s, &mount).is_some_and(|p| p >= 90.0))
        .unwrap_or_else(|| panic!("no stored snapshot shows {mount} full: {snapshots:?}"));
    assert!(
        matches!(first_full.trigger(), Trigger::Threshold | Trigger::Change),
        "seq {} showed the crossing; triggers so far: {:?}",
        first_full.seq,
        snapshots
            .iter()
            .map(|s| (s.seq, s.trigger()))
            .collect::<Vec<_>>()
    );
    assert!(
        ticket.opened_at_ms >= first_full.taken_at_ms,
        "the ticket opened from that snapshot: {ticket:?}"
    );
}
