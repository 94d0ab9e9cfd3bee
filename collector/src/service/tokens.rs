//! Enrollment tokens for the HTTP API (`/api/tokens`, admin only): create one (shown once) and
//! list them with their state, the same as `firstline-collector token create/list`.

use std::time::Duration;

use serde::Serialize;

use super::{Service, ServiceError, ServiceResult};
use crate::store::TokenRow;
use crate::tokens::{TokenError, create_token};

/// A token as listed (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrollmentTokenView {
    pub hash: String,
    pub label: String,
    pub uses_left: i64,
    pub uses_total: i64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// valid, used up or expired.
    pub state: &'static str,
}

/// A freshly created token: shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedEnrollmentToken {
    pub token: String,
    pub label: String,
    pub uses: u32,
    pub expires_at_ms: i64,
}

/// A token's state at `now_ms`: valid, used up or expired.
pub fn token_state(t: &TokenRow, now_ms: i64) -> &'static str {
    if t.expires_at_ms <= now_ms {
        "expired"
    } else if t.uses_left <= 0 {
        "used up"
    } else {
        "valid"
    }
}

impl Service {
    /// Creates an enrollment token valid for `ttl` and `uses` enrollments.
    pub async fn create_enrollment_token(
        &self,
        label: &str,
        ttl: Duration,
        uses: u32,
    ) -> ServiceResult<CreatedEnrollmentToken> {
        super::short_text("label", label, 255)?;
        let created = create_token(self.store(), label, ttl, uses)
            .await
            .map_err(|e| match e {
                TokenError::Store(s) => ServiceError::from(s),
                TokenError::Random => ServiceError::Internal(e.to_string()),
                other => ServiceError::Invalid(other.to_string()),
            })?;
        Ok(CreatedEnrollmentToken {
            token: created.secret,
            label: label.to_owned(),
            uses,
            expires_at_ms: created.row.expires_at_ms,
        })
    }

    /// Every enrollment token, newest first.
    pub async fn enrollment_tokens(&self, now_ms: i64) -> ServiceResult<Vec<EnrollmentTokenView>> {
        Ok(self
            .store()
            .list_tokens()
            .await?
            .into_iter()
            .map(|t| EnrollmentTokenView {
                state: token_state(&t, now_ms),
                hash: t.token_hash,
                label: t.label,
                uses_left: t.uses_left,
                uses_total: t.uses_total,
                created_at_ms: t.created_at_ms,
                expires_at_ms: t.expires_at_ms,
            })
            .collect())
    }
}
