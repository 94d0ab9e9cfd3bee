//! Retention scenarios of the store suite (run on SQLite and PostgreSQL): old snapshots go but
//! each agent's newest stays and replays stay idempotent, disk samples thin to one per hour and
//! the forecast still reads them, old finished tickets go with their events while open ones
//! (and what ties to them) stay, and a second pass deletes nothing.

use firstline_collector::engine::Engine;
use firstline_collector::ingest::ingest;
use firstline_collector::report::Batch;
use firstline_collector::retention::{RetentionPolicy, run_in_chunks};
use firstline_collector::rules::forecast::hours_to_full;
use firstline_collector::store::{CountedTable, FLEET, NewTicket, Store};
use firstline_collector::tickets::TicketAction;
use firstline_proto::v1;

use super::{NOW, enroll_agent};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const GB: u64 = 1_000_000_000;

/// Snapshots `(seq, taken_at_ms, used bytes of "/" and "/data")` of one epoch, arriving
/// together a second after the last was taken.
fn report(epoch: u64, snapshots: &[(u64, i64, u64)]) -> (Batch, i64) {
    let arrival = snapshots.iter().map(|s| s.1).max().unwrap_or(NOW) + 1000;
    let wire = snapshots
        .iter()
        .map(|&(seq, at, used)| v1::Snapshot {
            seq,
            spool_epoch: epoch,
            taken_at_ms: at,
            hostname: "pc".into(),
            filesystems: ["/", "/data"]
                .iter()
                .map(|m| v1::Filesystem {
                    mount_point: (*m).into(),
                    total_bytes: 1000 * GB,
                    used_bytes: used,
                    available_bytes: 1000 * GB - used,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let request = v1::ReportRequest {
        snapshots: wire,
        sent_at_ms: 0,
    };
    (Batch::from_wire(request, arrival).expect("valid"), arrival)
}

async fn send(store: &Store, agent: &str, epoch: u64, snapshots: &[(u64, i64, u64)]) -> usize {
    let (batch, arrival) = report(epoch, snapshots);
    ingest(store, &Engine::default(), agent, &batch, arrival)
        .await
        .expect("ingest")
        .new_snapshots
}

/// Sends old snapshots again, arriving now (an ack that was lost, a spool replayed).
async fn replay(store: &Store, agent: &str, epoch: u64, snapshots: &[(u64, i64, u64)]) -> usize {
    let (batch, _) = report(epoch, snapshots);
    ingest(store, &Engine::default(), agent, &batch, NOW)
        .await
        .expect("ingest")
        .new_snapshots
}

async fn samples(store: &Store, agent: &str, mount: &str, since: i64) -> Vec<(i64, u64)> {
    let mut tx = store.begin_write().await.expect("tx");
    let s = tx.disk_samples(agent, mount, since).await.expect("samples");
    s.iter().map(|s| (s.at_ms, s.used_bytes)).collect()
}

pub(super) async fn old_snapshots_go_newest_stays(store: Store) {
    enroll_agent(&store, "a").await;
    enroll_agent(&store, "b").await;
    let old = NOW - 10 * DAY;
    // a: epoch 0, seqs 1..=5 ten days ago. b: epoch 1 then a new epoch 2, both old.
    let a: Vec<_> = (1..=5).map(|s| (s, old + s as i64 * MIN, s * GB)).collect();
    assert_eq!(send(&store, "a", 0, &a).await, 5);
    send(&store, "b", 1, &[(1, old, GB), (2, old + MIN, GB)]).await;
    send(&store, "b", 2, &[(1, old + HOUR, 2 * GB)]).await;
    send(&store, "a", 0, &[(6, NOW - HOUR, 6 * GB)]).await;

    let policy = RetentionPolicy::default();
    let first = run_in_chunks(&store, &policy, NOW, 2)
        .await
        .expect("retention");
    assert_eq!(first.snapshots, 6, "a 1..=5 and b epoch 1 seq 1");
    assert_eq!(store.stored_seqs("a").await.expect("seqs"), [6]);
    assert_eq!(
        store.stored_seqs("b").await.expect("seqs"),
        [2, 1],
        "one per epoch"
    );

    // Replays: the kept newest is a no-op; a deleted old one is stored again but changes no
    // state; a deleted one of an older epoch is not taken for a new numbering.
    assert_eq!(replay(&store, "a", 0, &[(6, NOW - HOUR, 6 * GB)]).await, 0);
    assert_eq!(
        replay(&store, "a", 0, &[(2, old + 2 * MIN, 999 * GB)]).await,
        1
    );
    assert_eq!(replay(&store, "b", 1, &[(1, old, 999 * GB)]).await, 1);
    for (id, epoch, seq, used) in [("a", 0, 6, 6 * GB), ("b", 2, 1, 2 * GB)] {
        let host = store.host(id).await.expect("host").expect("exists");
        assert_eq!((host.spool_epoch, host.last_seq), (epoch, seq), "{id}");
        assert_eq!(
            host.filesystems[0].fs.used_bytes, used,
            "{id}: state unchanged"
        );
    }
    assert_eq!(store.count_rows(CountedTable::Tickets).await.expect("n"), 0);

    let second = run_in_chunks(&store, &policy, NOW, 2).await.expect("again");
    assert!(second.is_empty(), "second pass deleted {second:?}");
}

pub(super) async fn disk_samples_thin_to_one_per_hour(store: Store) {
    enroll_agent(&store, "d").await;
    // One report every 10 minutes for 30 hours, growing 1 GB an hour, ending now: the last
    // 24 hours are what the forecast reads.
    let start = NOW - 30 * HOUR;
    let points: Vec<(u64, i64, u64)> = (0..180u64)
        .map(|i| {
            let at = start + i as i64 * 10 * MIN;
            (i + 1, at, 100 * GB + i * GB / 6)
        })
        .collect();
    for part in points.chunks(60) {
        send(&store, "d", 0, part).await;
    }
    let before = samples(&store, "d", "/", 0).await;
    assert_eq!(before.len(), 180);

    // Raw for one hour only, so the forecast's day is almost all hourly samples.
    let policy = RetentionPolicy {
        disk_samples_raw: std::time::Duration::from_secs(3600),
        ..RetentionPolicy::default()
    };
    let outcome = run_in_chunks(&store, &policy, NOW, 7)
        .await
        .expect("retention");
    let after = samples(&store, "d", "/", 0).await;
    let cutoff = (NOW - HOUR) - (NOW - HOUR).rem_euclid(HOUR);
    let old: Vec<_> = after.iter().filter(|(t, _)| *t < cutoff).collect();
    let mut hours: Vec<i64> = old.iter().map(|(t, _)| t / HOUR).collect();
    hours.dedup();
    assert_eq!(hours.len(), old.len(), "one sample per hour: {old:?}");
    for (t, _) in &old {
        let last_of_hour = before
            .iter()
            .filter(|(b, _)| b / HOUR == t / HOUR)
            .map(|(b, _)| *b)
            .max();
        assert_eq!(
            Some(*t),
            last_of_hour,
            "the last sample of its hour is kept"
        );
    }
    let raw = before.iter().filter(|(t, _)| *t >= cutoff).count();
    assert_eq!(after.len() - old.len(), raw, "recent samples untouched");
    assert_eq!(
        outcome.disk_samples_thinned,
        2 * (before.len() - after.len()) as u64
    );
    let data = samples(&store, "d", "/data", 0).await;
    assert_eq!(data.len(), after.len(), "every mount is thinned alike");

    // 1 GB an hour, 1000 - 129.83 GB left at the end.
    let day = samples(&store, "d", "/", NOW - 24 * HOUR).await;
    let available = 1000 * GB - before.last().expect("samples").1;
    let hours = hours_to_full(&day, available).expect("a forecast");
    let expected = available as f64 / GB as f64;
    assert!(
        (hours - expected).abs() < 0.01 * expected,
        "{hours} vs {expected}"
    );

    // Far in the future every hourly sample is past its 90 days.
    let again = run_in_chunks(&store, &policy, NOW, 7).await.expect("again");
    assert!(again.is_empty(), "second pass deleted {again:?}");
    let later = run_in_chunks(&store, &policy, NOW + 100 * DAY, 7)
        .await
        .expect("later");
    let gone = later.disk_samples + later.disk_samples_thinned;
    assert_eq!(gone, 2 * after.len() as u64, "{later:?}");
    assert!(samples(&store, "d", "/", 0).await.is_empty());
}

/// Opens a ticket at `at`; resolved at `resolved` when given.
async fn ticket(store: &Store, agent: &str, subject: &str, at: i64, resolved: Option<i64>) -> i64 {
    let mut tx = store.begin_write().await.expect("tx");
    let id = tx
        .open_ticket(&NewTicket {
            agent_id: agent,
            rule_id: "disk.full",
            subject,
            priority: 2,
            title: subject,
            at_ms: at,
            value: 1.0,
            response_due_ms: at + HOUR,
            resolve_due_ms: at + DAY,
            kb: "",
        })
        .await
        .expect("open");
    if let Some(r) = resolved {
        tx.resolve_ticket(id, r, 0.0, "cleared")
            .await
            .expect("resolve");
    }
    tx.commit().await.expect("commit");
    id
}

async fn suppress(store: &Store, child: i64, outage: i64, at: i64, resolved: Option<i64>) {
    let mut tx = store.begin_write().await.expect("tx");
    tx.suppress(child, outage, at).await.expect("suppress");
    if let Some(r) = resolved {
        tx.resolve_ticket(child, r, 0.0, "cleared")
            .await
            .expect("resolve");
    }
    tx.commit().await.expect("commit");
}

pub(super) async fn old_finished_tickets_go_open_ones_stay(store: Store) {
    enroll_agent(&store, "t").await;
    let old = NOW - 500 * DAY;
    let gone = ticket(&store, "t", "gone", old, Some(old + HOUR)).await;
    let open = ticket(&store, "t", "open", old, None).await;
    let recent = ticket(&store, "t", "recent", NOW - 10 * DAY, Some(NOW - 9 * DAY)).await;
    let talked = ticket(&store, "t", "talked", old, Some(old + HOUR)).await;
    {
        let mut tx = store.begin_write().await.expect("tx");
        let sla = Engine::default().sla;
        let comment = TicketAction::Comment("still relevant".into());
        tx.ticket_action(talked, &comment, "ann", NOW - DAY, &sla)
            .await
            .expect("comment");
        tx.commit().await.expect("commit");
    }
    // A finished outage with a finished child: both go. An open outage keeps its old child.
    let outage = ticket(&store, FLEET, "outage", old, None).await;
    let child = ticket(&store, "t", "child", old, None).await;
    suppress(&store, child, outage, old, Some(old + HOUR)).await;
    {
        let mut tx = store.begin_write().await.expect("tx");
        tx.resolve_ticket(outage, old + 2 * HOUR, 0.0, "over")
            .await
            .expect("resolve");
        tx.commit().await.expect("commit");
    }
    let live_outage = ticket(&store, FLEET, "live", old, None).await;
    let kept_child = ticket(&store, "t", "kept", old, None).await;
    suppress(&store, kept_child, live_outage, old, Some(old + HOUR)).await;
    // Help-desk links of a ticket that goes and of one that stays.
    for id in [gone, open] {
        store
            .begin_helpdesk_link("rt", id, &format!("[firstline #{id}]"), old)
            .await
            .expect("link");
        store
            .reschedule_helpdesk("rt", id, NOW, 0)
            .await
            .expect("queue");
    }
    let events_before = store
        .count_rows(CountedTable::TicketEvents)
        .await
        .expect("n");

    let policy = RetentionPolicy::default();
    let outcome = run_in_chunks(&store, &policy, NOW, 1)
        .await
        .expect("retention");
    assert_eq!(outcome.tickets, 3, "{outcome:?}");
    assert!(
        store
            .helpdesk_link("rt", gone)
            .await
            .expect("link")
            .is_none()
    );
    assert!(
        store
            .helpdesk_link("rt", open)
            .await
            .expect("link")
            .is_some()
    );
    let queued: Vec<i64> = store
        .due_helpdesk("rt", NOW, 10)
        .await
        .expect("queue")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(queued, [open], "only the kept ticket stays queued");
    for id in [gone, outage, child] {
        assert!(
            store.ticket(id).await.expect("read").is_none(),
            "#{id} kept"
        );
        assert!(store.timeline(id).await.expect("timeline").is_empty());
    }
    for id in [open, recent, talked, live_outage, kept_child] {
        assert!(
            store.ticket(id).await.expect("read").is_some(),
            "#{id} deleted"
        );
        assert!(!store.timeline(id).await.expect("timeline").is_empty());
    }
    let events_after = store
        .count_rows(CountedTable::TicketEvents)
        .await
        .expect("n");
    assert_eq!(events_before - events_after, outcome.ticket_events as i64);
    let second = run_in_chunks(&store, &policy, NOW, 1).await.expect("again");
    assert!(second.is_empty(), "second pass deleted {second:?}");
}
