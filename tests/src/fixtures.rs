//! Store-level fixtures shared by the store, scenario and property tests.

use firstline_collector::report::Batch;
use firstline_collector::store::{CertKind, NewAgent, NewCertificate, Store, TokenRow};
use firstline_proto::v1;

/// Enrolls agent `id` (host name `hostname`) directly in the store at `at_ms`, through a
/// one-use token, as the Enroll RPC would; its certificate fingerprint is `fp-<id>`.
pub async fn enroll_agent(store: &Store, id: &str, hostname: &str, at_ms: i64) {
    let token = format!("tok-{id}");
    store
        .create_token(&TokenRow {
            token_hash: token.clone(),
            label: String::new(),
            created_at_ms: at_ms,
            expires_at_ms: at_ms + 60_000,
            uses_total: 1,
            uses_left: 1,
            revoked_at_ms: None,
            host_labels: Vec::new(),
        })
        .await
        .expect("token");
    store
        .enroll(
            &token,
            at_ms,
            &NewAgent {
                agent_id: id.into(),
                hostname: hostname.into(),
                machine_id: String::new(),
                enrolled_at_ms: at_ms,
            },
            &NewCertificate {
                fingerprint: format!("fp-{id}"),
                kind: CertKind::Agent,
                subject: id.into(),
                issued_at_ms: at_ms,
                not_after_ms: at_ms + 1,
            },
        )
        .await
        .expect("enroll");
}

/// A checked batch of snapshots as it arrives at `arrival_ms` from an agent whose clock is
/// right (it says it sent the request at that time).
pub fn batch(snapshots: Vec<v1::Snapshot>, arrival_ms: i64) -> Batch {
    Batch::from_wire(
        v1::ReportRequest {
            snapshots,
            sent_at_ms: arrival_ms,
        },
        arrival_ms,
    )
    .expect("a well-formed batch")
}

/// Builds the apt lab in `lab` with `held` packages held and fetches its lists; returns the
/// lab's apt.conf.
pub fn apt_lab(lab: &std::path::Path, held: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/apt-lab.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(lab)
        .args(held)
        .output()
        .expect("run apt-lab.sh");
    assert!(
        out.status.success(),
        "apt-lab.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let apt_conf = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let update = std::process::Command::new("apt-get")
        .args(["-qq", "update"])
        .env("APT_CONFIG", &apt_conf)
        .output()
        .expect("apt-get update");
    assert!(
        update.status.success(),
        "apt-get update: {}",
        String::from_utf8_lossy(&update.stderr)
    );
    apt_conf
}
