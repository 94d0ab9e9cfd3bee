//! Group commit: the one writer of reports. Report calls put their checked batch on a bounded
//! queue and wait; the writer takes everything waiting at that moment (up to `max_group`
//! reports and `max_group_snapshots` snapshots),
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
//! Backpressure: the queue is bounded in reports, in bytes, and in time (a report that would
//! wait more than [`MAX_QUEUE_WAIT`] at the measured drain rate is not queued). When it is
//! full the call is answered at once with [`SubmitError::Busy`] and a retry delay derived
//! from the queue's length and the drain rate, which the agent honours; memory stays bounded
//! and the reports already queued keep their latency.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::quiet::QuietMemory;
use super::{IngestOutcome, RACE_RETRIES, ingest_in};
use crate::engine::Engine;
use crate::report::Batch;
use crate::store::{Savepoint, Store, StoreError, WriteTx};
use crate::telemetry::{self, ReportAnswer};

/// Queue bounds and group size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterLimits {
    /// Reports waiting for the writer at most.
    pub queue_reports: usize,
    /// Bytes of reports (as received) waiting at most.
    pub queue_bytes: usize,
    /// Reports committed together at most.
    pub max_group: usize,
    /// Snapshots committed together at most (a report may carry many).
    pub max_group_snapshots: usize,
}

impl Default for WriterLimits {
    fn default() -> Self {
        Self {
            queue_reports: 20_000,
            queue_bytes: 256 * 1024 * 1024,
            max_group: 1000,
            max_group_snapshots: 1000,
        }
    }
}

/// Why a report was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full: send again after `retry_after`.
    #[error("the collector is busy ({queued} snapshots waiting); retry in {} ms", retry_after.as_millis())]
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
    /// Snapshots waiting (a report weighs its snapshots).
    queued: AtomicUsize,
    /// Snapshots per second drained, smoothed, as f64 bits.
    drain_rate: AtomicU64,
    groups: AtomicU64,
    reports: AtomicU64,
    quiet: AtomicU64,
    /// A group is being applied.
    committing: std::sync::atomic::AtomicBool,
    /// Reports refused in the current second, and in the one before.
    refusals: std::sync::Mutex<Refusals>,
}

/// Refused snapshots counted per second: callers told to come back are demand still to serve,
/// so each refused caller is given a later turn than the one before it in the same second
/// (its place in line at the measured rate), which spreads a fleet's return over the time the
/// writer needs for it instead of bringing it back as one wave.
#[derive(Debug)]
struct Refusals {
    since: Instant,
    now: u64,
}

impl Default for Refusals {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            now: 0,
        }
    }
}

impl Refusals {
    /// Counts a refusal of `weight` snapshots; returns the snapshots refused so far in this
    /// second, this one included (the caller's place in line).
    fn count(&mut self, weight: u64) -> u64 {
        if self.since.elapsed() >= Duration::from_secs(1) {
            self.now = 0;
            self.since = Instant::now();
        }
        self.now = self.now.saturating_add(weight);
        self.now
    }
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
    /// Snapshots waiting.
    pub queued: usize,
    pub groups: u64,
    pub reports: u64,
    /// Reports stored on the quiet path (`ingest::quiet`).
    pub quiet: u64,
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
        let weight = weight(&batch);
        let permits = u32::try_from(size.max(1)).unwrap_or(u32::MAX);
        let bytes = match self.bytes.clone().try_acquire_many_owned(permits) {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(SubmitError::Stopped),
            Err(tokio::sync::TryAcquireError::NoPermits) => return Err(self.busy(weight)),
        };
        if self.queue_too_long() {
            return Err(self.busy(weight));
        }
        let (done, answer) = oneshot::channel();
        let submitted = Instant::now();
        let job = Job {
            agent_id,
            batch,
            now_ms,
            done,
            _bytes: bytes,
        };
        match self.queue.try_send(job) {
            Ok(()) => {
                self.gauges.queued.fetch_add(weight, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => return Err(self.busy(weight)),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(SubmitError::Stopped),
        }
        let Ok(result) = answer.await else {
            return Err(SubmitError::Stopped);
        };
        telemetry::report_answered(answer_of(&result), submitted.elapsed());
        Ok(result?)
    }

    /// Waits until nothing is queued or being committed, at most `limit`: on shutdown, after
    /// the server stopped taking calls, so every report taken is answered before the store
    /// closes.
    pub async fn drain(&self, limit: Duration) {
        let started = Instant::now();
        while (self.gauges.queued.load(Ordering::Relaxed) > 0
            || self.gauges.committing.load(Ordering::Relaxed))
            && started.elapsed() < limit
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            queued: self.gauges.queued.load(Ordering::Relaxed),
            groups: self.gauges.groups.load(Ordering::Relaxed),
            reports: self.gauges.reports.load(Ordering::Relaxed),
            quiet: self.gauges.quiet.load(Ordering::Relaxed),
        }
    }

    /// Whether a report queued now would wait longer than [`MAX_QUEUE_WAIT`] at the measured
    /// drain rate. Below [`ALWAYS_QUEUED`] reports it is always taken.
    fn queue_too_long(&self) -> bool {
        let queued = self.gauges.queued.load(Ordering::Relaxed);
        let rate = f64::from_bits(self.gauges.drain_rate.load(Ordering::Relaxed));
        queued >= ALWAYS_QUEUED && rate > 0.0 && queued as f64 > rate * MAX_QUEUE_WAIT.as_secs_f64()
    }

    fn busy(&self, weight: usize) -> SubmitError {
        telemetry::report_refused();
        let queued = self.gauges.queued.load(Ordering::Relaxed);
        let rate = f64::from_bits(self.gauges.drain_rate.load(Ordering::Relaxed));
        let refused = self
            .gauges
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .count(weight as u64);
        let waiting = queued.saturating_add(usize::try_from(refused).unwrap_or(usize::MAX));
        SubmitError::Busy {
            queued,
            retry_after: retry_after(waiting, rate),
        }
    }
}

/// What a report weighs in the queue: its snapshots (a spool flush carries many).
fn weight(batch: &Batch) -> usize {
    batch.entries.len().max(1)
}

/// How a queued report was answered, for the metrics.
fn answer_of(result: &Result<IngestOutcome, StoreError>) -> ReportAnswer {
    match result {
        Ok(outcome) => ReportAnswer::Accepted {
            new: outcome.new_snapshots,
            rejected: outcome.rejected.len(),
        },
        Err(error) if error.is_permanent() => ReportAnswer::Rejected,
        Err(_) => ReportAnswer::Failed,
    }
}

/// The alert latency of every ticket a committed group opened, now that it is committed.
fn record_alerts(results: &[Result<IngestOutcome, StoreError>]) {
    let now = crate::clock::now_ms();
    for outcome in results.iter().flatten() {
        for at in &outcome.opened_observed_at_ms {
            telemetry::alert_opened(*at, now);
        }
    }
}

/// How often the writer says what it did (at debug level).
const SAY_EVERY: Duration = Duration::from_secs(10);

/// The longest a report should wait in the queue: beyond it, callers are asked to come back
/// later rather than every report's latency growing.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(2);

/// So many snapshots are always taken, whatever the measured rate (a cold start has none).
const ALWAYS_QUEUED: usize = 5000;

/// How long a refused caller should wait: about the time the writer needs, at the measured
/// rate, for what is queued and for the callers refused before it in this second (who all
/// come back), between a quarter of a second and ten seconds. The agent adds jitter.
pub fn retry_after(waiting: usize, drain_per_second: f64) -> Duration {
    let seconds = if drain_per_second > 0.0 {
        waiting as f64 / drain_per_second
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
    let mut memory = QuietMemory::default();
    let mut last_said = Instant::now();
    let (mut said_reports, mut said_groups, mut said_quiet) = (0u64, 0u64, 0u64);
    while let Some(first) = rx.recv().await {
        // Whatever else is waiting, up to the group's bounds in reports and in snapshots (a
        // spool flush carries many per report, and a group is one transaction).
        let mut snapshots = weight(&first.batch);
        group.push(first);
        while group.len() < max_group && snapshots < limits.max_group_snapshots {
            match rx.try_recv() {
                Ok(job) => {
                    snapshots += weight(&job.batch);
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let n = group.len();
        gauges.committing.store(true, Ordering::Relaxed);
        gauges.queued.fetch_sub(snapshots, Ordering::Relaxed);
        commit_group(&store, &engine, &mut memory, &mut group).await;
        telemetry::group_committed(n, snapshots, started.elapsed());
        gauges.committing.store(false, Ordering::Relaxed);
        gauges.groups.fetch_add(1, Ordering::Relaxed);
        gauges.reports.fetch_add(n as u64, Ordering::Relaxed);
        gauges.quiet.store(memory.stored, Ordering::Relaxed);
        let rate = snapshots as f64 / started.elapsed().as_secs_f64().max(1e-6);
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
        if last_said.elapsed() >= SAY_EVERY {
            let reports = gauges.reports.load(Ordering::Relaxed);
            let groups = gauges.groups.load(Ordering::Relaxed);
            tracing::debug!(
                reports = reports - said_reports,
                groups = groups - said_groups,
                quiet = memory.stored - said_quiet,
                remembered = memory.len(),
                queued = gauges.queued.load(Ordering::Relaxed),
                seconds = last_said.elapsed().as_secs(),
                "ingest"
            );
            (said_reports, said_groups, said_quiet) = (reports, groups, memory.stored);
            last_said = Instant::now();
        }
    }
    tracing::debug!("ingest writer stopped");
}

/// Applies and commits one group, then answers every report of it.
async fn commit_group(
    store: &Store,
    engine: &Engine,
    memory: &mut QuietMemory,
    group: &mut Vec<Job>,
) {
    let mut results: Vec<Option<Result<IngestOutcome, StoreError>>> =
        (0..group.len()).map(|_| None).collect();
    if let Err(error) = apply_group(store, engine, memory, group, &mut results).await {
        tracing::warn!(%error, reports = group.len(), "group commit failed; the agents will send again");
        let text = error.to_string();
        for (job, result) in group.iter().zip(results.iter_mut()) {
            if result.is_none() {
                memory.forget(&job.agent_id);
                *result = Some(Err(StoreError::Unavailable(text.clone())));
            }
        }
    }
    let results: Vec<_> = results.into_iter().flatten().collect();
    record_alerts(&results);
    for (job, result) in group.drain(..).zip(results) {
        // The caller may have gone (its deadline passed); what was committed stays.
        let _ = job.done.send(result);
    }
}

/// Fills in the result of every report of the group it committed. On an error, the reports
/// left without a result are not committed (the caller fails them); those with one are.
async fn apply_group(
    store: &Store,
    engine: &Engine,
    memory: &mut QuietMemory,
    group: &[Job],
    results: &mut [Option<Result<IngestOutcome, StoreError>>],
) -> Result<(), StoreError> {
    // Quiet reports first, all together: only an agent's first report of the group may be
    // quiet (the others follow it on the full path).
    let mut seen = HashSet::with_capacity(group.len());
    let mut plans = Vec::new();
    for (i, job) in group.iter().enumerate() {
        if !seen.insert(job.agent_id.as_str()) {
            continue;
        }
        if let Some(plan) = memory.plan(store, engine, &job.agent_id, &job.batch, job.now_ms)? {
            plans.push((i, plan));
        }
    }
    let rows: Vec<_> = plans.iter().map(|(_, p)| p.row()).collect();
    // On SQLite the quiet reports commit on their own lane, before the rest; elsewhere they
    // share the group's transaction and get their results only when it commits.
    let quiet_started = Instant::now();
    let apart = if rows.is_empty() {
        None
    } else {
        store.store_quiet_apart(&rows).await
    };
    let quiet_us = quiet_started.elapsed().as_micros() as u64;
    let mut tx = None;
    let mut quiet_in_tx = Vec::new();
    let quiet = match apart {
        Some(stored) => stored,
        None if rows.is_empty() => Ok(HashSet::new()),
        None => {
            let tx = tx.insert(store.begin_write().await?);
            tx.savepoint(Savepoint::Report).await?;
            match tx.store_quiet(&rows).await {
                Ok(advanced) => {
                    tx.release(Savepoint::Report).await?;
                    Ok(advanced)
                }
                Err(error) => {
                    tx.rollback_to(Savepoint::Report).await?;
                    Err(error)
                }
            }
        }
    };
    drop(rows);
    match quiet {
        Ok(advanced) => {
            for (i, plan) in &plans {
                if advanced.contains(plan.agent_id) {
                    memory.stored(plan);
                    if tx.is_some() {
                        quiet_in_tx.push((*i, plan.outcome()));
                    } else {
                        results[*i] = Some(Ok(plan.outcome()));
                    }
                } else {
                    tracing::debug!(
                        agent_id = plan.agent_id,
                        "agent changed elsewhere; full path"
                    );
                    memory.forget(plan.agent_id);
                }
            }
        }
        Err(error) => {
            // One of them the store refused: each goes the full path, alone.
            tracing::debug!(%error, reports = plans.len(), "quiet batch refused; full path");
            for (_, plan) in &plans {
                memory.forget(plan.agent_id);
            }
        }
    }
    let in_tx: HashSet<usize> = quiet_in_tx.iter().map(|(i, _)| *i).collect();
    let full: Vec<usize> = (0..group.len())
        .filter(|i| results[*i].is_none() && !in_tx.contains(i))
        .collect();
    if full.is_empty() && tx.is_none() {
        return Ok(());
    }
    let mut tx = match tx {
        Some(tx) => tx,
        None => store.begin_write().await?,
    };
    let full_started = Instant::now();
    let full_reports = full.len();
    let mut done = Vec::with_capacity(full_reports);
    for i in full {
        done.push((i, apply_one(&mut tx, engine, memory, &group[i]).await?));
    }
    let applied_us = full_started.elapsed().as_micros() as u64;
    tx.commit().await?;
    tracing::trace!(
        quiet = plans.len(),
        quiet_us,
        full = full_reports,
        applied_us,
        committed_us = full_started.elapsed().as_micros() as u64,
        "group applied"
    );
    for (i, outcome) in quiet_in_tx {
        results[i] = Some(Ok(outcome));
    }
    for (i, result) in done {
        results[i] = Some(result);
    }
    Ok(())
}

/// One report of the group on the full path, under its savepoint. `Ok(Err(_))`: this report failed alone and is rolled back; `Err(_)`: the
/// transaction cannot go on.
async fn apply_one(
    tx: &mut WriteTx,
    engine: &Engine,
    memory: &mut QuietMemory,
    job: &Job,
) -> Result<Result<IngestOutcome, StoreError>, StoreError> {
    let agent_id = job.agent_id.as_str();
    tx.savepoint(Savepoint::Report).await?;
    let mut attempt = 0;
    loop {
        let result = match ingest_in(tx, engine, agent_id, &job.batch, job.now_ms).await {
            Ok(outcome) => memory
                .learn(tx, agent_id, &job.batch, &outcome.stored_seqs)
                .await
                .map(|()| outcome),
            Err(error) => Err(error),
        };
        match result {
            Ok(outcome) => {
                tx.release(Savepoint::Report).await?;
                return Ok(Ok(outcome));
            }
            Err(error) => {
                memory.forget(agent_id);
                tx.rollback_to(Savepoint::Report).await?;
                if error.is_race() && attempt < RACE_RETRIES {
                    attempt += 1;
                    tracing::debug!(agent_id, attempt, %error, "report lost a race; retrying");
                    tx.savepoint(Savepoint::Report).await?;
                    continue;
                }
                if error.is_permanent() {
                    tracing::warn!(agent_id, %error, "report refused by the store");
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

    use crate::test_fixtures::T0;

    async fn store_with_agents(dir: &std::path::Path, agents: usize) -> Store {
        crate::test_fixtures::store_with_agents(dir, "w.db", agents).await
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

    /// A heartbeat of a healthy host: every probe's facts, `percent` used on `/`.
    fn full_report(seq: u64, percent: u64) -> Batch {
        let at = T0 + seq as i64 * 60_000;
        let snapshot = v1::Snapshot {
            seq,
            taken_at_ms: at,
            hostname: "h".into(),
            filesystems: vec![v1::Filesystem {
                mount_point: "/".into(),
                total_bytes: 1000,
                used_bytes: percent * 10,
                available_bytes: 1000 - percent * 10,
                ..Default::default()
            }],
            system: Some(v1::SystemFacts {
                os_name: "Debian".into(),
                ..Default::default()
            }),
            patches: Some(v1::PatchState {
                package_manager: "apt".into(),
                ..Default::default()
            }),
            antivirus: Some(v1::AntivirusState::default()),
            connectivity: Some(v1::Connectivity::default()),
            ..Default::default()
        };
        Batch::from_wire(
            v1::ReportRequest {
                snapshots: vec![snapshot],
                sent_at_ms: 0,
            },
            at + 10,
        )
        .expect("valid batch")
    }

    async fn send(writer: &Writer, agent: &str, seq: u64, percent: u64) -> IngestOutcome {
        let at = T0 + seq as i64 * 60_000;
        writer
            .submit(agent.into(), full_report(seq, percent), 100, at + 10)
            .await
            .expect("stored")
    }

    #[tokio::test]
    async fn quiet_reports_skip_the_rules_and_anything_that_matters_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_agents(dir.path(), 1).await;
        let engine = Arc::new(Engine::default());
        let writer = Writer::start(store.clone(), engine.clone(), WriterLimits::default());
        // The first report teaches the writer the host; the next ones are quiet.
        for seq in 1..=4 {
            assert_eq!(send(&writer, "a0", seq, 50 + seq).await.stored_seqs, [seq]);
        }
        assert_eq!(writer.stats().quiet, 3, "{:?}", writer.stats());
        let host = store.host("a0").await.expect("host").expect("exists");
        assert_eq!(host.last_seq, 4);
        assert_eq!(host.snapshots_stored, 4);
        assert_eq!(
            host.filesystems[0].fs.used_bytes, 540,
            "the current disk is the last report's"
        );
        // A crossing is not quiet: the ticket opens.
        let crossing = send(&writer, "a0", 5, 92).await;
        assert_eq!(crossing.tickets_opened, 1);
        let quiet_before = writer.stats().quiet;
        // Still over: one more occurrence of the open ticket, counted on the quiet path.
        assert_eq!(send(&writer, "a0", 6, 93).await.stored_seqs, [6]);
        assert_eq!(writer.stats().quiet, quiet_before + 1);
        let open = store
            .list_tickets(&crate::store::TicketFilter::default())
            .await
            .expect("tickets");
        let disk = open
            .iter()
            .find(|t| t.rule_id == "disk.usage")
            .expect("disk ticket");
        assert_eq!(disk.occurrences, 2);
        assert_eq!(disk.last_value, 93.0);
        assert!(disk.title.contains("93"), "{}", disk.title);
        // The clear is not steady: the full path resolves it.
        let clear = send(&writer, "a0", 7, 50).await;
        assert_eq!(clear.tickets_resolved, 1);
        assert_eq!(writer.stats().quiet, quiet_before + 1);
        let quiet_before = writer.stats().quiet;
        assert_eq!(send(&writer, "a0", 8, 50).await.stored_seqs, [8]);
        assert_eq!(writer.stats().quiet, quiet_before + 1, "settled again");
        // The sweep opens a silent-agent ticket behind the writer's back: the next report
        // must resolve it, whatever the writer remembered.
        let silent = crate::sweep::sweep(
            &store,
            &engine,
            Duration::from_secs(60),
            T0 + 8 * 60_000 + 10 + 3_600_000,
        )
        .await
        .expect("sweep");
        assert_eq!(silent.silent_opened, 1);
        let back = send(&writer, "a0", 9, 50).await;
        assert_eq!(
            back.tickets_resolved, 1,
            "the silent ticket resolves: {back:?}"
        );
        assert_eq!(
            writer.stats().quiet,
            quiet_before + 1,
            "that one took the full path"
        );
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
            max_group_snapshots: 1,
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
