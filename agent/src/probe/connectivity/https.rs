//! The HTTPS check: a HEAD request over TLS, trusting the web PKI roots, the operating system's
//! trust store and the CA files in `connectivity.https_ca_files`. A refused certificate is
//! reported by what a technician does about it (`name_mismatch`, `certificate_expired`,
//! `untrusted`), and the certificate's expiry is reported whenever one was received, also when
//! verification refused it: a verifier wrapper keeps the server's certificate before the real
//! verifier judges it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::HttpsResult;
use super::checks::{classify_io, connect, millis, parse_status_line, split_url};

/// The TLS client settings every HTTPS check of one round shares.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<WebPkiServerVerifier>,
}

/// A server certificate as the check reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// notAfter, seconds since the epoch.
    pub not_after_secs: i64,
    /// Whole days from now until then (negative when expired).
    pub days_left: i64,
}

/// Keeps the end-entity certificate the server presented, then lets the real verifier judge.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    peer: Mutex<Option<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut peer) = self.peer.lock() {
            *peer = Some(end_entity.clone().into_owned());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The expiry of a DER certificate, seen at `now_secs`.
pub fn expiry(der: &[u8], now_secs: i64) -> Option<Expiry> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after_secs = cert.validity().not_after.timestamp();
    Some(Expiry {
        not_after_secs,
        days_left: (not_after_secs - now_secs).div_euclid(86_400),
    })
}

/// Days from `now` (seconds since the epoch) until a DER certificate's notAfter.
pub fn certificate_days_left(der: &[u8], now_secs: i64) -> Option<i64> {
    expiry(der, now_secs).map(|e| e.days_left)
}

/// A day as RFC 3339 writes it (`2026-12-01`), for details read over the phone.
pub fn day(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// The certificates in a PEM file of trusted CAs (`connectivity.https_ca_files`): every
/// `CERTIFICATE` block, other blocks (a key, say) skipped. Blocks: read it through the probe's
/// `Offload`, or where the config is loaded. The error says what is wrong with the file
/// (without its name: the caller names file and key).
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file: {e}"))?;
    if certificates.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    let mut scratch = rustls::RootCertStore::empty();
    for (i, der) in certificates.iter().enumerate() {
        scratch
            .add(der.clone())
            .map_err(|e| format!("certificate {} cannot be trusted: {e}", i + 1))?;
    }
    Ok(certificates)
}

/// The TLS client settings of one round: the web PKI roots, the operating system's trust store
/// (where it has one; unreadable entries are skipped) and the certificates in `ca_files` (see
/// [`read_ca_file`]). Blocks: build it through the probe's `Offload`. The error is the detail
/// every HTTPS check reports.
pub fn tls_config(ca_files: &[PathBuf]) -> Result<Tls, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    for file in ca_files {
        let certificates =
            read_ca_file(file).map_err(|e| format!("CA file {}: {e}", file.display()))?;
        roots.add_parsable_certificates(certificates);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    Ok(Tls {
        config: Arc::new(config),
        verifier,
    })
}

/// The reason and the words for a certificate the verifier refused; `peer` is the certificate
/// the server presented, when it got that far.
fn refused(error: &CertificateError, host: &str, peer: Option<&[u8]>) -> (&'static str, String) {
    let parsed = peer.and_then(|der| x509_parser::parse_x509_certificate(der).ok());
    let cert = parsed.as_ref().map(|(_, c)| c);
    match error {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let names = cert
                .and_then(|c| c.subject_alternative_name().ok().flatten())
                .map(|san| {
                    san.value
                        .general_names
                        .iter()
                        .map(general_name)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            (
                "name_mismatch",
                format!("the certificate is not for {host}; it names {names}"),
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let when = cert.map_or_else(String::new, |c| {
                format!(" on {}", day(c.validity().not_after.timestamp()))
            });
            (
                "certificate_expired",
                format!("the certificate expired{when}"),
            )
        }
        CertificateError::UnknownIssuer => {
            let issuer = cert.map_or_else(String::new, |c| format!(" ({})", c.issuer()));
            (
                "untrusted",
                format!(
                    "the certificate's issuer{issuer} is not trusted: add its CA to \
                     connectivity.https_ca_files"
                ),
            )
        }
        other => ("tls_error", format!("invalid certificate: {other}")),
    }
}

/// A subject alternative name as a person writes it (`intranet.example.com`, `10.0.0.5`).
fn general_name(name: &x509_parser::extensions::GeneralName<'_>) -> String {
    use x509_parser::extensions::GeneralName;
    match name {
        GeneralName::DNSName(dns) => (*dns).to_owned(),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(*bytes).map_or_else(
                |_| name.to_string(),
                |b| std::net::IpAddr::from(b).to_string(),
            ),
            16 => <[u8; 16]>::try_from(*bytes).map_or_else(
                |_| name.to_string(),
                |b| std::net::IpAddr::from(b).to_string(),
            ),
            _ => name.to_string(),
        },
        other => other.to_string(),
    }
}

/// The reason and words for an I/O error of the TLS exchange.
fn exchange_failure(e: &io::Error, host: &str, peer: Option<&[u8]>) -> (&'static str, String) {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(cert)) => refused(cert, host, peer),
        Some(other) => ("tls_error", other.to_string()),
        None => (classify_io(e), e.to_string()),
    }
}

/// Fetches `url` with a HEAD request over TLS, trusting what `tls` trusts (see [`tls_config`]).
pub async fn https(url: &str, tls: &Result<Tls, String>, timeout: Duration) -> HttpsResult {
    let started = Instant::now();
    let fail = |failure: &str, detail: String| HttpsResult {
        url: url.to_owned(),
        millis: millis(started),
        failure: failure.to_owned(),
        detail,
        ..HttpsResult::default()
    };
    let Some((host, port, path)) = split_url(url) else {
        return fail("error", "not an https:// URL".into());
    };
    let tls = match tls {
        Ok(t) => t,
        Err(detail) => return fail("tls_error", detail.clone()),
    };
    let stream = match connect(&format!("{host}:{port}"), timeout).await {
        Ok(s) => s,
        Err((failure, detail)) => return fail(failure, detail),
    };
    let Ok(server_name) = ServerName::try_from(host.clone()) else {
        return fail("error", format!("{host} is not a valid server name"));
    };
    let recording = Arc::new(Recording {
        inner: tls.verifier.clone(),
        peer: Mutex::new(None),
    });
    let mut config = (*tls.config).clone();
    config
        .dangerous()
        .set_certificate_verifier(recording.clone());
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let exchange = async {
        let mut tls = connector.connect(server_name, stream).await?;
        let request = format!(
            "HEAD {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: firstline-agent\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes()).await?;
        let mut head = vec![0u8; 1024];
        let n = tls.read(&mut head).await?;
        Ok::<_, io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    let outcome = tokio::time::timeout(timeout, exchange).await;
    let peer = recording.peer.lock().ok().and_then(|p| p.clone());
    let expiry = peer
        .as_ref()
        .and_then(|der| expiry(der, crate::clock::now_ms().div_euclid(1000)));
    let mut result = match outcome {
        Err(_) => fail("timeout", format!("no response within {timeout:?}")),
        Ok(Err(e)) => {
            let (failure, detail) = exchange_failure(&e, &host, peer.as_deref());
            fail(failure, detail)
        }
        Ok(Ok(head)) => {
            let status = parse_status_line(&head).unwrap_or(0);
            let ok = (200..400).contains(&status);
            HttpsResult {
                url: url.to_owned(),
                ok,
                millis: millis(started),
                status,
                failure: if ok {
                    String::new()
                } else {
                    "http_error".into()
                },
                detail: head.lines().next().unwrap_or_default().to_owned(),
                ..HttpsResult::default()
            }
        }
    };
    if let Some(e) = expiry {
        result.certificate_days_left = e.days_left;
        result.certificate_not_after_ms = e.not_after_secs.saturating_mul(1000);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_expiry_in_days_and_as_a_day() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["example.test".into()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2030, 1, 31);
        let cert = params.self_signed(&key).expect("cert");
        // 2030-01-01T00:00:00Z is 1893456000.
        assert_eq!(certificate_days_left(cert.der(), 1_893_456_000), Some(30));
        // A day after expiry, and an hour after: both already negative.
        let after = 1_893_456_000 + 30 * 86_400;
        assert_eq!(certificate_days_left(cert.der(), after + 86_400), Some(-1));
        assert_eq!(certificate_days_left(cert.der(), after + 3_600), Some(-1));
        assert_eq!(certificate_days_left(b"junk", 0), None);
        assert_eq!(day(1_893_456_000), "2030-01-01");
    }

    #[tokio::test]
    async fn a_ca_file_gone_since_the_config_was_loaded_fails_every_https_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("company-ca.pem");
        let tls = tls_config(std::slice::from_ref(&gone));
        let Err(detail) = &tls else {
            panic!("no such file, yet a TLS config")
        };
        assert!(
            detail.contains(&gone.display().to_string()) && detail.contains("cannot read"),
            "{detail}"
        );
        // Port 1: nothing listens, yet the check stops at the CA file, before connecting.
        let result = https("https://127.0.0.1:1/", &tls, Duration::from_secs(2)).await;
        assert_eq!(
            (result.ok, result.failure.as_str(), result.detail.as_str()),
            (false, "tls_error", detail.as_str())
        );
        assert!(tls_config(&[]).is_ok(), "the web PKI roots alone");
    }
}
