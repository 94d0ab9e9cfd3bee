//! The collector's own certificate authority (ECDSA P-256). On first start it creates the CA,
//! and on every start a fresh server certificate for the configured names; it signs agents'
//! CSRs at enrollment and issues the local operator certificate the CLI uses. Keys are written
//! with mode 0600. A certificate is identified by the SHA-256 of its DER encoding.
//!
//! CA rotation, in two steps so that no agent loses its connection (docs/operations.md):
//! `ca rotate` makes the next CA (`ca-next.crt`, `ca-next.key`) and appends it to `ca.crt`,
//! which becomes the trust bundle (the serving CA first). While the rotation is under way the
//! server certificate is still the serving CA's (every agent trusts it), agents' new
//! certificates are the next CA's, client certificates of both are accepted, enrollment and
//! renewal hand out the bundle, and agents whose certificate is older than the rotation are
//! told to renew at their next report. `ca finish` makes the next CA the only one (its key
//! becomes `ca.key`); agents that renewed trust it already; agents that did not must enroll
//! again.

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
const NEXT_CERT_FILE: &str = "ca-next.crt";
const NEXT_KEY_FILE: &str = "ca-next.key";
/// When a collector first served with the next CA, ms since the epoch: certificates issued
/// before are the old CA's.
const NEXT_SINCE_FILE: &str = "ca-next.since";
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
    #[error("{0}")]
    Rotation(String),
}

/// The CA, loaded or created, and the server identity for this run.
pub struct Authority {
    /// The trust bundle (`ca.crt`): the serving CA, then the next one during a rotation.
    ca_cert_pem: String,
    /// Who signs the certificates issued now: the next CA during a rotation, else the CA.
    issuer: Issuer<'static, KeyPair>,
    /// When the rotation under way began (the next CA's start), ms since the epoch.
    rotating_since_ms: Option<i64>,
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
        // A `ca finish` cut short after the next key became `ca.key`: finish it.
        let next_key = dir.join(NEXT_KEY_FILE);
        if next_key.exists()
            && dir.join(NEXT_CERT_FILE).exists()
            && fs::read_to_string(&next_key).ok() == fs::read_to_string(dir.join(CA_KEY_FILE)).ok()
        {
            Self::finish_rotation(dir)?;
        }
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let (ca_cert_pem, issuer) = if cert_path.exists() {
            let cert = read(&cert_path)?;
            let issuer = load_issuer(&first_pem(&cert), &key_path, &cert_path)?;
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
        let next_path = dir.join(NEXT_CERT_FILE);
        let (issuer, rotating_since_ms) = if next_path.exists() {
            let next = read(&next_path)?;
            let next = load_issuer(&next, &dir.join(NEXT_KEY_FILE), &next_path)?;
            let since = fs::read_to_string(dir.join(NEXT_SINCE_FILE))
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok());
            (next, since)
        } else {
            (issuer, None)
        };
        Ok(Self {
            ca_cert_pem,
            issuer,
            rotating_since_ms,
            server_cert_pem,
            server_key_pem,
        })
    }

    /// The trust bundle: what agents and the CLI trust for the server, and the CAs whose
    /// client certificates the server accepts.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// When a collector first served during the CA rotation under way; `None` when there is
    /// none, or no collector has started since it was made.
    pub fn rotating_since_ms(&self) -> Option<i64> {
        self.rotating_since_ms
    }

    /// Whether a next CA exists in `dir` (a rotation was started).
    pub fn rotation_started(dir: &Path) -> bool {
        dir.join(NEXT_CERT_FILE).exists()
    }

    /// Called by a serving collector after loading: the first one to serve during a rotation
    /// records when (`now_ms`), so what was issued before counts as the old CA's.
    pub fn take_up_rotation(&mut self, dir: &Path, now_ms: i64) -> Result<(), PkiError> {
        if dir.join(NEXT_CERT_FILE).exists() && self.rotating_since_ms.is_none() {
            write_public(&dir.join(NEXT_SINCE_FILE), &now_ms.to_string())?;
            self.rotating_since_ms = Some(now_ms);
        }
        Ok(())
    }

    /// Starts a CA rotation in `dir` (see the module documentation); the collector takes it
    /// up when it next starts. Refused while one is under way.
    pub fn rotate(dir: &Path) -> Result<String, PkiError> {
        let bundle_path = dir.join(CA_CERT_FILE);
        let bundle = read(&bundle_path)?;
        if dir.join(NEXT_CERT_FILE).exists() {
            return Err(PkiError::Rotation(format!(
                "a CA rotation is under way ({} exists): finish it with `firstline-collector ca \
                 finish` first",
                dir.join(NEXT_CERT_FILE).display()
            )));
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let now = time_now()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| time_now());
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name =
            name(&format!("Firstline collector CA {}", now.unix_timestamp()));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now;
        params.not_after = now + time::Duration::days(100 * 365);
        let cert = params.self_signed(&key)?;
        // The bundle first and the next CA's certificate last: it is what says a rotation is
        // under way, so a crash before it leaves none (and `ca rotate` can be run again).
        let serving = first_pem(&bundle);
        write_public(
            &bundle_path,
            &format!("{}\n{}", serving.trim_end(), cert.pem()),
        )?;
        write_private(&dir.join(NEXT_KEY_FILE), &key.serialize_pem())?;
        write_public(&dir.join(NEXT_CERT_FILE), &cert.pem())?;
        Ok(fingerprint(cert.der()))
    }

    /// Ends the rotation under way in `dir`: the next CA becomes the only one. The local
    /// operator certificate (the old CA's) is removed, so the collector issues a new one at
    /// its next start. Refused when no rotation is under way.
    pub fn finish_rotation(dir: &Path) -> Result<(), PkiError> {
        let next_cert = dir.join(NEXT_CERT_FILE);
        if !next_cert.exists() {
            return Err(PkiError::Rotation(
                "no CA rotation is under way (start one with `firstline-collector ca rotate`)"
                    .to_owned(),
            ));
        }
        let cert = read(&next_cert)?;
        let key = read(&dir.join(NEXT_KEY_FILE))?;
        write_private(&dir.join(CA_KEY_FILE), &key)?;
        write_public(&dir.join(CA_CERT_FILE), &cert)?;
        for name in [
            NEXT_KEY_FILE,
            NEXT_CERT_FILE,
            NEXT_SINCE_FILE,
            OPERATOR_CERT_FILE,
            OPERATOR_KEY_FILE,
        ] {
            let path = dir.join(name);
            if path.exists() {
                fs::remove_file(&path).map_err(|source| PkiError::Io { path, source })?;
            }
        }
        Ok(())
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

/// The first PEM block of a text (the serving CA of a bundle).
fn first_pem(pem: &str) -> String {
    const END: &str = "-----END CERTIFICATE-----";
    match pem.find(END) {
        Some(i) => format!("{}\n", &pem[..i + END.len()]),
        None => pem.to_owned(),
    }
}

fn load_issuer(
    cert_pem: &str,
    key_path: &Path,
    cert_path: &Path,
) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key = KeyPair::from_pem(&read(key_path)?).map_err(|source| PkiError::BadFile {
        path: key_path.to_owned(),
        source,
    })?;
    Issuer::from_ca_cert_pem(cert_pem, key).map_err(|source| PkiError::BadFile {
        path: cert_path.to_owned(),
        source,
    })
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
