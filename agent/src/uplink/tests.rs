//! Tests of the uplink against a scripted collector: what leaves the spool on each kind of
//! answer, how long it waits on each kind of failure, and what the next snapshot reports.

use std::collections::VecDeque;

use firstline_proto::v1::RejectedSnapshot;
use prost::Message;
use tonic::{Code, Status};

use super::*;
use crate::spool::{SpoolLimits, Stamp};

/// A collector that answers from a script and records the sequence numbers of each request.
#[derive(Clone, Default)]
struct Script {
    replies: Arc<Mutex<VecDeque<Result<ReportAck, Status>>>>,
    sent: Arc<Mutex<Vec<Vec<u64>>>>,
}

impl Collector for Script {
    async fn report(&mut self, request: ReportRequest) -> Result<ReportAck, Status> {
        let seqs = request.snapshots.iter().map(|s| s.seq).collect();
        self.sent.lock().expect("sent").push(seqs);
        let reply = self.replies.lock().expect("replies").pop_front();
        reply.unwrap_or_else(|| Err(Status::unavailable("the script has no more answers")))
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    spool: SharedSpool,
    uplink: Uplink<Script>,
    script: Script,
    diagnosis: Arc<Mutex<UplinkDiagnosis>>,
}

impl Setup {
    async fn new(spooled: usize, replies: Vec<Result<ReportAck, Status>>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = SpoolLimits {
            max_entries: 100,
            max_bytes: 1 << 20,
        };
        let spool = SharedSpool::open(dir.path().join("spool"), limits)
            .await
            .expect("spool");
        for _ in 0..spooled {
            push(&spool).await;
        }
        let script = Script::default();
        script.replies.lock().expect("replies").extend(replies);
        let diagnosis = Arc::new(Mutex::new(UplinkDiagnosis::default()));
        let policy = watch::channel(Policy {
            disk_thresholds_percent: vec![90.0],
            heartbeat_seconds: 60,
        })
        .0;
        let uplink = Uplink::with_collector(
            script.clone(),
            spool.clone(),
            policy,
            dir.path().to_owned(),
            diagnosis.clone(),
        );
        Self {
            _dir: dir,
            spool,
            uplink,
            script,
            diagnosis,
        }
    }

    fn sent(&self) -> Vec<Vec<u64>> {
        self.script.sent.lock().expect("sent").clone()
    }

    async fn waiting(&self) -> Vec<u64> {
        self.spool
            .peek(100, 1 << 20)
            .await
            .iter()
            .map(|e| e.id.seq)
            .collect()
    }
}

/// Spools a snapshot the way the reporter does.
async fn push(spool: &SharedSpool) -> Stamp {
    spool
        .push(|stamp| {
            Snapshot {
                spool_epoch: stamp.epoch,
                seq: stamp.seq,
                dropped_snapshots: stamp.dropped,
                rejected_snapshots: stamp.rejected,
                ..Snapshot::default()
            }
            .encode_to_vec()
        })
        .await
        .expect("push")
}

fn ack(stored: &[u64], rejected: &[(u64, &str)]) -> Result<ReportAck, Status> {
    Ok(ReportAck {
        stored_seqs: stored.to_vec(),
        policy: None,
        rejected: rejected
            .iter()
            .map(|(seq, reason)| RejectedSnapshot {
                seq: *seq,
                reason: (*reason).to_owned(),
            })
            .collect(),
        renew_certificate: false,
    })
}

#[tokio::test]
async fn rejected_snapshots_leave_the_spool_and_ride_in_the_next_snapshot() {
    let mut s = Setup::new(3, vec![ack(&[1, 3], &[(2, "taken_at_ms is in 2090")])]).await;
    assert_eq!(s.uplink.round().await, Round::Progress);
    assert_eq!(s.sent(), [vec![1, 2, 3]]);
    assert!(s.waiting().await.is_empty());
    assert_eq!(push(&s.spool).await.rejected, 1);
    assert_eq!(push(&s.spool).await.rejected, 0);
}

#[tokio::test]
async fn an_invalid_batch_is_sent_one_by_one_and_only_the_bad_snapshot_is_dropped() {
    let invalid = || Err(Status::invalid_argument("snapshot 2: negative size"));
    let replies = vec![
        invalid(),
        ack(&[1], &[]),
        invalid(),
        ack(&[3], &[]),
        ack(&[4, 5], &[]),
    ];
    let mut s = Setup::new(3, replies).await;
    for _ in 0..4 {
        assert_eq!(s.uplink.round().await, Round::Progress);
    }
    assert!(s.waiting().await.is_empty());
    // Back to whole batches once the refused batch is behind.
    push(&s.spool).await;
    push(&s.spool).await;
    assert_eq!(s.uplink.round().await, Round::Progress);
    assert_eq!(
        s.sent(),
        [vec![1, 2, 3], vec![1], vec![2], vec![3], vec![4, 5]]
    );
    assert_eq!(
        push(&s.spool).await.rejected,
        0,
        "the count rode in snapshot 4"
    );
}

#[tokio::test]
async fn failures_wait_by_kind_and_keep_the_spool() {
    let short = (Duration::from_millis(250), Duration::from_millis(500));
    let long = (Duration::from_secs(30), Duration::from_secs(60));
    let cases = [
        (Code::Unavailable, short, false),
        (Code::Internal, short, false),
        (Code::ResourceExhausted, short, false),
        (Code::PermissionDenied, long, true),
        (Code::Unauthenticated, long, true),
        (Code::Unimplemented, long, true),
    ];
    for (code, (min, max), hinted) in cases {
        let mut s = Setup::new(2, vec![Err(Status::new(code, "no"))]).await;
        let Round::Wait(delay) = s.uplink.round().await else {
            panic!("{code:?} must wait");
        };
        assert!((min..=max).contains(&delay), "{code:?}: {delay:?}");
        assert_eq!(s.waiting().await, [1, 2], "{code:?} deletes nothing");
        let d = s.diagnosis.lock().expect("diagnosis").clone();
        assert_eq!(d.consecutive_failures, 1, "{code:?}");
        assert_eq!(d.last_code, format!("{code:?}"));
        assert_eq!(d.last_error != "no", hinted, "{code:?}: {}", d.last_error);
    }
}

#[tokio::test]
async fn a_success_clears_the_diagnosis() {
    let mut s = Setup::new(1, vec![Err(Status::unavailable("down")), ack(&[1], &[])]).await;
    assert!(matches!(s.uplink.round().await, Round::Wait(_)));
    assert_eq!(s.diagnosis.lock().expect("d").last_error, "down");
    assert_eq!(s.uplink.round().await, Round::Progress);
    assert_eq!(*s.diagnosis.lock().expect("d"), UplinkDiagnosis::default());
    assert_eq!(s.uplink.round().await, Round::Idle);
}

#[tokio::test]
async fn a_long_outage_waits_at_most_the_cap_and_the_first_success_clears_it() {
    let mut replies: Vec<_> = (0..12)
        .map(|_| Err(Status::unavailable("collector down")))
        .collect();
    replies.push(ack(&[1, 2], &[]));
    let mut s = Setup::new(2, replies).await;
    let mut delays = Vec::new();
    for _ in 0..12 {
        let Round::Wait(delay) = s.uplink.round().await else {
            panic!("a failure must wait");
        };
        delays.push(delay);
    }
    assert!(
        delays.iter().all(|d| *d <= RETRY_MAX),
        "never longer than {RETRY_MAX:?}: {delays:?}"
    );
    assert!(
        delays[6..].iter().all(|d| *d >= RETRY_MAX / 2),
        "at the cap, jittered in its upper half: {delays:?}"
    );
    assert_eq!(s.diagnosis.lock().expect("d").consecutive_failures, 12);
    assert_eq!(s.uplink.round().await, Round::Progress);
    assert_eq!(
        *s.diagnosis.lock().expect("d"),
        UplinkDiagnosis::default(),
        "the very next snapshot carries no failure"
    );
    assert!(s.waiting().await.is_empty());
}

#[tokio::test]
async fn an_answer_that_takes_nothing_backs_off() {
    let mut s = Setup::new(2, vec![ack(&[7], &[(8, "not in the batch")])]).await;
    assert!(matches!(s.uplink.round().await, Round::Wait(_)));
    assert_eq!(s.waiting().await, [1, 2]);
}

#[tokio::test]
async fn undecodable_entries_are_set_aside_and_the_rest_sent() {
    let mut s = Setup::new(0, vec![ack(&[2], &[])]).await;
    s.spool
        .push(|_| b"\xff\xff\xff not a snapshot".to_vec())
        .await
        .expect("push");
    push(&s.spool).await;
    assert_eq!(s.uplink.round().await, Round::Progress);
    assert_eq!(s.sent(), [vec![2]]);
    assert!(s.waiting().await.is_empty());
    assert_eq!(push(&s.spool).await.dropped, 1, "counted as lost");
}

#[tokio::test]
async fn a_busy_collector_is_retried_when_it_asked_with_the_spool_kept() {
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(classify::PUSHBACK, "4000".parse().expect("ascii"));
    let busy = Status::with_metadata(Code::ResourceExhausted, "busy", metadata);
    let mut s = Setup::new(2, vec![Err(busy), ack(&[1, 2], &[])]).await;
    let Round::Wait(delay) = s.uplink.round().await else {
        panic!("a busy collector means waiting");
    };
    // Far beyond the first backoff step (250–500 ms): the collector's delay, plus jitter.
    assert!(
        (Duration::from_secs(4)..=Duration::from_secs(6)).contains(&delay),
        "{delay:?}"
    );
    assert_eq!(s.waiting().await, [1, 2], "nothing leaves the spool");
    assert_eq!(s.uplink.round().await, Round::Progress);
    assert_eq!(s.sent(), [vec![1, 2], vec![1, 2]]);
    assert!(s.waiting().await.is_empty());
}

/// Runs the uplink until the script has been sent `n` requests (time stands still meanwhile).
async fn until_sent(sent: &Arc<Mutex<Vec<Vec<u64>>>>, n: usize) {
    while sent.lock().expect("sent").len() < n {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_wait_after_failed_uploads_ends_when_the_collector_is_back() {
    // The first upload fails (the collector is away), the second is taken.
    let replies = vec![
        Err(Status::unavailable("connection refused")),
        ack(&[1], &[]),
    ];
    let s = Setup::new(1, replies).await;
    let (reachable, sent, spool) = (s.uplink.reachable(), s.script.sent.clone(), s.spool.clone());
    let shutdown = CancellationToken::new();
    let started = tokio::time::Instant::now();
    let task = tokio::spawn(s.uplink.run(Arc::new(Notify::new()), shutdown.clone()));
    until_sent(&sent, 1).await;
    // Inside the backoff after one failure, the live channel opens: sent again at once.
    reachable.notify_one();
    until_sent(&sent, 2).await;
    // The collector's acknowledgement empties the spool (on the blocking pool, so it may take
    // a few turns of the runtime after the request was seen).
    let mut turns = 0;
    while !spool.peek(100, 1 << 20).await.is_empty() {
        turns += 1;
        assert!(turns < 10_000, "the snapshot was never taken off the spool");
        tokio::task::yield_now().await;
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "no backoff waited out");
    shutdown.cancel();
    task.await.expect("uplink task");
}

#[tokio::test(start_paused = true)]
async fn a_wait_the_collector_asked_for_is_not_cut_short() {
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(classify::PUSHBACK, "30000".parse().expect("ascii"));
    let busy = Status::with_metadata(Code::ResourceExhausted, "busy", metadata);
    let s = Setup::new(1, vec![Err(busy), ack(&[1], &[])]).await;
    let (reachable, sent) = (s.uplink.reachable(), s.script.sent.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(s.uplink.run(Arc::new(Notify::new()), shutdown.clone()));
    until_sent(&sent, 1).await;
    reachable.notify_one();
    tokio::time::advance(Duration::from_secs(5)).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        sent.lock().expect("sent").len(),
        1,
        "sent again before the 30 s asked"
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    until_sent(&sent, 2).await;
    shutdown.cancel();
    task.await.expect("uplink task");
}
