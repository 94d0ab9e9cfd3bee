//! Who a client certificate belongs to, remembered. Every Report call names its agent by its
//! certificate; asking the store each time costs a read per report, which at fleet rates is a
//! large share of the collector's work.
//!
//! What can change about a certificate the collector issued is only that it gets revoked. So
//! identities are remembered for [`IDENTITY_TTL`], and the store's revocation mark (how many
//! certificates are revoked, and the latest revocation time: one indexed read) is asked at
//! most every [`REVOCATION_CHECK`] by whichever call comes first; when it moved, the memory
//! empties. A certificate revoked on the command line or by another replica is thus refused
//! within about that time, whatever the fleet's size and report interval; one revoked through
//! this collector (dashboard, API) empties the memory at once.
//! Unknown certificates are not remembered, so a newly enrolled agent is known on its first
//! call; the memory is bounded and starts over when full.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::store::{Identity, Store, StoreError};

/// How long a looked-up identity is trusted while the revocation mark stays put.
pub const IDENTITY_TTL: Duration = Duration::from_secs(600);

/// How often the store's revocation mark is asked, at most.
pub const REVOCATION_CHECK: Duration = Duration::from_secs(5);

/// Identities remembered at most (about 100 bytes each).
const MAX_REMEMBERED: usize = 500_000;

/// The memory of identities by certificate fingerprint.
#[derive(Debug)]
pub struct Identities {
    known: Mutex<Known>,
    /// A call is reading the revocation mark (the others go on from memory meanwhile).
    checking: AtomicBool,
    /// How often the revocation mark is read.
    check_every: Duration,
}

impl Default for Identities {
    fn default() -> Self {
        Self::checking_every(REVOCATION_CHECK)
    }
}

#[derive(Debug, Default)]
struct Known {
    by_fingerprint: HashMap<String, (Identity, Instant)>,
    /// `Store::revocations` when the memory was last emptied.
    revocations: u64,
    /// The store's revocation mark as last read, and when.
    mark: Option<(i64, i64)>,
    checked_at: Option<Instant>,
    /// Bumped each time the memory empties: an identity read before is not kept after.
    generation: u64,
}

impl Known {
    fn forget_all(&mut self) {
        self.by_fingerprint.clear();
        self.generation = self.generation.wrapping_add(1);
    }
}

impl Identities {
    /// A memory that reads the revocation mark at most every `check_every`.
    pub fn checking_every(check_every: Duration) -> Self {
        Self {
            known: Mutex::default(),
            checking: AtomicBool::new(false),
            check_every,
        }
    }

    /// The identity of certificate `fingerprint`, from memory when it may be, else from the
    /// store.
    pub async fn lookup(
        &self,
        store: &Store,
        fingerprint: &str,
    ) -> Result<Option<Identity>, StoreError> {
        self.check_revocations(store).await?;
        let generation = {
            let mut known = self.lock();
            let revocations = store.revocations();
            if known.revocations != revocations {
                known.forget_all();
                known.revocations = revocations;
            }
            if let Some((identity, at)) = known.by_fingerprint.get(fingerprint)
                && at.elapsed() < IDENTITY_TTL
            {
                return Ok(Some(identity.clone()));
            }
            known.generation
        };
        let before = store.revocations();
        let found = store.identity(fingerprint).await?;
        // A revocation made while the store was read may not be in what it answered.
        if let Some(identity) = found.as_ref().filter(|_| store.revocations() == before) {
            let mut known = self.lock();
            if known.generation == generation {
                if known.by_fingerprint.len() >= MAX_REMEMBERED {
                    known.forget_all();
                }
                known
                    .by_fingerprint
                    .insert(fingerprint.to_owned(), (identity.clone(), Instant::now()));
            }
        }
        Ok(found)
    }

    /// Reads the store's revocation mark when it is due and no other call is reading it;
    /// empties the memory when it moved.
    async fn check_revocations(&self, store: &Store) -> Result<(), StoreError> {
        let due = self
            .lock()
            .checked_at
            .is_none_or(|at| at.elapsed() >= self.check_every);
        if !due || self.checking.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Cleared however this call ends, a cancelled one included.
        let _checking = Checking(&self.checking);
        let mark = store.revocation_mark().await?;
        let mut known = self.lock();
        if known.mark != Some(mark) {
            known.forget_all();
            known.mark = Some(mark);
        }
        known.checked_at = Some(Instant::now());
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Marks the revocation check as done when dropped.
struct Checking<'a>(&'a AtomicBool);

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{T0, store_with_agents};

    #[tokio::test]
    async fn a_revocation_by_another_process_is_seen_at_the_next_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let here = store_with_agents(dir.path(), "i.db", 1).await;
        let path = dir.path().join("i.db");
        // Another process on the same store (the CLI, another replica).
        let elsewhere = Store::open(&format!("sqlite://{}", path.display()))
            .await
            .expect("second handle");

        // Checked only once in a long while: the remembered identity is used.
        let lazy = Identities::checking_every(Duration::from_secs(3600));
        // Checked at every call.
        let eager = Identities::checking_every(Duration::ZERO);
        for memory in [&lazy, &eager] {
            let found = memory.lookup(&here, "f0").await.expect("lookup");
            assert!(!found.expect("known certificate").revoked);
        }
        assert_eq!(
            elsewhere
                .revoke_subject("a0", T0 + 5)
                .await
                .expect("revoke"),
            1
        );

        let lazy_view = lazy.lookup(&here, "f0").await.expect("lookup");
        assert!(
            !lazy_view.expect("known").revoked,
            "before its next check the memory answers without a read"
        );
        let eager_view = eager.lookup(&here, "f0").await.expect("lookup");
        assert!(
            eager_view.expect("known").revoked,
            "the moved revocation mark empties the memory"
        );
        assert_eq!(eager.lookup(&here, "nope").await.expect("lookup"), None);
    }

    #[tokio::test]
    async fn a_revocation_through_this_collector_is_seen_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_agents(dir.path(), "i.db", 1).await;
        let memory = Identities::checking_every(Duration::from_secs(3600));
        assert!(
            !memory
                .lookup(&store, "f0")
                .await
                .expect("lookup")
                .expect("known")
                .revoked
        );
        store.revoke_subject("a0", T0 + 5).await.expect("revoke");
        assert!(
            memory
                .lookup(&store, "f0")
                .await
                .expect("lookup")
                .expect("known")
                .revoked
        );
    }
}
