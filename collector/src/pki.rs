//! The collector's own certificate authority (ECDSA P-256). On first start it creates the CA,
//! and on every start a fresh server certificate for the configured names; it signs agents'
//! CSRs at enrollment and issues the local operator certificate the CLI uses. Keys are written
//! with mode 0600. A certificate is identified by the SHA-256 of its DER encoding.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use firstline_support::files;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType,
};

/// Files under the data directory.
pub const CA_CERT_FILE: &str = "ca.crt";
const CA_KEY_FILE: &str = "ca.key";
pub const OPERATOR_CERT_FILE: &str = "operator.crt";
pub const OPERATOR_KEY_FILE: &str = "operator.key";

/// Errors of the certificate authority.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a usable certificate or key: {source}")]
    BadFile { path: PathBuf, source: rcgen::Error },
    #[error("certificate signing request refused: {0}")]
    BadCsr(rcgen::Error),
    #[error("certificate signing request must use ECDSA P-256")]
    CsrAlgorithm,
    #[error("cannot issue certificate: {0}")]
    Issue(#[from] rcgen::Error),
}

/// The CA, loaded or created, and the server identity for this run.
pub struct Authority {
    ca_cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// PEM certificate and key of the server for this run.
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub fingerprint: String,
    pub not_after: SystemTime,
}

impl Authority {
    /// Loads the CA from `dir`, creating it (and `dir`) on first use, and issues the server
    /// certificate for `localhost`, the loopback addresses and `server_names`.
    pub fn load_or_create(dir: &Path, server_names: &[String]) -> Result<Self, PkiError> {
        create_private_dir(dir)?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let (ca_cert_pem, issuer) = if cert_path.exists() {
            let cert = read(&cert_path)?;
            let key_pem = read(&key_path)?;
            let key = KeyPair::from_pem(&key_pem).map_err(|source| PkiError::BadFile {
                path: key_path.clone(),
                source,
            })?;
            let issuer =
                Issuer::from_ca_cert_pem(&cert, key).map_err(|source| PkiError::BadFile {
                    path: cert_path.clone(),
                    source,
                })?;
            (cert, issuer)
        } else {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = name("Firstline collector CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.not_before = rcgen::date_time_ymd(2025, 1, 1);
            params.not_after = rcgen::date_time_ymd(2125, 1, 1);
            let cert = params.self_signed(&key)?;
            write_private(&key_path, &key.serialize_pem())?;
            write_public(&cert_path, &cert.pem())?;
            (cert.pem(), Issuer::new(params, key))
        };
        let (server_cert_pem, server_key_pem) = issue_server(&issuer, server_names)?;
        Ok(Self {
            ca_cert_pem,
            issuer,
            server_cert_pem,
            server_key_pem,
        })
    }

    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// Signs an agent's CSR. Only the public key is taken from the request: the subject, the
    /// names and the usages are the collector's, with the agent id as common name and URI.
    pub fn sign_agent_csr(
        &self,
        csr_pem: &str,
        agent_id: &str,
        validity: Duration,
    ) -> Result<Issued, PkiError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(PkiError::BadCsr)?;
        if csr.public_key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(PkiError::CsrAlgorithm);
        }
        let params = client_params(&format!("agent:{agent_id}"), agent_uri(agent_id), validity)?;
        let not_after = SystemTime::now() + validity;
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        Ok(Issued {
            fingerprint: fingerprint(cert.der()),
            cert_pem: cert.pem(),
            not_after,
        })
    }

    /// Issues a client certificate for an operator (the CLI and admin tools) and writes it with
    /// its key into `dir`.
    pub fn issue_operator(&self, dir: &Path, operator: &str) -> Result<Issued, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let validity = Duration::from_secs(10 * 365 * 24 * 3600);
        let uri = format!("urn:firstline:operator:{operator}");
        let params = client_params(&format!("operator:{operator}"), uri, validity)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        create_private_dir(dir)?;
        write_private(&dir.join(OPERATOR_KEY_FILE), &key.serialize_pem())?;
        write_public(&dir.join(OPERATOR_CERT_FILE), &cert.pem())?;
        Ok(Issued {
            fingerprint: fingerprint(cert.der()),
            cert_pem: cert.pem(),
            not_after: SystemTime::now() + validity,
        })
    }
}

/// SHA-256 of a certificate's DER encoding, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn agent_uri(agent_id: &str) -> String {
    format!("urn:firstline:agent:{agent_id}")
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Firstline");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn client_params(
    common_name: &str,
    uri: String,
    validity: Duration,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name(common_name);
    params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = time_now();
    // Back-dated for clocks that run a little behind, but never by more than the validity, so
    // that a short-lived certificate's renewal point (two thirds of its life) lies ahead.
    let backdate = validity.min(Duration::from_secs(5 * 60));
    params.not_before = now - backdate;
    params.not_after = now + validity;
    Ok(params)
}

fn issue_server(
    issuer: &Issuer<'static, KeyPair>,
    server_names: &[String],
) -> Result<(String, String), PkiError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = rustix::system::uname().nodename().to_str() {
        names.push(host.to_owned());
    }
    names.extend(server_names.iter().cloned());
    names.dedup();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = name("Firstline collector");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time_now();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(397);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    files::create_private_dir(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn write_private(path: &Path, content: &str) -> Result<(), PkiError> {
    write_mode(path, content, 0o600)
}

fn write_public(path: &Path, content: &str) -> Result<(), PkiError> {
    write_mode(path, content, 0o644)
}

fn write_mode(path: &Path, content: &str, mode: u32) -> Result<(), PkiError> {
    files::write_atomic(path, content.as_bytes(), mode).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

    #[test]
    fn an_agent_certificate_takes_only_the_public_key_from_the_csr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Authority::load_or_create(&dir.path().join("ca"), &[]).expect("ca");
        // A request that asks for far more than a key: another name, a host, a CA.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut asked =
            CertificateParams::new(vec!["collector.example".to_owned()]).expect("params");
        asked
            .distinguished_name
            .push(DnType::CommonName, "operator:local-admin");
        asked.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        asked.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let csr = asked
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        let issued = ca
            .sign_agent_csr(&csr, "agent-1", Duration::from_secs(3600))
            .expect("signed");
        let pem = rustls_pki_types::pem::PemObject::from_pem_slice(issued.cert_pem.as_bytes());
        let der: rustls_pki_types::CertificateDer = pem.expect("pem certificate");
        let (_, cert) = X509Certificate::from_der(der.as_ref()).expect("x509");
        let cn: Vec<&str> = cert
            .subject()
            .iter_common_name()
            .filter_map(|c| c.as_str().ok())
            .collect();
        assert_eq!(cn, ["agent:agent-1"]);
        let sans: Vec<String> = cert
            .subject_alternative_name()
            .expect("san")
            .expect("present")
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::URI(u) => format!("uri {u}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(sans, ["uri urn:firstline:agent:agent-1"]);
        assert!(!cert.is_ca(), "the CA flag of the request is ignored");
        let usage = cert.key_usage().expect("ku").expect("present").value;
        assert!(usage.digital_signature() && !usage.key_cert_sign());
        assert_eq!(
            cert.public_key().raw,
            rcgen::PublicKeyData::subject_public_key_info(&key).as_slice(),
            "the request's key is the one certified"
        );
        let wrong = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519");
        let csr = CertificateParams::new(Vec::<String>::new())
            .expect("params")
            .serialize_request(&wrong)
            .expect("csr")
            .pem()
            .expect("pem");
        assert!(matches!(
            ca.sign_agent_csr(&csr, "agent-2", Duration::from_secs(60)),
            Err(PkiError::CsrAlgorithm)
        ));
    }
}
