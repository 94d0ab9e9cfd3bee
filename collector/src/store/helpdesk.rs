//! What the help-desk sync keeps in the store (migration 0018): for each help desk (`system`,
//! e.g. `rt`) and Firstline ticket, the link to the remote ticket, and the queue of tickets
//! whose sync is due. The link row, with the key the remote ticket carries, is written before
//! the remote ticket is created; a link without a remote id therefore means "an earlier
//! attempt may have created it: look for the key first". Taking tickets from the event log
//! into the queue moves the sync's cursor (`feed_cursors`) in the same transaction.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// A Firstline ticket's link to its remote ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpdeskLink {
    pub ticket_id: i64,
    /// What the remote ticket carries so a later attempt can find it.
    pub sync_key: String,
    /// Empty until the remote ticket is known.
    pub remote_id: String,
    /// The last event of the ticket that reached the remote ticket (or that was skipped).
    pub synced_cursor: i64,
    /// The remote ticket's status and owner as last seen (to tell a technician's change
    /// from the sync's own).
    pub remote_status: String,
    pub remote_owner: String,
    /// The last refusal that would repeat; empty when the last call went through.
    pub last_error: String,
    pub updated_at_ms: i64,
}

/// A help desk's sync state, for `helpdesk status` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HelpdeskCounts {
    /// Tickets with a remote ticket.
    pub linked: i64,
    /// Tickets waiting for their sync (new events, a retry, a hold).
    pub queued: i64,
    /// Links whose last call was refused.
    pub failing: i64,
}

/// Longest error text kept with a link.
const MAX_ERROR_CHARS: usize = 500;

const LINK_COLUMNS: &str = "ticket_id, sync_key, remote_id, synced_cursor, remote_status, \
                            remote_owner, last_error, updated_at_ms";

fn link_from_row(r: &AnyRow) -> Result<HelpdeskLink, StoreError> {
    Ok(HelpdeskLink {
        ticket_id: r.try_get(0)?,
        sync_key: r.try_get(1)?,
        remote_id: r.try_get(2)?,
        synced_cursor: r.try_get(3)?,
        remote_status: r.try_get(4)?,
        remote_owner: r.try_get(5)?,
        last_error: r.try_get(6)?,
        updated_at_ms: r.try_get(7)?,
    })
}

impl Store {
    /// Queues `tickets` for `system`'s sync, due at `now_ms` (a ticket already queued keeps
    /// its due time: a retry's backoff or a hold), and moves the sync's cursor to `cursor`, in
    /// one transaction.
    pub async fn queue_helpdesk(
        &self,
        system: &str,
        tickets: &[i64],
        cursor: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for chunk in tickets.chunks(200) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("($1, ${}, $2, 0)", i + 3))
                .collect();
            let sql = format!(
                "INSERT INTO helpdesk_queue (system, ticket_id, due_at_ms, attempts) VALUES {} \
                 ON CONFLICT (system, ticket_id) DO NOTHING",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(system)
                .bind(now_ms);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *tx.tx).await?;
        }
        tx.set_feed_cursor(&sync_feed(system), cursor, now_ms)
            .await?;
        tx.commit().await
    }

    /// Tickets whose sync is due, soonest first: `(ticket, attempts so far)`.
    pub async fn due_helpdesk(
        &self,
        system: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<(i64, u32)>, StoreError> {
        let rows = sqlx::query(
            "SELECT ticket_id, attempts FROM helpdesk_queue WHERE system = $1 AND due_at_ms <= $2 \
             ORDER BY due_at_ms, ticket_id LIMIT $3",
        )
        .bind(system)
        .bind(now_ms)
        .bind(i64::from(limit.max(1)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let attempts: i64 = r.try_get(1)?;
                Ok((r.try_get(0)?, u32::try_from(attempts).unwrap_or(u32::MAX)))
            })
            .collect()
    }

    /// When the next queued sync falls due.
    pub async fn next_helpdesk_at(&self, system: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(due_at_ms) FROM helpdesk_queue WHERE system = $1")
                .bind(system)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Puts a ticket's sync off until `due_at_ms`, counting `attempts`.
    pub async fn reschedule_helpdesk(
        &self,
        system: &str,
        ticket: i64,
        due_at_ms: i64,
        attempts: u32,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO helpdesk_queue (system, ticket_id, due_at_ms, attempts) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (system, ticket_id) DO UPDATE SET due_at_ms = excluded.due_at_ms, \
             attempts = excluded.attempts",
        )
        .bind(system)
        .bind(ticket)
        .bind(due_at_ms)
        .bind(i64::from(attempts))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes a ticket out of the queue: its sync is done.
    pub async fn helpdesk_done(&self, system: &str, ticket: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM helpdesk_queue WHERE system = $1 AND ticket_id = $2")
            .bind(system)
            .bind(ticket)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A ticket's link, if it has one.
    pub async fn helpdesk_link(
        &self,
        system: &str,
        ticket: i64,
    ) -> Result<Option<HelpdeskLink>, StoreError> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM helpdesk_links WHERE system = $1 AND ticket_id = $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(system)
            .bind(ticket)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(link_from_row)
            .transpose()
    }

    /// The link of the remote ticket `remote_id`, if one of ours.
    pub async fn helpdesk_link_by_remote(
        &self,
        system: &str,
        remote_id: &str,
    ) -> Result<Option<HelpdeskLink>, StoreError> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM helpdesk_links WHERE system = $1 AND remote_id = $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(system)
            .bind(remote_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(link_from_row)
            .transpose()
    }

    /// Records that `ticket` is about to get a remote ticket carrying `key`. A link already
    /// there (an earlier attempt's) stays as it is; returns whether one was there.
    pub async fn begin_helpdesk_link(
        &self,
        system: &str,
        ticket: i64,
        key: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO helpdesk_links (system, ticket_id, sync_key, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (system, ticket_id) DO NOTHING",
        )
        .bind(system)
        .bind(ticket)
        .bind(key)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 0)
    }

    /// Stores what the remote ticket is now: its id, status and owner, the last event of the
    /// ticket it reflects, and the link's last error.
    pub async fn set_helpdesk_synced(
        &self,
        system: &str,
        link: &HelpdeskLink,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE helpdesk_links SET remote_id = $3, synced_cursor = $4, remote_status = $5, \
             remote_owner = $6, last_error = $7, updated_at_ms = $8 WHERE system = $1 AND ticket_id = $2",
        )
        .bind(system)
        .bind(link.ticket_id)
        .bind(&link.remote_id)
        .bind(link.synced_cursor)
        .bind(&link.remote_status)
        .bind(&link.remote_owner)
        .bind(link.last_error.chars().take(MAX_ERROR_CHARS).collect::<String>())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Keeps a refusal with the link.
    pub async fn set_helpdesk_error(
        &self,
        system: &str,
        ticket: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        sqlx::query(
            "UPDATE helpdesk_links SET last_error = $3, updated_at_ms = $4 WHERE system = $1 AND ticket_id = $2",
        )
        .bind(system)
        .bind(ticket)
        .bind(error)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The sync state of `system`.
    pub async fn helpdesk_counts(&self, system: &str) -> Result<HelpdeskCounts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM helpdesk_links WHERE system = $1 AND remote_id <> ''), \
             (SELECT COUNT(*) FROM helpdesk_queue WHERE system = $1), \
             (SELECT COUNT(*) FROM helpdesk_links WHERE system = $1 AND last_error <> '')",
        )
        .bind(system)
        .fetch_one(&self.pool)
        .await?;
        Ok(HelpdeskCounts {
            linked: row.try_get(0)?,
            queued: row.try_get(1)?,
            failing: row.try_get(2)?,
        })
    }
}

/// The name of `system`'s cursor among the feeds' cursors.
pub fn sync_feed(system: &str) -> String {
    format!("helpdesk:{system}")
}

impl Store {
    /// The labels of an agent's host now (empty for an unknown agent).
    pub async fn agent_labels(&self, agent_id: &str) -> Result<Vec<String>, StoreError> {
        let labels: Option<String> =
            sqlx::query_scalar("SELECT labels FROM agents WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(super::reports::split_labels(&labels.unwrap_or_default()))
    }
}
