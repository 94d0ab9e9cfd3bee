//! The agent's identity on disk, written by `enroll`: its private key (mode 0600, generated
//! here and never sent anywhere), the certificate the collector signed, the collector's CA, and
//! `identity.toml` with the agent id and the collector URL. Also the last report policy the
//! collector sent, so thresholds survive a restart while the collector is unreachable.

use std::fs;
use std::path::{Path, PathBuf};

use firstline_support::files;
use serde::{Deserialize, Serialize};

const KEY_FILE: &str = "agent.key";
const CERT_FILE: &str = "agent.crt";
const CA_FILE: &str = "ca.crt";
const IDENTITY_FILE: &str = "identity.toml";
const POLICY_FILE: &str = "policy.toml";

/// Errors reading or writing identity files, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("not enrolled: {path} is missing (run `firstline-agent enroll` first)")]
    NotEnrolled { path: PathBuf },
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

/// Who this agent is and where it reports.
#[derive(Debug, Clone)]
pub struct Identity {
    pub agent_id: String,
    pub collector_url: String,
    pub key_pem: String,
    pub cert_pem: String,
    pub ca_pem: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    agent_id: String,
    collector_url: String,
}

/// What the collector asked for in its last ack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub disk_thresholds_percent: Vec<f64>,
    pub heartbeat_seconds: u32,
}

/// The collector's CA certificate the agent trusts, in state directory `dir`.
pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join(CA_FILE)
}

/// The file naming the agent and its collector, in state directory `dir`.
pub fn identity_path(dir: &Path) -> PathBuf {
    dir.join(IDENTITY_FILE)
}

impl Identity {
    /// Whether an identity exists in `dir`.
    pub fn exists(dir: &Path) -> bool {
        dir.join(IDENTITY_FILE).exists()
    }

    /// Reads the identity from the state directory.
    pub fn load(dir: &Path) -> Result<Self, IdentityError> {
        let id_path = dir.join(IDENTITY_FILE);
        if !id_path.exists() {
            return Err(IdentityError::NotEnrolled { path: id_path });
        }
        let file: IdentityFile =
            toml::from_str(&read(&id_path)?).map_err(|e| IdentityError::Format {
                path: id_path.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            agent_id: file.agent_id,
            collector_url: file.collector_url,
            key_pem: read(&dir.join(KEY_FILE))?,
            cert_pem: read(&dir.join(CERT_FILE))?,
            ca_pem: read(&dir.join(CA_FILE))?,
        })
    }

    /// Writes the identity; the key file gets mode 0600 and the identity file is written last,
    /// so a half-written enrollment is not taken for a complete one.
    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        create_private_dir(dir)?;
        write(&dir.join(KEY_FILE), &self.key_pem, 0o600)?;
        write(&dir.join(CERT_FILE), &self.cert_pem, 0o644)?;
        write(&dir.join(CA_FILE), &self.ca_pem, 0o644)?;
        let file = IdentityFile {
            agent_id: self.agent_id.clone(),
            collector_url: self.collector_url.clone(),
        };
        let text = toml::to_string(&file).map_err(|e| IdentityError::Format {
            path: dir.join(IDENTITY_FILE),
            message: e.to_string(),
        })?;
        write(&dir.join(IDENTITY_FILE), &text, 0o644)
    }
}

impl Policy {
    /// The saved policy, if any and readable.
    pub fn load(dir: &Path) -> Option<Self> {
        let text = fs::read_to_string(dir.join(POLICY_FILE)).ok()?;
        toml::from_str(&text).ok()
    }

    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        let path = dir.join(POLICY_FILE);
        let text = toml::to_string(self).map_err(|e| IdentityError::Format {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write(&path, &text, 0o644)
    }
}

fn read(path: &Path) -> Result<String, IdentityError> {
    fs::read_to_string(path).map_err(|source| IdentityError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })
}

fn create_private_dir(dir: &Path) -> Result<(), IdentityError> {
    files::create_private_dir(dir).map_err(|source| IdentityError::Io {
        op: "create",
        path: dir.to_owned(),
        source,
    })
}

fn write(path: &Path, content: &str, mode: u32) -> Result<(), IdentityError> {
    files::write_atomic(path, content.as_bytes(), mode).map_err(|source| IdentityError::Io {
        op: "write",
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_identity_loads_back_and_the_key_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        assert!(matches!(
            Identity::load(&state),
            Err(IdentityError::NotEnrolled { .. })
        ));
        let identity = Identity {
            agent_id: "a-1".into(),
            collector_url: "https://127.0.0.1:7443".into(),
            key_pem: "KEY".into(),
            cert_pem: "CERT".into(),
            ca_pem: "CA".into(),
        };
        identity.save(&state).expect("save");
        let back = Identity::load(&state).expect("load");
        assert_eq!(
            (back.agent_id.as_str(), back.key_pem.as_str()),
            ("a-1", "KEY")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(state.join(KEY_FILE))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
