//! Group commit: the one writer of reports. Report calls put their checked batch on a bounded
//! queue and wait; the writer takes everything waiting at that moment (up to `max_group`),
//! applies it in one transaction, each batch under a savepoint of its own, commits once, and
//! only then answers each caller. A commit costs one disk flush however many reports it
//! carries, so throughput grows with load instead of collapsing under it.
//!
//! One report cannot fail the others: a store refusal that would repeat rolls back that report
//! alone (its snapshots are answered as rejected or the call fails), and a race lost to
//! another replica is retried inside the group. A failure that can pass (the store is down,
//! the commit failed) fails every report of the group, which the agents send again; ingest is
//! idempotent, so nothing is stored twice.
//!
//! Backpressure: the queue is bounded in reports and in bytes. When it is full the call is
//! answered at once with [`SubmitError::Busy`] and a retry delay derived from the queue's
//! length and the measured drain rate, which the agent honours; memory stays bounded and the
//! reports already queued keep their latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::{IngestOutcome, RACE_RETRIES, ingest_in};
use crate::engine::Engine;
use crate::report::Batch;
use crate::store::{Savepoint, Store, StoreError, WriteTx};

/// Queue bounds and group size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterLimits {
    /// Reports waiting for the writer at most.
    pub queue_reports: usize,
    /// Bytes of reports (as received) waiting at most.
    pub queue_bytes: usize,
    /// Reports committed together at most.
    pub max_group: usize,
}

impl Default for WriterLimits {
    fn default() -> Self {
        Self {
            queue_reports: 20_000,
            queue_bytes: 256 * 1024 * 1024,
            max_group: 1000,
        }
    }
}

/// Why a report was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full: send again after `retry_after`.
    #[error("the collector is busy ({queued} reports waiting); retry in {} ms", retry_after.as_millis())]
    Busy {
        queued: usize,
        retry_after: Duration,
    },
    /// The writer has stopped (the collector is shutting down).
    #[error("the collector is shutting down")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Job {
    agent_id: String,
    batch: Batch,
    now_ms: i64,
    done: oneshot::Sender<Result<IngestOutcome, StoreError>>,
    _bytes: OwnedSemaphorePermit,
}

/// Shared counters of the writer, read by the backpressure hint and by metrics.
#[derive(Debug, Default)]
struct Gauges {
    queued: AtomicUsize,
    /// Reports per second drained, smoothed, as f64 bits.
    drain_rate: AtomicU64,
    groups: AtomicU64,
    reports: AtomicU64,
}

/// The handle report calls submit through; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    bytes: Arc<Semaphore>,
    gauges: Arc<Gauges>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("queued", &self.gauges.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    pub queued: usize,
    pub groups: u64,
    pub reports: u64,
}

impl Writer {
    /// Starts the writer task on the current runtime. It stops when every handle is dropped,
    /// after answering what is queued.
    pub fn start(store: Store, engine: Arc<Engine>, limits: WriterLimits) -> Self {
        let (queue, rx) = mpsc::channel(limits.queue_reports.max(1));
        let gauges = Arc::new(Gauges::default());
        let bytes = Arc::new(Semaphore::new(
            limits.queue_bytes.clamp(1, Semaphore::MAX_PERMITS),
        ));
        tokio::spawn(run(store, engine, rx, limits, gauges.clone()));
        Self {
            queue,
            bytes,
            gauges,
        }
    }

    /// Queues one batch of `agent_id` (`size` bytes as received) and waits for its commit.
    pub async fn submit(
        &self,
        agent_id: String,
        batch: Batch,
        size: usize,
        now_ms: i64,
    ) -> Result<IngestOutcome, SubmitError> {
        let permits = u32::try_from(size.max(1)).unwrap_or(u32::MAX);
        let bytes = match self.bytes.clone().try_acquire_many_owned(permits) {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(SubmitError::Stopped),
            Err(tokio::sync::TryAcquireError::NoPermits) => return Err(self.busy()),
        };
        let (done, answer) = oneshot::channel();
        let job = Job {
            agent_id,
            batch,
            now_ms,
            done,
            _bytes: bytes,
        };
        match self.queue.try_send(job) {
            Ok(()) => {
                self.gauges.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => return Err(self.busy()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(SubmitError::Stopped),
        }
        match answer.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(SubmitError::Stopped),
        }
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            queued: self.gauges.queued.load(Ordering::Relaxed),
            groups: self.gauges.groups.load(Ordering::Relaxed),
            reports: self.gauges.reports.load(Ordering::Relaxed),
        }
    }

    fn busy(&self) -> SubmitError {
        let queued = self.gauges.queued.load(Ordering::Relaxed);
        let rate = f64::from_bits(self.gauges.drain_rate.load(Ordering::Relaxed));
        SubmitError::Busy {
            queued,
            retry_after: retry_after(queued, rate),
        }
    }
}

/// How long a refused caller should wait: about the time the queue takes to drain at the
/// measured rate, between a quarter of a second and ten seconds. The agent adds jitter.
pub fn retry_after(queued: usize, drain_per_second: f64) -> Duration {
    let seconds = if drain_per_second > 0.0 {
        queued as f64 / drain_per_second
    } else {
        1.0
    };
    Duration::from_secs_f64(seconds.clamp(0.25, 10.0))
}

async fn run(
    store: Store,
    engine: Arc<Engine>,
    mut rx: mpsc::Receiver<Job>,
    limits: WriterLimits,
    gauges: Arc<Gauges>,
) {
    let max_group = limits.max_group.max(1);
    let mut group = Vec::with_capacity(max_group);
    while rx.recv_many(&mut group, max_group).await > 0 {
        let started = Instant::now();
        let n = group.len();
        gauges.queued.fetch_sub(n, Ordering::Relaxed);
        commit_group(&store, &engine, &mut group).await;
        gauges.groups.fetch_add(1, Ordering::Relaxed);
        gauges.reports.fetch_add(n as u64, Ordering::Relaxed);
        let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-6);
        let old = f64::from_bits(gauges.drain_rate.load(Ordering::Relaxed));
        let smoothed = if old > 0.0 {
            0.8 * old + 0.2 * rate
        } else {
            rate
        };
        gauges
            .drain_rate
            .store(smoothed.to_bits(), Ordering::Relaxed);
        tracing::trace!(
            reports = n,
            elapsed_us = started.elapsed().as_micros() as u64,
            "group committed"
        );
    }
    tracing::debug!("ingest writer stopped");
}

/// Applies and commits one group, then answers every report of it.
async fn commit_group(store: &Store, engine: &Engine, group: &mut Vec<Job>) {
    let results = match apply_group(store, engine, group).await {
        Ok(results) => results,
        Err(error) => {
            tracing::warn!(%error, reports = group.len(), "group commit failed; the agents will send again");
            let text = error.to_string();
            group
                .iter()
                .map(|_| Err(StoreError::Unavailable(text.clone())))
                .collect()
        }
    };
    for (job, result) in group.drain(..).zip(results) {
        // The caller may have gone (its deadline passed); what was committed stays.
        let _ = job.done.send(result);
    }
}

async fn apply_group(
    store: &Store,
    engine: &Engine,
    group: &[Job],
) -> Result<Vec<Result<IngestOutcome, StoreError>>, StoreError> {
    let mut tx = store.begin_write().await?;
    let mut results = Vec::with_capacity(group.len());
    for job in group {
        results.push(apply_one(&mut tx, engine, job).await?);
    }
    tx.commit().await?;
    Ok(results)
}

/// One report of the group under its savepoint. `Ok(Err(_))`: this report failed alone and
/// is rolled back; `Err(_)`: the transaction cannot go on.
async fn apply_one(
    tx: &mut WriteTx,
    engine: &Engine,
    job: &Job,
) -> Result<Result<IngestOutcome, StoreError>, StoreError> {
    let mut attempt = 0;
    loop {
        tx.savepoint(Savepoint::Report).await?;
        match ingest_in(tx, engine, &job.agent_id, &job.batch, job.now_ms).await {
            Ok(outcome) => {
                tx.release(Savepoint::Report).await?;
                return Ok(Ok(outcome));
            }
            Err(error) => {
                tx.rollback_to(Savepoint::Report).await?;
                if error.is_race() && attempt < RACE_RETRIES {
                    attempt += 1;
                    tracing::debug!(agent_id = job.agent_id, attempt, %error, "report lost a race; retrying");
                    continue;
                }
                if error.is_permanent() {
                    tracing::warn!(agent_id = job.agent_id, %error, "report refused by the store");
                    return Ok(Err(error));
                }
                // The store is failing: the other reports would too.
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_follows_the_queue_and_stays_bounded() {
        assert_eq!(retry_after(5000, 10_000.0), Duration::from_millis(500));
        assert_eq!(retry_after(10, 10_000.0), Duration::from_millis(250));
        assert_eq!(retry_after(1_000_000, 10.0), Duration::from_secs(10));
        assert_eq!(retry_after(100, 0.0), Duration::from_secs(1));
    }
}

#[cfg(test)]
mod group_tests {
    use firstline_proto::v1;

    use super::*;
    use crate::store::{CertKind, NewAgent, NewCertificate, TokenRow};

    const T0: i64 = 1_800_000_000_000;

    async fn store_with_agents(dir: &std::path::Path, agents: usize) -> Store {
        let store = Store::open(&format!("sqlite://{}", dir.join("w.db").display()))
            .await
            .expect("store");
        store
            .create_token(&TokenRow {
                token_hash: "t".into(),
                label: String::new(),
                created_at_ms: T0,
                expires_at_ms: T0 + 1,
                uses_total: agents as i64,
                uses_left: agents as i64,
            })
            .await
            .expect("token");
        for i in 0..agents {
            store
                .enroll(
                    "t",
                    T0,
                    &NewAgent {
                        agent_id: format!("a{i}"),
                        hostname: format!("h{i}"),
                        machine_id: String::new(),
                        enrolled_at_ms: T0,
                    },
                    &NewCertificate {
                        fingerprint: format!("f{i}"),
                        kind: CertKind::Agent,
                        subject: format!("a{i}"),
                        issued_at_ms: T0,
                        not_after_ms: T0 + 1,
                    },
                )
                .await
                .expect("enroll");
        }
        store
    }

    fn batch(seqs: &[u64]) -> Batch {
        let snapshots = seqs
            .iter()
            .map(|&seq| v1::Snapshot {
                seq,
                taken_at_ms: T0 + seq as i64,
                hostname: "h".into(),
                filesystems: vec![v1::Filesystem {
                    mount_point: "/".into(),
                    total_bytes: 100,
                    used_bytes: 95,
                    available_bytes: 5,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        Batch::from_wire(
            v1::ReportRequest {
                snapshots,
                sent_at_ms: 0,
            },
            T0 + 100,
        )
        .expect("valid batch")
    }

    #[tokio::test]
    async fn concurrent_reports_commit_together_and_a_bad_one_fails_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_agents(dir.path(), 50).await;
        let writer = Writer::start(
            store.clone(),
            Arc::new(Engine::default()),
            WriterLimits::default(),
        );
        let mut calls = Vec::new();
        for i in 0..50 {
            let w = writer.clone();
            calls.push(tokio::spawn(async move {
                w.submit(format!("a{i}"), batch(&[1, 2]), 100, T0 + 100)
                    .await
            }));
        }
        // An agent the store does not know: its snapshots are refused, nobody else's.
        let stranger = writer
            .submit("nobody".into(), batch(&[1]), 100, T0 + 100)
            .await
            .expect("answered");
        assert_eq!(stranger.stored_seqs, Vec::<u64>::new());
        assert_eq!(stranger.rejected.len(), 1, "{stranger:?}");
        for call in calls {
            let outcome = call.await.expect("task").expect("stored");
            assert_eq!(outcome.stored_seqs, [1, 2]);
            assert_eq!(outcome.tickets_opened, 1, "95% opens the disk ticket");
        }
        for i in 0..50 {
            assert_eq!(
                store.stored_seqs(&format!("a{i}")).await.expect("seqs"),
                [1, 2]
            );
        }
        let stats = writer.stats();
        assert_eq!(stats.reports, 51);
        assert!(
            stats.groups < 51,
            "reports waiting together share a commit: {stats:?}"
        );
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_with_a_delay_and_nothing_is_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_agents(dir.path(), 3).await;
        let limits = WriterLimits {
            queue_reports: 1,
            queue_bytes: 1 << 20,
            max_group: 1,
        };
        let writer = Writer::start(store.clone(), Arc::new(Engine::default()), limits);
        // Another writer holds the store: the group writer waits on it.
        let blocker = store.begin_write().await.expect("hold the write lock");
        let first = tokio::spawn({
            let w = writer.clone();
            async move { w.submit("a0".into(), batch(&[1]), 10, T0 + 100).await }
        });
        // Until the writer has taken the first report into its group, the second waits.
        while writer.stats().queued > 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!first.is_finished(), "the writer waits for the store");
        let second = tokio::spawn({
            let w = writer.clone();
            async move { w.submit("a1".into(), batch(&[1]), 10, T0 + 100).await }
        });
        while writer.stats().queued == 0 {
            tokio::task::yield_now().await;
        }
        let refused = writer
            .submit("a2".into(), batch(&[1]), 10, T0 + 100)
            .await
            .expect_err("the queue is full");
        let SubmitError::Busy { retry_after, .. } = refused else {
            panic!("busy, not {refused:?}");
        };
        assert!(retry_after >= Duration::from_millis(250), "{retry_after:?}");
        // A report too big for the byte bound is refused the same way.
        assert!(matches!(
            writer
                .submit("a2".into(), batch(&[1]), 2 << 20, T0 + 100)
                .await,
            Err(SubmitError::Busy { .. })
        ));
        blocker.commit().await.expect("release");
        assert_eq!(first.await.expect("task").expect("stored").stored_seqs, [1]);
        assert_eq!(
            second.await.expect("task").expect("stored").stored_seqs,
            [1]
        );
        assert_eq!(
            store.stored_seqs("a2").await.expect("seqs"),
            Vec::<u64>::new()
        );
    }
}
