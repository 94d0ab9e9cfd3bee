//! "Check now": ask a host's agent, over its live channel, to run every probe and report at
//! once, and wait (bounded) until that report is stored, so the host's facts are fresh when
//! the answer comes. The live channels themselves are kept by the gRPC edge (`grpc/live.rs`);
//! this layer sees them through [`LiveAgents`], so it does not depend on how commands travel.
//! The spool-and-report path stays the path of record: a host without a live channel is
//! "offline" here and still reports on its own.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Service, ServiceError, ServiceResult};
use crate::clock::now_ms;

/// How long a check waits for the agent's answer at most.
pub const CHECK_NOW_TIMEOUT: Duration = Duration::from_secs(10);

/// What an agent answered to one "check now".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckAnswer {
    /// The triggered report was acknowledged: it carried this snapshot.
    Done { spool_epoch: u64, seq: u64 },
    /// No live channel to the agent on this collector.
    Offline,
    /// No answer in time (the channel may be half-open, or the probes slow).
    Timeout,
    /// The agent is already checking, or checked within its minimum interval.
    Busy,
    /// The agent said it could not, or the channel broke meanwhile.
    Failed(String),
}

/// A boxed future of an answer.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckAnswer> + Send + 'a>>;

/// The connected agents, as the service layer sees them.
pub trait LiveAgents: Send + Sync {
    /// Sends "check now" to `agent_id` and waits up to `timeout` for its answer.
    fn check_now<'a>(&'a self, agent_id: &'a str, timeout: Duration) -> CheckFuture<'a>;
    /// Agents with a live channel now.
    fn connected(&self) -> usize;
    /// Ends `agent_id`'s live channel, if it has one here (it was revoked); its waiting
    /// commands fail. Returns whether there was one.
    fn disconnect(&self, agent_id: &str) -> bool;
}

/// No live channel at all (a service without the gRPC edge, e.g. the CLI's local commands).
#[derive(Debug, Clone, Copy)]
pub struct NoLiveAgents;

impl LiveAgents for NoLiveAgents {
    fn check_now<'a>(&'a self, _agent_id: &'a str, _timeout: Duration) -> CheckFuture<'a> {
        Box::pin(async { CheckAnswer::Offline })
    }
    fn connected(&self) -> usize {
        0
    }
    fn disconnect(&self, _agent_id: &str) -> bool {
        false
    }
}

/// The answer of `check_now`, the same in JSON, `--json` and the gRPC message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckNowResult {
    /// `done`, `offline`, `timeout`, `busy` or `failed`.
    pub status: &'static str,
    pub agent_id: String,
    pub hostname: String,
    /// When the fresh snapshot was taken (`done`).
    pub snapshot_at_ms: Option<i64>,
    /// When the host last reported (for "offline since …").
    pub last_seen_at_ms: Option<i64>,
    /// From the request to the answer.
    pub seconds: f64,
    /// What went wrong; empty when done.
    pub detail: String,
}

impl CheckAnswer {
    /// The status word of the answer.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Done { .. } => "done",
            Self::Offline => "offline",
            Self::Timeout => "timeout",
            Self::Busy => "busy",
            Self::Failed(_) => "failed",
        }
    }

    fn detail(&self, timeout: Duration) -> String {
        match self {
            Self::Done { .. } | Self::Offline => String::new(),
            Self::Timeout => format!(
                "the agent did not answer within {}",
                humantime::format_duration(timeout)
            ),
            Self::Busy => "the agent is checking already or checked a moment ago".into(),
            Self::Failed(why) => why.clone(),
        }
    }
}

impl Service {
    /// Asks the host's agent (`host`: agent id or host name) to run every probe and report
    /// now, and waits for the report to be stored (at most [`CHECK_NOW_TIMEOUT`]).
    pub async fn check_now(&self, host: &str) -> ServiceResult<CheckNowResult> {
        let started = Instant::now();
        let agent_id = self.resolve_host(host).await?;
        // A revoked agent is not asked anything (its channel may live on another replica
        // until it reconnects and is refused).
        if self.store.host(&agent_id).await?.is_some_and(|h| h.revoked) {
            return Err(ServiceError::Conflict(format!(
                "agent {agent_id} is revoked: it must enroll again"
            )));
        }
        let answer = self.live.check_now(&agent_id, CHECK_NOW_TIMEOUT).await;
        // The store holds the report by the time the agent answers "done" (it answers after
        // the ack, and the ack follows the commit).
        let row = self.store.host(&agent_id).await?;
        let last_seen_at_ms = row.as_ref().map(|r| r.last_seen_at_ms).filter(|ms| *ms > 0);
        let snapshot_at_ms = match &answer {
            CheckAnswer::Done { .. } => last_seen_at_ms,
            _ => None,
        };
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            agent_id,
            status = answer.status(),
            seconds,
            at_ms = now_ms(),
            "check now"
        );
        Ok(CheckNowResult {
            status: answer.status(),
            hostname: row.map(|r| r.hostname).unwrap_or_default(),
            agent_id,
            snapshot_at_ms,
            last_seen_at_ms,
            seconds,
            detail: answer.detail(CHECK_NOW_TIMEOUT),
        })
    }

    /// Agents with a live channel to this collector now.
    pub fn live_agents(&self) -> usize {
        self.live.connected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_has_its_status_word_and_detail() {
        let t = Duration::from_secs(10);
        let cases = [
            (
                CheckAnswer::Done {
                    spool_epoch: 1,
                    seq: 2,
                },
                "done",
                false,
            ),
            (CheckAnswer::Offline, "offline", false),
            (CheckAnswer::Timeout, "timeout", true),
            (CheckAnswer::Busy, "busy", true),
            (CheckAnswer::Failed("x".into()), "failed", true),
        ];
        for (answer, word, has_detail) in cases {
            assert_eq!(answer.status(), word);
            assert_eq!(!answer.detail(t).is_empty(), has_detail, "{answer:?}");
        }
    }
}
