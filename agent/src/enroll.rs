//! `firstline-agent enroll`: generates the key pair here, sends only a CSR with the one-time
//! token, and saves the signed certificate. The collector's CA certificate must be given (a
//! file the operator copies from the collector), so the agent never trusts an unknown server.

use std::path::Path;
use std::time::Duration;

use firstline_proto::v1::EnrollRequest;
use firstline_proto::v1::enrollment_client::EnrollmentClient;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::identity::{Identity, IdentityError, Policy};

/// Why enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("already enrolled as {agent_id} (state directory {dir}); pass --force to enroll again")]
    AlreadyEnrolled { agent_id: String, dir: String },
    #[error("cannot create the key or CSR: {0}")]
    Key(#[from] rcgen::Error),
    #[error("collector URL {url:?}: {source}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("cannot reach the collector at {url}: {source}")]
    Connect {
        url: String,
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

/// Enrolls this machine and writes its identity into `state_dir`.
pub async fn enroll(state_dir: &Path, p: &EnrollParams<'_>) -> Result<Identity, EnrollError> {
    if !p.force && Identity::exists(state_dir) {
        let agent_id = Identity::load(state_dir)
            .map(|i| i.agent_id)
            .unwrap_or_default();
        return Err(EnrollError::AlreadyEnrolled {
            agent_id,
            dir: state_dir.display().to_string(),
        });
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let csr = CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?;
    let url_error = |source| EnrollError::Url {
        url: p.collector_url.to_owned(),
        source,
    };
    let endpoint = Endpoint::from_shared(p.collector_url.to_owned())
        .map_err(url_error)?
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(p.ca_pem)))
        .map_err(url_error)?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30));
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| EnrollError::Connect {
            url: p.collector_url.to_owned(),
            source,
        })?;
    let response = EnrollmentClient::new(channel)
        .enroll(EnrollRequest {
            token: p.token.trim().to_owned(),
            csr_pem: csr.pem()?,
            hostname: p.hostname.to_owned(),
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
    identity.save(state_dir)?;
    if let Some(policy) = response.policy {
        Policy {
            disk_thresholds_percent: policy.disk_thresholds_percent,
            heartbeat_seconds: policy.heartbeat_seconds,
        }
        .save(state_dir)?;
    }
    Ok(identity)
}
