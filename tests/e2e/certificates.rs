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
use firstline_tests::inproc::{InProcess, report_one};
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::{wait_for, wait_until};
use tonic::Code;

const LIMIT: Duration = Duration::from_secs(60);

async fn report(identity: &Identity, seq: u64) -> Result<(), tonic::Status> {
    report_one(identity, seq, "renewing").await.map(|_| ())
}

async fn certificates(c: &InProcess) -> i64 {
    c.store
        .count_rows(CountedTable::Certificates)
        .await
        .expect("count")
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
    let before = certificates(&c).await;

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
    assert_eq!(certificates(&c).await, before + 1);
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
    assert_eq!(certificates(&c).await, before + 1);

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
    assert_eq!(certificates(&c).await, before + 1);
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
        || collector.host_last_seq(&agent_id),
    );
    wait_for("more reports with the renewed certificate", LIMIT, || {
        collector.host_last_seq(&agent_id).filter(|s| *s >= seq + 2)
    });
    let log = agent.log();
    assert!(
        !log.contains("certificate renewal failed"),
        "renewal went through first time:\n{log}"
    );
    // A restart loads the renewed identity.
    agent.stop();
    agent.start();
    let after_restart = collector.host_last_seq(&agent_id).expect("seq");
    wait_for("reports after a restart", LIMIT, || {
        collector
            .host_last_seq(&agent_id)
            .filter(|s| *s > after_restart)
    });
}

/// The common names of the certificates in a PEM text, in order.
fn common_names(pem: &str) -> Vec<String> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|der| {
            let der = der.expect("PEM");
            let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
            cert.subject()
                .iter_common_name()
                .filter_map(|c| c.as_str().ok())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// The issuer's common name of the first certificate in a PEM text.
fn issuer(pem: &str) -> String {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
    cert.issuer()
        .iter_common_name()
        .filter_map(|c| c.as_str().ok())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn a_ca_rotation_keeps_every_running_agent_reporting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut collector = CollectorProc::start(dir.path(), "[report]\nheartbeat = \"1s\"\n");
    let read = |path: &std::path::Path| std::fs::read_to_string(path).expect("read");
    let old_ca = common_names(&read(&collector.data_dir.join("ca.crt")));
    assert_eq!(old_ca.len(), 1);
    let home = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).expect("dir");
        d
    };
    let mut running = AgentProc::new(&home("running"), "");
    running.enroll(&collector);
    running.start();
    let running_id = running.agent_id();
    // Enrolled before the rotation and off through all of it.
    let away = AgentProc::new(&home("away"), "");
    away.enroll(&collector);
    wait_for("reports before the rotation", LIMIT, || {
        collector.host_last_seq(&running_id).filter(|s| *s >= 2)
    });

    let out = collector.cli(&["ca", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = collector.cli(&["ca", "rotate"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("under way"),
        "a second rotation is refused while one is under way"
    );
    let bundle = common_names(&read(&collector.data_dir.join("ca.crt")));
    assert_eq!(
        bundle.len(),
        2,
        "ca.crt holds the old and the next CA: {bundle:?}"
    );
    assert_eq!(bundle[0], old_ca[0], "the serving CA first");
    let next_ca = bundle[1].clone();
    collector.stop();
    collector.restart();

    // The running agent is told to renew, renews onto the next CA, and trusts both.
    wait_until(
        "the agent to renew onto the next CA",
        LIMIT,
        || {
            let log = running.log();
            let tail: String = log.lines().rev().take(8).collect::<Vec<_>>().join("\n");
            (issuer(&read(&running.state_dir.join("agent.crt"))), tail)
        },
        |(i, _)| *i == next_ca,
    );
    assert_eq!(
        common_names(&read(&running.state_dir.join("ca.crt"))),
        bundle,
        "the agent trusts the bundle"
    );
    let seq = collector.host_last_seq(&running_id).expect("seq");
    wait_for("reports with the next CA's certificate", LIMIT, || {
        collector
            .host_last_seq(&running_id)
            .filter(|s| *s >= seq + 2)
    });
    // A newcomer enrolls with the bundle and gets the next CA's certificate.
    let newcomer = AgentProc::new(&home("newcomer"), "");
    newcomer.enroll(&collector);
    assert_eq!(
        issuer(&read(&newcomer.state_dir.join("agent.crt"))),
        next_ca
    );
    let status = collector.cli(&["ca", "status"]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.contains("1 agent(s) still on the old CA"),
        "the away agent: {status}"
    );
    let out = collector.cli(&["ca", "finish"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would have to enroll again"),
        "finishing with an agent left on the old CA needs --force"
    );
    let out = collector.cli(&["ca", "finish", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    collector.stop();
    collector.restart();

    // After the rotation: only the next CA, the running agent and the CLI carry on.
    assert_eq!(
        common_names(&read(&collector.data_dir.join("ca.crt"))),
        std::slice::from_ref(&next_ca)
    );
    let seq = collector
        .host_last_seq(&running_id)
        .expect("the CLI works after the rotation");
    wait_for("reports after the rotation", LIMIT, || {
        collector
            .host_last_seq(&running_id)
            .filter(|s| *s >= seq + 2)
    });
    let log = running.log();
    assert!(
        !log.contains("upload failed; retrying until fixed"),
        "the running agent never lost its trust:\n{log}"
    );
    // The agent that was away trusts only the old CA: it cannot connect, and says so.
    let mut away = away;
    away.start();
    wait_until(
        "the away agent to report its failure",
        LIMIT,
        || away.log(),
        |log| log.contains("upload failed"),
    );
}
