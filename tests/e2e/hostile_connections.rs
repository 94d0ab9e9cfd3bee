//! Hostile connections against a running collector while a good agent keeps reporting: bytes
//! that are not TLS, TLS followed by bytes that are not HTTP/2, connections that open and send
//! nothing or trickle a byte at a time (slow-loris), and an expired certificate issued by this
//! collector's own CA. The collector closes each of them, stores nothing from them, a newcomer
//! still enrolls while they hang, and every report of the good agent meanwhile is
//! acknowledged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use firstline_agent::identity::Identity;
use firstline_agent::uplink::channel;
use firstline_collector::clock::now_ms;
use firstline_collector::pki::fingerprint;
use firstline_collector::store::{CertKind, CountedTable, NewCertificate};
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{ReportRequest, Snapshot};
use firstline_tests::inproc::InProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A safety net: a connection the collector has not closed by then was kept open.
const CLOSED_WITHIN: Duration = Duration::from_secs(40);

/// Reads until the collector closes the connection (end of stream or reset); `false` when it
/// is still open after [`CLOSED_WITHIN`].
async fn closed_by_collector<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(CLOSED_WITHIN, read_all).await.is_ok()
}

fn garbage(len: usize) -> Vec<u8> {
    (0..len).map(|_| fastrand::u8(..)).collect()
}

/// The good agent: one report every 250 ms until `stop`; its last seq and any failures.
fn keep_reporting(
    identity: Identity,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<(u64, Vec<String>)> {
    tokio::spawn(async move {
        let mut client = AgentClient::new(channel(&identity).expect("channel"));
        let (mut seq, mut failures) = (0u64, Vec::new());
        loop {
            seq += 1;
            let request = ReportRequest {
                snapshots: vec![Snapshot {
                    seq,
                    taken_at_ms: now_ms(),
                    hostname: "good".into(),
                    ..Default::default()
                }],
                sent_at_ms: now_ms(),
            };
            match client.report(request).await {
                Ok(ack) if ack.get_ref().stored_seqs == [seq] => {}
                Ok(ack) => failures.push(format!("seq {seq}: {:?}", ack.into_inner())),
                Err(status) => failures.push(format!("seq {seq}: {status:?}")),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                () = stop.cancelled() => return (seq, failures),
            }
        }
    })
}

/// A TLS client that trusts the collector's CA and presents `identity`'s certificate.
fn tls_connector(identity: &Identity) -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(identity.ca_pem.as_bytes()) {
        roots.add(ca.expect("CA PEM")).expect("CA");
    }
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
            .map(|c| c.expect("cert PEM"))
            .collect();
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).expect("key PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .expect("client cert");
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// An identity of the good agent's, with a certificate from this collector's CA that expired.
fn expired(c: &InProcess, good: &Identity) -> Identity {
    let ca_pem = c.ca_pem();
    let ca_key = std::fs::read_to_string(c.data_dir.join("ca.key")).expect("ca.key");
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &ca_pem,
        rcgen::KeyPair::from_pem(&ca_key).expect("CA key"),
    )
    .expect("issuer");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("agent:{}", good.agent_id),
    );
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2025, 1, 1);
    let cert = params.signed_by(&key, &issuer).expect("cert");
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ..good.clone()
    }
}

async fn open(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_connections_are_closed_while_a_good_agent_reports() {
    let c = InProcess::start().await;
    let good = c.enroll("good").await;
    let stop = CancellationToken::new();
    let reporter = keep_reporting(good.clone(), stop.clone());
    let certificates = c
        .store
        .count_rows(CountedTable::Certificates)
        .await
        .expect("count");

    // Not TLS at all.
    let mut not_tls = Vec::new();
    for _ in 0..20 {
        let mut s = open(c.addr).await;
        s.write_all(&garbage(4096)).await.ok();
        not_tls.push(s);
    }
    // Open and silent, and a TLS record header trickled a byte at a time (slow-loris).
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(open(c.addr).await);
    }
    let trickle = tokio::spawn({
        let addr = c.addr;
        async move {
            let mut s = open(addr).await;
            for byte in [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc] {
                if s.write_all(&[byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            closed_by_collector(&mut s).await
        }
    });
    // A newcomer still gets through while those connections hang.
    let newcomer = c.enroll("newcomer").await;
    assert!(!newcomer.agent_id.is_empty());
    // A good handshake with a valid certificate, then bytes that are not HTTP/2.
    let mut not_h2 = Vec::new();
    for _ in 0..5 {
        let tcp = open(c.addr).await;
        let name = rustls_name();
        let mut tls = tls_connector(&good)
            .connect(name, tcp)
            .await
            .expect("TLS handshake with a valid certificate");
        tls.write_all(&garbage(8192)).await.ok();
        not_h2.push(tls);
    }
    // An expired certificate of this CA, known to the store: refused at the handshake.
    let old = expired(&c, &good);
    let der = {
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(old.cert_pem.as_bytes()).expect("pem")
    };
    c.store
        .register_certificate(&NewCertificate {
            fingerprint: fingerprint(der.as_ref()),
            kind: CertKind::Agent,
            subject: good.agent_id.clone(),
            issued_at_ms: 1_704_067_200_000,
            not_after_ms: 1_735_689_600_000,
        })
        .await
        .expect("register");
    let refused = AgentClient::new(channel(&old).expect("channel"))
        .report(ReportRequest {
            snapshots: vec![Snapshot {
                seq: 1_000_000,
                taken_at_ms: now_ms(),
                hostname: "expired".into(),
                ..Default::default()
            }],
            sent_at_ms: now_ms(),
        })
        .await;
    assert!(refused.is_err(), "an expired certificate must be refused");

    for (what, streams) in [("not TLS", not_tls), ("silent", silent)] {
        for mut s in streams {
            assert!(
                closed_by_collector(&mut s).await,
                "a {what} connection was kept open"
            );
        }
    }
    for mut s in not_h2 {
        assert!(
            closed_by_collector(&mut s).await,
            "a TLS connection sending garbage was kept open"
        );
    }
    assert!(
        trickle.await.expect("trickle task"),
        "a trickling connection was kept open"
    );

    stop.cancel();
    let (last, failures) = reporter.await.expect("reporter");
    assert!(
        failures.is_empty(),
        "the good agent's reports failed: {failures:?}"
    );
    assert!(
        last >= 10,
        "the good agent reported throughout: {last} reports"
    );
    let stored = c.store.stored_seqs(&good.agent_id).await.expect("seqs");
    assert_eq!(
        stored,
        (1..=last).collect::<Vec<_>>(),
        "nothing else stored"
    );
    assert_eq!(
        c.store
            .count_rows(CountedTable::Certificates)
            .await
            .expect("count"),
        certificates + 2,
        "only the newcomer's certificate and the one the test registered"
    );
}

fn rustls_name() -> tokio_rustls::rustls::pki_types::ServerName<'static> {
    tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").expect("name")
}
