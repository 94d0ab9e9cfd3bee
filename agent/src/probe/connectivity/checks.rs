//! The DNS and TCP checks and what the HTTPS check shares with them. Failures are classified
//! into the reasons a technician acts on: a name that does not exist (`nxdomain`) is not a DNS
//! server that does not answer (`timeout`) or one that is down (`refused`: ICMP port
//! unreachable), and a refused port (`refused`: the host is up, the service is not) is not an
//! unreachable network (`unreachable`). Details are sentences, read out over the phone.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use tokio::net::{TcpStream, UdpSocket};

use super::CheckResult;
// Where the config loader finds them.
pub use super::https::{read_ca_file, tls_config};

/// The resolver of one round's DNS checks and the servers it asks.
pub struct Dns {
    pub resolver: Result<TokioResolver, String>,
    pub servers: Vec<IpAddr>,
}

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

/// The reason for a failed system name lookup (`getaddrinfo`), by the words the C library
/// puts in the error, since Rust keeps only those.
pub fn classify_lookup(error: &io::Error) -> &'static str {
    let text = error.to_string();
    if text.contains("Name or service not known") || text.contains("nodename nor servname") {
        "nxdomain"
    } else if text.contains("No address associated") {
        "no_records"
    } else if text.contains("Temporary failure in name resolution") {
        "timeout"
    } else {
        match classify_io(error) {
            "error" => "dns_error",
            other => other,
        }
    }
}

/// A DNS failure in words: `resolver` is who was asked.
pub fn describe_dns(failure: &str, name: &str, resolver: &str, timeout: Duration) -> String {
    let resolver = if resolver.is_empty() {
        "the resolver"
    } else {
        resolver
    };
    match failure {
        "nxdomain" => format!("{name} does not exist (answer from {resolver})"),
        "no_records" => format!("{name} exists but has no address (answer from {resolver})"),
        "timeout" => format!("no answer from {resolver} within {}", secs(timeout)),
        "refused" => format!("{resolver} is down: nothing answers DNS there"),
        "unreachable" => format!("no route to {resolver}"),
        _ => format!("the lookup of {name} failed at {resolver}"),
    }
}

fn secs(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
    ))
    .to_string()
}

pub(super) fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn failed(target: &str, started: Instant, failure: &str, detail: String) -> CheckResult {
    CheckResult {
        target: target.to_owned(),
        ok: false,
        millis: millis(started),
        failure: failure.to_owned(),
        detail,
        resolver: String::new(),
    }
}

/// A resolver for the DNS checks: the given servers, or the system's configuration. Blocks
/// (it reads `/etc/resolv.conf` and `/etc/hosts`): build it through the probe's `Offload`. The
/// error is the detail every DNS check reports.
pub fn resolver(servers: &[IpAddr], timeout: Duration) -> Dns {
    let (builder, servers) = if servers.is_empty() {
        let asked = hickory_resolver::system_conf::read_system_conf()
            .map(|(config, _)| config.name_servers().iter().map(|s| s.ip).collect())
            .unwrap_or_default();
        match Resolver::builder_tokio() {
            Ok(b) => (b, asked),
            Err(e) => {
                return Dns {
                    resolver: Err(format!("no resolver configuration: {e}")),
                    servers: asked,
                };
            }
        }
    } else {
        let config = ResolverConfig::from_parts(
            None,
            Vec::new(),
            servers
                .iter()
                .map(|ip| NameServerConfig::udp(*ip))
                .collect::<Vec<_>>(),
        );
        let builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        (builder, servers.to_vec())
    };
    let mut options = ResolverOpts::default();
    options.timeout = timeout;
    options.attempts = 1;
    options.cache_size = 0;
    let resolver = builder
        .with_options(options)
        .build()
        .map_err(|e| e.to_string());
    Dns { resolver, servers }
}

/// Whether a DNS server that did not answer is down (`refused`: ICMP port unreachable, which
/// only a connected socket hears) or out of reach (`unreachable`: no route). `None` when it
/// cannot tell (the packet may simply be lost).
pub async fn down_or_out_of_reach(server: IpAddr, wait: Duration) -> Option<&'static str> {
    // A header asking for nothing (QDCOUNT 0): any DNS server answers or ignores it.
    const QUERY: [u8; 12] = [0x46, 0x4c, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let attempt = async {
        let socket = UdpSocket::bind(local).await?;
        socket.connect((server, 53)).await?;
        socket.send(&QUERY).await?;
        let mut buf = [0u8; 512];
        socket.recv(&mut buf).await.map(|_| ())
    };
    match tokio::time::timeout(wait, attempt).await {
        Ok(Err(e)) => match classify_io(&e) {
            r @ ("refused" | "unreachable") => Some(r),
            _ => None,
        },
        _ => None,
    }
}

/// Resolves `name` (A/AAAA) with `dns` (see [`resolver`]).
pub async fn dns(name: &str, dns: &Dns, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let asked = dns
        .servers
        .iter()
        .map(|ip| SocketAddr::new(*ip, 53).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let with_resolver = |mut r: CheckResult| {
        r.resolver.clone_from(&asked);
        r
    };
    let resolver = match &dns.resolver {
        Ok(r) => r,
        Err(detail) => return with_resolver(failed(name, started, "dns_error", detail.clone())),
    };
    // Asked alongside the lookup, not after it: the resolver's retries soon use up the burst of
    // ICMP errors a kernel sends one host, and a later question would hear nothing.
    let probe = dns.servers.first().map(|server| {
        tokio::spawn(down_or_out_of_reach(
            *server,
            timeout.min(Duration::from_secs(1)),
        ))
    });
    let lookup = tokio::time::timeout(
        timeout + Duration::from_millis(500),
        resolver.lookup_ip(name),
    )
    .await;
    if let (Ok(Ok(_)), Some(probe)) = (&lookup, &probe) {
        probe.abort();
    }
    let failure = match lookup {
        Ok(Ok(ips)) => {
            return with_resolver(CheckResult {
                target: name.to_owned(),
                ok: true,
                millis: millis(started),
                failure: String::new(),
                detail: ips
                    .iter()
                    .map(|ip| ip.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                resolver: String::new(),
            });
        }
        Ok(Err(e)) => {
            tracing::debug!(name, error = %e, "DNS lookup failed");
            classify_dns(&e)
        }
        Err(_) => "timeout",
    };
    let failure = match (failure, probe) {
        ("timeout" | "dns_error", Some(probe)) => probe.await.ok().flatten().unwrap_or(failure),
        (_, probe) => {
            probe.inspect(tokio::task::JoinHandle::abort);
            failure
        }
    };
    let detail = describe_dns(failure, name, &asked, timeout);
    with_resolver(failed(name, started, failure, detail))
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
        Err((failure, detail)) => failed(target, started, failure, detail),
    }
}

/// Looks `target` up and connects to the first address that takes the connection; the error
/// is the reason and the words.
pub(super) async fn connect(
    target: &str,
    timeout: Duration,
) -> Result<TcpStream, (&'static str, String)> {
    let attempt = async {
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(target).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => {
                let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
                let failure = classify_lookup(&e);
                let words = describe_dns(failure, host, "the system resolver", timeout);
                return Err((failure, words));
            }
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err((classify_io(&last), last.to_string()))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(("timeout", format!("no connection within {}", secs(timeout)))))
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
            classify_dns(&NetError::Io(std::sync::Arc::new(
                io::ErrorKind::ConnectionRefused.into()
            ))),
            "refused"
        );
        assert_eq!(classify_dns(&NetError::NoConnections), "dns_error");
    }

    #[test]
    fn system_lookup_failures_have_a_reason_and_words() {
        let lookup = |words: &str| {
            io::Error::other(format!("failed to lookup address information: {words}"))
        };
        let cases = [
            ("Name or service not known", "nxdomain"),
            ("No address associated with hostname", "no_records"),
            ("Temporary failure in name resolution", "timeout"),
            ("Something else", "dns_error"),
        ];
        for (words, reason) in cases {
            assert_eq!(classify_lookup(&lookup(words)), reason, "{words}");
        }
        assert_eq!(
            classify_lookup(&io::ErrorKind::ConnectionRefused.into()),
            "refused"
        );
        let t = Duration::from_secs(2);
        let cases = [
            (
                "nxdomain",
                "typo.example does not exist (answer from 10.0.0.53:53)",
            ),
            (
                "no_records",
                "typo.example exists but has no address (answer from 10.0.0.53:53)",
            ),
            ("timeout", "no answer from 10.0.0.53:53 within 2s"),
            ("refused", "10.0.0.53:53 is down: nothing answers DNS there"),
            ("unreachable", "no route to 10.0.0.53:53"),
            (
                "dns_error",
                "the lookup of typo.example failed at 10.0.0.53:53",
            ),
        ];
        for (failure, words) in cases {
            assert_eq!(
                describe_dns(failure, "typo.example", "10.0.0.53:53", t),
                words
            );
        }
        assert_eq!(
            describe_dns("timeout", "x", "", t),
            "no answer from the resolver within 2s"
        );
    }

    #[tokio::test]
    async fn a_resolver_address_with_nothing_listening_is_down() {
        // Loopback answers a datagram to a closed port with ICMP port unreachable at once.
        let down = down_or_out_of_reach(IpAddr::from([127, 0, 0, 1]), Duration::from_secs(1)).await;
        // Unless something does listen on 127.0.0.1:53 here (a local caching resolver).
        let listening = std::net::UdpSocket::bind("127.0.0.1:53")
            .is_err_and(|e| e.kind() == io::ErrorKind::AddrInUse);
        assert!(down == Some("refused") || listening, "{down:?}");
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
