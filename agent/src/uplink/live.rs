//! The live channel: one long-lived bidirectional stream to the collector (`Agent/Live`), where
//! the network allows, over which the collector asks for "check now". It is an extra: the
//! spool and `Report` stay the path of record, and the agent works the same without it. The
//! stream opens with a hello (the agent's version), is kept alive by HTTP/2 keepalive on the
//! uplink's channel, and is opened again after it ends with exponential backoff and jitter
//! (1 s doubling to 5 min, times a random factor in [0.5, 1.5)).
//!
//! On `CheckNow` the reporter runs every probe at once and spools a snapshot
//! ([`CheckRequest`]); the uplink sends it like any other; once the collector acknowledged
//! it (see [`Acked`]), the answer `CommandDone` names its sequence number. A check while one
//! is running, or within the minimum interval of the last one, is answered "busy" at once, so
//! a button held down cannot make the agent spin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{AgentLive, CollectorCommand, CommandDone, LiveHello};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The first reconnect delay, doubling from there.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
/// The longest reconnect delay (before jitter).
const RECONNECT_MAX: Duration = Duration::from_secs(300);
/// A stream that stayed up this long was healthy: the next reconnect starts from the first
/// delay again.
const HEALTHY: Duration = Duration::from_secs(60);
/// How long a check waits for its snapshot to be acknowledged at most.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// The delay before reconnect attempt number `failures + 1`: 1 s doubling to 5 min, times
/// `0.5 + unit` (`unit` a random number in [0, 1), injected so tests are deterministic).
pub fn reconnect_delay(failures: u32, unit: f64) -> Duration {
    let step = RECONNECT_FIRST
        .saturating_mul(2u32.saturating_pow(failures.min(20)))
        .min(RECONNECT_MAX);
    step.mul_f64(0.5 + unit.clamp(0.0, 1.0))
}

/// Whether a check may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Run,
    /// One is running.
    Running,
    /// The last one started less than the minimum interval ago.
    TooSoon,
}

/// The rate limit of checks: at most one at a time, and one per `min_interval`.
#[derive(Debug, Clone)]
pub struct CheckLimit {
    min_interval: Duration,
    last_start: Option<Instant>,
}

impl CheckLimit {
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            last_start: None,
        }
    }

    /// Decides on a check asked for at `now`; a check that may run counts as started.
    pub fn admit(&mut self, now: Instant, running: bool) -> Admit {
        if running {
            return Admit::Running;
        }
        if self
            .last_start
            .is_some_and(|at| now.saturating_duration_since(at) < self.min_interval)
        {
            return Admit::TooSoon;
        }
        self.last_start = Some(now);
        Admit::Run
    }
}

/// The newest snapshots the collector acknowledged (stored or rejected), per the uplink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Acked {
    pub epoch: u64,
    /// The highest sequence number stored.
    pub stored: u64,
    /// The highest sequence number rejected.
    pub rejected: u64,
}

/// Whether the snapshot (`epoch`, `seq`) has left the spool: `Some(true)` stored, `Some(false)`
/// rejected, `None` not yet. The spool sends in order, so a higher one acknowledged means this
/// one was too.
pub fn settled(acked: &Acked, epoch: u64, seq: u64) -> Option<bool> {
    if acked.epoch != epoch {
        return (acked.epoch > epoch).then_some(true);
    }
    if acked.rejected == seq {
        Some(false)
    } else if acked.stored >= seq || acked.rejected > seq {
        Some(true)
    } else {
        None
    }
}

/// A snapshot of every probe, now: the reporter answers with the spooled snapshot's
/// (epoch, seq), or why it could not take one.
#[derive(Debug)]
pub struct CheckRequest {
    pub reply: oneshot::Sender<Result<(u64, u64), String>>,
}

/// Why a live stream ended.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("the collector refused the live channel: {0}")]
    Refused(#[from] tonic::Status),
    #[error("the collector closed the live channel")]
    Closed,
}

/// The live channel's task.
pub struct Live {
    channel: Channel,
    checks: mpsc::Sender<CheckRequest>,
    acked: watch::Receiver<Acked>,
    limit: CheckLimit,
    /// Told each time the channel opens: the collector is back (`Uplink::reachable`).
    reachable: Option<Arc<Notify>>,
}

impl Live {
    pub fn new(
        channel: Channel,
        checks: mpsc::Sender<CheckRequest>,
        acked: watch::Receiver<Acked>,
        min_interval: Duration,
    ) -> Self {
        Self {
            channel,
            checks,
            acked,
            limit: CheckLimit::new(min_interval),
            reachable: None,
        }
    }

    /// Tells `reachable` each time the channel opens, so the uplink's wait after failed
    /// uploads ends when the collector is back (a check asked then waits for that upload).
    pub fn telling(mut self, reachable: Arc<Notify>) -> Self {
        self.reachable = Some(reachable);
        self
    }

    /// Keeps a live stream open until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let opened = Instant::now();
            let ended = tokio::select! {
                ended = self.session() => ended,
                () = shutdown.cancelled() => return,
            };
            if opened.elapsed() >= HEALTHY {
                failures = 0;
            }
            let delay = reconnect_delay(failures, fastrand::f64());
            failures = failures.saturating_add(1);
            let retry_in = humantime::format_duration(Duration::from_millis(
                u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            ));
            match &ended {
                LiveError::Refused(status) => tracing::info!(
                    code = ?status.code(),
                    reason = status.message(),
                    failures,
                    %retry_in,
                    "live channel unavailable; reports go on through the spool"
                ),
                LiveError::Closed => {
                    tracing::info!(failures, %retry_in, "live channel closed by the collector");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// One stream, from its hello to its end.
    async fn session(&mut self) -> LiveError {
        let (tx, rx) = mpsc::channel::<AgentLive>(4);
        let hello = AgentLive {
            hello: Some(LiveHello {
                agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            }),
            done: None,
        };
        if tx.send(hello).await.is_err() {
            return LiveError::Closed;
        }
        let outbound =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
            );
        let mut client = AgentClient::new(self.channel.clone());
        let mut inbound = match client.live(outbound).await {
            Ok(r) => r.into_inner(),
            Err(status) => return LiveError::Refused(status),
        };
        tracing::info!("live channel open");
        if let Some(reachable) = &self.reachable {
            reachable.notify_one();
        }
        let mut running: Option<JoinHandle<()>> = None;
        loop {
            let command = match inbound.message().await {
                Ok(Some(command)) => command,
                Ok(None) => return LiveError::Closed,
                Err(status) => return LiveError::Refused(status),
            };
            self.handle(command, &tx, &mut running);
        }
    }

    fn handle(
        &mut self,
        command: CollectorCommand,
        tx: &mpsc::Sender<AgentLive>,
        running: &mut Option<JoinHandle<()>>,
    ) {
        let id = command.id;
        if command.check_now.is_none() {
            tracing::debug!(id, "live command not understood; ignored");
            return;
        }
        let busy = running.as_ref().is_some_and(|h| !h.is_finished());
        match self.limit.admit(Instant::now(), busy) {
            Admit::Run => {}
            refused => {
                tracing::info!(id, why = ?refused, "check now refused: busy");
                let done = CommandDone {
                    id,
                    busy: true,
                    ..CommandDone::default()
                };
                // A full queue means the collector is not reading; it will time out.
                let _ = tx.try_send(answer(done));
                return;
            }
        }
        tracing::info!(id, "check now");
        let (checks, acked, tx) = (self.checks.clone(), self.acked.clone(), tx.clone());
        *running = Some(tokio::spawn(async move {
            let done = check(id, checks, acked).await;
            if !done.error.is_empty() {
                tracing::warn!(id, error = done.error, "check now failed");
            } else {
                tracing::info!(
                    id,
                    epoch = done.spool_epoch,
                    seq = done.seq,
                    "check now done"
                );
            }
            let _ = tx.send(answer(done)).await;
        }));
    }
}

fn answer(done: CommandDone) -> AgentLive {
    AgentLive {
        hello: None,
        done: Some(done),
    }
}

/// Runs one check: a snapshot of every probe through the spool, then the wait for its ack.
async fn check(
    id: u64,
    checks: mpsc::Sender<CheckRequest>,
    mut acked: watch::Receiver<Acked>,
) -> CommandDone {
    let failed = |error: &str| CommandDone {
        id,
        error: error.to_owned(),
        ..CommandDone::default()
    };
    let (reply, stamp) = oneshot::channel();
    if checks.send(CheckRequest { reply }).await.is_err() {
        return failed("the agent is stopping");
    }
    let (epoch, seq) = match stamp.await {
        Ok(Ok(stamp)) => stamp,
        Ok(Err(why)) => return failed(&why),
        Err(_) => return failed("the agent is stopping"),
    };
    let waited = tokio::time::timeout(
        ACK_WAIT,
        acked.wait_for(|a| settled(a, epoch, seq).is_some()),
    )
    .await;
    match waited {
        Ok(Ok(a)) if settled(&a, epoch, seq) == Some(true) => CommandDone {
            id,
            spool_epoch: epoch,
            seq,
            ..CommandDone::default()
        },
        Ok(Ok(_)) => failed("the collector rejected the snapshot"),
        Ok(Err(_)) => failed("the agent is stopping"),
        Err(_) => failed("the snapshot was not acknowledged in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_from_one_second_to_five_minutes_with_jitter() {
        let secs = |f, u| reconnect_delay(f, u).as_secs_f64();
        let mid: Vec<f64> = (0..11).map(|f| secs(f, 0.5)).collect();
        assert_eq!(
            mid,
            [
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0
            ]
        );
        assert_eq!(secs(0, 0.0), 0.5);
        assert!(secs(0, 0.999) < 1.5);
        assert_eq!(secs(u32::MAX, 0.0), 150.0);
    }

    #[test]
    fn checks_run_one_at_a_time_and_not_too_often() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut limit = CheckLimit::new(Duration::from_secs(5));
        let cases = [
            (0, false, Admit::Run),
            (100, true, Admit::Running),
            (1_000, false, Admit::TooSoon),
            (4_999, false, Admit::TooSoon),
            (5_000, false, Admit::Run),
            (5_001, true, Admit::Running),
            (12_000, false, Admit::Run),
        ];
        for (ms, running, expected) in cases {
            assert_eq!(limit.admit(at(ms), running), expected, "at {ms} ms");
        }
    }

    #[test]
    fn a_snapshot_is_settled_once_it_or_a_later_one_is_acknowledged() {
        let acked = |epoch, stored, rejected| Acked {
            epoch,
            stored,
            rejected,
        };
        let cases = [
            (acked(1, 4, 0), 1, 5, None),
            (acked(1, 5, 0), 1, 5, Some(true)),
            (acked(1, 9, 0), 1, 5, Some(true)),
            (acked(1, 4, 5), 1, 5, Some(false)),
            (acked(1, 4, 6), 1, 5, Some(true)),
            (acked(2, 1, 0), 1, 5, Some(true)),
            (acked(0, 0, 0), 1, 5, None),
        ];
        for (a, epoch, seq, expected) in cases {
            assert_eq!(settled(&a, epoch, seq), expected, "{a:?} {epoch}/{seq}");
        }
    }
}
