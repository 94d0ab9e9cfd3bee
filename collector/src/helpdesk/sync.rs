//! The sync of tickets with one help desk (`Remote`: Request Tracker, or a templated
//! webhook). While this replica holds the duty lease, one task reads
//! the event log after the sync's cursor and queues the tickets those events touched
//! (`Store::queue_helpdesk`, cursor moved in the same transaction); then it reconciles each
//! due ticket with its remote ticket, and (two-way help desks) every `poll` it searches the
//! help desk for tickets technicians changed there. Below, RT stands for any help desk.
//!
//! Reconciling a ticket: a ticket without an RT ticket gets one when it is open, passes the
//! filter, is under no silence and is not a host ticket under an outage (the outage's RT
//! ticket lists its hosts; a host ticket of a correlated rule first waits `correlated_hold`,
//! so an outage forming meanwhile becomes one RT ticket). The link, with the key the subject
//! carries, is stored before RT is called; when a link without an RT id is found (the
//! collector stopped between the call and its answer), RT is searched for the key first, so
//! restarts and retries never create a second RT ticket. A linked ticket's new events become
//! RT comments, priority updates, and resolve/reopen status changes, one call per event with
//! the link's cursor moved after each. Events the sync itself wrote (the RT user's
//! resolutions, its notes) are not sent back.
//!
//! From RT: a ticket resolved (or rejected, deleted) there resolves the Firstline ticket; a
//! ticket taken or given to a user assigns it; a resolved ticket reopened there reopens it;
//! the actor in the timeline is `rt:<user>`, the RT user who made the change. Notes the syncs
//! write (`helpdesk:<system>`) are sent to no help desk.
//!
//! Failures: an answer worth retrying (RT away, 5xx, 429) puts the ticket off with backoff;
//! a refusal that would repeat is kept on the link, noted once on the ticket's timeline and
//! counted; a refused create waits for the ticket's next event, a refused event is passed
//! over so the ones after it still go.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::sync::Arc;

use super::remote::{Remote, RemoteChange, RemoteError};
use super::render::{self, TicketView};
use crate::clock::now_ms;
use crate::feeds::{FeedContext, PAGE, POLL_EVERY};
use crate::store::{EventFilter, FLEET, HelpdeskLink, Store, StoreError, sync_feed};
use crate::tickets::lifecycle::Sla;
use crate::tickets::{EventKind, Ticket, TicketAction, TicketEvent, TicketState};

/// The prefix of the actor of the notes a sync writes on a ticket's timeline
/// (`helpdesk:rt`).
pub const SYNC_ACTOR_PREFIX: &str = "helpdesk:";
/// The prefix of the actor of a change made in RT (`rt:bob`).
pub const RT_ACTOR_PREFIX: &str = "rt:";
/// Due tickets reconciled per round.
const DUE_BATCH: u32 = 32;
/// A ticket's events sent per reconciliation; the rest follow at once in the next one.
const EVENTS_PER_TICKET: u32 = 200;

/// Failed attempts after which a ticket's timeline says the help desk cannot be reached.
const NOTE_AFTER_ATTEMPTS: u32 = 3;

/// The sync of one help desk.
pub struct HelpdeskSync<R> {
    remote: Arc<R>,
    system: String,
    /// The actor of its notes.
    actor: String,
    feed: String,
    poll_feed: String,
    sla: Sla,
    /// Rules whose host tickets may become an outage.
    correlated: Vec<String>,
    kb_dir: Option<PathBuf>,
}

/// What reconciling a ticket came to.
enum Outcome {
    Done,
    /// Look again at this time (a hold, a silence, more events).
    Later(i64),
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl<R: Remote> HelpdeskSync<R> {
    pub fn new(remote: Arc<R>, sla: Sla, correlated: Vec<String>, kb_dir: Option<PathBuf>) -> Self {
        let system = remote.settings().system.clone();
        Self {
            feed: sync_feed(&system),
            poll_feed: format!("{}:poll", sync_feed(&system)),
            actor: format!("{SYNC_ACTOR_PREFIX}{system}"),
            system,
            remote,
            sla,
            correlated,
            kb_dir,
        }
    }

    /// The sync's name among the feeds.
    pub fn feed_name(&self) -> &str {
        &self.feed
    }

    pub fn remote(&self) -> &Arc<R> {
        &self.remote
    }

    fn two_way(&self) -> bool {
        self.remote.actor_prefix().is_some()
    }

    /// Whether an event came from a sync (its notes) or from this help desk (its users'
    /// changes): such events are not sent to it.
    fn is_own(&self, actor: &str) -> bool {
        is_own(actor, self.remote.actor_prefix())
    }

    /// Runs until `ctx.shutdown`, syncing only while this replica holds the duty lease.
    pub async fn run(self, mut ctx: FeedContext) {
        let mut signal = ctx.store.event_signal();
        'duty: while ctx.until_duty().await {
            let mut cursor = match ctx.start_cursor(&self.feed).await {
                Ok(c) => c,
                Err(error) => {
                    tracing::warn!(feed = self.feed, %error, "help-desk sync cannot read its cursor; trying again");
                    if !ctx.sleep(POLL_EVERY).await {
                        break;
                    }
                    continue;
                }
            };
            tracing::info!(
                feed = self.feed,
                cursor,
                target = self.remote.target(),
                "{} sync running",
                self.remote.label()
            );
            let mut next_poll = Instant::now();
            while ctx.on_duty() && !ctx.shutdown.is_cancelled() {
                let wait = match self.round(&ctx, &mut cursor, &mut next_poll).await {
                    Ok(wait) => wait,
                    Err(error) => {
                        tracing::warn!(feed = self.feed, %error, "help-desk sync round failed; trying again");
                        ctx.status.failed(&self.feed, &error.to_string());
                        POLL_EVERY
                    }
                };
                if !ctx.wait(&mut signal, wait).await {
                    break 'duty;
                }
            }
        }
        tracing::info!(feed = self.feed, "{} sync stopped", self.remote.label());
    }

    async fn round(
        &self,
        ctx: &FeedContext,
        cursor: &mut i64,
        next_poll: &mut Instant,
    ) -> Result<Duration, StoreError> {
        self.queue_new(ctx, cursor).await?;
        crate::telemetry::feed_lag(&self.feed, ctx.store.events_after(*cursor).await?);
        self.reconcile_due(ctx).await?;
        if self.two_way() && Instant::now() >= *next_poll {
            match self.poll_remote(&ctx.store).await {
                Ok(()) => {}
                Err(SyncError::Store(e)) => return Err(e),
                Err(SyncError::Remote(error)) => {
                    tracing::warn!(feed = self.feed, %error, "cannot search the help desk for changes; trying again at the next poll");
                    ctx.status.failed(&self.feed, &error.to_string());
                    crate::telemetry::feed_failed(&self.feed);
                }
            }
            *next_poll = Instant::now() + self.remote.settings().poll;
        }
        let now = now_ms();
        let due_in = ctx
            .store
            .next_helpdesk_at(&self.system)
            .await?
            .map_or(POLL_EVERY, |at| ms_until(at, now));
        Ok(due_in
            .min(next_poll.saturating_duration_since(Instant::now()))
            .min(POLL_EVERY))
    }

    /// Queues the tickets of the events after `cursor`, page by page.
    async fn queue_new(&self, ctx: &FeedContext, cursor: &mut i64) -> Result<(), StoreError> {
        loop {
            let page = ctx
                .store
                .events_since(*cursor, &EventFilter::default(), PAGE)
                .await?;
            let Some(last) = page.last().map(|a| a.event.cursor) else {
                return Ok(());
            };
            // The channels' own notes make no work: they are sent to no help desk, and a note
            // of a refusal must not bring the refused call straight back.
            let mut tickets: Vec<i64> = page
                .iter()
                .filter(|a| !a.event.actor.starts_with(SYNC_ACTOR_PREFIX))
                .map(|a| a.ticket.id)
                .collect();
            tickets.sort_unstable();
            tickets.dedup();
            ctx.store
                .queue_helpdesk(&self.system, &tickets, last, now_ms())
                .await?;
            *cursor = last;
            if page.len() < PAGE as usize || !ctx.on_duty() || ctx.shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// Reconciles every due ticket, one at a time (RT is one server; order per ticket matters).
    async fn reconcile_due(&self, ctx: &FeedContext) -> Result<(), StoreError> {
        loop {
            let due = ctx
                .store
                .due_helpdesk(&self.system, now_ms(), DUE_BATCH)
                .await?;
            let full = due.len() >= DUE_BATCH as usize;
            for (ticket, attempts) in due {
                if !ctx.on_duty() || ctx.shutdown.is_cancelled() {
                    return Ok(());
                }
                match self.reconcile(&ctx.store, ticket).await {
                    Ok(Outcome::Done) => ctx.store.helpdesk_done(&self.system, ticket).await?,
                    Ok(Outcome::Later(at)) => {
                        ctx.store
                            .reschedule_helpdesk(&self.system, ticket, at, 0)
                            .await?;
                    }
                    Err(SyncError::Store(e)) => return Err(e),
                    Err(SyncError::Remote(e)) => self.failed(ctx, ticket, attempts, e).await?,
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Keeps a failed call: another attempt later, or (a refusal that would repeat) the error
    /// on the link and the ticket's timeline, until the ticket's next event.
    async fn failed(
        &self,
        ctx: &FeedContext,
        ticket: i64,
        attempts: u32,
        error: RemoteError,
    ) -> Result<(), StoreError> {
        let config = self.remote.settings();
        ctx.status.failed(&self.feed, &error.to_string());
        crate::telemetry::feed_failed(&self.feed);
        match error {
            RemoteError::Transient { error, retry_after } => {
                let delay = crate::feeds::webhook::retry_delay(
                    config.retry_initial,
                    config.retry_max,
                    attempts,
                    0.5 + fastrand::f64(),
                    retry_after,
                );
                tracing::warn!(feed = self.feed, ticket, attempt = attempts + 1, %error, retry_in_ms = delay.as_millis(), "help-desk call failed; will retry");
                let at =
                    now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                if attempts + 1 == NOTE_AFTER_ATTEMPTS {
                    let note = format!(
                        "{} could not be reached {NOTE_AFTER_ATTEMPTS} times ({error}); still trying",
                        self.remote.label()
                    );
                    self.note(&ctx.store, ticket, &note).await?;
                }
                ctx.store
                    .reschedule_helpdesk(&self.system, ticket, at, attempts.saturating_add(1))
                    .await
            }
            RemoteError::Permanent { error } => {
                tracing::error!(feed = self.feed, ticket, %error, "the help desk refused the sync of a ticket; it waits for the ticket's next event");
                let noted = ctx
                    .store
                    .helpdesk_link(&self.system, ticket)
                    .await?
                    .is_some_and(|l| l.last_error == error);
                if !noted {
                    ctx.store
                        .set_helpdesk_error(&self.system, ticket, &error, now_ms())
                        .await?;
                    let note = format!("{} refused the sync: {error}", self.remote.label());
                    self.note(&ctx.store, ticket, &note).await?;
                }
                ctx.store.helpdesk_done(&self.system, ticket).await
            }
        }
    }

    /// Brings one ticket's RT ticket up to date.
    async fn reconcile(&self, store: &Store, id: i64) -> Result<Outcome, SyncError> {
        let Some(ticket) = store.ticket(id).await? else {
            return Ok(Outcome::Done);
        };
        let link = store.helpdesk_link(&self.system, id).await?;
        match link {
            Some(link) if !link.remote_id.is_empty() => self.follow(store, ticket, link).await,
            link => self.open(store, ticket, link.is_some()).await,
        }
    }

    /// Creates the RT ticket of a ticket that has none yet, when it should have one.
    async fn open(
        &self,
        store: &Store,
        ticket: Ticket,
        attempted: bool,
    ) -> Result<Outcome, SyncError> {
        let config = self.remote.settings();
        let now = now_ms();
        let active = matches!(ticket.state, TicketState::New | TicketState::Acknowledged);
        if ticket.parent_id.is_some() || !active {
            return Ok(Outcome::Done);
        }
        let labels = store.agent_labels(&ticket.agent_id).await?;
        let probe = crate::store::AlertEvent {
            event: TicketEvent::default(),
            ticket: ticket.clone(),
            labels: labels.clone(),
        };
        if !config.filter.matches(&probe) {
            return Ok(Outcome::Done);
        }
        if let Some(until) = self.silenced_until(store, &ticket, &labels, now).await? {
            tracing::debug!(
                feed = self.feed,
                ticket = ticket.id,
                until,
                "ticket under a silence: its remote ticket waits"
            );
            return Ok(Outcome::Later(until));
        }
        if ticket.agent_id != FLEET && self.correlated.contains(&ticket.rule_id) {
            let hold_until = ticket.opened_at_ms.saturating_add(
                i64::try_from(config.correlated_hold.as_millis()).unwrap_or(i64::MAX),
            );
            if now < hold_until {
                return Ok(Outcome::Later(hold_until));
            }
        }
        let events = store.ticket_events_after(ticket.id, 0, 5000).await?;
        let view = self.view(store, ticket, labels, &events).await?;
        let key = render::sync_key(&config.tag, view.ticket.id);
        let existed = store
            .begin_helpdesk_link(&self.system, view.ticket.id, &key, now)
            .await?
            || attempted;
        let found = if existed {
            self.remote.find(&key, &view).await?
        } else {
            None
        };
        let adopted = found.is_some();
        let remote = match found {
            Some(r) => r,
            None => self.remote.create(&view, &key).await?,
        };
        let link = HelpdeskLink {
            ticket_id: view.ticket.id,
            sync_key: key,
            remote_id: remote.id.clone(),
            synced_cursor: events.last().map_or(0, |e| e.cursor),
            remote_status: remote.status,
            remote_owner: remote.owner,
            last_error: String::new(),
            updated_at_ms: now,
        };
        store
            .set_helpdesk_synced(&self.system, &link, now_ms())
            .await?;
        crate::telemetry::feed_delivered(&self.feed);
        crate::telemetry::helpdesk_opened(
            &self.feed,
            now_ms().saturating_sub(view.ticket.opened_at_ms),
        );
        tracing::info!(
            feed = self.feed,
            ticket = view.ticket.id,
            remote_ticket = remote.id,
            adopted,
            "remote ticket linked"
        );
        let label = self.remote.label();
        let note = if adopted {
            format!("{label} ticket #{} found again and linked", remote.id)
        } else {
            format!("{label} ticket #{} created", remote.id)
        };
        self.note(store, view.ticket.id, &note).await?;
        Ok(Outcome::Done)
    }

    /// Sends a linked ticket's new events to its RT ticket.
    async fn follow(
        &self,
        store: &Store,
        ticket: Ticket,
        mut link: HelpdeskLink,
    ) -> Result<Outcome, SyncError> {
        let events = store
            .ticket_events_after(ticket.id, link.synced_cursor, EVENTS_PER_TICKET)
            .await?;
        if events.is_empty() {
            return Ok(Outcome::Done);
        }
        let full = events.len() >= EVENTS_PER_TICKET as usize;
        let labels = store.agent_labels(&ticket.agent_id).await?;
        let view = self.view(store, ticket, labels, &[]).await?;
        for e in &events {
            if !self.is_own(&e.actor) {
                match self.remote.apply(&view, e, &mut link).await {
                    Ok(()) => {
                        link.last_error.clear();
                        crate::telemetry::feed_delivered(&self.feed);
                    }
                    // A refusal of this event would repeat: it is kept and noted, and the
                    // events after it still go.
                    Err(RemoteError::Permanent { error }) => {
                        tracing::error!(feed = self.feed, ticket = view.ticket.id, event = e.cursor, %error, "the help desk refused an event of a ticket; going on with the next");
                        crate::telemetry::feed_failed(&self.feed);
                        if link.last_error != error {
                            let note = format!("{} refused the sync: {error}", self.remote.label());
                            self.note(store, view.ticket.id, &note).await?;
                        }
                        link.last_error = error;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            link.synced_cursor = e.cursor;
            store
                .set_helpdesk_synced(&self.system, &link, now_ms())
                .await?;
        }
        Ok(if full {
            Outcome::Later(now_ms())
        } else {
            Outcome::Done
        })
    }

    /// Searches RT for tickets changed since the last search and applies what technicians
    /// did to the linked ones.
    async fn poll_remote(&self, store: &Store) -> Result<(), SyncError> {
        let started = now_ms();
        let since = store
            .feed_cursor(&self.poll_feed)
            .await?
            .unwrap_or_else(|| started.saturating_sub(3_600_000));
        for remote in self.remote.changed_since(since).await? {
            let Some(mut link) = store
                .helpdesk_link_by_remote(&self.system, &remote.id)
                .await?
            else {
                continue;
            };
            for change in self.remote.changes(&remote, &link) {
                self.take_over(store, &link, &remote.id, change).await?;
            }
            if link.remote_status != remote.status || link.remote_owner != remote.owner {
                link.remote_status = remote.status;
                link.remote_owner = remote.owner;
                store
                    .set_helpdesk_synced(&self.system, &link, now_ms())
                    .await?;
            }
        }
        store
            .set_feed_cursor(&self.poll_feed, started, now_ms())
            .await?;
        Ok(())
    }

    /// Applies one RT change to the Firstline ticket, as the RT user who made it.
    async fn take_over(
        &self,
        store: &Store,
        link: &HelpdeskLink,
        rt_id: &str,
        change: RemoteChange,
    ) -> Result<(), SyncError> {
        let Some(ticket) = store.ticket(link.ticket_id).await? else {
            return Ok(());
        };
        let open = matches!(
            ticket.state,
            TicketState::New | TicketState::Acknowledged | TicketState::Suppressed
        );
        let label = self.remote.label();
        let (action, field) = match change {
            RemoteChange::Resolved if open => (
                TicketAction::Resolve(format!("resolved in {label} #{rt_id}")),
                "Status",
            ),
            RemoteChange::Reopened if !open => (
                TicketAction::Reopen(format!("reopened in {label} #{rt_id}")),
                "Status",
            ),
            RemoteChange::Taken(owner) if open && ticket.assignee != owner => {
                (TicketAction::Assign(owner), "Owner")
            }
            _ => return Ok(()),
        };
        let who = self
            .remote
            .changed_by(rt_id, field)
            .await?
            .unwrap_or_else(|| "unknown".to_owned());
        let prefix = self.remote.actor_prefix().unwrap_or(RT_ACTOR_PREFIX);
        let actor: String = format!("{prefix}{who}").chars().take(255).collect();
        let mut tx = store.begin_write().await?;
        match tx
            .ticket_action(ticket.id, &action, &actor, now_ms(), &self.sla)
            .await
        {
            Ok(kind) => {
                tx.commit().await?;
                tracing::info!(
                    feed = self.feed,
                    ticket = ticket.id,
                    remote_ticket = rt_id,
                    actor,
                    event = kind.as_str(),
                    "ticket changed in the help desk"
                );
            }
            Err(StoreError::Conflict(why)) => {
                tracing::info!(
                    feed = self.feed,
                    ticket = ticket.id,
                    remote_ticket = rt_id,
                    why,
                    "a change made in the help desk does not apply to the ticket"
                );
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// A note on the ticket's timeline by the sync (never sent back to RT).
    async fn note(&self, store: &Store, ticket: i64, text: &str) -> Result<(), StoreError> {
        note(store, ticket, &self.actor, text, &self.sla).await
    }

    /// When the silence covering the ticket's host, labels or rule ends, if one does now.
    async fn silenced_until(
        &self,
        store: &Store,
        t: &Ticket,
        labels: &[String],
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(store
            .current_silences(now)
            .await?
            .iter()
            .filter(|s| {
                s.starts_at_ms <= now
                    && s.matcher
                        .covers(&t.agent_id, &t.hostname, labels, &t.rule_id)
            })
            .map(|s| s.ends_at_ms)
            .max())
    }

    async fn view(
        &self,
        store: &Store,
        ticket: Ticket,
        labels: Vec<String>,
        events: &[TicketEvent],
    ) -> Result<TicketView, StoreError> {
        let linked = if ticket.linked_hosts > 0 {
            store.linked_tickets(ticket.id).await?
        } else {
            Vec::new()
        };
        let opened_detail = events
            .iter()
            .find(|e| e.kind == EventKind::Opened)
            .map(|e| e.detail.clone())
            .unwrap_or_default();
        let kb_markdown =
            crate::kb::article(&ticket.kb, self.kb_dir.as_deref()).unwrap_or_default();
        Ok(TicketView {
            ticket,
            labels,
            linked,
            opened_detail,
            kb_markdown,
            dashboard_url: self.remote.settings().dashboard_url.clone(),
        })
    }
}

/// A note on a ticket's timeline by a help-desk channel (`actor`: `helpdesk:<name>`); such
/// notes go to no help desk. A ticket that is gone takes no note.
pub async fn note(
    store: &Store,
    ticket: i64,
    actor: &str,
    text: &str,
    sla: &Sla,
) -> Result<(), StoreError> {
    let text: String = text.chars().take(crate::tickets::MAX_ACTION_TEXT).collect();
    let mut tx = store.begin_write().await?;
    match tx
        .ticket_action(ticket, &TicketAction::Comment(text), actor, now_ms(), sla)
        .await
    {
        Ok(_) => tx.commit().await,
        Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether an event came from a sync (its notes) or from the help desk whose users' actors
/// start with `prefix`.
pub fn is_own(actor: &str, prefix: Option<&str>) -> bool {
    actor.starts_with(SYNC_ACTOR_PREFIX) || prefix.is_some_and(|p| actor.starts_with(p))
}

/// P1..P4 as an index into the configured priorities (anything else as P4).
pub fn priority_index(priority: u32) -> usize {
    usize::try_from(priority.clamp(1, 4) - 1).unwrap_or(3)
}

fn ms_until(at: i64, now: i64) -> Duration {
    Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_syncs_own_events_are_not_sent_back() {
        assert!(is_own("helpdesk:rt", Some("rt:")));
        assert!(is_own("helpdesk:jira", None));
        assert!(is_own("rt:bob", Some("rt:")));
        // What an RT user did goes to the other help desks.
        assert!(!is_own("rt:bob", None));
        assert!(!is_own("", Some("rt:")));
        assert!(!is_own("alice", Some("rt:")));
    }

    #[test]
    fn priorities_map_onto_the_configured_four() {
        assert_eq!(priority_index(1), 0);
        assert_eq!(priority_index(4), 3);
        assert_eq!(priority_index(0), 0);
        assert_eq!(priority_index(9), 3);
    }
}
