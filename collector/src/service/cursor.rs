//! Where the alert event log ends now: the cursor a live view starts from when it has none.

use super::{Service, ServiceResult};

impl Service {
    /// The cursor of the newest event in the log (0 when it is empty).
    pub async fn last_event_cursor(&self) -> ServiceResult<i64> {
        Ok(self.store.last_cursor().await?)
    }
}
