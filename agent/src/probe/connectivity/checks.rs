//! The individual connectivity checks. Failures are classified into the reasons a technician
//! acts on: a name that does not exist (`nxdomain`) is not a DNS server that does not answer
//! (`timeout`), and a refused port (`refused`: the host is up, the service is not) is not an
//! unreachable network (`unreachable`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{CheckResult, HttpsResult};

/// The reason for an I/O failure.
pub fn classify_io(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "refused",
        io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable => "unreachable",
        io::ErrorKind::TimedOut => "timeout",
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => "reset",
        _ => "error",
    }
}

/// The reason for a DNS failure.
pub fn classify_dns(error: &NetError) -> &'static str {
    if error.is_nx_domain() {
        "nxdomain"
    } else if error.is_no_records_found() {
        "no_records"
    } else {
        match error {
            NetError::Timeout => "timeout",
            NetError::Io(e) => match classify_io(e) {
                "error" => "dns_error",
                other => other,
            },
            _ => "dns_error",
        }
    }
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn failed(target: &str, started: Instant, failure: &str, detail: String) -> CheckResult {
    CheckResult {
        target: target.to_owned(),
        ok: false,
        millis: millis(started),
        failure: failure.to_owned(),
        detail,
    }
}

/// A resolver for the DNS checks: the given servers, or the system's configuration. Blocks
/// (it reads `/etc/resolv.conf` and `/etc/hosts`): build it through the probe's `Offload`. The
/// error is the detail every DNS check reports.
pub fn resolver(servers: &[IpAddr], timeout: Duration) -> Result<TokioResolver, String> {
    let builder = if servers.is_empty() {
        Resolver::builder_tokio().map_err(|e| format!("no resolver configuration: {e}"))?
    } else {
        let config = ResolverConfig::from_parts(
            None,
            Vec::new(),
            servers
                .iter()
                .map(|ip| NameServerConfig::udp(*ip))
                .collect::<Vec<_>>(),
        );
        Resolver::builder_with_config(config, TokioRuntimeProvider::default())
    };
    let mut options = ResolverOpts::default();
    options.timeout = timeout;
    options.attempts = 1;
    options.cache_size = 0;
    builder
        .with_options(options)
        .build()
        .map_err(|e| e.to_string())
}

/// Resolves `name` (A/AAAA) with `resolver` (see [`resolver`]).
pub async fn dns(
    name: &str,
    resolver: &Result<TokioResolver, String>,
    timeout: Duration,
) -> CheckResult {
    let started = Instant::now();
    let resolver = match resolver {
        Ok(r) => r,
        Err(detail) => return failed(name, started, "dns_error", detail.clone()),
    };
    let lookup = tokio::time::timeout(
        timeout + Duration::from_millis(500),
        resolver.lookup_ip(name),
    )
    .await;
    match lookup {
        Ok(Ok(ips)) => CheckResult {
            target: name.to_owned(),
            ok: true,
            millis: millis(started),
            failure: String::new(),
            detail: ips
                .iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        },
        Ok(Err(e)) => failed(name, started, classify_dns(&e), e.to_string()),
        Err(_) => failed(
            name,
            started,
            "timeout",
            format!("no answer within {timeout:?}"),
        ),
    }
}

/// Connects to `host:port` (names resolved by the system).
pub async fn tcp(target: &str, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    match connect(target, timeout).await {
        Ok(_) => CheckResult {
            target: target.to_owned(),
            ok: true,
            millis: millis(started),
            ..CheckResult::default()
        },
        Err(e) => failed(target, started, classify_io(&e), e.to_string()),
    }
}

async fn connect(target: &str, timeout: Duration) -> io::Result<TcpStream> {
    let attempt = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target).await?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {timeout:?}"),
            ))
        })
}

/// `https://host[:port]/path` into (host, port, path).
pub fn split_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("https://")?;
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, p.parse().ok()?),
        _ => (authority, 443),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_owned(), port, path.to_owned()))
}

/// The status code of an HTTP/1.x response head.
pub fn parse_status_line(head: &str) -> Option<u32> {
    let line = head.lines().next()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|p| p.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Days from `now` (seconds since the epoch) until a DER certificate's notAfter.
pub fn certificate_days_left(der: &[u8], now_secs: i64) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    Some((not_after - now_secs).div_euclid(86_400))
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

/// The TLS client settings every HTTPS check of one round shares: the web PKI roots and the
/// certificates in `ca_files` (see [`read_ca_file`]). Blocks: build it through the probe's
/// `Offload`. The error is the detail every HTTPS check reports.
pub fn tls_config(ca_files: &[PathBuf]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for file in ca_files {
        let certificates =
            read_ca_file(file).map_err(|e| format!("CA file {}: {e}", file.display()))?;
        roots.add_parsable_certificates(certificates);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Fetches `url` with a HEAD request over TLS, trusting what `tls` trusts (see [`tls_config`]).
pub async fn https(
    url: &str,
    tls: &Result<Arc<rustls::ClientConfig>, String>,
    timeout: Duration,
) -> HttpsResult {
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
    let config = match tls {
        Ok(c) => c.clone(),
        Err(detail) => return fail("tls_error", detail.clone()),
    };
    let stream = match connect(&format!("{host}:{port}"), timeout).await {
        Ok(s) => s,
        Err(e) => return fail(classify_io(&e), e.to_string()),
    };
    let Ok(server_name) = rustls::pki_types::ServerName::try_from(host.clone()) else {
        return fail("error", format!("{host} is not a valid server name"));
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    let exchange = async {
        let mut tls = connector.connect(server_name, stream).await?;
        let days = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| certificate_days_left(c, crate::clock::now_ms() / 1000));
        let request = format!(
            "HEAD {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: firstline-agent\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes()).await?;
        let mut head = vec![0u8; 1024];
        let n = tls.read(&mut head).await?;
        Ok::<_, io::Error>((days, String::from_utf8_lossy(&head[..n]).into_owned()))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => fail("timeout", format!("no response within {timeout:?}")),
        Ok(Err(e)) => {
            let tls_problem = e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
            fail(
                if tls_problem {
                    "tls_error"
                } else {
                    classify_io(&e)
                },
                e.to_string(),
            )
        }
        Ok(Ok((days, head))) => {
            let status = parse_status_line(&head).unwrap_or(0);
            let ok = (200..400).contains(&status);
            HttpsResult {
                url: url.to_owned(),
                ok,
                millis: millis(started),
                status,
                certificate_days_left: days.unwrap_or(0),
                failure: if ok {
                    String::new()
                } else {
                    "http_error".into()
                },
                detail: head.lines().next().unwrap_or_default().to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_reasons() {
        let cases = [
            (io::ErrorKind::ConnectionRefused, "refused"),
            (io::ErrorKind::HostUnreachable, "unreachable"),
            (io::ErrorKind::NetworkUnreachable, "unreachable"),
            (io::ErrorKind::TimedOut, "timeout"),
            (io::ErrorKind::ConnectionReset, "reset"),
            (io::ErrorKind::PermissionDenied, "error"),
        ];
        for (kind, reason) in cases {
            assert_eq!(classify_io(&io::Error::from(kind)), reason, "{kind:?}");
        }
        assert_eq!(classify_dns(&NetError::Timeout), "timeout");
        assert_eq!(
            classify_dns(&NetError::Io(Arc::new(
                io::ErrorKind::ConnectionRefused.into()
            ))),
            "refused"
        );
        assert_eq!(classify_dns(&NetError::NoConnections), "dns_error");
    }

    #[test]
    fn urls_and_status_lines() {
        assert_eq!(
            split_url("https://intranet.example.com/health"),
            Some(("intranet.example.com".into(), 443, "/health".into()))
        );
        assert_eq!(
            split_url("https://10.0.0.1:8443"),
            Some(("10.0.0.1".into(), 8443, "/".into()))
        );
        assert_eq!(
            split_url("https://[::1]:8443/x"),
            Some(("::1".into(), 8443, "/x".into()))
        );
        assert_eq!(split_url("http://plain.example.com/"), None);
        assert_eq!(
            parse_status_line("HTTP/1.1 204 No Content\r\nServer: x\r\n"),
            Some(204)
        );
        assert_eq!(parse_status_line("SSH-2.0-OpenSSH"), None);
    }

    #[test]
    fn certificate_expiry_in_days() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["example.test".into()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2030, 1, 31);
        let cert = params.self_signed(&key).expect("cert");
        // 2030-01-01T00:00:00Z is 1893456000.
        assert_eq!(certificate_days_left(cert.der(), 1_893_456_000), Some(30));
        assert_eq!(certificate_days_left(b"junk", 0), None);
    }

    #[tokio::test]
    async fn a_ca_file_gone_since_the_config_was_loaded_fails_every_https_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("company-ca.pem");
        let tls = tls_config(std::slice::from_ref(&gone));
        let detail = tls.as_ref().expect_err("no such file");
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

    #[tokio::test]
    async fn tcp_reasons_against_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let open = listener.local_addr().expect("addr").to_string();
        let ok = tcp(&open, Duration::from_secs(2)).await;
        assert!(ok.ok, "{ok:?}");
        drop(listener);
        // Nothing listens on port 1 (and, unlike a just-freed ephemeral port, the kernel never
        // picks it as a source port, so the connection cannot meet itself).
        let refused = tcp("127.0.0.1:1", Duration::from_secs(2)).await;
        assert_eq!(
            (refused.ok, refused.failure.as_str()),
            (false, "refused"),
            "{refused:?}"
        );
    }
}
