//! Who a client certificate belongs to, remembered for a few seconds. Every Report call names
//! its agent by its certificate; asking the store each time costs a read per report, which at
//! fleet rates is a large share of the collector's work. An identity is kept for
//! [`IDENTITY_TTL`], so a certificate revoked on the command line or by another replica is
//! refused within that time (the revocation is in the store at once; this only delays
//! noticing it); one revoked through this collector (dashboard, API) empties the memory, so it
//! is refused at once.
//! Unknown certificates are not remembered, so a newly enrolled agent is known on its first
//! call; the memory is bounded and starts over when full.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::{Identity, Store, StoreError};

/// How long a looked-up identity is trusted without asking the store again.
pub const IDENTITY_TTL: Duration = Duration::from_secs(5);

/// Identities remembered at most (about 100 bytes each).
const MAX_REMEMBERED: usize = 500_000;

/// The memory of identities by certificate fingerprint.
#[derive(Debug, Default)]
pub struct Identities {
    known: Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    by_fingerprint: HashMap<String, (Identity, Instant)>,
    /// `Store::revocations` when the memory was last emptied.
    revocations: u64,
}

impl Identities {
    /// The identity of certificate `fingerprint`, from memory when fresh, else from the store.
    pub async fn lookup(
        &self,
        store: &Store,
        fingerprint: &str,
    ) -> Result<Option<Identity>, StoreError> {
        {
            let mut known = self.lock();
            let revocations = store.revocations();
            if known.revocations != revocations {
                known.by_fingerprint.clear();
                known.revocations = revocations;
            }
            if let Some((identity, at)) = known.by_fingerprint.get(fingerprint)
                && at.elapsed() < IDENTITY_TTL
            {
                return Ok(Some(identity.clone()));
            }
        }
        let before = store.revocations();
        let found = store.identity(fingerprint).await?;
        // A revocation made while the store was read may not be in what it answered.
        if let Some(identity) = found.as_ref().filter(|_| store.revocations() == before) {
            let mut known = self.lock();
            if known.by_fingerprint.len() >= MAX_REMEMBERED {
                known.by_fingerprint.clear();
            }
            known
                .by_fingerprint
                .insert(fingerprint.to_owned(), (identity.clone(), Instant::now()));
        }
        Ok(found)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}
