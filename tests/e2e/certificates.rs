//! Agents' certificates over their life: renewal with the current certificate (no token), its
//! bounds (too soon, revoked), and a running agent that renews before expiry and keeps
//! reporting after its first certificate has expired.

use std::time::{Duration, SystemTime};

use firstline_agent::identity::Identity;
use firstline_agent::renew::{RenewError, renew_once, validity};
use firstline_agent::uplink::channel;
use firstline_collector::clock::now_ms;
use firstline_collector::store::CountedTable;
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{ReportRequest, Snapshot};
use firstline_tests::inproc::InProcess;
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::{wait_for, wait_until};
use tonic::Code;

const LIMIT: Duration = Duration::from_secs(60);

async fn report(identity: &Identity, seq: u64) -> Result<(), tonic::Status> {
    let snapshot = Snapshot {
        seq,
        taken_at_ms: now_ms(),
        hostname: "renewing".into(),
        ..Default::default()
    };
    AgentClient::new(channel(identity).expect("channel"))
        .report(ReportRequest {
            snapshots: vec![snapshot],
            sent_at_ms: now_ms(),
        })
        .await
        .map(|_| ())
}

fn refusal(result: Result<Identity, RenewError>) -> tonic::Status {
    match result {
        Err(RenewError::Refused(status)) => status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_renews_with_its_certificate_and_renewals_are_bounded() {
    let c = InProcess::start_configured(|config| {
        config.certificate_validity = Duration::from_secs(60);
    })
    .await;
    let identity = c.enroll("renewing").await;
    let certificates = c
        .store
        .count_rows(CountedTable::Certificates)
        .await
        .expect("count");

    // Right after enrollment: too soon (a quarter of the validity must pass).
    let status = refusal(renew_once(&identity, channel(&identity).expect("channel")).await);
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("renew again in"), "{status:?}");
    let wait_ms: u64 = status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("pushback header");
    assert!((1..=15_000).contains(&wait_ms), "{wait_ms}");
    tokio::time::sleep(Duration::from_millis(wait_ms + 100)).await;

    let renewed = renew_once(&identity, channel(&identity).expect("channel"))
        .await
        .expect("renewal");
    assert_eq!(renewed.agent_id, identity.agent_id);
    assert_ne!(renewed.key_pem, identity.key_pem, "a new key pair");
    assert_ne!(renewed.cert_pem, identity.cert_pem);
    let (_, not_after) = validity(&renewed.cert_pem).expect("validity");
    let left = not_after.duration_since(SystemTime::now()).expect("valid");
    assert!(
        left > Duration::from_secs(50),
        "a full new validity: {left:?}"
    );
    assert_eq!(
        c.store
            .count_rows(CountedTable::Certificates)
            .await
            .expect("count"),
        certificates + 1
    );
    // Both certificates work: the old one until it expires or is revoked.
    report(&renewed, 1)
        .await
        .expect("report with the renewed certificate");
    report(&identity, 2)
        .await
        .expect("report with the old certificate");

    // Again at once: refused, and nothing issued.
    let status = refusal(renew_once(&renewed, channel(&renewed).expect("channel")).await);
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        c.store
            .count_rows(CountedTable::Certificates)
            .await
            .expect("count"),
        certificates + 1
    );

    // A CSR that is not one is refused as such.
    let mut client = AgentClient::new(channel(&renewed).expect("channel"));
    let status = client
        .renew(firstline_proto::v1::RenewRequest {
            csr_pem:
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                    .into(),
        })
        .await
        .expect_err("garbage CSR");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = client
        .renew(firstline_proto::v1::RenewRequest {
            csr_pem: "x".repeat(64 * 1024),
        })
        .await
        .expect_err("oversized CSR");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // A revoked agent renews nothing, with either certificate.
    c.store
        .revoke_subject(&identity.agent_id, now_ms())
        .await
        .expect("revoke");
    for held in [&identity, &renewed] {
        let status = refusal(renew_once(held, channel(held).expect("channel")).await);
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(status.message().contains("revoked"), "{status:?}");
    }
    assert_eq!(
        c.store
            .count_rows(CountedTable::Certificates)
            .await
            .expect("count"),
        certificates + 1
    );
}

fn host_last_seq(collector: &CollectorProc, agent_id: &str) -> Option<u64> {
    let hosts = collector.json(&["hosts", "--json"]);
    let host = hosts
        .as_array()?
        .iter()
        .find(|h| h["agent_id"] == agent_id)?;
    host["last_seq"].as_u64()
}

#[test]
fn a_running_agent_renews_before_expiry_and_keeps_reporting() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One-minute certificates: renewal is due 20 s after issue (two thirds of a life that
    // starts a minute back, for clock skew); the first one expires 60 s after it.
    let collector = CollectorProc::start(
        dir.path(),
        "[enrollment]\ncertificate_validity = \"1m\"\n[report]\nheartbeat = \"1s\"\n",
    );
    let mut agent = AgentProc::new(dir.path(), "");
    agent.enroll(&collector);
    let first = std::fs::read_to_string(agent.state_dir.join("agent.crt")).expect("agent.crt");
    let (_, first_expires) = validity(&first).expect("validity");
    agent.start();
    let agent_id = agent.agent_id();

    wait_until(
        "the agent to renew its certificate",
        Duration::from_secs(90),
        || agent.log(),
        |log| log.contains("certificate renewed"),
    );
    let second = std::fs::read_to_string(agent.state_dir.join("agent.crt")).expect("agent.crt");
    assert_ne!(first, second, "agent.crt holds the renewed certificate");
    assert!(
        !agent.state_dir.join("renewal").exists(),
        "no staging folder left"
    );
    let (_, second_expires) = validity(&second).expect("validity");
    assert!(second_expires > first_expires);

    // Past the first certificate's end, reports still arrive: the agent uses the new one.
    while SystemTime::now() < first_expires + Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(250));
    }
    let seq = wait_for(
        "a report after the first certificate expired",
        LIMIT,
        || host_last_seq(&collector, &agent_id),
    );
    wait_for("more reports with the renewed certificate", LIMIT, || {
        host_last_seq(&collector, &agent_id).filter(|s| *s >= seq + 2)
    });
    let log = agent.log();
    assert!(
        !log.contains("certificate renewal failed"),
        "renewal went through first time:\n{log}"
    );
    // A restart loads the renewed identity.
    agent.stop();
    agent.start();
    let after_restart = host_last_seq(&collector, &agent_id).expect("seq");
    wait_for("reports after a restart", LIMIT, || {
        host_last_seq(&collector, &agent_id).filter(|s| *s > after_restart)
    });
}
