//! Test fixtures shared by the collector's unit tests: a SQLite store in a temporary
//! directory with agents enrolled through the real enrollment path.

use crate::store::{CertKind, NewAgent, NewCertificate, Store, TokenRow};

/// The time the fixtures enroll at.
pub const T0: i64 = 1_800_000_000_000;

/// A store at `dir/name` with `agents` agents enrolled: agent ids `a0`.., host names `h0`..,
/// certificate fingerprints `f0`...
pub async fn store_with_agents(dir: &std::path::Path, name: &str, agents: usize) -> Store {
    let store = Store::open(&format!("sqlite://{}", dir.join(name).display()))
        .await
        .expect("store");
    store
        .create_token(&TokenRow {
            token_hash: "t".into(),
            label: String::new(),
            created_at_ms: T0,
            expires_at_ms: T0 + 1,
            uses_total: agents as i64,
            uses_left: agents as i64,
            revoked_at_ms: None,
            host_labels: Vec::new(),
        })
        .await
        .expect("token");
    for i in 0..agents {
        let agent = NewAgent {
            agent_id: format!("a{i}"),
            hostname: format!("h{i}"),
            machine_id: String::new(),
            enrolled_at_ms: T0,
        };
        let cert = NewCertificate {
            fingerprint: format!("f{i}"),
            kind: CertKind::Agent,
            subject: format!("a{i}"),
            issued_at_ms: T0,
            not_after_ms: T0 + 1,
        };
        store.enroll("t", T0, &agent, &cert).await.expect("enroll");
    }
    store
}
