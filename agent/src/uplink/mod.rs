//! The uplink sends spooled snapshots to the collector over mutual TLS and deletes exactly what
//! the collector acknowledges, or rejects for good (a snapshot that would fail again is deleted
//! and counted, so it can never wedge the queue). A batch the collector refuses as a whole
//! (`INVALID_ARGUMENT`, from older collectors) is sent again one snapshot at a time. Failures
//! that can pass are retried with exponential backoff and jitter; failures that need a person
//! (a revoked certificate, a wrong URL) are retried at the longest step and logged as errors
//! with a hint. The uplink keeps the diagnosis of failures that snapshots carry meanwhile.

mod classify;
pub mod live;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firstline_proto::limits;
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{ReportAck, ReportRequest, Snapshot};
use firstline_support::errors::chain;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity as TlsIdentity};

pub use classify::{Failure, PUSHBACK, classify, pushback, pushback_delay};

use crate::backoff::Backoff;
use crate::diagnose::{Explained, explain_status};
use crate::identity::{Identity, Policy};
use crate::spool::{Entry, EntryId, SharedSpool};
use crate::wire::UplinkDiagnosis;

/// The first retry after a failure that can pass, doubling from there.
const RETRY_FIRST: Duration = Duration::from_millis(500);
/// The longest wait after failures that can pass: once the collector is back, every agent's
/// spool drains within this (jittered between half and all of it, so a fleet does not return
/// as one wave).
const RETRY_MAX: Duration = Duration::from_secs(15);
/// The wait after failures that need a person (a revoked certificate, a wrong URL).
const RETRY_PERSON: Duration = Duration::from_secs(60);

/// Bytes of snapshots per request; well under the collector's message limit.
const BATCH_BYTES: u64 = (limits::MAX_MESSAGE_BYTES / 2) as u64;

/// Errors that stop the uplink from starting.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("collector URL {url:?}")]
    Endpoint {
        url: String,
        source: tonic::transport::Error,
    },
}

/// The collector's side of the Report call, so the uplink can be driven by a script in tests.
pub trait Collector: Send {
    fn report(
        &mut self,
        request: ReportRequest,
    ) -> impl Future<Output = Result<ReportAck, tonic::Status>> + Send;
}

/// What one round of the uplink did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Nothing is spooled.
    Idle,
    /// Snapshots left the spool (stored, rejected or set aside), or the next batch changed.
    Progress,
    /// Nothing could be sent; try again after this long.
    Wait(Duration),
}

/// The sending half of the agent.
pub struct Uplink<C = AgentClient<Channel>> {
    client: C,
    spool: SharedSpool,
    policy: watch::Sender<Policy>,
    state_dir: PathBuf,
    backoff: Backoff,
    diagnosis: Arc<Mutex<UplinkDiagnosis>>,
    /// The snapshots of a batch the collector refused as a whole: sent one at a time until
    /// the queue's head is past them.
    suspects: HashSet<EntryId>,
    /// A spool operation failed this round: wait a little instead of trying again at once.
    spool_failed: bool,
    /// The newest acknowledged snapshots, for "check now" (`live`).
    acked: watch::Sender<live::Acked>,
    /// Told when the collector is known to be back (the live channel opened): a wait after
    /// failed uploads ends at once instead of running out its backoff.
    reachable: Arc<Notify>,
    /// The current wait is the backoff after the collector could not be reached, which the
    /// news that it is back may end (not a wait it asked for, nor one for a person to act).
    wait_ends_when_reachable: bool,
    /// Told when an ack says the certificate is the retiring CA's (`renew`).
    renew_now: Arc<Notify>,
}

/// Builds the mTLS channel to the collector. It connects lazily and reconnects by itself.
pub fn channel(identity: &Identity) -> Result<Channel, UplinkError> {
    let err = |source| UplinkError::Endpoint {
        url: identity.collector_url.clone(),
        source,
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&identity.ca_pem))
        .identity(TlsIdentity::from_pem(&identity.cert_pem, &identity.key_pem));
    Ok(Endpoint::from_shared(identity.collector_url.clone())
        .map_err(err)?
        .tls_config(tls)
        .map_err(err)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect_lazy())
}

impl Collector for AgentClient<Channel> {
    async fn report(&mut self, request: ReportRequest) -> Result<ReportAck, tonic::Status> {
        AgentClient::report(self, request)
            .await
            .map(tonic::Response::into_inner)
    }
}

impl Uplink {
    pub fn new(
        channel: Channel,
        spool: SharedSpool,
        policy: watch::Sender<Policy>,
        state_dir: PathBuf,
        diagnosis: Arc<Mutex<UplinkDiagnosis>>,
    ) -> Self {
        let client = AgentClient::new(channel).max_decoding_message_size(limits::MAX_MESSAGE_BYTES);
        Self::with_collector(client, spool, policy, state_dir, diagnosis)
    }
}

impl<C: Collector> Uplink<C> {
    /// An uplink that reports to `client`.
    pub fn with_collector(
        client: C,
        spool: SharedSpool,
        policy: watch::Sender<Policy>,
        state_dir: PathBuf,
        diagnosis: Arc<Mutex<UplinkDiagnosis>>,
    ) -> Self {
        Self {
            client,
            spool,
            policy,
            state_dir,
            backoff: Backoff::new(RETRY_FIRST, RETRY_MAX, RETRY_PERSON),
            diagnosis,
            suspects: HashSet::new(),
            spool_failed: false,
            acked: watch::Sender::new(live::Acked::default()),
            reachable: Arc::new(Notify::new()),
            wait_ends_when_reachable: false,
            renew_now: Arc::new(Notify::new()),
        }
    }

    /// Tells `renew_now` when the collector asks for a renewal (a CA rotation).
    pub fn renewing(mut self, renew_now: Arc<Notify>) -> Self {
        self.renew_now = renew_now;
        self
    }

    /// The newest snapshots the collector acknowledged, as they change.
    pub fn acked(&self) -> watch::Receiver<live::Acked> {
        self.acked.subscribe()
    }

    /// What tells this uplink that the collector is back (see the field).
    pub fn reachable(&self) -> Arc<Notify> {
        self.reachable.clone()
    }

    /// Sends whatever is spooled, waits for more when idle, until `shutdown`.
    pub async fn run(mut self, wake: Arc<Notify>, shutdown: CancellationToken) {
        let reachable = self.reachable.clone();
        loop {
            match self.round().await {
                Round::Progress => {}
                Round::Idle => tokio::select! {
                    () = wake.notified() => {}
                    () = shutdown.cancelled() => return,
                },
                Round::Wait(delay) if self.wait_ends_when_reachable => tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = reachable.notified() => {
                        tracing::debug!("the collector is back; sending again now");
                    }
                    () = shutdown.cancelled() => return,
                },
                Round::Wait(delay) => tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => return,
                },
            }
        }
    }

    /// Sends the oldest batch once and acts on the answer.
    pub async fn round(&mut self) -> Round {
        self.wait_ends_when_reachable = false;
        let round = self.send_oldest().await;
        if std::mem::take(&mut self.spool_failed) && round == Round::Progress {
            // A disk that refuses writes must not turn the loop into a busy one.
            return Round::Wait(self.backoff.next_delay(fastrand::f64()));
        }
        round
    }

    async fn send_oldest(&mut self) -> Round {
        let mut batch = self
            .spool
            .peek(limits::MAX_BATCH_SNAPSHOTS, BATCH_BYTES)
            .await;
        let Some(head) = batch.first().map(|e| e.id) else {
            return Round::Idle;
        };
        if self.suspects.contains(&head) {
            batch.truncate(1);
        } else {
            self.suspects.clear();
        }
        let (ids, snapshots) = self.decode(batch).await;
        if snapshots.is_empty() {
            return Round::Progress; // everything was unreadable and is set aside
        }
        let request = ReportRequest {
            snapshots,
            sent_at_ms: crate::clock::now_ms(),
        };
        match self.client.report(request).await {
            Ok(ack) => self.acknowledged(head.epoch, &ids, ack).await,
            Err(status) => self.failed(head.epoch, &ids, &status).await,
        }
    }

    /// The snapshots of a batch; entries that do not decode can never be sent and are set aside.
    async fn decode(&mut self, batch: Vec<Entry>) -> (Vec<EntryId>, Vec<Snapshot>) {
        let mut ids = Vec::with_capacity(batch.len());
        let mut snapshots = Vec::with_capacity(batch.len());
        for entry in batch {
            match crate::spool::decode_entry(&entry.data) {
                Ok(s) => {
                    ids.push(entry.id);
                    snapshots.push(s);
                }
                Err(error) => {
                    let id = entry.id;
                    tracing::error!(epoch = id.epoch, seq = id.seq, %error, "spooled snapshot does not decode; set aside");
                    if let Err(error) = self.spool.set_aside(id).await {
                        tracing::error!(error = %chain(&error), "cannot set the snapshot aside");
                        self.spool_failed = true;
                    }
                }
            }
        }
        (ids, snapshots)
    }

    /// Deletes what the collector stored or rejected for good.
    async fn acknowledged(&mut self, epoch: u64, ids: &[EntryId], ack: ReportAck) -> Round {
        let sent: HashSet<u64> = ids.iter().map(|id| id.seq).collect();
        let stored: Vec<u64> = ack
            .stored_seqs
            .into_iter()
            .filter(|s| sent.contains(s))
            .collect();
        let mut rejected = Vec::new();
        for r in ack.rejected {
            if sent.contains(&r.seq) && !stored.contains(&r.seq) && !rejected.contains(&r.seq) {
                tracing::warn!(
                    epoch,
                    seq = r.seq,
                    reason = r.reason,
                    "collector rejected a snapshot; deleted"
                );
                rejected.push(r.seq);
            }
        }
        if ack.renew_certificate {
            tracing::info!("the collector asks for a certificate renewal (CA rotation)");
            self.renew_now.notify_one();
        }
        if let Some(p) = ack.policy {
            self.apply_policy(Policy {
                disk_thresholds_percent: p.disk_thresholds_percent,
                heartbeat_seconds: p.heartbeat_seconds,
            })
            .await;
        }
        if stored.is_empty() && rejected.is_empty() {
            // An answer that takes nothing would be resent at once, for ever.
            let text = "the collector acknowledged none of the batch".to_owned();
            return self.wait(Failure::Transient, "", text, None);
        }
        let (n_stored, n_rejected) = (stored.len(), rejected.len());
        let (top_stored, top_rejected) = (
            stored.iter().copied().max().unwrap_or(0),
            rejected.iter().copied().max().unwrap_or(0),
        );
        if let Err(error) = self.spool.acknowledge(epoch, stored).await {
            tracing::error!(error = %chain(&error), "cannot delete acknowledged snapshots");
            self.spool_failed = true;
        }
        self.discard(epoch, rejected).await;
        self.note_acked(epoch, top_stored, top_rejected);
        tracing::debug!(
            epoch,
            stored = n_stored,
            rejected = n_rejected,
            "upload acknowledged"
        );
        self.backoff.reset();
        self.record(None);
        Round::Progress
    }

    async fn failed(&mut self, epoch: u64, ids: &[EntryId], status: &tonic::Status) -> Round {
        let failure = classify(status.code());
        if failure == Failure::Transient
            && let Some(asked) = pushback(status)
        {
            // A busy collector said when to come back: that is the wait, not the backoff
            // (which is for a collector that cannot say).
            let delay = pushback_delay(asked, fastrand::f64());
            tracing::info!(
                epoch,
                snapshots = ids.len(),
                retry_in_ms = delay.as_millis() as u64,
                reason = status.message(),
                "collector busy; sending again when it asked"
            );
            return Round::Wait(delay);
        }
        if failure != Failure::Refused {
            let explained = explain_status(status, &crate::identity::ca_path(&self.state_dir));
            let code = format!("{:?}", status.code());
            let hint = explained.hint.or_else(|| {
                (failure == Failure::Misconfigured).then(|| {
                    format!(
                        "the server does not take Firstline reports ({code}): check collector_url \
                         in {}",
                        crate::identity::identity_path(&self.state_dir).display()
                    )
                })
            });
            return self.wait(failure, &code, explained.error, hint);
        }
        if ids.len() > 1 {
            tracing::warn!(
                reason = status.message(),
                snapshots = ids.len(),
                "batch refused; sending it one by one"
            );
            self.suspects = ids.iter().copied().collect();
        } else if let Some(id) = ids.first() {
            tracing::warn!(
                epoch,
                seq = id.seq,
                reason = status.message(),
                "collector rejected a snapshot; deleted"
            );
            self.discard(epoch, vec![id.seq]).await;
            self.note_acked(epoch, 0, id.seq);
        }
        Round::Progress
    }

    /// Tells "check now" which snapshots left the spool (the highest stored and rejected).
    fn note_acked(&self, epoch: u64, stored: u64, rejected: u64) {
        self.acked.send_modify(|a| {
            if a.epoch != epoch {
                *a = live::Acked {
                    epoch,
                    ..live::Acked::default()
                };
            }
            a.stored = a.stored.max(stored);
            a.rejected = a.rejected.max(rejected);
        });
    }

    async fn discard(&mut self, epoch: u64, seqs: Vec<u64>) {
        if seqs.is_empty() {
            return;
        }
        if let Err(error) = self.spool.discard_rejected(epoch, seqs).await {
            tracing::error!(error = %chain(&error), "cannot delete rejected snapshots");
            self.spool_failed = true;
        }
    }

    /// Records a failure, logs it once per attempt, and says how long to wait.
    fn wait(&mut self, failure: Failure, code: &str, error: String, hint: Option<String>) -> Round {
        let explained = Explained { error, hint };
        self.record(Some((code, &explained)));
        let unit = fastrand::f64();
        self.wait_ends_when_reachable = failure == Failure::Transient;
        let delay = match failure {
            Failure::Transient | Failure::Refused => self.backoff.next_delay(unit),
            Failure::Credentials | Failure::Misconfigured => self.backoff.next_max_delay(unit),
        };
        let failures = self.backoff.failures();
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let retry_in = humantime::format_duration(Duration::from_millis(millis));
        let hint = explained.hint.as_deref().unwrap_or("");
        let error = explained.error.as_str();
        if failure == Failure::Transient && explained.hint.is_none() {
            tracing::warn!(code, error, failures, %retry_in, "upload failed");
        } else {
            tracing::error!(code, error, hint, failures, %retry_in, "upload failed; retrying until fixed");
        }
        Round::Wait(delay)
    }

    /// Keeps the diagnosis that snapshots carry while uploads fail.
    fn record(&self, failure: Option<(&str, &Explained)>) {
        let mut d = self.diagnosis.lock().unwrap_or_else(|p| p.into_inner());
        match failure {
            None => *d = UplinkDiagnosis::default(),
            Some((code, explained)) => {
                if d.consecutive_failures == 0 {
                    d.failing_since_ms = crate::clock::now_ms();
                }
                d.consecutive_failures = d.consecutive_failures.saturating_add(1);
                d.last_code = code.to_owned();
                d.last_error = explained.text().chars().take(512).collect();
            }
        }
    }

    async fn apply_policy(&self, policy: Policy) {
        let valid = policy.heartbeat_seconds > 0
            && policy.disk_thresholds_percent.len() <= 16
            && policy
                .disk_thresholds_percent
                .iter()
                .all(|p| (0.0..=100.0).contains(p));
        if !valid || *self.policy.borrow() == policy {
            return;
        }
        let (saved, dir) = (policy.clone(), self.state_dir.clone());
        if let Err(error) = firstline_support::blocking::run(move || saved.save(&dir)).await {
            tracing::warn!(error = %chain(&error), "cannot save the collector's policy");
        }
        tracing::info!(
            disk_thresholds_percent = ?policy.disk_thresholds_percent,
            heartbeat_seconds = policy.heartbeat_seconds,
            "report policy from the collector"
        );
        self.policy.send_replace(policy);
    }
}
