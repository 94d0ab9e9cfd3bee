//! Enrolls simulated agents over the real `Enrollment/Enroll` RPC, as `firstline-agent enroll`
//! does: a fresh ECDSA P-256 key per agent, a CSR carrying only the public key, the one-time
//! token (which must have a use per agent), the host name `load-<n>`. A few channels carry the
//! enrollments, at most `concurrency` at a time; the first refusal stops the run, named.

use std::sync::Arc;
use std::time::Duration;

use firstline_proto::v1::EnrollRequest;
use firstline_proto::v1::enrollment_client::EnrollmentClient;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::identities::AgentIdentity;

/// Enrollments per channel at once (the collector serves 32 calls per connection).
const PER_CHANNEL: usize = 16;

/// Why enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("collector URL {url:?} is not usable")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error(
        "cannot connect to the collector at {url} (is it running, and does the CA file belong to \
         it?)"
    )]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("cannot create the key or CSR of agent load-{n}")]
    Key { n: usize, source: rcgen::Error },
    #[error(
        "the collector refused to enroll agent load-{n}: {} ({:?}); the token needs one use per \
         agent: `firstline-collector token create --uses N --ttl 1d`",
        .status.message(), .status.code()
    )]
    Refused { n: usize, status: tonic::Status },
}

/// The TLS endpoint of the collector, trusting only its CA.
pub fn endpoint(url: &str, ca_pem: &str) -> Result<Endpoint, EnrollError> {
    let err = |source| EnrollError::Url {
        url: url.to_owned(),
        source,
    };
    Ok(Endpoint::from_shared(url.to_owned())
        .map_err(err)?
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)))
        .map_err(err)?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30)))
}

/// Enrolls agents `first..first + count`, at most `concurrency` at a time; `progress` is
/// called with the number done so far after each.
pub async fn enroll_many(
    url: &str,
    ca_pem: &str,
    token: &str,
    first: usize,
    count: usize,
    concurrency: usize,
    progress: impl Fn(usize),
) -> Result<Vec<AgentIdentity>, EnrollError> {
    let endpoint = endpoint(url, ca_pem)?;
    let concurrency = concurrency.max(1);
    let mut channels = Vec::new();
    for _ in 0..concurrency.div_ceil(PER_CHANNEL) {
        channels.push(
            endpoint
                .connect()
                .await
                .map_err(|source| EnrollError::Connect {
                    url: url.to_owned(),
                    source,
                })?,
        );
    }
    let permits = Arc::new(Semaphore::new(concurrency));
    let token: Arc<str> = token.trim().into();
    let mut tasks = JoinSet::new();
    let mut out = Vec::with_capacity(count);
    for n in first..first + count {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let channel = channels[n % channels.len()].clone();
        let token = Arc::clone(&token);
        tasks.spawn(async move {
            let result = enroll_one(channel, &token, n).await;
            drop(permit);
            result
        });
        // Collect finished ones as we go, so a refusal stops the loop early.
        while let Some(done) = tasks.try_join_next() {
            out.push(done.expect("an enrollment task does not panic")?);
            progress(out.len());
        }
    }
    while let Some(done) = tasks.join_next().await {
        out.push(done.expect("an enrollment task does not panic")?);
        progress(out.len());
    }
    out.sort_by_key(|a| a.n);
    Ok(out)
}

async fn enroll_one(channel: Channel, token: &str, n: usize) -> Result<AgentIdentity, EnrollError> {
    let key_err = |source| EnrollError::Key { n, source };
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(key_err)?;
    let csr = CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&key))
        .and_then(|csr| csr.pem())
        .map_err(key_err)?;
    let response = EnrollmentClient::new(channel)
        .enroll(EnrollRequest {
            token: token.to_owned(),
            csr_pem: csr,
            hostname: format!("load-{n}"),
            machine_id: String::new(),
        })
        .await
        .map_err(|status| EnrollError::Refused { n, status })?
        .into_inner();
    Ok(AgentIdentity {
        n,
        agent_id: response.agent_id,
        key_pem: key.serialize_pem(),
        cert_pem: response.certificate_pem,
    })
}
