//! The uplink sends spooled snapshots to the collector over mutual TLS and deletes exactly what
//! the collector acknowledges. On failure it waits with exponential backoff and jitter; a
//! snapshot the collector refuses as invalid is set aside so it cannot block the queue. The
//! prost types of the agent live here and in `sampler`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use firstline_proto::limits;
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{ReportRequest, Snapshot};
use prost::Message;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity as TlsIdentity};

use crate::backoff::Backoff;
use crate::identity::{Identity, Policy};
use crate::spool::{Entry, Spool, SpoolError};
use crate::wire::UplinkDiagnosis;

/// Bytes of snapshots per request; well under the collector's message limit.
const BATCH_BYTES: u64 = (limits::MAX_MESSAGE_BYTES / 2) as u64;

/// Errors that stop the uplink from starting.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("collector URL {url:?}: {source}")]
    Endpoint {
        url: String,
        source: tonic::transport::Error,
    },
}

/// The sending half of the agent.
pub struct Uplink {
    client: AgentClient<Channel>,
    spool: Arc<Mutex<Spool>>,
    policy: watch::Sender<Policy>,
    state_dir: std::path::PathBuf,
    backoff: Backoff,
    diagnosis: Arc<Mutex<UplinkDiagnosis>>,
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

impl Uplink {
    pub fn new(
        channel: Channel,
        spool: Arc<Mutex<Spool>>,
        policy: watch::Sender<Policy>,
        state_dir: std::path::PathBuf,
        diagnosis: Arc<Mutex<UplinkDiagnosis>>,
    ) -> Self {
        Self {
            client: AgentClient::new(channel).max_decoding_message_size(limits::MAX_MESSAGE_BYTES),
            spool,
            policy,
            state_dir,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(60)),
            diagnosis,
        }
    }

    /// Sends whatever is spooled, waits for more when idle, until `shutdown`.
    pub async fn run(mut self, wake: Arc<Notify>, shutdown: CancellationToken) {
        let mut max_batch = limits::MAX_BATCH_SNAPSHOTS;
        loop {
            let batch = match self.spool_op(move |s| s.peek(max_batch, BATCH_BYTES)).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(%error, "cannot read the spool");
                    Vec::new()
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    () = wake.notified() => continue,
                    () = shutdown.cancelled() => return,
                }
            }
            match self.send(&batch).await {
                Ok(()) => {
                    max_batch = limits::MAX_BATCH_SNAPSHOTS;
                    self.backoff.reset();
                    self.record(None);
                }
                Err(status) if status.code() == Code::InvalidArgument && batch.len() > 1 => {
                    // Find the offending snapshot by sending one at a time.
                    tracing::warn!(
                        message = status.message(),
                        "batch refused; retrying one by one"
                    );
                    max_batch = 1;
                }
                Err(status) if status.code() == Code::InvalidArgument => {
                    let seq = batch[0].seq;
                    tracing::error!(
                        seq,
                        message = status.message(),
                        "collector refused a snapshot; set aside in spool/rejected"
                    );
                    if let Err(error) = self.spool_op(move |s| s.reject(seq)).await {
                        tracing::error!(%error, "cannot set the snapshot aside");
                    }
                }
                Err(status) => {
                    self.record(Some(&status));
                    let delay = self.backoff.next_delay(fastrand::f64());
                    tracing::warn!(
                        code = ?status.code(),
                        message = status.message(),
                        failures = self.backoff.failures(),
                        retry_in_ms = delay.as_millis() as u64,
                        "upload failed"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn send(&mut self, batch: &[Entry]) -> Result<(), tonic::Status> {
        let mut snapshots = Vec::with_capacity(batch.len());
        for entry in batch {
            match Snapshot::decode(entry.data.as_slice()) {
                Ok(s) => snapshots.push(s),
                Err(error) => {
                    // A damaged file (disk error): it can never be sent, so set it aside.
                    tracing::error!(seq = entry.seq, %error, "spooled snapshot unreadable; set aside");
                    let seq = entry.seq;
                    let _ = self.spool_op(move |s| s.reject(seq)).await;
                    return Ok(());
                }
            }
        }
        let ack = self
            .client
            .report(ReportRequest { snapshots })
            .await?
            .into_inner();
        let stored = ack.stored_seqs;
        let n = stored.len();
        if let Err(error) = self.spool_op(move |s| s.acknowledge(&stored)).await {
            tracing::error!(%error, "cannot delete acknowledged snapshots");
        }
        tracing::debug!(acknowledged = n, "upload acknowledged");
        if let Some(p) = ack.policy {
            self.apply_policy(Policy {
                disk_thresholds_percent: p.disk_thresholds_percent,
                heartbeat_seconds: p.heartbeat_seconds,
            });
        }
        Ok(())
    }

    /// Keeps the diagnosis that snapshots carry while uploads fail.
    fn record(&self, failure: Option<&tonic::Status>) {
        let mut d = self.diagnosis.lock().unwrap_or_else(|p| p.into_inner());
        match failure {
            None => *d = UplinkDiagnosis::default(),
            Some(status) => {
                if d.consecutive_failures == 0 {
                    d.failing_since_ms = crate::clock::now_ms();
                }
                d.consecutive_failures = d.consecutive_failures.saturating_add(1);
                d.last_code = format!("{:?}", status.code());
                d.last_error = describe(status);
            }
        }
    }

    fn apply_policy(&self, policy: Policy) {
        let valid = policy.heartbeat_seconds > 0
            && policy.disk_thresholds_percent.len() <= 16
            && policy
                .disk_thresholds_percent
                .iter()
                .all(|p| (0.0..=100.0).contains(p));
        if !valid || *self.policy.borrow() == policy {
            return;
        }
        if let Err(error) = policy.save(&self.state_dir) {
            tracing::warn!(%error, "cannot save the collector's policy");
        }
        tracing::info!(?policy, "report policy from the collector");
        self.policy.send_replace(policy);
    }

    async fn spool_op<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Spool) -> Result<T, SpoolError> + Send + 'static,
    ) -> Result<T, SpoolError> {
        with_spool(&self.spool, op).await
    }
}

/// A failure in words a technician can act on: tonic's transport errors hide the cause
/// (refused, unreachable, certificate) in their source chain.
fn describe(status: &tonic::Status) -> String {
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(512).collect()
}

/// Runs a spool operation (file I/O with fsync) off the async thread.
pub async fn with_spool<T: Send + 'static>(
    spool: &Arc<Mutex<Spool>>,
    op: impl FnOnce(&mut Spool) -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, SpoolError> {
    let spool = spool.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = spool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        op(&mut guard)
    })
    .await
    .unwrap_or_else(|join| {
        Err(SpoolError::Io {
            path: "spool".into(),
            source: std::io::Error::other(join.to_string()),
        })
    })
}
