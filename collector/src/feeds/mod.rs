//! Alert feeds: every ticket event, from the durable event log, to the programs of the teams
//! that consume them — webhooks (`webhook`), Prometheus Alertmanager (`alertmanager`), NATS
//! JetStream (`nats`). (The gRPC `Watch` stream lives with the other gRPC services in
//! `grpc/watch.rs`; `/metrics` in `web/`.)
//!
//! Each feed keeps its own cursor in the store and moves it only after the events before it
//! are safely handed on (published and acknowledged, or queued as deliveries in the same
//! transaction), so a collector that stops or dies at any point loses nothing; what it may do
//! is hand on the last few events again, which receivers recognise by the event's cursor
//! (webhook header `X-Firstline-Event-Id`, NATS message id). With several replicas on one
//! PostgreSQL only the holder of the duty lease runs the feeds, so each event is delivered by
//! one of them. A feed configured for the first time starts at the end of the log: it gets
//! what happens from then on, not the history.

pub mod alertmanager;
pub mod config;
pub mod filter;
pub mod http;
pub mod nats;
pub mod payload;
pub mod signature;
mod status;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use status::StatusBoard;

use crate::clock::now_ms;
use crate::service::{FeedDescription, FeedDirectory, FeedHealth, FeedTestOutcome};
use crate::store::{Store, StoreError};
use config::{FeedsConfig, NATS_FEED};

/// How often feeds look at the log when no local commit signalled new events (events written
/// by another replica).
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// Events read from the log at a time.
pub const PAGE: u32 = 500;

/// What every feed worker needs.
#[derive(Clone)]
pub struct FeedContext {
    pub store: Store,
    /// Whether this replica holds the duty lease (see `duty.rs`).
    pub duty: watch::Receiver<bool>,
    pub status: Arc<StatusBoard>,
    pub shutdown: CancellationToken,
}

impl FeedContext {
    pub fn new(
        store: Store,
        duty: watch::Receiver<bool>,
        status: Arc<StatusBoard>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            duty,
            status,
            shutdown,
        }
    }

    /// Waits until this replica holds the duty lease; false when shutting down first.
    pub async fn until_duty(&mut self) -> bool {
        tokio::select! {
            r = self.duty.wait_for(|held| *held) => r.is_ok(),
            () = self.shutdown.cancelled() => false,
        }
    }

    /// Whether this replica holds the duty lease now.
    pub fn on_duty(&self) -> bool {
        *self.duty.borrow()
    }

    /// Sleeps until a local commit wrote events, `poll` passed, or the lease was lost;
    /// false when shutting down.
    pub async fn wait(&mut self, events: &mut watch::Receiver<u64>, poll: Duration) -> bool {
        tokio::select! {
            _ = events.changed() => true,
            () = tokio::time::sleep(poll) => true,
            _ = self.duty.wait_for(|held| !*held) => true,
            () = self.shutdown.cancelled() => false,
        }
    }

    /// Sleeps for `d` unless shutting down (then false).
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.shutdown.cancelled() => false,
        }
    }

    /// The cursor a feed goes on from: its stored one, or for a feed that never ran the end
    /// of the log now (stored at once, so a restart does not skip what came meanwhile).
    pub async fn start_cursor(&self, feed: &str) -> Result<i64, StoreError> {
        if let Some(c) = self.store.feed_cursor(feed).await? {
            return Ok(c);
        }
        let end = self.store.last_cursor().await?;
        self.store.set_feed_cursor(feed, end, now_ms()).await?;
        tracing::info!(
            feed,
            cursor = end,
            "new feed starts at the end of the event log"
        );
        Ok(end)
    }
}

/// The configured feeds of a running collector.
pub struct Feeds {
    config: FeedsConfig,
    status: Arc<StatusBoard>,
}

impl std::fmt::Debug for Feeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feeds")
            .field("feeds", &self.describe())
            .finish()
    }
}

impl Feeds {
    pub fn new(config: FeedsConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            status: Arc::default(),
        })
    }

    /// Starts one task per feed; they run until `shutdown`.
    pub fn start(
        &self,
        store: &Store,
        duty: watch::Receiver<bool>,
        shutdown: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let ctx = FeedContext::new(store.clone(), duty, self.status.clone(), shutdown.clone());
        let mut tasks = Vec::new();
        for w in &self.config.webhooks {
            tasks.push(tokio::spawn(webhook::run(w.clone(), ctx.clone())));
        }
        for a in &self.config.alertmanagers {
            tasks.push(tokio::spawn(alertmanager::run(a.clone(), ctx.clone())));
        }
        if let Some(n) = &self.config.nats {
            tasks.push(tokio::spawn(nats::run(n.clone(), ctx.clone())));
        }
        tasks
    }
}

impl FeedDirectory for Feeds {
    fn describe(&self) -> Vec<FeedDescription> {
        let mut out: Vec<FeedDescription> = self
            .config
            .webhooks
            .iter()
            .map(|w| FeedDescription {
                name: w.feed_name(),
                kind: "webhook",
                target: without_credentials(&w.url),
                dead_letters: true,
            })
            .collect();
        out.extend(self.config.alertmanagers.iter().map(|a| FeedDescription {
            name: a.feed_name(),
            kind: "alertmanager",
            target: without_credentials(&a.url),
            dead_letters: false,
        }));
        if let Some(n) = &self.config.nats {
            out.push(FeedDescription {
                name: NATS_FEED.to_owned(),
                kind: "nats",
                target: format!(
                    "{} ({}.p1..p4)",
                    without_credentials(&n.url),
                    n.subject_prefix
                ),
                dead_letters: false,
            });
        }
        out
    }

    fn health(&self, feed: &str) -> FeedHealth {
        self.status.get(feed)
    }

    fn test<'a>(&'a self, feed: &'a str) -> crate::service::TestFuture<'a> {
        Box::pin(async move {
            if let Some(w) = self.config.webhooks.iter().find(|w| w.feed_name() == feed) {
                return webhook::test(w).await;
            }
            if let Some(a) = self
                .config
                .alertmanagers
                .iter()
                .find(|a| a.feed_name() == feed)
            {
                return alertmanager::test(a).await;
            }
            if let Some(n) = self.config.nats.as_ref().filter(|_| feed == NATS_FEED) {
                return nats::test(n).await;
            }
            FeedTestOutcome {
                delivered: false,
                detail: format!("no feed {feed:?}"),
            }
        })
    }
}

/// A URL without `user:password@`, for listings and logs.
pub fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_left_out_of_listed_urls() {
        assert_eq!(
            without_credentials("https://u:p@hooks.example.com/a@b"),
            "https://hooks.example.com/a@b"
        );
        assert_eq!(
            without_credentials("nats://token@127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
        assert_eq!(
            without_credentials("http://127.0.0.1:9093"),
            "http://127.0.0.1:9093"
        );
    }
}
