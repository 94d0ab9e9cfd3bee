//! `firstline-agent enroll`: generates the key pair here, sends only a CSR with the one-time
//! token (and the OS's machine id, so the collector can tell when one machine enrolls twice),
//! and saves the signed certificate. The collector's CA certificate must be given (a file the
//! operator copies from the collector), so the agent never trusts an unknown server; when the
//! collector's certificate does not match it, the error says so and names the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use firstline_proto::v1::EnrollRequest;
use firstline_proto::v1::enrollment_client::EnrollmentClient;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::diagnose::{hint, tls_cause};
use crate::identity::{Identity, IdentityError, Policy};

/// Why enrollment failed. Each variant says its own context; the cause is its source.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("already enrolled as {agent_id} (state directory {dir}); pass --force to enroll again")]
    AlreadyEnrolled { agent_id: String, dir: String },
    #[error("cannot create the key or CSR")]
    Key(#[from] rcgen::Error),
    #[error("collector URL {url:?}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("cannot reach the collector at {url}")]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
    /// The TLS handshake failed for a reason the person enrolling can fix (`hint`).
    #[error("cannot connect to the collector at {url}: {hint}")]
    Untrusted {
        url: String,
        hint: String,
        source: tonic::transport::Error,
    },
    #[error("the collector refused enrollment: {}", .0.message())]
    Refused(tonic::Status),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// What the operator gives to `enroll`.
#[derive(Debug, Clone)]
pub struct EnrollParams<'a> {
    pub collector_url: &'a str,
    pub token: &'a str,
    pub ca_pem: &'a str,
    pub hostname: &'a str,
    pub force: bool,
}

/// What the command line knows besides [`EnrollParams`].
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// The OS's machine id (`probe::system::machine_id`); empty when unknown.
    pub machine_id: String,
    /// Where `ca_pem` was read from, for hints.
    pub ca_file: Option<PathBuf>,
}

/// A finished enrollment.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub identity: Identity,
    /// Something the person enrolling should know, from the collector.
    pub warning: Option<String>,
}

/// Enrolls an agent without a machine id (each test agent is a machine of its own) and writes
/// its identity into `state_dir`; the collector's warning, if any, is logged.
pub async fn enroll(state_dir: &Path, p: &EnrollParams<'_>) -> Result<Identity, EnrollError> {
    let enrolled = enroll_machine(state_dir, p, &Machine::default()).await?;
    if let Some(warning) = &enrolled.warning {
        tracing::warn!(warning, "the collector warns about this enrollment");
    }
    Ok(enrolled.identity)
}

/// Enrolls this machine and writes its identity into `state_dir`.
pub async fn enroll_machine(
    state_dir: &Path,
    p: &EnrollParams<'_>,
    machine: &Machine,
) -> Result<Enrolled, EnrollError> {
    let dir = state_dir.to_owned();
    if !p.force
        && let Some(agent_id) = firstline_support::blocking::run(move || existing(&dir)).await
    {
        return Err(EnrollError::AlreadyEnrolled {
            agent_id,
            dir: state_dir.display().to_string(),
        });
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let csr = CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?;
    let channel = connect(p, machine).await?;
    let response = EnrollmentClient::new(channel)
        .enroll(EnrollRequest {
            token: p.token.trim().to_owned(),
            csr_pem: csr.pem()?,
            hostname: p.hostname.to_owned(),
            machine_id: machine.machine_id.clone(),
        })
        .await
        .map_err(EnrollError::Refused)?
        .into_inner();
    let identity = Identity {
        agent_id: response.agent_id,
        collector_url: p.collector_url.to_owned(),
        key_pem: key.serialize_pem(),
        cert_pem: response.certificate_pem,
        ca_pem: if response.ca_certificate_pem.is_empty() {
            p.ca_pem.to_owned()
        } else {
            response.ca_certificate_pem
        },
    };
    let policy = response.policy.map(|policy| Policy {
        disk_thresholds_percent: policy.disk_thresholds_percent,
        heartbeat_seconds: policy.heartbeat_seconds,
    });
    let (saved, dir) = (identity.clone(), state_dir.to_owned());
    firstline_support::blocking::run(move || {
        saved.save(&dir)?;
        policy.map_or(Ok(()), |p| p.save(&dir))
    })
    .await?;
    let warning = Some(response.warning.trim().to_owned()).filter(|w| !w.is_empty());
    Ok(Enrolled { identity, warning })
}

/// The agent id already enrolled in `dir`, if any. Blocks.
fn existing(dir: &Path) -> Option<String> {
    Identity::exists(dir).then(|| Identity::load(dir).map(|i| i.agent_id).unwrap_or_default())
}

/// Connects to the collector trusting only the given CA; a certificate problem is explained.
async fn connect(
    p: &EnrollParams<'_>,
    machine: &Machine,
) -> Result<tonic::transport::Channel, EnrollError> {
    let url = p.collector_url.to_owned();
    let url_error = |source| EnrollError::Url {
        url: url.clone(),
        source,
    };
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(url_error)?
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(p.ca_pem)))
        .map_err(url_error)?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30));
    endpoint.connect().await.map_err(|source| {
        let ca_file = machine
            .ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("the given CA certificate"));
        match tls_cause(&source) {
            Some(cause) => EnrollError::Untrusted {
                url,
                hint: hint(cause, &ca_file),
                source,
            },
            None => EnrollError::Connect { url, source },
        }
    })
}
