//! Bad input against the gRPC services: every refusal has the right status code and a message,
//! stores nothing, and leaves the collector serving others.

use std::time::Duration;

use firstline_agent::enroll::EnrollError;
use firstline_agent::identity::Identity;
use firstline_agent::uplink::channel;
use firstline_collector::clock::now_ms;
use firstline_collector::store::{CountedTable, Store, TokenRow};
use firstline_collector::tokens::{create_token, hash_token};
use firstline_proto::v1::admin_client::AdminClient;
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{Filesystem, ListHostsRequest, ReportRequest, Snapshot};
use firstline_tests::inproc::InProcess;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity as TlsIdentity};

fn fs(mount: &str, total: u64, used: u64) -> Filesystem {
    Filesystem {
        mount_point: mount.into(),
        device: "/dev/sda1".into(),
        fs_type: "ext4".into(),
        total_bytes: total,
        used_bytes: used,
        available_bytes: total - used,
        total_inodes: 1000,
        used_inodes: 10,
    }
}

fn snapshot(seq: u64, filesystems: Vec<Filesystem>) -> Snapshot {
    Snapshot {
        seq,
        taken_at_ms: now_ms(),
        hostname: "pc-1".into(),
        filesystems,
        ..Default::default()
    }
}

fn client(identity: &Identity) -> AgentClient<Channel> {
    AgentClient::new(channel(identity).expect("channel"))
}

async fn counts(store: &Store) -> Vec<i64> {
    let mut out = Vec::new();
    for table in [
        CountedTable::Agents,
        CountedTable::Certificates,
        CountedTable::Snapshots,
        CountedTable::Tickets,
        CountedTable::TicketEvents,
    ] {
        out.push(store.count_rows(table).await.expect("count"));
    }
    out
}

fn refused_code(result: Result<Identity, EnrollError>) -> (Code, String) {
    match result {
        Err(EnrollError::Refused(status)) => (status.code(), status.message().to_owned()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_refuses_wrong_expired_and_used_up_tokens() {
    let c = InProcess::start().await;
    let before = counts(&c.store).await;

    let (code, message) = refused_code(c.enroll_with("flt_not-a-token", "wrong").await);
    assert_eq!(code, Code::Unauthenticated, "{message}");
    assert!(message.contains("not known"), "{message}");

    let expired = "flt_expired0000000000000000000000000000000";
    c.store
        .create_token(&TokenRow {
            token_hash: hash_token(expired),
            label: "old".into(),
            created_at_ms: now_ms() - 7_200_000,
            expires_at_ms: now_ms() - 3_600_000,
            uses_total: 5,
            uses_left: 5,
            revoked_at_ms: None,
            host_labels: Vec::new(),
        })
        .await
        .expect("token");
    let (code, message) = refused_code(c.enroll_with(expired, "expired").await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("expired"), "{message}");
    assert_eq!(
        counts(&c.store).await,
        before,
        "a refused enrollment stored something"
    );

    let once = create_token(&c.store, "once", Duration::from_secs(600), 1)
        .await
        .expect("token");
    c.enroll_with(&once.secret, "first")
        .await
        .expect("first use enrolls");
    let after_first = counts(&c.store).await;
    let (code, message) = refused_code(c.enroll_with(&once.secret, "second").await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("no uses left"), "{message}");
    assert_eq!(
        counts(&c.store).await,
        after_first,
        "a used-up token stored something"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_need_this_collectors_certificate() {
    let c = InProcess::start().await;
    let identity = c.enroll("pc-1").await;
    let before = counts(&c.store).await;
    let batch = || ReportRequest {
        snapshots: vec![snapshot(1, vec![fs("/", 100, 10)])],
        sent_at_ms: 0,
    };

    // No client certificate at all: TLS works, the call is refused.
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(c.ca_pem()));
    let anonymous = Endpoint::from_shared(c.url())
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect_lazy();
    let status = AgentClient::new(anonymous)
        .report(batch())
        .await
        .expect_err("no certificate");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A certificate from another CA: refused at the TLS handshake.
    let other_ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = rcgen::Issuer::new(ca_params, other_ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let forged = params.signed_by(&key, &other_ca).expect("cert");
    let forged_identity = Identity {
        cert_pem: forged.pem(),
        key_pem: key.serialize_pem(),
        ..identity.clone()
    };
    let result = client(&forged_identity).report(batch()).await;
    assert!(
        result.is_err(),
        "a foreign certificate must not be accepted"
    );

    // A revoked certificate.
    c.store
        .revoke_subject(&identity.agent_id, now_ms())
        .await
        .expect("revoke");
    let status = client(&identity)
        .report(batch())
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");

    assert_eq!(
        counts(&c.store).await,
        before,
        "a refused upload stored something"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_certificates_cannot_read_the_admin_api() {
    let c = InProcess::start().await;
    let identity = c.enroll("pc-1").await;
    let status = AdminClient::new(channel(&identity).expect("channel"))
        .list_hosts(ListHostsRequest {})
        .await
        .expect_err("agent on admin API");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // The operator certificate the collector issued for this machine works.
    let read = |f: &str| std::fs::read_to_string(c.data_dir.join(f)).expect("operator files");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.crt")))
        .identity(TlsIdentity::from_pem(
            read("operator.crt"),
            read("operator.key"),
        ));
    let operator = Endpoint::from_shared(c.url())
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect_lazy();
    let hosts = AdminClient::new(operator)
        .list_hosts(ListHostsRequest {})
        .await
        .expect("operator reads");
    assert_eq!(hosts.into_inner().hosts.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_misshapen_batches_are_refused_and_store_nothing() {
    let c = InProcess::start().await;
    let identity = c.enroll("pc-1").await;
    let before = counts(&c.store).await;
    let million: Vec<Filesystem> = (0..1_000_000)
        .map(|i| fs(&format!("/m{i}"), 100, 1))
        .collect();
    let cases: Vec<(&str, Vec<Snapshot>, &[Code])> = vec![
        (
            "too many snapshots",
            (1..=65).map(|i| snapshot(i, vec![])).collect(),
            &[Code::InvalidArgument],
        ),
        ("empty batch", vec![], &[Code::InvalidArgument]),
        (
            "seq twice",
            vec![snapshot(1, vec![]), snapshot(1, vec![])],
            &[Code::InvalidArgument],
        ),
        (
            "10^6 mounts",
            vec![snapshot(1, million)],
            &[Code::ResourceExhausted],
        ),
    ];
    for (name, snapshots, codes) in cases {
        let status = client(&identity)
            .report(ReportRequest {
                snapshots,
                sent_at_ms: 0,
            })
            .await
            .expect_err(name);
        assert!(codes.contains(&status.code()), "{name}: {status:?}");
        assert!(!status.message().is_empty(), "{name}: no message");
        assert_eq!(
            counts(&c.store).await,
            before,
            "{name}: something was stored"
        );
    }
    // Invalid UTF-8 in a string field is the caller's mistake, not the collector's.
    let status = raw_report(&identity, b"pc-\xff\xfe")
        .await
        .expect_err("invalid utf-8");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        counts(&c.store).await,
        before,
        "invalid utf-8: something was stored"
    );
    // The collector still serves: a good batch from another agent is stored.
    let other = c.enroll("pc-2").await;
    let ack = client(&other)
        .report(ReportRequest {
            snapshots: vec![snapshot(1, vec![fs("/", 100, 10)])],
            sent_at_ms: 0,
        })
        .await
        .expect("good batch after bad ones")
        .into_inner();
    assert_eq!(ack.stored_seqs, [1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn absurd_snapshots_are_rejected_alone_and_the_rest_stored() {
    let c = InProcess::start().await;
    let identity = c.enroll("pc-1").await;
    let huge_path = format!("/{}", "x".repeat(300 * 1024));
    let mut negative = fs("/", 100, 10);
    negative.total_bytes = u64::MAX; // what a -1 in a signed field would look like
    let mut nan = snapshot(5, vec![fs("/", 100, 10)]);
    nan.connectivity = Some(firstline_proto::v1::Connectivity {
        dns: vec![firstline_proto::v1::NamedCheck {
            target: "example.org".into(),
            millis: f64::NAN,
            ..Default::default()
        }],
        ..Default::default()
    });
    let batch = vec![
        snapshot(1, vec![fs("/", 100, 10)]),
        snapshot(
            2,
            vec![Filesystem {
                used_bytes: 500,
                ..fs("/", 100, 10)
            }],
        ),
        snapshot(3, vec![negative]),
        snapshot(4, vec![fs(&huge_path, 100, 1)]),
        nan,
        snapshot(6, vec![fs("/", 100, 20)]),
    ];
    let ack = client(&identity)
        .report(ReportRequest {
            snapshots: batch,
            sent_at_ms: 0,
        })
        .await
        .expect("a batch with bad snapshots is answered")
        .into_inner();
    assert_eq!(ack.stored_seqs, [1, 6]);
    let rejected: Vec<(u64, bool)> = ack
        .rejected
        .iter()
        .map(|r| (r.seq, r.reason.contains(&format!("seq {}", r.seq))))
        .collect();
    assert_eq!(
        rejected,
        [(2, true), (3, true), (4, true), (5, true)],
        "{:?}",
        ack.rejected
    );
    assert!(
        ack.rejected[0]
            .reason
            .contains("used_bytes exceeds total_bytes")
    );
    assert!(ack.rejected[3].reason.contains("millis"));
    assert_eq!(
        c.store.stored_seqs(&identity.agent_id).await.expect("seqs"),
        [1, 6]
    );
}

/// Sends a report whose snapshot's host name is the given raw bytes (which need not be UTF-8),
/// encoded by hand as the contract's `Snapshot.hostname` (tag 4).
async fn raw_report(
    identity: &firstline_agent::identity::Identity,
    hostname: &[u8],
) -> Result<firstline_proto::v1::ReportAck, tonic::Status> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RawSnapshot {
        #[prost(uint64, tag = "1")]
        seq: u64,
        #[prost(bytes = "vec", tag = "4")]
        hostname: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct RawReport {
        #[prost(message, repeated, tag = "1")]
        snapshots: Vec<RawSnapshot>,
    }
    let mut grpc = tonic::client::Grpc::new(channel(identity).expect("channel"));
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<RawReport, firstline_proto::v1::ReportAck>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/firstline.v1.Agent/Report");
    let request = RawReport {
        snapshots: vec![RawSnapshot {
            seq: 1,
            hostname: hostname.to_vec(),
        }],
    };
    grpc.unary(tonic::Request::new(request), path, codec)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_batch_twice_is_stored_once_and_acknowledged_twice() {
    let c = InProcess::start().await;
    let identity = c.enroll("pc-1").await;
    let batch = ReportRequest {
        snapshots: vec![
            snapshot(1, vec![fs("/", 100, 95)]),
            snapshot(2, vec![fs("/", 100, 96)]),
        ],
        sent_at_ms: 0,
    };
    let first = client(&identity)
        .report(batch.clone())
        .await
        .expect("first")
        .into_inner();
    let second = client(&identity)
        .report(batch)
        .await
        .expect("second")
        .into_inner();
    assert_eq!(first.stored_seqs, [1, 2]);
    assert_eq!(second.stored_seqs, [1, 2]);
    assert_eq!(
        c.store.stored_seqs(&identity.agent_id).await.expect("seqs"),
        [1, 2]
    );
    let tickets = c
        .store
        .list_tickets(&Default::default())
        .await
        .expect("tickets");
    assert_eq!(tickets.len(), 1, "one ticket for the full disk");
    assert_eq!(tickets[0].occurrences, 2, "each snapshot counted once");
}
