//! Connectivity probe: default gateway (present, and reachable by its ARP entry), DNS lookups
//! of configured names, TCP connects to configured targets, HTTPS checks (status and
//! certificate days left), the collector itself, and VPN interfaces. Every check has a timeout
//! and reports why it failed (NXDOMAIN vs timeout, a resolver down vs out of reach, refused vs
//! unreachable, a certificate for another name, expired or from an unknown issuer). The
//! route, ARP and interface files, the resolver configuration and the extra trusted CA files of
//! the HTTPS checks are read on the probe's `Offload`, never on the async threads.

pub mod checks;
pub mod https;
pub mod route;

use futures_util::future::join_all;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::probe::{Offload, ProbeError};

/// What the connectivity probe reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnFacts {
    pub gateway: Gateway,
    pub dns: Vec<CheckResult>,
    pub tcp: Vec<CheckResult>,
    pub https: Vec<HttpsResult>,
    pub collector: Option<CheckResult>,
    pub vpn: Vec<(String, bool)>,
}

/// The default route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gateway {
    pub present: bool,
    pub address: String,
    pub interface: String,
    pub reachable: bool,
}

/// The outcome of one DNS or TCP check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckResult {
    pub target: String,
    pub ok: bool,
    pub millis: f64,
    /// Empty when ok; otherwise one of the reasons in the wire contract.
    pub failure: String,
    pub detail: String,
    /// DNS checks: the resolvers asked (`10.0.0.53:53`); empty for other checks.
    pub resolver: String,
}

/// The outcome of one HTTPS check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpsResult {
    pub url: String,
    pub ok: bool,
    pub millis: f64,
    pub status: u32,
    /// Whole days until the server certificate expires, negative when expired; 0 when none
    /// was received.
    pub certificate_days_left: i64,
    /// When the server certificate expires (ms since the epoch), also when it was refused; 0
    /// when none was received.
    pub certificate_not_after_ms: i64,
    pub failure: String,
    pub detail: String,
}

/// Targets and timeouts; from the agent's config.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnSettings {
    pub dns_names: Vec<String>,
    /// DNS servers to ask; empty means the system's resolver configuration.
    pub dns_servers: Vec<IpAddr>,
    pub tcp_targets: Vec<String>,
    pub https_urls: Vec<String>,
    /// PEM files of CAs the HTTPS checks trust besides the web PKI roots and the operating
    /// system's trust store (a company's own CA).
    pub https_ca_files: Vec<PathBuf>,
    /// `host:port` of the collector, when enrolled.
    pub collector: Option<String>,
    pub timeout: Duration,
}

impl Default for ConnSettings {
    fn default() -> Self {
        Self {
            dns_names: Vec::new(),
            dns_servers: Vec::new(),
            tcp_targets: Vec::new(),
            https_urls: Vec::new(),
            https_ca_files: Vec::new(),
            collector: None,
            timeout: Duration::from_secs(3),
        }
    }
}

/// What the probe reads from local files first, in one call on the blocking pool.
struct Local {
    gateway: Option<(String, std::net::Ipv4Addr, bool)>,
    vpn: Vec<(String, bool)>,
    resolver: Option<checks::Dns>,
    tls: Option<Result<https::Tls, String>>,
}

/// Runs every check concurrently; the round takes at most about one timeout.
pub async fn collect(settings: &ConnSettings, offload: &Offload) -> Result<ConnFacts, ProbeError> {
    let (servers, timeout) = (settings.dns_servers.clone(), settings.timeout);
    let wants_dns = !settings.dns_names.is_empty();
    let ca_files = (!settings.https_urls.is_empty()).then(|| settings.https_ca_files.clone());
    let local = offload
        .run(move || Local {
            gateway: route::read_gateway(),
            vpn: route::vpn_interfaces(),
            resolver: wants_dns.then(|| checks::resolver(&servers, timeout)),
            tls: ca_files.map(|files| https::tls_config(&files)),
        })
        .await?;
    let resolver = local.resolver.unwrap_or_else(|| checks::Dns {
        resolver: Err("no names to resolve".into()),
        servers: Vec::new(),
    });
    let tls = local.tls.unwrap_or_else(|| Err("no URLs to fetch".into()));
    let dns = join_all(
        settings
            .dns_names
            .iter()
            .map(|n| checks::dns(n, &resolver, settings.timeout)),
    );
    let tcp = join_all(
        settings
            .tcp_targets
            .iter()
            .map(|t| checks::tcp(t, settings.timeout)),
    );
    let https = join_all(
        settings
            .https_urls
            .iter()
            .map(|u| https::https(u, &tls, settings.timeout)),
    );
    let collector = async {
        match &settings.collector {
            Some(target) => Some(checks::tcp(target, settings.timeout).await),
            None => None,
        }
    };
    let (dns, tcp, https, collector, gateway) = tokio::join!(
        dns,
        tcp,
        https,
        collector,
        route::gateway(local.gateway, offload)
    );
    Ok(ConnFacts {
        gateway,
        dns,
        tcp,
        https,
        collector,
        vpn: local.vpn,
    })
}
