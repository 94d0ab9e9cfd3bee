//! Enrolled identities kept between runs (`--identities DIR`): one JSON file,
//! `DIR/loadgen-identities.json`, with the collector URL and CA they belong to and every
//! agent's id, key and certificate. Enrolling 100k agents takes a while and a token with 100k
//! uses; a later run against the same collector (same URL and same CA) reuses them and enrolls
//! only the ones missing. The file holds private keys: mode 0600.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE: &str = "loadgen-identities.json";

/// One enrolled simulated agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentIdentity {
    /// Its number: host name `load-<n>`.
    pub n: usize,
    pub agent_id: String,
    pub key_pem: String,
    pub cert_pem: String,
}

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub collector_url: String,
    pub ca_pem: String,
    pub agents: Vec<AgentIdentity>,
}

/// Errors reading or writing the file, naming it.
#[derive(Debug, thiserror::Error)]
pub enum IdentitiesError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a load generator identity file")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The saved identities usable against this collector: none when the file is missing or
/// belongs to another collector (another URL or CA).
pub fn load(dir: &Path, url: &str, ca_pem: &str) -> Result<Vec<AgentIdentity>, IdentitiesError> {
    let path = path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(IdentitiesError::Io {
                op: "read",
                path,
                source,
            });
        }
    };
    let saved: Saved =
        serde_json::from_str(&text).map_err(|source| IdentitiesError::Format { path, source })?;
    Ok(usable(saved, url, ca_pem))
}

/// The agents of `saved` if it is for this collector, numbered 0.. without gaps.
pub fn usable(saved: Saved, url: &str, ca_pem: &str) -> Vec<AgentIdentity> {
    if saved.collector_url != url || saved.ca_pem.trim() != ca_pem.trim() {
        return Vec::new();
    }
    let mut agents = saved.agents;
    agents.sort_by_key(|a| a.n);
    let gap = agents.iter().enumerate().position(|(i, a)| a.n != i);
    agents.truncate(gap.unwrap_or(agents.len()));
    agents
}

/// Writes the file atomically (a temporary file renamed over it), private to the owner.
pub fn save(dir: &Path, saved: &Saved) -> Result<(), IdentitiesError> {
    let io = |op, path: &Path| {
        let path = path.to_owned();
        move |source| IdentitiesError::Io { op, path, source }
    };
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    let path = path(dir);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let text = serde_json::to_vec(saved).map_err(|source| IdentitiesError::Format {
        path: path.clone(),
        source,
    })?;
    let mut file = open_private(&tmp).map_err(io("write", &tmp))?;
    file.write_all(&text).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io("replace", &path))
}

fn open_private(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(n: usize) -> AgentIdentity {
        AgentIdentity {
            n,
            agent_id: format!("a-{n}"),
            key_pem: "KEY".into(),
            cert_pem: "CERT".into(),
        }
    }

    #[test]
    fn only_identities_of_the_same_collector_are_reused() {
        let saved = Saved {
            collector_url: "https://127.0.0.1:7443".into(),
            ca_pem: "CA\n".into(),
            agents: vec![agent(1), agent(0), agent(3)],
        };
        // Sorted, and cut at the first gap so host names stay load-0..load-(n-1).
        assert_eq!(
            usable(saved.clone(), "https://127.0.0.1:7443", "CA"),
            vec![agent(0), agent(1)]
        );
        assert!(usable(saved.clone(), "https://127.0.0.1:7444", "CA").is_empty());
        assert!(usable(saved, "https://127.0.0.1:7443", "OTHER CA").is_empty());
    }

    #[test]
    fn saved_file_loads_back() {
        let dir = std::env::temp_dir().join(format!("loadgen-ids-{}", std::process::id()));
        let saved = Saved {
            collector_url: "u".into(),
            ca_pem: "c".into(),
            agents: vec![agent(0)],
        };
        save(&dir, &saved).expect("save");
        assert_eq!(load(&dir, "u", "c").expect("load"), vec![agent(0)]);
        assert!(
            load(&dir.join("missing"), "u", "c")
                .expect("load")
                .is_empty()
        );
        fs::write(path(&dir), "{").expect("write");
        assert!(matches!(
            load(&dir, "u", "c"),
            Err(IdentitiesError::Format { .. })
        ));
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
