//! Enrollment tokens for the HTTP API (`/api/tokens`, admin only): create one (shown once) and
//! list them with their state, the same as `firstline-collector token create/list`.

use std::time::Duration;

use serde::Serialize;

use super::{Service, ServiceError, ServiceResult};
use crate::store::{CertificateRow, TokenRow};
use crate::tokens::{TokenError, create_token_with_labels};

/// A token as listed (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrollmentTokenView {
    pub hash: String,
    pub label: String,
    pub uses_left: i64,
    pub uses_total: i64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// valid, used up, expired or revoked.
    pub state: &'static str,
    pub revoked_at_ms: Option<i64>,
    /// Labels every agent enrolled with it starts with.
    pub host_labels: Vec<String>,
}

/// One page of client certificates (`GET /api/certificates`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificatePage {
    pub total: i64,
    pub offset: i64,
    pub certificates: Vec<CertificateView>,
}

/// A client certificate as listed, with its state at the time of the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateView {
    #[serde(flatten)]
    pub row: CertificateRow,
    /// valid, expired or revoked.
    pub state: &'static str,
}

/// The most certificates one call lists.
pub const MAX_CERTIFICATES_PER_PAGE: i64 = 1000;

/// A freshly created token: shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedEnrollmentToken {
    pub token: String,
    pub label: String,
    pub uses: u32,
    pub expires_at_ms: i64,
    pub host_labels: Vec<String>,
}

/// A token's state at `now_ms`: valid, used up, expired or revoked.
pub fn token_state(t: &TokenRow, now_ms: i64) -> &'static str {
    if t.revoked_at_ms.is_some() {
        "revoked"
    } else if t.expires_at_ms <= now_ms {
        "expired"
    } else if t.uses_left <= 0 {
        "used up"
    } else {
        "valid"
    }
}

impl Service {
    /// Creates an enrollment token valid for `ttl` and `uses` enrollments; agents enrolled
    /// with it start with `host_labels`.
    pub async fn create_enrollment_token(
        &self,
        label: &str,
        host_labels: &[String],
        ttl: Duration,
        uses: u32,
    ) -> ServiceResult<CreatedEnrollmentToken> {
        super::short_text("label", label, 255)?;
        let created = create_token_with_labels(self.store(), label, host_labels, ttl, uses)
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
            host_labels: created.row.host_labels,
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
                revoked_at_ms: t.revoked_at_ms,
                host_labels: t.host_labels,
            })
            .collect())
    }

    /// Revokes the enrollment token whose hash is (or starts with, 8 characters at least)
    /// `hash`; returns its state afterwards.
    pub async fn revoke_enrollment_token(
        &self,
        hash: &str,
        now_ms: i64,
    ) -> ServiceResult<EnrollmentTokenView> {
        let full = self.store().revoke_token(hash, now_ms).await?;
        tracing::info!(token = &full[..12], "enrollment token revoked");
        self.enrollment_tokens(now_ms)
            .await?
            .into_iter()
            .find(|t| t.hash == full)
            .ok_or_else(|| ServiceError::NotFound("enrollment token not found".into()))
    }

    /// Client certificates of agents and operators, newest first: `limit` (1 to
    /// [`MAX_CERTIFICATES_PER_PAGE`]) from `offset`, `kind` "agent" or "operator" or all.
    pub async fn certificates(
        &self,
        kind: Option<&str>,
        limit: i64,
        offset: i64,
        now_ms: i64,
    ) -> ServiceResult<CertificatePage> {
        if let Some(k) = kind.filter(|k| !matches!(*k, "agent" | "operator")) {
            return Err(ServiceError::Invalid(format!(
                "kind {k:?}: expected agent or operator"
            )));
        }
        if !(1..=MAX_CERTIFICATES_PER_PAGE).contains(&limit) {
            return Err(ServiceError::Invalid(format!(
                "limit {limit}: expected 1 to {MAX_CERTIFICATES_PER_PAGE}"
            )));
        }
        if offset < 0 {
            return Err(ServiceError::Invalid(format!(
                "offset {offset}: expected 0 or more"
            )));
        }
        let (rows, total) = self.store().list_certificates(kind, limit, offset).await?;
        let certificates = rows
            .into_iter()
            .map(|row| CertificateView {
                state: if row.revoked_at_ms.is_some() {
                    "revoked"
                } else if row.not_after_ms <= now_ms {
                    "expired"
                } else {
                    "valid"
                },
                row,
            })
            .collect();
        Ok(CertificatePage {
            total,
            offset,
            certificates,
        })
    }
}
