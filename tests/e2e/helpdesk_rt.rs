//! Two-way sync with a real Request Tracker 5 (Debian's request-tracker5 on SQLite, its own
//! server on loopback: `firstline_tests::request_tracker`). Covered: a real agent's disk
//! filling past the threshold becomes one RT ticket carrying the facts, which resolves when
//! the disk clears, across a collector killed mid-sync; a technician taking and resolving a
//! ticket in RT assigns and resolves it in Firstline with the RT user as the actor; a create
//! whose answer was lost is found again by its key instead of repeated; an outage becomes one
//! RT ticket listing its hosts.
//!
//! The tests fail, never skip, when Request Tracker is missing (`scripts/test.sh` installs it).

use std::time::{Duration, Instant};

use firstline_collector::helpdesk::config::{RequestTrackerConfig, RtAuth, SyncSettings};
use firstline_collector::store::Store;
use firstline_collector::tickets::TicketState;
use firstline_tests::fs::Tmpfs;
use firstline_tests::inproc::InProcess;
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::request_tracker::RequestTracker;
use firstline_tests::{wait_for, wait_until};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);
const QUEUE: &str = "Firstline";

/// The `[helpdesk.request_tracker]` table for `rt`, polling every second.
fn rt_table(url: &str, token: &str) -> String {
    format!(
        "[helpdesk.request_tracker]\nurl = {url:?}\ntoken = {token:?}\nqueue = {QUEUE:?}\n\
         poll = \"1s\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n\
         dashboard_url = \"https://firstline.example.com\"\n"
    )
}

/// RT tickets whose subject carries Firstline ticket `id`'s tag.
fn rt_tickets_for(rt: &RequestTracker, id: i64) -> Vec<Value> {
    let tag = format!("[firstline #{id}]");
    rt.tickets(&format!("Queue = '{QUEUE}'"))
        .into_iter()
        .filter(|t| t["Subject"].as_str().is_some_and(|s| s.contains(&tag)))
        .collect()
}

fn rt_id(t: &Value) -> i64 {
    t["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| t["id"].as_i64())
        .expect("an RT ticket id")
}

#[test]
fn a_real_agents_full_disk_becomes_one_rt_ticket_that_resolves_with_it() {
    let rt = RequestTracker::start();
    rt.create_queue(QUEUE);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut collector = CollectorProc::start(
        dir.path(),
        &format!(
            "[report]\nheartbeat = \"1s\"\n{}",
            rt_table(&rt.base_url(), &rt.root_token())
        ),
    );
    let mut admin = collector.admin();
    let mut agent = AgentProc::new(dir.path(), "[disk]\ninterval = \"200ms\"\n");
    agent.enroll(&collector);
    let disk = Tmpfs::mount(8 * 1024 * 1024);
    let mount = disk.mount_point();
    agent.start();
    let agent_id = agent.agent_id();
    wait_for("the tmpfs to be reported", LIMIT, || {
        admin.used_percent(&agent_id, &mount)
    });

    disk.fill_to(92.0);
    let ticket = wait_until(
        "a disk ticket",
        LIMIT,
        || admin.tickets_about(&agent_id, "disk.usage", &mount),
        |t| !t.is_empty(),
    )
    .remove(0);
    let opened = Instant::now();
    let remote = wait_until(
        "the RT ticket",
        LIMIT,
        || rt_tickets_for(&rt, ticket.id),
        |t| !t.is_empty(),
    );
    println!(
        "RT ticket seen {} ms after the Firstline ticket was",
        opened.elapsed().as_millis()
    );
    assert_eq!(remote.len(), 1, "{remote:?}");
    let rt_ticket = rt_id(&remote[0]);
    let full = rt.ticket(rt_ticket);
    assert_eq!(full["Priority"], "70", "P2 maps onto 70: {full}");
    let contents = rt.transaction_contents(rt_ticket).join("\n");
    for fact in [
        format!("Firstline ticket: #{}", ticket.id),
        format!("Host: {}", ticket.hostname),
        "Rule: disk.usage".to_owned(),
        format!("Subject: {mount}"),
        format!("https://firstline.example.com/tickets/{}", ticket.id),
        "What to do:".to_owned(),
    ] {
        assert!(
            contents.contains(&fact),
            "{fact:?} missing from:\n{contents}"
        );
    }
    let detail = collector.json(&["ticket", "show", &ticket.id.to_string(), "--json"]);
    let note = format!("Request Tracker ticket #{rt_ticket} created");
    assert!(
        detail["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["actor"] == "helpdesk:rt" && e["detail"] == note.as_str()),
        "{detail}"
    );

    // A technician's comment in Firstline reaches RT; then the collector dies (SIGKILL) and
    // comes back: still one RT ticket, and the comment is not lost.
    let comment = collector.cli(&[
        "ticket",
        "comment",
        &ticket.id.to_string(),
        "called the user",
    ]);
    assert!(
        comment.status.success(),
        "{}",
        String::from_utf8_lossy(&comment.stderr)
    );
    collector.kill();
    collector.restart();
    admin = collector.admin();
    wait_until(
        "the comment in RT",
        LIMIT,
        || rt.transaction_contents(rt_ticket).join("\n"),
        |c| c.contains("Comment by local-admin: called the user"),
    );

    // The disk clears: the Firstline ticket resolves itself, and so does the RT ticket.
    disk.fill_to(40.0);
    wait_until(
        "the Firstline ticket to resolve",
        LIMIT,
        || admin.tickets_about(&agent_id, "disk.usage", &mount),
        |t| t.first().is_some_and(|t| t.state == "resolved"),
    );
    let resolved = wait_until(
        "the RT ticket to resolve",
        LIMIT,
        || rt.ticket(rt_ticket),
        |t| t["Status"] == "resolved",
    );
    assert_eq!(resolved["Status"], "resolved");
    assert!(
        rt.transaction_contents(rt_ticket)
            .iter()
            .any(|c| c.contains("Resolved: the condition cleared")),
        "the RT ticket says why it resolved"
    );
    assert_eq!(
        rt_tickets_for(&rt, ticket.id).len(),
        1,
        "one RT ticket in all"
    );
}

/// A multi-thread runtime for the in-process collector, driven from a plain test thread
/// (the RT helper is synchronous).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn rt_config(rt: &RequestTracker) -> RequestTrackerConfig {
    RequestTrackerConfig {
        url: rt.base_url(),
        auth: RtAuth::Token(rt.root_token()),
        queue: QUEUE.into(),
        priorities: firstline_collector::helpdesk::config::DEFAULT_PRIORITIES,
        sync: SyncSettings {
            system: RequestTrackerConfig::SYSTEM.into(),
            tag: "firstline".into(),
            filter: Default::default(),
            poll: Duration::from_secs(1),
            correlated_hold: Duration::from_secs(60),
            dashboard_url: String::new(),
            timeout: Duration::from_secs(10),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(1),
        },
    }
}

/// The only open ticket's id, once there is one.
fn only_ticket(runtime: &tokio::runtime::Runtime, store: &Store) -> i64 {
    wait_for("the ticket", LIMIT, || {
        let tickets = runtime
            .block_on(store.list_tickets(&Default::default()))
            .expect("tickets");
        tickets.first().map(|t| t.id)
    })
}

#[test]
fn taking_and_resolving_in_rt_assigns_and_resolves_in_firstline_as_that_user() {
    let rt = RequestTracker::start();
    rt.create_queue(QUEUE);
    rt.create_user("bob", "bobpass1");
    rt.grant_technician("bob", QUEUE);
    let runtime = runtime();
    let config = rt_config(&rt);
    let collector = runtime.block_on(InProcess::start_configured(|c| {
        c.helpdesk.request_tracker = Some(config);
    }));
    runtime.block_on(collector.report_disk("pc-rt-1", 93));
    let id = only_ticket(&runtime, &collector.store);
    let remote = wait_until(
        "the RT ticket",
        LIMIT,
        || rt_tickets_for(&rt, id),
        |t| !t.is_empty(),
    );
    let rt_ticket = rt_id(&remote[0]);

    let (status, answer) = rt.act_as(
        "bob",
        "bobpass1",
        "PUT",
        &format!("/ticket/{rt_ticket}"),
        json!({ "Owner": "bob" }),
    );
    assert_eq!(status, 200, "{answer}");
    let ticket = wait_until(
        "the ticket to be assigned to bob",
        LIMIT,
        || {
            runtime
                .block_on(collector.store.ticket(id))
                .expect("ticket")
        },
        |t| t.as_ref().is_some_and(|t| t.assignee == "bob"),
    )
    .expect("ticket");
    assert_eq!(ticket.state, TicketState::New);

    let (status, answer) = rt.act_as(
        "bob",
        "bobpass1",
        "PUT",
        &format!("/ticket/{rt_ticket}"),
        json!({ "Status": "resolved" }),
    );
    assert_eq!(status, 200, "{answer}");
    wait_until(
        "the ticket to resolve",
        LIMIT,
        || {
            runtime
                .block_on(collector.store.ticket(id))
                .expect("ticket")
        },
        |t| t.as_ref().is_some_and(|t| t.state == TicketState::Resolved),
    );
    let timeline = runtime
        .block_on(collector.store.timeline(id))
        .expect("timeline");
    let by_bob: Vec<(&str, &str)> = timeline
        .iter()
        .filter(|e| e.actor == "rt:bob")
        .map(|e| (e.kind.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        by_bob,
        [
            ("assigned", "bob"),
            (
                "resolved",
                format!("resolved in Request Tracker #{rt_ticket}").as_str()
            )
        ],
        "{timeline:#?}"
    );
    // What came from RT is not echoed back to it as a comment.
    std::thread::sleep(Duration::from_secs(2));
    let contents = rt.transaction_contents(rt_ticket).join("\n");
    assert!(!contents.contains("rt:bob"), "{contents}");
    drop(collector);
}

#[test]
fn a_create_whose_answer_was_lost_is_found_again_not_repeated() {
    let rt = RequestTracker::start();
    rt.create_queue(QUEUE);
    let dir = tempfile::tempdir().expect("tempdir");
    // First RT is out of reach (nothing listens on the port): the sync stores the link with
    // its key, then fails to create.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut collector = CollectorProc::start(
        dir.path(),
        &rt_table(&format!("http://127.0.0.1:{closed}"), &rt.root_token()),
    );
    let runtime = runtime();
    let store = runtime
        .block_on(Store::open(&collector.store_url()))
        .expect("store");
    let mut agent = AgentProc::new(dir.path(), "[disk]\ninterval = \"200ms\"\n");
    agent.enroll(&collector);
    let disk = Tmpfs::mount(8 * 1024 * 1024);
    disk.fill_to(92.0);
    agent.start();
    let id = only_ticket(&runtime, &store);
    wait_for("the sync to try and fail", LIMIT, || {
        collector
            .log()
            .contains("help-desk call failed; will retry")
            .then_some(())
    });
    // That attempt did reach RT after all, and only its answer was lost: the RT ticket with
    // the key exists.
    let (status, answer) = rt.act_as(
        "root",
        "password",
        "POST",
        "/ticket",
        json!({
            "Queue": QUEUE,
            "Subject": format!("Disk full [firstline #{id}]"),
            "Content": "created by an attempt whose answer was lost",
            "ContentType": "text/plain",
        }),
    );
    assert_eq!(status, 201, "{answer}");
    collector.stop();
    collector.set_extra(&rt_table(&rt.base_url(), &rt.root_token()));
    collector.restart();
    let detail = wait_until(
        "the RT ticket to be linked",
        LIMIT,
        || collector.json(&["ticket", "show", &id.to_string(), "--json"]),
        |d| {
            d["timeline"].as_array().is_some_and(|t| {
                t.iter().any(|e| {
                    e["detail"]
                        .as_str()
                        .is_some_and(|s| s.contains("found again and linked"))
                })
            })
        },
    );
    assert_eq!(
        rt_tickets_for(&rt, id).len(),
        1,
        "no second RT ticket: {detail}"
    );
    agent.stop();
}

#[test]
fn an_outage_becomes_one_rt_ticket_listing_its_hosts() {
    let rt = RequestTracker::start();
    rt.create_queue(QUEUE);
    let runtime = runtime();
    let mut config = rt_config(&rt);
    config.sync.correlated_hold = Duration::from_secs(3);
    let collector = runtime.block_on(InProcess::start_configured(|c| {
        c.helpdesk.request_tracker = Some(config);
        c.engine.correlation.rules = vec!["disk.usage".into()];
        c.engine.correlation.min_hosts = 3;
        c.engine.correlation.min_fraction = 1.0;
    }));
    let hosts = ["pc-out-1", "pc-out-2", "pc-out-3"];
    for h in hosts {
        runtime.block_on(collector.report_disk(h, 93));
    }
    let outage = wait_for("the outage ticket", LIMIT, || {
        let tickets = runtime
            .block_on(collector.store.list_tickets(&Default::default()))
            .expect("tickets");
        tickets.iter().find(|t| t.linked_hosts == 3).map(|t| t.id)
    });
    let remote = wait_until(
        "the outage's RT ticket",
        LIMIT,
        || rt_tickets_for(&rt, outage),
        |t| !t.is_empty(),
    );
    let contents = rt.transaction_contents(rt_id(&remote[0])).join("\n");
    for h in hosts {
        assert!(contents.contains(h), "{h} missing from:\n{contents}");
    }
    // Past the hold, the host tickets still have no RT ticket of their own.
    std::thread::sleep(Duration::from_secs(4));
    let all = rt.tickets(&format!("Queue = '{QUEUE}'"));
    assert_eq!(all.len(), 1, "one RT ticket for the outage: {all:?}");
    drop(collector);
}

#[test]
fn a_refusal_that_would_repeat_is_noted_once_and_not_retried() {
    let rt = RequestTracker::start();
    let runtime = runtime();
    let mut config = rt_config(&rt);
    config.queue = "No Such Queue".into();
    let collector = runtime.block_on(InProcess::start_configured(|c| {
        c.helpdesk.request_tracker = Some(config);
    }));
    runtime.block_on(collector.report_disk("pc-refused", 93));
    let id = only_ticket(&runtime, &collector.store);
    let refused = |timeline: &[firstline_collector::tickets::TicketEvent]| {
        timeline
            .iter()
            .filter(|e| {
                e.actor == "helpdesk:rt" && e.detail.starts_with("Request Tracker refused the sync")
            })
            .count()
    };
    let timeline = wait_until(
        "the refusal on the timeline",
        LIMIT,
        || {
            runtime
                .block_on(collector.store.timeline(id))
                .expect("timeline")
        },
        |t| refused(t) > 0,
    );
    // Well past several retry intervals (200 ms to 1 s): still one note, nothing queued.
    std::thread::sleep(Duration::from_secs(3));
    let later = runtime
        .block_on(collector.store.timeline(id))
        .expect("timeline");
    assert_eq!(refused(&later), 1, "{later:#?}");
    assert_eq!(
        later.len(),
        timeline.len(),
        "no retries wrote anything: {later:#?}"
    );
    let queued = runtime
        .block_on(collector.store.helpdesk_counts("rt"))
        .expect("counts");
    assert_eq!(
        (queued.queued, queued.failing, queued.linked),
        (0, 1, 0),
        "{queued:?}"
    );
    assert!(
        rt.tickets("Queue = 'General'").is_empty(),
        "nothing created elsewhere"
    );
    drop(collector);
}
