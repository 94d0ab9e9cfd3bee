//! Tickets where the help desk already works: two-way sync of Firstline tickets with Request
//! Tracker (`sync.rs` over `request_tracker.rs`), the same sync one way with help desks and
//! chats reached through request templates (`template.rs`), and e-mail notifications
//! (`email.rs`). Each help desk runs like a feed: its own
//! cursor into the event log, only on the replica holding the duty lease, its health in
//! `feeds` and its counters in metrics; what makes it more than a feed is the link it keeps
//! per ticket (`store/helpdesk.rs`), so each Firstline ticket has exactly one remote ticket
//! that follows it, and changes technicians make there come back. docs/helpdesk.md is the
//! operator's view.

pub mod config;
pub mod email;
pub mod remote;
pub mod render;
pub mod request_tracker;
pub mod sync;
pub mod template;

pub use sync::HelpdeskSync;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::feeds::{FeedContext, Feeds, StatusBoard};
use crate::service::{FeedDescription, FeedDirectory, FeedHealth, FeedTestOutcome, TestFuture};
use crate::store::{Store, sync_feed};
use crate::tickets::lifecycle::Sla;
use config::HelpdeskConfig;
use remote::{Remote, RemoteError};

type Probe<'a> = Pin<Box<dyn Future<Output = Result<String, RemoteError>> + Send + 'a>>;
/// Starts a channel's task.
type Runner = Box<dyn FnOnce(FeedContext) -> JoinHandle<()> + Send>;

/// A help-desk channel as the directory sees it: how to describe and test it, and (until the
/// collector starts it) how to run it.
pub struct Channel {
    description: FeedDescription,
    probe: Box<dyn Fn() -> Probe<'static> + Send + Sync>,
    run: Mutex<Option<Runner>>,
}

impl Channel {
    /// The sync of one help desk.
    fn sync<R: Remote>(sync: HelpdeskSync<R>) -> Self {
        let remote = sync.remote().clone();
        let description = FeedDescription {
            name: sync.feed_name().to_owned(),
            kind: remote.kind(),
            target: remote.target(),
            dead_letters: false,
        };
        Self {
            description,
            probe: Box::new(move || {
                let remote = remote.clone();
                Box::pin(async move { remote.probe().await })
            }),
            run: Mutex::new(Some(Box::new(move |ctx| tokio::spawn(sync.run(ctx))))),
        }
    }

    /// The e-mail notifications.
    fn email(mailer: email::Mailer) -> Self {
        let mailer = Arc::new(mailer);
        let description = FeedDescription {
            name: sync_feed(email::SYSTEM),
            kind: "email",
            target: mailer.target(),
            dead_letters: false,
        };
        let probe_mailer = mailer.clone();
        Self {
            description,
            probe: Box::new(move || {
                let m = probe_mailer.clone();
                Box::pin(async move { m.probe().await })
            }),
            run: Mutex::new(Some(Box::new(move |ctx| {
                tokio::spawn(async move { mailer.run(ctx).await })
            }))),
        }
    }
}

/// The feeds with the help-desk channels beside them: what the collector starts and what the
/// service lists, checks and tests as its feeds.
pub struct FeedsAndHelpdesk {
    feeds: Arc<Feeds>,
    status: Arc<StatusBoard>,
    channels: Vec<Channel>,
}

impl FeedsAndHelpdesk {
    /// The feeds, and a channel per configured help desk.
    pub fn new(
        feeds: Arc<Feeds>,
        config: &HelpdeskConfig,
        sla: Sla,
        correlated: &[String],
        kb_dir: Option<PathBuf>,
    ) -> Result<Arc<Self>, String> {
        let mut channels = Vec::new();
        if let Some(rt) = &config.request_tracker {
            let remote = Arc::new(request_tracker::RequestTracker::new(rt.clone())?);
            channels.push(Channel::sync(HelpdeskSync::new(
                remote,
                sla,
                correlated.to_vec(),
                kb_dir.clone(),
            )));
        }
        for w in &config.webhooks {
            let remote = Arc::new(template::TemplateRemote::new(w.clone())?);
            channels.push(Channel::sync(HelpdeskSync::new(
                remote,
                sla,
                correlated.to_vec(),
                kb_dir.clone(),
            )));
        }
        if let Some(e) = &config.email {
            channels.push(Channel::email(email::Mailer::new(
                e.clone(),
                sla,
                correlated.to_vec(),
                kb_dir,
            )?));
        }
        Ok(Arc::new(Self {
            feeds,
            status: Arc::default(),
            channels,
        }))
    }

    fn channel(&self, feed: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.description.name == feed)
    }

    /// Starts the feeds and the channels; they run until `shutdown`.
    pub fn start(
        &self,
        store: &Store,
        duty: watch::Receiver<bool>,
        shutdown: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = self.feeds.start(store, duty.clone(), shutdown);
        for c in &self.channels {
            let run = c.run.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(run) = run {
                tasks.push(run(FeedContext::new(
                    store.clone(),
                    duty.clone(),
                    self.status.clone(),
                    shutdown.clone(),
                )));
            }
        }
        tasks
    }
}

impl FeedDirectory for FeedsAndHelpdesk {
    fn describe(&self) -> Vec<FeedDescription> {
        let mut out = self.feeds.describe();
        out.extend(self.channels.iter().map(|c| c.description.clone()));
        out
    }

    fn health(&self, feed: &str) -> FeedHealth {
        if self.channel(feed).is_some() {
            self.status.get(feed)
        } else {
            self.feeds.health(feed)
        }
    }

    fn test<'a>(&'a self, feed: &'a str) -> TestFuture<'a> {
        Box::pin(async move {
            let Some(channel) = self.channel(feed) else {
                return self.feeds.test(feed).await;
            };
            let started = std::time::Instant::now();
            match (channel.probe)().await {
                Ok(what) => FeedTestOutcome {
                    delivered: true,
                    detail: format!("{what} (in {} ms)", started.elapsed().as_millis()),
                },
                Err(e) => FeedTestOutcome {
                    delivered: false,
                    detail: e.to_string(),
                },
            }
        })
    }
}
