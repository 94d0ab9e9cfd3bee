//! What the Alertmanager feed pushes on every refresh: the open tickets (new, acknowledged),
//! each with its latest event and its host's labels, in the shape of the event log's rows
//! ([`AlertEvent`]), so the feed filters and labels them like any event. Read in pages by
//! ticket id.

use super::events::{alert_from_row, alert_select};
use super::{AlertEvent, Store, StoreError};

impl Store {
    /// Open tickets with an id above `after_id`, by id, at most `limit`; each with its latest
    /// event. A ticket without any event left in the log is not listed.
    pub async fn open_alerts(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AlertEvent>, StoreError> {
        let sql = format!(
            "{} WHERE t.state IN ('new', 'acknowledged') AND t.id > $1 \
             AND e.cursor = (SELECT MAX(m.cursor) FROM ticket_events m WHERE m.ticket_id = t.id) \
             ORDER BY t.id LIMIT $2",
            alert_select()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after_id)
            .bind(i64::from(limit.max(1)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(alert_from_row).collect()
    }
}
