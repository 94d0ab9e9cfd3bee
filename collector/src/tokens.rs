//! Enrollment tokens: random, shown once to the operator, stored only as a SHA-256 hash, with an
//! expiry, a use count and the host labels (a group) every agent enrolled with it starts with.

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

use crate::clock::now_ms;
use crate::pki::hex;
use crate::store::{Store, StoreError, TokenRow};

/// Prefix that makes a token recognisable in logs and secret scanners.
const PREFIX: &str = "flt_";

/// Errors of token creation.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the system random generator failed")]
    Random,
    #[error("uses must be between 1 and 100000, not {0}")]
    Uses(u32),
    #[error("ttl must be between 1 minute and 365 days")]
    Ttl,
    #[error("host labels: {0}")]
    Labels(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A freshly created token: the secret is returned once and never stored.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub secret: String,
    pub row: TokenRow,
}

/// The stored form of a token.
pub fn hash_token(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.trim().as_bytes()).as_ref())
}

/// Creates a token valid for `ttl` and `uses` enrollments, without host labels.
pub async fn create_token(
    store: &Store,
    label: &str,
    ttl: Duration,
    uses: u32,
) -> Result<CreatedToken, TokenError> {
    create_token_with_labels(store, label, &[], ttl, uses).await
}

/// Creates a token valid for `ttl` and `uses` enrollments; every agent enrolled with it gets
/// `host_labels`.
pub async fn create_token_with_labels(
    store: &Store,
    label: &str,
    host_labels: &[String],
    ttl: Duration,
    uses: u32,
) -> Result<CreatedToken, TokenError> {
    let host_labels = crate::labels::checked_labels(host_labels).map_err(TokenError::Labels)?;
    if !(1..=100_000).contains(&uses) {
        return Err(TokenError::Uses(uses));
    }
    if ttl < Duration::from_secs(60) || ttl > Duration::from_secs(365 * 86_400) {
        return Err(TokenError::Ttl);
    }
    let mut bytes = [0u8; 20];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TokenError::Random)?;
    let secret = format!("{PREFIX}{}", hex(&bytes));
    let now = now_ms();
    let ttl_ms = i64::try_from(ttl.as_millis()).map_err(|_| TokenError::Ttl)?;
    let row = TokenRow {
        token_hash: hash_token(&secret),
        label: label.to_owned(),
        created_at_ms: now,
        expires_at_ms: now + ttl_ms,
        uses_total: i64::from(uses),
        uses_left: i64::from(uses),
        revoked_at_ms: None,
        host_labels,
    };
    store.create_token(&row).await?;
    Ok(CreatedToken { secret, row })
}
