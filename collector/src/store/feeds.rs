//! What the alert feeds keep in the store (migration 0011): each feed's cursor into the event
//! log, and the deliveries a webhook still owes. Taking events from the log into deliveries
//! and moving the cursor happen in one transaction, so a collector that dies at any point
//! neither skips an event nor queues one twice; a delivery is deleted once the receiver
//! accepted it, retried with its next attempt time otherwise, and kept as a dead letter after
//! its last attempt, until replayed.

use sqlx::Row;

use super::events::{alert_from_row_at, alert_select};
use super::{AlertEvent, Store, StoreError};

/// A delivery that is due, with its event.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub attempts: u32,
    pub alert: AlertEvent,
}

/// A delivery given up on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterRow {
    pub feed: String,
    pub event_cursor: i64,
    pub attempts: u32,
    pub last_error: String,
    pub failed_at_ms: i64,
    /// The event, unless retention removed it since.
    pub alert: Option<AlertEvent>,
}

/// One feed's deliveries by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedCounts {
    pub pending: i64,
    pub dead: i64,
}

/// Longest error text kept with a delivery.
const MAX_ERROR_CHARS: usize = 500;

impl Store {
    /// The feed's cursor, `None` before it ever ran.
    pub async fn feed_cursor(&self, feed: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT cursor FROM feed_cursors WHERE feed = $1")
                .bind(feed)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every feed's cursor.
    pub async fn feed_cursors(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT feed, cursor FROM feed_cursors ORDER BY feed")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Moves the feed's cursor forward (never back).
    pub async fn set_feed_cursor(
        &self,
        feed: &str,
        cursor: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        tx.set_feed_cursor(feed, cursor, now_ms).await?;
        tx.commit().await
    }

    /// Queues `events` (cursors) for delivery to `feed` and moves its cursor to `cursor`, in
    /// one transaction. An event already queued stays as it is.
    pub async fn queue_deliveries(
        &self,
        feed: &str,
        events: &[i64],
        cursor: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for chunk in events.chunks(200) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("($1, ${}, 'pending', $2, $2)", i + 3))
                .collect();
            let sql = format!(
                "INSERT INTO feed_deliveries (feed, event_cursor, state, next_at_ms, created_at_ms) \
                 VALUES {} ON CONFLICT (feed, event_cursor) DO NOTHING",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(feed)
                .bind(now_ms);
            for c in chunk {
                q = q.bind(*c);
            }
            q.execute(&mut *tx.tx).await?;
        }
        tx.set_feed_cursor(feed, cursor, now_ms).await?;
        tx.commit().await
    }

    /// The feed's pending deliveries whose next attempt is due, oldest event first.
    pub async fn due_deliveries(
        &self,
        feed: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT d.attempts, x.* FROM feed_deliveries d JOIN ({}) x ON x.cursor = d.event_cursor \
             WHERE d.feed = $1 AND d.state = 'pending' AND d.next_at_ms <= $2 \
             ORDER BY d.event_cursor LIMIT $3",
            alert_select()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(feed)
            .bind(now_ms)
            .bind(i64::from(limit.max(1)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let attempts: i64 = r.try_get(0)?;
                Ok(Delivery {
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    alert: alert_from_row_at(r, 1)?,
                })
            })
            .collect()
    }

    /// When the feed's next pending delivery is due, if it has one.
    pub async fn next_delivery_at(&self, feed: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_at_ms) FROM feed_deliveries WHERE feed = $1 AND state = 'pending'",
        )
        .bind(feed)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The receiver took it: the delivery is done.
    pub async fn delivery_done(&self, feed: &str, event_cursor: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM feed_deliveries WHERE feed = $1 AND event_cursor = $2")
            .bind(feed)
            .bind(event_cursor)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An attempt failed: try again at `retry_at_ms`, or keep it as a dead letter (`None`).
    pub async fn delivery_failed(
        &self,
        feed: &str,
        event_cursor: i64,
        error: &str,
        retry_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let (state, next) = match retry_at_ms {
            Some(at) => ("pending", at),
            None => ("dead", now_ms),
        };
        sqlx::query(
            "UPDATE feed_deliveries SET attempts = attempts + 1, state = $3, next_at_ms = $4, \
             last_error = $5, failed_at_ms = $6 WHERE feed = $1 AND event_cursor = $2",
        )
        .bind(feed)
        .bind(event_cursor)
        .bind(state)
        .bind(next)
        .bind(error)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Dead letters, newest first; one feed's or all.
    pub async fn dead_letters(
        &self,
        feed: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeadLetterRow>, StoreError> {
        let sql = format!(
            "SELECT d.feed, d.event_cursor, d.attempts, d.last_error, d.failed_at_ms, x.* \
             FROM feed_deliveries d LEFT JOIN ({}) x ON x.cursor = d.event_cursor \
             WHERE d.state = 'dead' AND ($1 = '' OR d.feed = $1) \
             ORDER BY d.failed_at_ms DESC, d.event_cursor DESC LIMIT $2",
            alert_select()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(feed.unwrap_or(""))
            .bind(i64::from(limit.max(1)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let attempts: i64 = r.try_get(2)?;
                let present: Option<i64> = r.try_get(5)?;
                Ok(DeadLetterRow {
                    feed: r.try_get(0)?,
                    event_cursor: r.try_get(1)?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    last_error: r.try_get(3)?,
                    failed_at_ms: r.try_get(4)?,
                    alert: match present {
                        Some(_) => Some(alert_from_row_at(r, 5)?),
                        None => None,
                    },
                })
            })
            .collect()
    }

    /// Queues dead letters again with their attempts reset: one (`Some(event_cursor)`) or all
    /// of the feed. Returns how many.
    pub async fn replay_dead_letters(
        &self,
        feed: &str,
        event_cursor: Option<i64>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE feed_deliveries SET state = 'pending', attempts = 0, next_at_ms = $3 \
             WHERE feed = $1 AND state = 'dead' AND ($2 = 0 OR event_cursor = $2)",
        )
        .bind(feed)
        .bind(event_cursor.unwrap_or(0))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Pending and dead deliveries per feed.
    pub async fn feed_counts(&self) -> Result<Vec<(String, FeedCounts)>, StoreError> {
        let rows = sqlx::query(
            "SELECT feed, SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) FROM feed_deliveries GROUP BY feed",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let pending: Option<i64> = r.try_get(1)?;
                let dead: Option<i64> = r.try_get(2)?;
                Ok((
                    r.try_get(0)?,
                    FeedCounts {
                        pending: pending.unwrap_or(0),
                        dead: dead.unwrap_or(0),
                    },
                ))
            })
            .collect()
    }

    /// How many events the log holds after `cursor` (a feed's lag).
    pub async fn events_after(&self, cursor: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM ticket_events WHERE cursor > $1")
                .bind(cursor)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

impl super::WriteTx {
    pub(super) async fn set_feed_cursor(
        &mut self,
        feed: &str,
        cursor: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO feed_cursors (feed, cursor, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (feed) DO UPDATE SET cursor = CASE WHEN excluded.cursor > feed_cursors.cursor \
             THEN excluded.cursor ELSE feed_cursors.cursor END, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(feed)
        .bind(cursor)
        .bind(now_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
