//! One simulated agent: its own tonic channel (its own TCP + TLS connection with its own
//! client certificate, from its own source address, kept open with HTTP/2 keepalive), and the
//! loop that sends its snapshots as the real agent's uplink does: one batch at a time, the
//! same batch again after a failure. `RESOURCE_EXHAUSTED` waits as long as the collector's
//! `grpc-retry-pushback-ms` asks (else 100–500 ms with jitter); other failures back off
//! exponentially, like the agent (500 ms doubling to 15 s, jittered).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use firstline_proto::limits;
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{ReportRequest, Snapshot};
use prost::Message;
use tokio::sync::watch;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::identities::AgentIdentity;
use crate::plan::{Mode, Plan};
use crate::snapshot::Generator;
use crate::stats::{CallOutcome, Stats};

/// The agent's batch bounds (agent/src/uplink: 64 snapshots, half the message limit).
pub const BATCH_SNAPSHOTS: usize = limits::MAX_BATCH_SNAPSHOTS;
pub const BATCH_BYTES: usize = limits::MAX_MESSAGE_BYTES / 2;
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(15);

/// A connected simulated agent.
pub struct Sim {
    pub n: usize,
    client: AgentClient<Channel>,
    health: HealthClient<Channel>,
    generator: Generator,
    plan: Arc<Plan>,
    stats: Arc<Stats>,
    rng: fastrand::Rng,
}

/// The stop signal: true once the run ends (its end, or Ctrl-C).
pub type Stop = watch::Receiver<bool>;

/// Connects agent `identity` from `source`; the connection is made now, not on first use.
pub async fn connect(
    url: &str,
    ca_pem: &str,
    identity: &AgentIdentity,
    source: Option<IpAddr>,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(&identity.cert_pem, &identity.key_pem));
    Endpoint::from_shared(url.to_owned())?
        .tls_config(tls)?
        .local_address(source)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(60))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect()
        .await
}

impl Sim {
    pub fn new(n: usize, channel: Channel, plan: Arc<Plan>, stats: Arc<Stats>) -> Self {
        let seed = plan.seed ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let generator = Generator::new(n, plan.epoch, plan.cross_share, seed);
        let health = HealthClient::new(channel.clone());
        let client = AgentClient::new(channel).max_decoding_message_size(limits::MAX_MESSAGE_BYTES);
        Self {
            n,
            client,
            health,
            generator,
            plan,
            stats,
            rng: fastrand::Rng::with_seed(seed.rotate_left(17)),
        }
    }

    /// Runs until `stop`.
    pub async fn run(mut self, mut stop: Stop) {
        if self.plan.mode == Mode::Flush && self.flush(&mut stop).await.is_none() {
            return;
        }
        self.steady(&mut stop).await;
    }

    /// One health check instead of a report (floor mode), counted as a report is; `None`
    /// when stopped first.
    async fn health_check(&mut self, stop: &mut Stop) -> Option<()> {
        let started = Instant::now();
        let answer = until(stop, self.health.check(HealthCheckRequest::default())).await?;
        let ended = Instant::now();
        self.stats.attempt(ended, ended - started);
        match answer {
            Ok(_) => self.stats.acked(&CallOutcome {
                ended,
                latency: ended - started,
                snapshots: 1,
                stored: 1,
                rejected: Vec::new(),
                resource_exhausted: 0,
            }),
            Err(status) => {
                let code = format!("{:?}", status.code());
                self.stats.error(ended, &code, status.message());
                until(stop, tokio::time::sleep(RETRY_FIRST)).await?;
            }
        }
        Some(())
    }

    /// Reports (health checks in floor mode) at the plan's pace: closed loop when the interval
    /// is zero, else the first at a random point of the interval and then every interval ±
    /// jitter.
    async fn steady(&mut self, stop: &mut Stop) {
        let interval = self.plan.interval;
        let mut next = Instant::now() + interval.mul_f64(self.rng.f64());
        loop {
            if !interval.is_zero()
                && until(stop, tokio::time::sleep_until(next.into()))
                    .await
                    .is_none()
            {
                return;
            }
            if self.plan.mode == Mode::Floor {
                if self.health_check(stop).await.is_none() {
                    return;
                }
            } else {
                let storm = self.plan.storm_now(self.n, Instant::now());
                let snapshot = self.generator.next(now_ms(), storm);
                if self.send(vec![snapshot], stop).await.is_none() {
                    return;
                }
            }
            let jitter = 1.0 + self.plan.jitter * (self.rng.f64() * 2.0 - 1.0);
            next += interval.mul_f64(jitter.max(0.0));
            // A collector slower than the pace is not paid back later with a burst.
            if let Some(floor) = Instant::now().checked_sub(interval) {
                next = next.max(floor);
            }
        }
    }

    /// Sends the backlog of an agent that was offline, oldest first, in the agent's batches;
    /// `None` when stopped before it drained.
    async fn flush(&mut self, stop: &mut Stop) -> Option<()> {
        let count = self.plan.backlog();
        let step = self.plan.backlog_step();
        let now = now_ms();
        let backlog: Vec<Snapshot> = (0..count)
            .map(|i| {
                let age = step.mul_f64((count - i) as f64);
                let at = now - i64::try_from(age.as_millis()).unwrap_or(0);
                self.generator.next(at, false)
            })
            .collect();
        let expected = backlog.len() as u64;
        let mut stored = 0;
        for batch in batches(backlog) {
            stored += self.send(batch, stop).await?.stored;
        }
        let since = Instant::now().saturating_duration_since(self.plan.start);
        self.stats.flushed(since, expected, stored);
        Some(())
    }

    /// One Report call: the same batch until it is acknowledged; `None` when stopped first.
    async fn send(&mut self, snapshots: Vec<Snapshot>, stop: &mut Stop) -> Option<CallOutcome> {
        let started = Instant::now();
        let seqs: Vec<u64> = snapshots.iter().map(|s| s.seq).collect();
        let mut request = ReportRequest {
            snapshots,
            sent_at_ms: 0,
        };
        let (mut failures, mut exhausted) = (0u32, 0u64);
        loop {
            request.sent_at_ms = now_ms();
            let t = Instant::now();
            let answer = until(stop, self.client.report(request.clone())).await?;
            let ended = Instant::now();
            self.stats.attempt(ended, ended - t);
            let status = match answer {
                Ok(ack) => {
                    let ack = ack.into_inner();
                    let stored = ack.stored_seqs.iter().filter(|s| seqs.contains(s)).count();
                    let outcome = CallOutcome {
                        ended,
                        latency: ended - started,
                        snapshots: seqs.len() as u64,
                        stored: stored as u64,
                        rejected: ack
                            .rejected
                            .into_iter()
                            .map(|r| format!("seq {}: {}", r.seq, r.reason))
                            .collect(),
                        resource_exhausted: exhausted,
                    };
                    self.stats.acked(&outcome);
                    return Some(outcome);
                }
                Err(status) => status,
            };
            let code = format!("{:?}", status.code());
            self.stats.error(ended, &code, status.message());
            failures += 1;
            let wait = if status.code() == tonic::Code::ResourceExhausted {
                exhausted += 1;
                pushback(&status).unwrap_or_else(|| Duration::from_millis(self.rng.u64(100..=500)))
            } else {
                backoff(failures, self.rng.f64())
            };
            until(stop, tokio::time::sleep(wait)).await?;
        }
    }
}

/// The backlog cut as the agent cuts its spool: at most 64 snapshots and half the message
/// limit per batch.
pub fn batches(snapshots: Vec<Snapshot>) -> Vec<Vec<Snapshot>> {
    let mut out: Vec<Vec<Snapshot>> = Vec::new();
    let mut bytes = 0;
    for s in snapshots {
        let len = s.encoded_len();
        match out.last_mut() {
            Some(b) if b.len() < BATCH_SNAPSHOTS && bytes + len <= BATCH_BYTES => {
                bytes += len;
                b.push(s);
            }
            _ => {
                bytes = len;
                out.push(vec![s]);
            }
        }
    }
    out
}

/// The wait the collector asks for in `grpc-retry-pushback-ms`, if it does.
pub fn pushback(status: &tonic::Status) -> Option<Duration> {
    let ms: u64 = status
        .metadata()
        .get("grpc-retry-pushback-ms")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_millis(ms))
}

/// Exponential backoff after `failures` failures, jittered between half and all of the step.
pub fn backoff(failures: u32, unit: f64) -> Duration {
    let step = RETRY_FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(10))
        .min(RETRY_MAX);
    step.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// Runs `f` unless `stop` turns true first.
pub async fn until<F: Future>(stop: &mut Stop, f: F) -> Option<F::Output> {
    if *stop.borrow() {
        return None;
    }
    tokio::select! {
        out = f => Some(out),
        _ = stop.wait_for(|s| *s) => None,
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_batches_hold_at_most_64() {
        let mut g = Generator::new(0, 1, 0.0, 1);
        let backlog: Vec<Snapshot> = (0..130).map(|i| g.next(i, false)).collect();
        let sizes: Vec<usize> = batches(backlog).iter().map(Vec::len).collect();
        assert_eq!(sizes, [64, 64, 2]);
        assert!(batches(Vec::new()).is_empty());
    }

    #[test]
    fn pushback_is_read_from_the_metadata() {
        let mut status = tonic::Status::resource_exhausted("busy");
        assert_eq!(pushback(&status), None);
        status
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "250".parse().expect("ascii"));
        assert_eq!(pushback(&status), Some(Duration::from_millis(250)));
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        assert_eq!(backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(30, 1.0), RETRY_MAX);
    }
}
