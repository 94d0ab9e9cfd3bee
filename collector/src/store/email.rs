//! What the e-mail notifications keep in the store (migration 0019): the outbox, one row per
//! event and route to be mailed, each due now, when quiet hours end, or with its route's next
//! digest. Filling the outbox from the event log moves the mailer's cursor in the same
//! transaction, so an event is mailed once per route however often the collector restarts
//! (a crash between the SMTP server's answer and the row's deletion mails it again).

use sqlx::Row;

use super::{Store, StoreError};

/// A row to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub route: String,
    pub ticket_id: i64,
    pub event_cursor: i64,
    /// Mailed with the route's digest rather than on its own.
    pub digest: bool,
    pub due_at_ms: i64,
}

/// A row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub row: OutboxRow,
    pub attempts: u32,
}

impl Store {
    /// Puts `rows` in the outbox and moves `feed`'s cursor to `cursor`, in one transaction.
    pub async fn queue_email(
        &self,
        feed: &str,
        rows: &[OutboxRow],
        cursor: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO email_outbox (route, ticket_id, event_cursor, digest, due_at_ms, \
                 attempts, created_at_ms) VALUES ($1, $2, $3, $4, $5, 0, $6)",
            )
            .bind(&r.route)
            .bind(r.ticket_id)
            .bind(r.event_cursor)
            .bind(i64::from(r.digest))
            .bind(r.due_at_ms)
            .bind(now_ms)
            .execute(&mut *tx.tx)
            .await?;
        }
        tx.set_feed_cursor(feed, cursor, now_ms).await?;
        tx.commit().await
    }

    /// Rows due at `now_ms`, oldest event first.
    pub async fn due_email(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, route, ticket_id, event_cursor, digest, due_at_ms, attempts \
             FROM email_outbox WHERE due_at_ms <= $1 ORDER BY event_cursor, id LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit.max(1)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let digest: i64 = r.try_get(4)?;
                let attempts: i64 = r.try_get(6)?;
                Ok(OutboxEntry {
                    id: r.try_get(0)?,
                    row: OutboxRow {
                        route: r.try_get(1)?,
                        ticket_id: r.try_get(2)?,
                        event_cursor: r.try_get(3)?,
                        digest: digest != 0,
                        due_at_ms: r.try_get(5)?,
                    },
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// When the next row falls due.
    pub async fn next_email_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(due_at_ms) FROM email_outbox")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// How many rows wait (metrics, `feeds list`).
    pub async fn email_backlog(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM email_outbox")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Takes rows out of the outbox: mailed, or refused for good.
    pub async fn email_done(&self, ids: &[i64]) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query("DELETE FROM email_outbox WHERE id = $1")
                .bind(*id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Puts rows off until `due_at_ms` without counting an attempt (the relay was away before
    /// their turn came).
    pub async fn put_off_email(&self, ids: &[i64], due_at_ms: i64) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query("UPDATE email_outbox SET due_at_ms = $1 WHERE id = $2")
                .bind(due_at_ms)
                .bind(*id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Puts rows off until `due_at_ms`, counting `attempts`.
    pub async fn reschedule_email(
        &self,
        ids: &[i64],
        due_at_ms: i64,
        attempts: u32,
    ) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query("UPDATE email_outbox SET due_at_ms = $1, attempts = $2 WHERE id = $3")
                .bind(due_at_ms)
                .bind(i64::from(attempts))
                .bind(*id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}
