//! `Agent/Live`: the live channel, one long-lived bidirectional stream per agent, and the
//! registry of connected agents behind "check now". The caller is the agent named by its client
//! certificate (the same check as `Agent/Report`); it opens with a hello, then answers each
//! command with a `CommandDone`. The registry is in memory: agent id → a small bounded command
//! queue and when it connected, one entry per agent (a new stream replaces the old one), at
//! most [`MAX_LIVE_AGENTS`] entries, removed when the stream ends. Nothing depends on a
//! stream being up: reports travel through `Report` only, and an agent without a stream is
//! "offline" to "check now". The service layer sees the registry through
//! [`crate::service::LiveAgents`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use firstline_proto::v1::{self, AgentLive, CheckNow, CollectorCommand, CommandDone, LiveHello};
use tokio::sync::{mpsc, oneshot};
use tonic::codegen::tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::{State, caller};
use crate::clock::now_ms;
use crate::service::{CheckAnswer, CheckFuture, CheckNowResult, LiveAgents};
use crate::store::CertKind;

/// Live channels kept at most; one more is refused with RESOURCE_EXHAUSTED (the agent backs
/// off and keeps reporting through `Report`).
pub const MAX_LIVE_AGENTS: usize = 100_000;
/// Commands queued for one agent at most; a full queue answers "busy".
const COMMAND_QUEUE: usize = 2;
/// How long the agent has to send its hello after opening the stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest agent version and error text taken from an agent.
const MAX_VERSION: usize = 64;
const MAX_ERROR: usize = 512;

/// Why a live-channel message or connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    #[error("the live channel must open with a hello")]
    NoHello,
    #[error("agent_version is at most {MAX_VERSION} bytes without control characters")]
    BadVersion,
    #[error("error is at most {MAX_ERROR} bytes")]
    BadError,
    #[error("a done answer must name a snapshot (seq > 0)")]
    NoSnapshot,
    #[error("the collector keeps at most {MAX_LIVE_AGENTS} live channels")]
    Full,
    #[error("the collector is shutting down")]
    Closed,
}

impl From<LiveError> for Status {
    fn from(e: LiveError) -> Self {
        match e {
            LiveError::Full => Status::resource_exhausted(e.to_string()),
            LiveError::Closed => Status::unavailable(e.to_string()),
            _ => Status::invalid_argument(e.to_string()),
        }
    }
}

/// Checks the opening message; returns the agent's version.
pub fn hello_of(message: Option<AgentLive>) -> Result<String, LiveError> {
    let Some(AgentLive {
        hello: Some(LiveHello { agent_version }),
        done: None,
    }) = message
    else {
        return Err(LiveError::NoHello);
    };
    if agent_version.len() > MAX_VERSION || agent_version.chars().any(char::is_control) {
        return Err(LiveError::BadVersion);
    }
    Ok(agent_version)
}

/// What an agent's answer says.
pub fn answer_of(done: &CommandDone) -> Result<CheckAnswer, LiveError> {
    if done.error.len() > MAX_ERROR {
        return Err(LiveError::BadError);
    }
    if done.busy {
        Ok(CheckAnswer::Busy)
    } else if !done.error.is_empty() {
        Ok(CheckAnswer::Failed(format!(
            "the agent says: {}",
            done.error
        )))
    } else if done.seq == 0 {
        Err(LiveError::NoSnapshot)
    } else {
        Ok(CheckAnswer::Done {
            spool_epoch: done.spool_epoch,
            seq: done.seq,
        })
    }
}

/// One connected agent.
struct Entry {
    /// Which stream this is (a reconnect replaces the entry with a new one).
    conn: u64,
    commands: mpsc::Sender<CollectorCommand>,
    since_ms: i64,
}

/// A command waiting for its answer.
struct Waiter {
    agent_id: String,
    conn: u64,
    answer: oneshot::Sender<CheckAnswer>,
}

#[derive(Default)]
struct Inner {
    agents: HashMap<String, Entry>,
    waiting: HashMap<u64, Waiter>,
    closed: bool,
}

/// The connected agents of this collector.
#[derive(Default)]
pub struct LiveRegistry {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    limit: Option<usize>,
}

impl std::fmt::Debug for LiveRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRegistry")
            .field("connected", &self.len())
            .finish_non_exhaustive()
    }
}

impl LiveRegistry {
    /// A registry of at most `limit` agents (default [`MAX_LIVE_AGENTS`]).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            limit: Some(limit),
            ..Self::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Connected agents.
    pub fn len(&self) -> usize {
        self.lock().agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When `agent_id` connected, if it is connected.
    pub fn connected_since(&self, agent_id: &str) -> Option<i64> {
        self.lock().agents.get(agent_id).map(|e| e.since_ms)
    }

    /// Registers a new stream of `agent_id`, replacing its old one (whose waiting commands
    /// fail); returns the stream's number and its command queue.
    pub fn attach(
        &self,
        agent_id: &str,
        now_ms: i64,
    ) -> Result<(u64, mpsc::Receiver<CollectorCommand>), LiveError> {
        let conn = self.next();
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let mut inner = self.lock();
        if inner.closed {
            return Err(LiveError::Closed);
        }
        let limit = self.limit.unwrap_or(MAX_LIVE_AGENTS);
        if !inner.agents.contains_key(agent_id) && inner.agents.len() >= limit {
            return Err(LiveError::Full);
        }
        let entry = Entry {
            conn,
            commands: tx,
            since_ms: now_ms,
        };
        if let Some(old) = inner.agents.insert(agent_id.to_owned(), entry) {
            fail_waiters(&mut inner, old.conn, "the agent reconnected");
        }
        Ok((conn, rx))
    }

    /// Forgets stream `conn` of `agent_id` (if it is still the current one) and fails its
    /// waiting commands.
    pub fn detach(&self, agent_id: &str, conn: u64) {
        let mut inner = self.lock();
        if inner.agents.get(agent_id).is_some_and(|e| e.conn == conn) {
            inner.agents.remove(agent_id);
        }
        fail_waiters(&mut inner, conn, "the live channel closed");
    }

    /// Ends `agent_id`'s stream (its command queue closes, so the response stream ends) and
    /// fails its waiting commands; returns whether it had one.
    pub fn disconnect(&self, agent_id: &str, why: &str) -> bool {
        let mut inner = self.lock();
        let Some(old) = inner.agents.remove(agent_id) else {
            return false;
        };
        fail_waiters(&mut inner, old.conn, why);
        true
    }

    /// Ends every stream and refuses new ones (shutdown).
    pub fn close_all(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.agents.clear();
        for (_, w) in inner.waiting.drain() {
            let _ = w
                .answer
                .send(CheckAnswer::Failed("the collector is shutting down".into()));
        }
    }

    /// Hands an agent's answer to the command waiting for it. An answer to a command of
    /// another agent, or of no waiting command, is ignored.
    pub fn answer(&self, agent_id: &str, done: &CommandDone) {
        let answer = match answer_of(done) {
            Ok(a) => a,
            Err(error) => {
                tracing::warn!(agent_id, id = done.id, %error, "live answer refused");
                CheckAnswer::Failed(error.to_string())
            }
        };
        let mut inner = self.lock();
        match inner.waiting.remove(&done.id) {
            Some(w) if w.agent_id == agent_id => {
                let _ = w.answer.send(answer);
            }
            Some(w) => {
                tracing::warn!(agent_id, id = done.id, "answer to another agent's command");
                inner.waiting.insert(done.id, w);
            }
            None => tracing::debug!(agent_id, id = done.id, "answer to no waiting command"),
        }
    }

    /// Sends "check now" to `agent_id` and waits up to `timeout` for the answer.
    pub async fn check(&self, agent_id: &str, timeout: Duration) -> CheckAnswer {
        let id = self.next();
        let (tx, rx) = oneshot::channel();
        let commands = {
            let mut inner = self.lock();
            let Some(entry) = inner.agents.get(agent_id) else {
                return CheckAnswer::Offline;
            };
            let (commands, conn) = (entry.commands.clone(), entry.conn);
            inner.waiting.insert(
                id,
                Waiter {
                    agent_id: agent_id.to_owned(),
                    conn,
                    answer: tx,
                },
            );
            commands
        };
        let command = CollectorCommand {
            id,
            check_now: Some(CheckNow {}),
        };
        let sent = commands.try_send(command);
        drop(commands);
        if let Err(error) = sent {
            self.lock().waiting.remove(&id);
            return match error {
                mpsc::error::TrySendError::Full(_) => CheckAnswer::Busy,
                mpsc::error::TrySendError::Closed(_) => CheckAnswer::Offline,
            };
        }
        tracing::debug!(agent_id, id, "check now sent");
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => CheckAnswer::Failed("the live channel closed".into()),
            Err(_) => {
                self.lock().waiting.remove(&id);
                CheckAnswer::Timeout
            }
        }
    }
}

fn fail_waiters(inner: &mut Inner, conn: u64, why: &str) {
    let ids: Vec<u64> = inner
        .waiting
        .iter()
        .filter(|(_, w)| w.conn == conn)
        .map(|(id, _)| *id)
        .collect();
    for id in ids {
        if let Some(w) = inner.waiting.remove(&id) {
            let _ = w.answer.send(CheckAnswer::Failed(why.to_owned()));
        }
    }
}

impl LiveAgents for LiveRegistry {
    fn check_now<'a>(&'a self, agent_id: &'a str, timeout: Duration) -> CheckFuture<'a> {
        Box::pin(self.check(agent_id, timeout))
    }
    fn connected(&self) -> usize {
        self.len()
    }
    fn disconnect(&self, agent_id: &str) -> bool {
        LiveRegistry::disconnect(self, agent_id, "the agent was revoked")
    }
}

/// The wire form of a check's answer.
pub fn check_now_to_wire(r: &CheckNowResult) -> v1::CheckNowResponse {
    v1::CheckNowResponse {
        status: r.status.to_owned(),
        agent_id: r.agent_id.clone(),
        hostname: r.hostname.clone(),
        snapshot_at_ms: r.snapshot_at_ms.unwrap_or(0),
        last_seen_at_ms: r.last_seen_at_ms.unwrap_or(0),
        seconds: r.seconds,
        detail: r.detail.clone(),
    }
}

/// The domain form of a check's answer (the CLI prints its serialisation, like the HTTP API).
pub fn check_now_from_wire(w: v1::CheckNowResponse) -> CheckNowResult {
    let status = match w.status.as_str() {
        "done" => "done",
        "offline" => "offline",
        "timeout" => "timeout",
        "busy" => "busy",
        _ => "failed",
    };
    let some = |ms: i64| (ms > 0).then_some(ms);
    CheckNowResult {
        status,
        agent_id: w.agent_id,
        hostname: w.hostname,
        snapshot_at_ms: some(w.snapshot_at_ms),
        last_seen_at_ms: some(w.last_seen_at_ms),
        seconds: w.seconds,
        detail: w.detail,
    }
}

/// Serves one `Live` call: checks the caller and the hello, registers the stream, reads the
/// agent's answers until it ends.
pub async fn serve(
    state: &State,
    request: Request<Streaming<AgentLive>>,
) -> Result<Response<LiveStream>, Status> {
    let agent_id = caller(state, &request, CertKind::Agent).await?;
    let mut inbound = request.into_inner();
    let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
        .await
        .map_err(|_| Status::invalid_argument(LiveError::NoHello.to_string()))??;
    let version = hello_of(first).inspect_err(|error| {
        tracing::warn!(agent_id, %error, "live channel refused");
    })?;
    let registry = state.live.clone();
    let (conn, rx) = registry.attach(&agent_id, now_ms()).inspect_err(|error| {
        tracing::warn!(agent_id, %error, "live channel refused");
    })?;
    tracing::info!(
        agent_id,
        conn,
        agent_version = version,
        connected = registry.len(),
        "live channel open"
    );
    tokio::spawn(async move {
        loop {
            match inbound.message().await {
                Ok(Some(AgentLive {
                    done: Some(done), ..
                })) => registry.answer(&agent_id, &done),
                Ok(Some(_)) => tracing::debug!(agent_id, "live message ignored"),
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(agent_id, code = ?status.code(), "live channel broke");
                    break;
                }
            }
        }
        registry.detach(&agent_id, conn);
        tracing::info!(
            agent_id,
            conn,
            connected = registry.len(),
            "live channel closed"
        );
    });
    Ok(Response::new(LiveStream { rx }))
}

/// The commands for one agent, as its response stream.
pub struct LiveStream {
    rx: mpsc::Receiver<CollectorCommand>,
}

impl Stream for LiveStream {
    type Item = Result<v1::CollectorCommand, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|c| c.map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(v: &str) -> Option<AgentLive> {
        Some(AgentLive {
            hello: Some(LiveHello {
                agent_version: v.into(),
            }),
            done: None,
        })
    }

    #[test]
    fn the_hello_is_checked() {
        assert_eq!(hello_of(hello("0.1.0")), Ok("0.1.0".into()));
        assert_eq!(hello_of(None), Err(LiveError::NoHello));
        assert_eq!(
            hello_of(Some(AgentLive {
                hello: None,
                done: Some(CommandDone::default()),
            })),
            Err(LiveError::NoHello)
        );
        assert_eq!(hello_of(hello(&"x".repeat(65))), Err(LiveError::BadVersion));
        assert_eq!(hello_of(hello("a\nb")), Err(LiveError::BadVersion));
    }

    #[test]
    fn answers_are_read_strictly() {
        let done = |seq, busy, error: &str| CommandDone {
            id: 1,
            spool_epoch: 3,
            seq,
            busy,
            error: error.into(),
        };
        let cases = [
            (
                done(7, false, ""),
                Ok(CheckAnswer::Done {
                    spool_epoch: 3,
                    seq: 7,
                }),
            ),
            (done(0, true, ""), Ok(CheckAnswer::Busy)),
            (
                done(0, false, "spool full"),
                Ok(CheckAnswer::Failed("the agent says: spool full".into())),
            ),
            (done(0, false, ""), Err(LiveError::NoSnapshot)),
            (done(1, false, &"e".repeat(513)), Err(LiveError::BadError)),
        ];
        for (message, expected) in cases {
            assert_eq!(answer_of(&message), expected, "{message:?}");
        }
    }

    #[tokio::test]
    async fn one_entry_per_agent_bounded_and_answers_reach_their_command() {
        let registry = std::sync::Arc::new(LiveRegistry::with_limit(2));
        let (c1, _rx1) = registry.attach("a", 1).expect("first");
        let (c2, mut rx2) = registry.attach("a", 2).expect("replaces");
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.connected_since("a"), Some(2));
        let (_, _rx) = registry.attach("b", 3).expect("second agent");
        assert_eq!(registry.attach("c", 4).err(), Some(LiveError::Full));
        // The replaced stream's end does not remove the new one.
        registry.detach("a", c1);
        assert_eq!(registry.len(), 2);

        let r = registry.clone();
        let agent = tokio::spawn(async move {
            let command = rx2.recv().await.expect("a command");
            // Another agent cannot answer it.
            r.answer(
                "b",
                &CommandDone {
                    id: command.id,
                    seq: 1,
                    ..CommandDone::default()
                },
            );
            r.answer(
                "a",
                &CommandDone {
                    id: command.id,
                    spool_epoch: 1,
                    seq: 9,
                    ..CommandDone::default()
                },
            );
        });
        let answer = registry.check("a", Duration::from_secs(5)).await;
        assert_eq!(
            answer,
            CheckAnswer::Done {
                spool_epoch: 1,
                seq: 9
            }
        );
        agent.await.expect("agent task");
        assert_eq!(
            registry.check("nobody", Duration::from_secs(1)).await,
            CheckAnswer::Offline
        );
        registry.detach("a", c2);
        assert_eq!(registry.len(), 1);
        registry.close_all();
        assert!(registry.is_empty());
        assert_eq!(registry.attach("a", 5).err(), Some(LiveError::Closed));
    }

    #[tokio::test]
    async fn a_revoked_agent_s_stream_ends_and_its_check_fails() {
        let registry = std::sync::Arc::new(LiveRegistry::default());
        let (_, mut rx) = registry.attach("a", 1).expect("attach");
        let r = registry.clone();
        let check = tokio::spawn(async move { r.check("a", Duration::from_secs(30)).await });
        let command = rx.recv().await.expect("the command reaches the agent");
        assert!(command.id > 0);
        assert!(registry.disconnect("a", "the agent was revoked"));
        assert_eq!(
            check.await.expect("check task"),
            CheckAnswer::Failed("the agent was revoked".into())
        );
        assert!(rx.recv().await.is_none(), "the command stream ended");
        assert!(registry.is_empty());
        assert!(!registry.disconnect("a", "again"), "nothing left to end");
    }

    #[tokio::test]
    async fn an_unanswered_command_times_out_and_is_forgotten() {
        let registry = LiveRegistry::default();
        let (_, _rx) = registry.attach("a", 1).expect("attach");
        let answer = registry.check("a", Duration::from_millis(50)).await;
        assert_eq!(answer, CheckAnswer::Timeout);
        assert!(registry.lock().waiting.is_empty());
    }
}
