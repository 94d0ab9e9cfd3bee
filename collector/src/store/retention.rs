//! The SQL of history retention: deleting raw snapshots, downsampling and deleting disk
//! samples, and deleting old finished tickets with their events, in bounded chunks. The policy
//! (how old is too old) is `crate::retention`'s; these functions take cutoffs in milliseconds.
//!
//! Every chunk is its own short write transaction of at most `chunk` rows per statement, and
//! the loop pauses between chunks about as long as the chunk took: on SQLite the ingest path
//! shares the one writer, and a writer waiting on the busy timeout gets in during the pause
//! instead of waiting for the whole pass.
//!
//! What stays, whatever its age:
//! - the newest snapshot of every (agent, spool epoch), which includes each agent's newest
//!   snapshot (`agents.spool_epoch`, `agents.last_seq`). Idempotency rests on two things:
//!   `agents.last_seq` (a snapshot of the current epoch is applied only when its seq is above
//!   it, and that column is never touched here) and `epoch_seen` (a snapshot of an epoch with
//!   no stored row would count as a new numbering and be applied as the newest state). Keeping
//!   one row per epoch keeps every epoch seen, so an old epoch's replay is never taken for a
//!   new one, and the newest snapshot itself stays, so replaying it is a no-op as before.
//! - open tickets (new, acknowledged, suppressed), their events, tickets that have a child
//!   ticket under them or whose parent outage is still open, and tickets with any event newer
//!   than the cutoff (a person commented on or closed it lately).
//!
//! A replay of a deleted old snapshot (an ack lost more than the retention ago): its
//! (agent, epoch, seq) is no longer known, so it is stored again as a late snapshot; it is not
//! the newest (its seq is at most `last_seq`, or its epoch is still seen), so it changes no host
//! state, no disk sample, no rule and no ticket; it is counted again in `snapshots_stored` (and
//! its dropped/rejected counters are added again), and the next pass older than its new arrival
//! time deletes it again.
//!
//! Not pruned here because they do not grow with reports: `filesystems`, `host_facts` and
//! `conditions` (one row per host and mount, kind or condition), agents, certificates, tokens,
//! silences (they grow with what people do).

use std::time::{Duration, Instant};

use super::{Store, StoreError};

/// Rows per statement (and per transaction) unless the caller says otherwise.
pub const RETENTION_CHUNK: u32 = 5000;

/// Disk samples older than the raw window are kept one per this bucket per mount.
const HOUR_MS: i64 = 3_600_000;

/// A ticket brings its events along; tickets per chunk are this fraction of the row budget.
const EVENTS_PER_TICKET: u32 = 10;

/// What one pass deleted from the tickets and their timelines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TicketsPruned {
    pub tickets: u64,
    pub events: u64,
}

/// Tickets that may go: finished before the cutoff, quiet since, not tied to an open one.
const OLD_TICKET: &str = "t.state IN ('resolved', 'closed') AND t.resolved_at_ms < $1 \
     AND NOT EXISTS (SELECT 1 FROM ticket_events r WHERE r.ticket_id = t.id AND r.at_ms >= $1) \
     AND NOT EXISTS (SELECT 1 FROM tickets c WHERE c.parent_id = t.id) \
     AND NOT EXISTS (SELECT 1 FROM tickets p WHERE p.id = t.parent_id \
                     AND p.state NOT IN ('resolved', 'closed'))";

impl Store {
    /// Deletes snapshots that arrived before `before_ms`, except the newest of each agent and
    /// spool epoch (see the module doc); returns how many went.
    pub async fn prune_snapshots(&self, before_ms: i64, chunk: u32) -> Result<u64, StoreError> {
        let sql = "DELETE FROM snapshots WHERE (agent_id, epoch, seq) IN ( \
             SELECT s.agent_id, s.epoch, s.seq FROM snapshots s WHERE s.received_at_ms < $1 \
             AND s.seq < (SELECT MAX(k.seq) FROM snapshots k \
                          WHERE k.agent_id = s.agent_id AND k.epoch = s.epoch) \
             AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.agent_id = s.agent_id \
                             AND a.spool_epoch = s.epoch AND a.last_seq = s.seq) \
             LIMIT $2)";
        self.delete_in_chunks("snapshots", sql, before_ms, chunk)
            .await
    }

    /// Thins disk samples taken before `before_ms` (rounded down to the hour, so only whole
    /// hours are thinned) to the last sample of each hour per mount; returns how many went.
    /// The last one is a real reading (used and available from the same moment) and the kept
    /// samples are evenly spaced, which is what the forecast's least-squares line wants.
    pub async fn downsample_disk_samples(
        &self,
        before_ms: i64,
        chunk: u32,
    ) -> Result<u64, StoreError> {
        let sql = "DELETE FROM disk_samples WHERE (agent_id, mount_point, at_ms) IN ( \
             SELECT d.agent_id, d.mount_point, d.at_ms FROM disk_samples d WHERE d.at_ms < $1 \
             AND EXISTS (SELECT 1 FROM disk_samples l WHERE l.agent_id = d.agent_id \
                         AND l.mount_point = d.mount_point AND l.at_ms > d.at_ms \
                         AND l.at_ms < (d.at_ms / 3600000 + 1) * 3600000) \
             LIMIT $2)";
        let hour_start = before_ms - before_ms.rem_euclid(HOUR_MS);
        self.delete_in_chunks("disk samples (downsampling)", sql, hour_start, chunk)
            .await
    }

    /// Deletes disk samples taken before `before_ms`; returns how many went.
    pub async fn prune_disk_samples(&self, before_ms: i64, chunk: u32) -> Result<u64, StoreError> {
        let sql = "DELETE FROM disk_samples WHERE (agent_id, mount_point, at_ms) IN ( \
             SELECT agent_id, mount_point, at_ms FROM disk_samples WHERE at_ms < $1 LIMIT $2)";
        self.delete_in_chunks("disk samples", sql, before_ms, chunk)
            .await
    }

    /// Deletes resolved and closed tickets that resolved before `before_ms` and have had no
    /// event since, with their events; open tickets never (see the module doc).
    pub async fn prune_tickets(
        &self,
        before_ms: i64,
        chunk: u32,
    ) -> Result<TicketsPruned, StoreError> {
        let tickets_per_chunk = i64::from((chunk / EVENTS_PER_TICKET).max(1));
        let events_sql = format!(
            "DELETE FROM ticket_events WHERE ticket_id IN ( \
             SELECT t.id FROM tickets t WHERE {OLD_TICKET} ORDER BY t.id LIMIT $2)"
        );
        let tickets_sql = format!(
            "DELETE FROM tickets WHERE id IN (SELECT t.id FROM tickets t WHERE {OLD_TICKET} \
             AND NOT EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id) \
             ORDER BY t.id LIMIT $2)"
        );
        let mut total = TicketsPruned::default();
        loop {
            let started = Instant::now();
            let mut tx = self.begin_write().await?;
            // Event writers queue on the event-log lock (PostgreSQL), so no change to one of
            // these tickets can commit between deleting its events and deleting it.
            tx.lock_event_log().await?;
            let events = sqlx::query(sqlx::AssertSqlSafe(events_sql.as_str()))
                .bind(before_ms)
                .bind(tickets_per_chunk)
                .execute(&mut *tx.tx)
                .await?
                .rows_affected();
            let tickets = sqlx::query(sqlx::AssertSqlSafe(tickets_sql.as_str()))
                .bind(before_ms)
                .bind(tickets_per_chunk)
                .execute(&mut *tx.tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            total.events += events;
            total.tickets += tickets;
            // A parent becomes deletable once its children are gone: go on until a chunk
            // finds nothing at all.
            if events == 0 && tickets == 0 {
                break;
            }
            tracing::debug!(tickets, events, "retention: ticket chunk deleted");
            pause_after(started).await;
        }
        if total.events > 0 {
            // Webhook deliveries and dead letters of events that are gone can never be sent.
            sqlx::query(
                "DELETE FROM feed_deliveries WHERE NOT EXISTS \
                 (SELECT 1 FROM ticket_events e WHERE e.cursor = feed_deliveries.event_cursor)",
            )
            .execute(&self.pool)
            .await?;
        }
        if total.tickets > 0 {
            // Help-desk links and queued syncs of tickets that are gone (their remote tickets
            // stay in the help desk, resolved like their tickets were).
            for table in ["helpdesk_links", "helpdesk_queue", "email_outbox"] {
                let sql = format!(
                    "DELETE FROM {table} WHERE NOT EXISTS \
                     (SELECT 1 FROM tickets t WHERE t.id = {table}.ticket_id)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(total)
    }

    /// Runs `sql` (binding `$1` = `before_ms`, `$2` = `chunk`) in its own transaction until
    /// it deletes fewer rows than a chunk.
    async fn delete_in_chunks(
        &self,
        what: &'static str,
        sql: &'static str,
        before_ms: i64,
        chunk: u32,
    ) -> Result<u64, StoreError> {
        let chunk = chunk.max(1);
        let mut total = 0;
        loop {
            let started = Instant::now();
            let mut tx = self.begin_write().await?;
            let deleted = sqlx::query(sql)
                .bind(before_ms)
                .bind(i64::from(chunk))
                .execute(&mut *tx.tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            total += deleted;
            if deleted < u64::from(chunk) {
                return Ok(total);
            }
            tracing::debug!(table = what, deleted, "retention: chunk deleted");
            pause_after(started).await;
        }
    }
}

/// Leaves the writer free for about as long as the last chunk held it (at least 5 ms, at most
/// a quarter second), so waiting writers get their turn between chunks.
async fn pause_after(started: Instant) {
    let pause = started
        .elapsed()
        .clamp(Duration::from_millis(5), Duration::from_millis(250));
    tokio::time::sleep(pause).await;
}
