//! The NATS JetStream feed against a real `nats-server -js` (its own store, a random port) and
//! a real collector process: every event of the log reaches the stream on
//! `<prefix>.p<priority>` with the message id `firstline-<cursor>`; a collector killed with
//! SIGKILL in the middle of a burst of events and started again leaves every event in the
//! stream exactly once; and events published again from an older cursor (moved back in the
//! store while the collector was stopped) are dropped by JetStream's duplicate window. The
//! collector's durable log, read through `Admin/EventsSince`, is the reference.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use firstline_proto::v1::{ListFeedsRequest, TicketAction};
use firstline_tests::admin;
use firstline_tests::feedlab::{NatsServer, StreamEntry, TestHost, act, log_after, stream_entries};
use firstline_tests::procs::CollectorProc;
use firstline_tests::wait_for_async;

/// A safety net against hangs, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(90);
const PREFIX: &str = "firstline.alerts";
const STREAM: &str = "FIRSTLINE_ALERTS";
/// What a feed logs when it takes its first cursor (`feeds/mod.rs`).
const FEED_STARTED: &str = "new feed starts at the end of the event log";
/// What the feed logs when JetStream reports re-published events as duplicates.
const DUPLICATES_DROPPED: &str = "JetStream dropped events published again as duplicates";

fn nats_config(nats: &NatsServer) -> String {
    format!("[feeds.nats]\nurl = {:?}\n", nats.url)
}

/// Starts a collector with the NATS feed and waits until the feed took its starting cursor
/// (a new feed starts at the end of the log: events before that are not its).
fn start_collector(dir: &std::path::Path, nats: &NatsServer) -> CollectorProc {
    let collector = CollectorProc::start(dir, &nats_config(nats));
    firstline_tests::wait_for("the NATS feed to take its cursor", LIMIT, || {
        collector
            .log()
            .lines()
            .any(|l| l.contains(FEED_STARTED) && l.contains("feed=\"nats\""))
            .then_some(())
    });
    collector
}

/// The stream's event messages (subjects `<prefix>.p*`; test messages left out).
async fn events_in_stream(nats: &NatsServer) -> Vec<StreamEntry> {
    let mut entries = stream_entries(&nats.url, STREAM).await;
    entries.retain(|e| e.subject.starts_with(&format!("{PREFIX}.p")));
    entries
}

/// Waits until the stream holds at least `n` event messages; returns them. On a timeout the
/// panic shows what the stream held and the end of the collector's log.
async fn until_stream_holds(
    nats: &NatsServer,
    collector: &CollectorProc,
    n: usize,
) -> Vec<StreamEntry> {
    let start = std::time::Instant::now();
    loop {
        let entries = events_in_stream(nats).await;
        if entries.len() >= n {
            return entries;
        }
        if start.elapsed() > LIMIT {
            let log = collector.log();
            let tail: String = log
                .chars()
                .skip(log.chars().count().saturating_sub(6000))
                .collect();
            panic!(
                "gave up waiting for {n} events in the stream after {LIMIT:?}; it holds \
                 {entries:#?}\ncollector log:\n{tail}\nnats log:\n{}",
                nats.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event of the log once in the stream, and nothing else: same cursors, one message
/// each, the message id and kind header matching.
fn assert_exactly_once(log: &[firstline_proto::v1::AlertEvent], stream: &[StreamEntry]) {
    let mut per_cursor: BTreeMap<i64, Vec<&StreamEntry>> = BTreeMap::new();
    for e in stream {
        per_cursor.entry(e.cursor).or_default().push(e);
    }
    let twice: Vec<_> = per_cursor.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "events in the stream more than once: {twice:#?}"
    );
    let logged: Vec<i64> = log.iter().map(|e| e.cursor).collect();
    let streamed: Vec<i64> = per_cursor.keys().copied().collect();
    assert_eq!(streamed, logged, "the stream's cursors against the log's");
    assert_eq!(stream.len(), log.len(), "one message per event");
    for (event, entry) in log.iter().zip(stream) {
        assert_eq!(
            entry.msg_id,
            format!("firstline-{}", event.cursor),
            "{entry:?}"
        );
        assert_eq!(entry.kind, event.kind, "{entry:?}");
    }
}

/// The one ticket of `host`.
async fn ticket_of(
    client: &mut firstline_proto::v1::admin_client::AdminClient<tonic::transport::Channel>,
    host: &TestHost,
) -> i64 {
    let tickets = admin::list_tickets(client, &host.identity.agent_id).await;
    assert_eq!(tickets.len(), 1, "one ticket of {}: {tickets:?}", host.name);
    tickets[0].id
}

/// The feed's stored cursor, through `Admin/ListFeeds`.
async fn nats_cursor(collector: &CollectorProc) -> i64 {
    let mut client = admin::connect(&collector.url(), &collector.data_dir).await;
    let feeds = client
        .list_feeds(ListFeedsRequest {})
        .await
        .expect("ListFeeds")
        .into_inner()
        .feeds;
    feeds
        .iter()
        .find(|f| f.name == "nats")
        .map(|f| f.cursor)
        .unwrap_or_else(|| panic!("no nats feed listed: {feeds:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn events_reach_jetstream_on_their_priority_subject_with_their_cursor_as_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(&dir.path().join("nats"));
    let collector = start_collector(dir.path(), &nats);
    let mut client = admin::connect(&collector.url(), &collector.data_dir).await;

    let hosts = dir.path().join("hosts");
    let mut p2 = TestHost::enroll(&collector, &hosts, "pc-p2").await;
    p2.report_disk(93).await;
    let mut p1 = TestHost::enroll(&collector, &hosts, "pc-p1").await;
    p1.report_disk(97).await;
    let id = ticket_of(&mut client, &p2).await;
    act(&mut client, id, TicketAction::Comment, "looking")
        .await
        .expect("comment");
    act(&mut client, id, TicketAction::Acknowledge, "")
        .await
        .expect("acknowledge");

    let log = log_after(&mut client, 0).await;
    assert!(log.len() >= 4, "events in the log: {log:#?}");
    let stream = until_stream_holds(&nats, &collector, log.len()).await;
    assert_exactly_once(&log, &stream);
    for (event, entry) in log.iter().zip(&stream) {
        let priority = event.ticket.as_ref().expect("ticket").priority;
        assert_eq!(entry.subject, format!("{PREFIX}.p{priority}"), "{entry:?}");
    }
    let subjects: Vec<&str> = stream.iter().map(|e| e.subject.as_str()).collect();
    assert!(
        subjects.contains(&"firstline.alerts.p1") && subjects.contains(&"firstline.alerts.p2"),
        "{subjects:?}"
    );

    // The test delivery goes to <prefix>.test, which the stream also takes.
    let out = collector.cli(&["feeds", "test", "nats"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("acknowledged"),
        "feeds test nats: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = stream_entries(&nats.url, STREAM).await;
    assert!(
        all.iter()
            .any(|e| e.subject == "firstline.alerts.test" && e.kind == "test"),
        "{all:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_killed_in_a_burst_of_events_leaves_each_in_the_stream_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(&dir.path().join("nats"));
    let mut collector = start_collector(dir.path(), &nats);
    let mut client = admin::connect(&collector.url(), &collector.data_dir).await;
    let mut host = TestHost::enroll(&collector, &dir.path().join("hosts"), "pc-burst").await;
    host.report_disk(93).await;
    let id = ticket_of(&mut client, &host).await;

    // A burst of comments, one event each, until the collector is gone.
    let committed = Arc::new(AtomicUsize::new(0));
    let burst = {
        let committed = committed.clone();
        let mut client = admin::connect(&collector.url(), &collector.data_dir).await;
        tokio::spawn(async move {
            for i in 0..2000 {
                if act(
                    &mut client,
                    id,
                    TicketAction::Comment,
                    &format!("burst {i}"),
                )
                .await
                .is_err()
                {
                    return;
                }
                committed.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    until_stream_holds(&nats, &collector, 40).await;
    collector.kill();
    burst.await.expect("burst task");
    let before_kill = committed.load(Ordering::SeqCst);
    assert!(
        before_kill < 2000,
        "the burst ended before the kill; nothing was in flight"
    );

    collector.restart();
    let mut client = admin::connect(&collector.url(), &collector.data_dir).await;
    act(&mut client, id, TicketAction::Comment, "after the restart")
        .await
        .expect("comment after the restart");
    let log = log_after(&mut client, 0).await;
    let stream = until_stream_holds(&nats, &collector, log.len()).await;
    // Nothing more arrives late: the feed's cursor is at the end of the log.
    wait_for_async("the feed's cursor at the end of the log", LIMIT, || async {
        let last = log.last().map(|e| e.cursor).unwrap_or(0);
        (nats_cursor(&collector).await == last).then_some(())
    })
    .await;
    let stream_after = events_in_stream(&nats).await;
    assert_eq!(
        stream_after, stream,
        "the stream changed after the feed caught up"
    );
    assert_exactly_once(&log, &stream_after);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_published_again_from_an_older_cursor_are_dropped_as_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(&dir.path().join("nats"));
    let mut collector = start_collector(dir.path(), &nats);
    let mut client = admin::connect(&collector.url(), &collector.data_dir).await;
    let mut host = TestHost::enroll(&collector, &dir.path().join("hosts"), "pc-again").await;
    host.report_disk(93).await;
    let id = ticket_of(&mut client, &host).await;
    for i in 0..5 {
        act(&mut client, id, TicketAction::Comment, &format!("note {i}"))
            .await
            .expect("comment");
    }
    let log = log_after(&mut client, 0).await;
    let last = log.last().expect("events").cursor;
    until_stream_holds(&nats, &collector, log.len()).await;
    wait_for_async("the feed's cursor at the end of the log", LIMIT, || async {
        (nats_cursor(&collector).await == last).then_some(())
    })
    .await;

    // Back to the first event, with the collector stopped: everything after it goes out
    // again on the next start.
    collector.stop();
    let first = log[0].cursor;
    move_cursor_back(&collector.store_url(), first).await;
    collector.restart();
    wait_for_async("the feed to publish the events again", LIMIT, || async {
        collector.log().contains(DUPLICATES_DROPPED).then_some(())
    })
    .await;
    wait_for_async(
        "the feed's cursor back at the end of the log",
        LIMIT,
        || async { (nats_cursor(&collector).await == last).then_some(()) },
    )
    .await;
    assert_exactly_once(&log, &events_in_stream(&nats).await);

    // A new event still goes through, once.
    let mut client = admin::connect(&collector.url(), &collector.data_dir).await;
    act(&mut client, id, TicketAction::Comment, "new")
        .await
        .expect("comment");
    let log = log_after(&mut client, 0).await;
    let stream = until_stream_holds(&nats, &collector, log.len()).await;
    assert_exactly_once(&log, &stream);
}

/// Sets the NATS feed's stored cursor to `cursor` (the store only ever moves it forward).
async fn move_cursor_back(store_url: &str, cursor: i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(store_url)
        .await
        .expect("open the collector's store");
    let done = sqlx::query("UPDATE feed_cursors SET cursor = $1 WHERE feed = 'nats'")
        .bind(cursor)
        .execute(&pool)
        .await
        .expect("move the cursor back");
    assert_eq!(done.rows_affected(), 1, "the nats feed has a stored cursor");
    pool.close().await;
}
