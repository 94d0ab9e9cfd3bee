//! Tests of the failure hints: on constructed error chains, and on a real TLS handshake with a
//! collector whose certificate the agent cannot trust.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use super::*;

/// A wrapper like tonic's and hyper's: its own message, the cause as `source()`.
#[derive(Debug)]
struct Wrapper(&'static str, Box<dyn Error + Send + Sync>);

impl fmt::Display for Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for Wrapper {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.1.as_ref())
    }
}

/// tonic's shape: transport error -> connect error -> io::Error holding rustls's verdict.
fn transport(inner: rustls::Error) -> Wrapper {
    let io = io::Error::new(io::ErrorKind::InvalidData, inner);
    Wrapper(
        "transport error",
        Box::new(Wrapper("tcp connect error", Box::new(io))),
    )
}

#[test]
fn tls_verdicts_deep_in_the_chain_are_recognised() {
    let cert = |e| rustls::Error::InvalidCertificate(e);
    let cases = [
        (
            cert(CertificateError::UnknownIssuer),
            Some(TlsCause::NotSignedByCa),
        ),
        (
            cert(CertificateError::BadSignature),
            Some(TlsCause::NotSignedByCa),
        ),
        (
            cert(CertificateError::NotValidForName),
            Some(TlsCause::WrongName),
        ),
        (cert(CertificateError::Expired), Some(TlsCause::OutOfDate)),
        (
            cert(CertificateError::NotValidYet),
            Some(TlsCause::OutOfDate),
        ),
        (
            cert(CertificateError::InvalidPurpose),
            Some(TlsCause::BadCertificate),
        ),
        (
            rustls::Error::AlertReceived(AlertDescription::BadCertificate),
            Some(TlsCause::ClientRefused),
        ),
        (
            rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
            None,
        ),
        (rustls::Error::DecryptError, None),
    ];
    for (inner, expected) in cases {
        let label = format!("{inner:?}");
        assert_eq!(tls_cause(&transport(inner)), expected, "{label}");
    }
    let refused = Wrapper(
        "transport error",
        Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)),
    );
    assert_eq!(tls_cause(&refused), None);
}

#[test]
fn a_verdict_only_in_the_text_is_recognised_too() {
    let text = Wrapper(
        "transport error",
        Box::new(io::Error::other("invalid peer certificate: UnknownIssuer")),
    );
    assert_eq!(tls_cause(&text), Some(TlsCause::NotSignedByCa));
}

#[test]
fn the_hint_names_the_ca_file_and_comes_before_the_chain() {
    let error = transport(rustls::Error::InvalidCertificate(
        CertificateError::UnknownIssuer,
    ));
    let explained = explain(&error, Path::new("/etc/firstline/ca.crt"));
    assert_eq!(
        explained.text(),
        "the collector's certificate is not signed by the CA in /etc/firstline/ca.crt (copy \
         ca.crt from the collector's data directory): transport error: tcp connect error: \
         invalid peer certificate: UnknownIssuer"
    );
    let status = tonic::Status::permission_denied("certificate revoked");
    let explained = explain_status(&status, Path::new("ca.crt"));
    assert_eq!(explained.error, "certificate revoked");
    assert_eq!(explained.hint.as_deref(), Some(CREDENTIALS_HINT));
    let plain = explain_status(&tonic::Status::unavailable("down"), Path::new("ca.crt"));
    assert_eq!(plain.text(), "down");
}

/// A CA called `ca_name` and a collector certificate for `collector.test` signed by it.
fn collector_pki(ca_name: &str) -> (String, rustls::ServerConfig) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["collector.test".into()]).expect("params");
    let cert = params.signed_by(&key, &issuer).expect("cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    (ca_cert.pem(), config)
}

/// A TLS server on loopback that only does handshakes; returns the endpoint to reach it with
/// `ca_pem` trusted, naming the server `name`.
async fn serve(server: rustls::ServerConfig, ca_pem: &str, name: &str) -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = acceptor.accept(socket).await;
        }
    });
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(name);
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("url")
        .tls_config(tls)
        .expect("tls")
}

/// The TLS cause of connecting (as `enroll` does) to a server.
async fn connect_error(server: rustls::ServerConfig, ca_pem: &str, name: &str) -> TlsCause {
    let error = serve(server, ca_pem, name)
        .await
        .connect()
        .await
        .expect_err("the handshake must fail");
    tls_cause(&error).unwrap_or_else(|| panic!("no TLS cause in {}", chain(&error)))
}

#[tokio::test]
async fn a_real_handshake_with_the_wrong_ca_or_name() {
    // Every collector's CA has the same name: another collector's ca.crt fails the signature
    // check; a CA of another name is an unknown issuer. Both get the same hint.
    let (ca_pem, server) = collector_pki("Firstline collector CA");
    let (same_name, _) = collector_pki("Firstline collector CA");
    let (other_name, _) = collector_pki("Some other CA");
    for other_ca in [same_name, other_name] {
        assert_eq!(
            connect_error(server.clone(), &other_ca, "collector.test").await,
            TlsCause::NotSignedByCa
        );
    }
    assert_eq!(
        connect_error(server, &ca_pem, "elsewhere.test").await,
        TlsCause::WrongName
    );
}

#[tokio::test]
async fn the_uplinks_status_carries_the_hint_too() {
    let (_, server) = collector_pki("Firstline collector CA");
    let (other_ca, _) = collector_pki("Firstline collector CA");
    let channel = serve(server, &other_ca, "collector.test")
        .await
        .connect_lazy();
    let status = firstline_proto::v1::agent_client::AgentClient::new(channel)
        .report(firstline_proto::v1::ReportRequest::default())
        .await
        .expect_err("the handshake must fail");
    let explained = explain_status(&status, Path::new("/var/lib/firstline-agent/ca.crt"));
    assert_eq!(
        explained.hint.as_deref(),
        Some(
            hint(
                TlsCause::NotSignedByCa,
                Path::new("/var/lib/firstline-agent/ca.crt")
            )
            .as_str()
        ),
        "{status:?}"
    );
    assert_eq!(
        explained.error.matches("BadSignature").count(),
        1,
        "the cause once: {}",
        explained.error
    );
}
