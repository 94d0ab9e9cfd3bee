//! Client side of the admin API for the CLI: connects with the operator certificate from the
//! data directory and trusts only the collector's CA.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use firstline_proto::v1::admin_client::AdminClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::pki::{CA_CERT_FILE, OPERATOR_CERT_FILE, OPERATOR_KEY_FILE};

/// Errors reaching the admin API. Each says its own context; the cause is its source, and
/// `main` prints the chain once.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot read {path} (has `firstline-collector serve` run with this data directory? \
         set --data-dir or FIRSTLINE_DATA_DIR)"
    )]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot reach the collector at {url} (is `firstline-collector serve` running?)")]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
}

/// The URL the CLI uses when none is given: the collector's own listen address, with an
/// unspecified address (0.0.0.0, ::) replaced by loopback.
pub fn default_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("https://{ip}:{}", listen.port())
}

/// Connects to the admin API at `url` with the credentials in `data_dir`.
pub async fn connect(url: &str, data_dir: &Path) -> Result<AdminClient<Channel>, ClientError> {
    let read = |name: &str| {
        let path = data_dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| ClientError::Credentials {
            path: path.display().to_string(),
            source,
        })
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(CA_CERT_FILE)?))
        .identity(Identity::from_pem(
            read(OPERATOR_CERT_FILE)?,
            read(OPERATOR_KEY_FILE)?,
        ))
        .domain_name("localhost");
    let connect_error = |source| ClientError::Connect {
        url: url.to_owned(),
        source,
    };
    let channel = Endpoint::from_shared(url.to_owned())
        .map_err(connect_error)?
        .tls_config(tls)
        .map_err(connect_error)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(connect_error)?;
    Ok(AdminClient::new(channel))
}
