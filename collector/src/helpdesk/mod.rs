//! Tickets where the help desk already works: two-way sync of Firstline tickets with Request
//! Tracker (`sync.rs` over `request_tracker.rs`). Each help desk runs like a feed: its own
//! cursor into the event log, only on the replica holding the duty lease, its health in
//! `feeds` and its counters in metrics; what makes it more than a feed is the link it keeps
//! per ticket (`store/helpdesk.rs`), so each Firstline ticket has exactly one remote ticket
//! that follows it, and changes technicians make there come back. docs/helpdesk.md is the
//! operator's view.

pub mod config;
pub mod remote;
pub mod render;
pub mod request_tracker;
pub mod sync;

pub use sync::RtSync;

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::feeds::{FeedContext, Feeds, StatusBoard, without_credentials};
use crate::service::{FeedDescription, FeedDirectory, FeedHealth, FeedTestOutcome, TestFuture};
use crate::store::Store;
use config::RequestTrackerConfig;
use request_tracker::RequestTracker;

/// The feeds with the help-desk sync beside them: what the collector starts and what the
/// service lists, checks and tests as its feeds.
pub struct FeedsAndHelpdesk {
    feeds: Arc<Feeds>,
    status: Arc<StatusBoard>,
    /// Taken by `start`.
    sync: Mutex<Option<RtSync>>,
    /// A client of the same configuration, for `feeds test`.
    rt: Option<RequestTracker>,
}

impl FeedsAndHelpdesk {
    pub fn new(feeds: Arc<Feeds>, sync: Option<RtSync>) -> Result<Arc<Self>, String> {
        let rt = match &sync {
            Some(s) => Some(RequestTracker::new(s.client().config().clone())?),
            None => None,
        };
        Ok(Arc::new(Self {
            feeds,
            status: Arc::default(),
            sync: Mutex::new(sync),
            rt,
        }))
    }

    fn rt_feed() -> String {
        crate::store::sync_feed(RequestTrackerConfig::SYSTEM)
    }

    /// Starts the feeds and the sync; they run until `shutdown`.
    pub fn start(
        &self,
        store: &Store,
        duty: watch::Receiver<bool>,
        shutdown: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = self.feeds.start(store, duty.clone(), shutdown);
        let sync = self
            .sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sync) = sync {
            let ctx = FeedContext {
                store: store.clone(),
                duty,
                status: self.status.clone(),
                shutdown: shutdown.clone(),
            };
            tasks.push(tokio::spawn(sync.run(ctx)));
        }
        tasks
    }
}

impl FeedDirectory for FeedsAndHelpdesk {
    fn describe(&self) -> Vec<FeedDescription> {
        let mut out = self.feeds.describe();
        if let Some(rt) = &self.rt {
            out.push(FeedDescription {
                name: Self::rt_feed(),
                kind: "request-tracker",
                target: format!(
                    "{} (queue {})",
                    without_credentials(&rt.config().url),
                    rt.config().queue
                ),
                dead_letters: false,
            });
        }
        out
    }

    fn health(&self, feed: &str) -> FeedHealth {
        if self.rt.is_some() && feed == Self::rt_feed() {
            self.status.get(feed)
        } else {
            self.feeds.health(feed)
        }
    }

    fn test<'a>(&'a self, feed: &'a str) -> TestFuture<'a> {
        Box::pin(async move {
            let Some(rt) = self.rt.as_ref().filter(|_| feed == Self::rt_feed()) else {
                return self.feeds.test(feed).await;
            };
            let started = std::time::Instant::now();
            match rt.probe().await {
                Ok(version) => FeedTestOutcome {
                    delivered: true,
                    detail: format!(
                        "Request Tracker {version} answered in {} ms",
                        started.elapsed().as_millis()
                    ),
                },
                Err(e) => FeedTestOutcome {
                    delivered: false,
                    detail: e.to_string(),
                },
            }
        })
    }
}
