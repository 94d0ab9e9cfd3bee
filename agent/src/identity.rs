//! The agent's identity on disk, written by `enroll`: its private key (mode 0600, generated
//! here and never sent anywhere), the certificate the collector signed, the collector's CA, and
//! `identity.toml` with the agent id and the collector URL. Also the last report policy the
//! collector sent, so thresholds survive a restart while the collector is unreachable.
//!
//! A renewed certificate (`renew`) replaces the key, the certificate and the CA together: the
//! three are written into `renewal/`, then a `ready` mark, then moved into place one by one.
//! A crash before the mark leaves the old identity (the staging folder is removed at the next
//! load); a crash after it is finished by the next load, so the key and its certificate never
//! come from two different renewals.

use std::fs;
use std::path::{Path, PathBuf};

use firstline_support::files;
use serde::{Deserialize, Serialize};

const KEY_FILE: &str = "agent.key";
const CERT_FILE: &str = "agent.crt";
const CA_FILE: &str = "ca.crt";
const IDENTITY_FILE: &str = "identity.toml";
const POLICY_FILE: &str = "policy.toml";
const RENEWAL_DIR: &str = "renewal";
const RENEWAL_READY: &str = "ready";

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

    /// Reads the identity from the state directory (finishing a renewal that a crash
    /// interrupted after it was complete; an incomplete one is left to `run`).
    pub fn load(dir: &Path) -> Result<Self, IdentityError> {
        Self::load_settling(dir, false)
    }

    /// [`Identity::load`] for the agent's own `run`, the one writer of renewals: an
    /// incomplete renewal left by a crash is removed too.
    pub fn load_for_run(dir: &Path) -> Result<Self, IdentityError> {
        Self::load_settling(dir, true)
    }

    fn load_settling(dir: &Path, drop_unfinished: bool) -> Result<Self, IdentityError> {
        let id_path = dir.join(IDENTITY_FILE);
        if !id_path.exists() {
            return Err(IdentityError::NotEnrolled { path: id_path });
        }
        settle_renewal(dir, drop_unfinished)?;
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

    /// Replaces the key, certificate and CA with renewed ones, all or nothing (see the module
    /// documentation). The agent id and collector URL stay.
    pub fn save_renewed(&self, dir: &Path) -> Result<(), IdentityError> {
        // A complete renewal still in staging is moved in first; an incomplete one goes.
        settle_renewal(dir, true)?;
        let staging = dir.join(RENEWAL_DIR);
        create_private_dir(&staging)?;
        write(&staging.join(KEY_FILE), &self.key_pem, 0o600)?;
        write(&staging.join(CERT_FILE), &self.cert_pem, 0o644)?;
        write(&staging.join(CA_FILE), &self.ca_pem, 0o644)?;
        // The three are durable before the mark says they are complete.
        files::sync_dir(&staging).map_err(|source| IdentityError::Io {
            op: "sync",
            path: staging.clone(),
            source,
        })?;
        write(&staging.join(RENEWAL_READY), "", 0o644)?;
        settle_renewal(dir, true)
    }
}

/// Moves a complete renewal into place; removes an incomplete one when `drop_unfinished`.
fn settle_renewal(dir: &Path, drop_unfinished: bool) -> Result<(), IdentityError> {
    let staging = dir.join(RENEWAL_DIR);
    if !staging.exists() {
        return Ok(());
    }
    if staging.join(RENEWAL_READY).exists() {
        for name in [KEY_FILE, CERT_FILE, CA_FILE] {
            let from = staging.join(name);
            if from.exists() {
                fs::rename(&from, dir.join(name)).map_err(|source| IdentityError::Io {
                    op: "move the renewed file",
                    path: from.clone(),
                    source,
                })?;
            }
        }
        files::sync_dir(dir).map_err(|source| IdentityError::Io {
            op: "sync",
            path: dir.to_owned(),
            source,
        })?;
    } else if drop_unfinished {
        tracing::warn!(path = %staging.display(), "an unfinished certificate renewal is discarded");
    } else {
        return Ok(());
    }
    remove_dir(&staging)
}

fn remove_dir(path: &Path) -> Result<(), IdentityError> {
    fs::remove_dir_all(path).map_err(|source| IdentityError::Io {
        op: "remove",
        path: path.to_owned(),
        source,
    })
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

    fn enrolled(dir: &Path) -> Identity {
        let identity = Identity {
            agent_id: "a-1".into(),
            collector_url: "https://127.0.0.1:7443".into(),
            key_pem: "KEY1".into(),
            cert_pem: "CERT1".into(),
            ca_pem: "CA1".into(),
        };
        identity.save(dir).expect("save");
        identity
    }

    fn renewed(identity: &Identity) -> Identity {
        Identity {
            key_pem: "KEY2".into(),
            cert_pem: "CERT2".into(),
            ca_pem: "CA2".into(),
            ..identity.clone()
        }
    }

    fn pems(identity: &Identity) -> (&str, &str, &str) {
        (&identity.key_pem, &identity.cert_pem, &identity.ca_pem)
    }

    #[test]
    fn a_renewal_replaces_key_certificate_and_ca_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let identity = enrolled(dir.path());
        renewed(&identity).save_renewed(dir.path()).expect("renew");
        let back = Identity::load(dir.path()).expect("load");
        assert_eq!(pems(&back), ("KEY2", "CERT2", "CA2"));
        assert_eq!(back.agent_id, "a-1");
        assert!(!dir.path().join(RENEWAL_DIR).exists());
    }

    #[test]
    fn a_renewal_cut_short_is_finished_or_dropped_whole() {
        // Cut after the key moved but before the certificate did: the mark is there, so the
        // next load finishes the move.
        let dir = tempfile::tempdir().expect("tempdir");
        let identity = enrolled(dir.path());
        let staging = dir.path().join(RENEWAL_DIR);
        let next = renewed(&identity);
        create_private_dir(&staging).expect("staging");
        write(&staging.join(KEY_FILE), &next.key_pem, 0o600).expect("key");
        write(&staging.join(CERT_FILE), &next.cert_pem, 0o644).expect("cert");
        write(&staging.join(CA_FILE), &next.ca_pem, 0o644).expect("ca");
        write(&staging.join(RENEWAL_READY), "", 0o644).expect("mark");
        fs::rename(staging.join(KEY_FILE), dir.path().join(KEY_FILE)).expect("move key");
        let back = Identity::load(dir.path()).expect("load");
        assert_eq!(pems(&back), ("KEY2", "CERT2", "CA2"));

        // Cut before the mark: the old identity stands; `status` and the like leave the
        // staging folder alone (the agent may be writing it), `run` removes it.
        let dir = tempfile::tempdir().expect("tempdir");
        let identity = enrolled(dir.path());
        let staging = dir.path().join(RENEWAL_DIR);
        create_private_dir(&staging).expect("staging");
        write(&staging.join(KEY_FILE), "KEY2", 0o600).expect("key");
        let back = Identity::load(dir.path()).expect("load");
        assert_eq!(pems(&back), pems(&identity));
        assert!(staging.exists());
        let back = Identity::load_for_run(dir.path()).expect("load for run");
        assert_eq!(pems(&back), pems(&identity));
        assert!(!staging.exists());
    }
}
