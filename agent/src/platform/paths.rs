//! Where the agent looks for its config and keeps its state when the command line does not
//! say: on Windows under `%ProgramData%\Firstline` (what the MSI installs); on Linux the
//! packaged layout, `/etc/firstline/agent.toml` and `/var/lib/firstline-agent`, each when it
//! exists (what the .deb and .rpm install), so `firstline-agent status` on a packaged machine
//! needs no flags; otherwise (and on macOS, whose launchd job passes `--config` and
//! `--state-dir`) the working directory's `firstline-agent-data`. systemd's `$STATE_DIRECTORY`
//! still comes first for the state (`config.rs`).

use std::path::{Path, PathBuf};

use crate::enrollment::process_env;

/// The OS families whose defaults differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Windows,
    Linux,
    /// macOS and the other Unixes.
    Unix,
}

/// The configuration file the Linux packages install (`deploy/agent/agent.toml`).
const PACKAGED_CONFIG_FILE: &str = "/etc/firstline/agent.toml";
/// The state directory of the Linux packages' service (its `StateDirectory=`).
const PACKAGED_STATE_DIR: &str = "/var/lib/firstline-agent";
/// The state directory when nothing else applies, relative to the working directory.
const WORKING_DIR_STATE: &str = "firstline-agent-data";

/// Default locations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// Read when it exists and no `--config` is given.
    pub config_file: Option<PathBuf>,
    pub state_dir: PathBuf,
    /// Where the Windows service writes its log.
    pub log_dir: PathBuf,
}

impl Os {
    pub fn current() -> Self {
        if cfg!(windows) {
            Self::Windows
        } else if cfg!(target_os = "linux") {
            Self::Linux
        } else {
            Self::Unix
        }
    }
}

impl Defaults {
    /// The defaults on `os`, with `env` looking up environment variables (`ProgramData`) and
    /// `exists` telling whether something is at a path (the packaged Linux layout).
    pub fn for_os(
        os: Os,
        env: &dyn Fn(&str) -> Option<String>,
        exists: &dyn Fn(&Path) -> bool,
    ) -> Self {
        match os {
            Os::Windows => {
                let data = env("ProgramData")
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| r"C:\ProgramData".to_owned());
                let base = format!(r"{}\Firstline", data.trim_end_matches('\\'));
                Self {
                    config_file: Some(PathBuf::from(format!(r"{base}\agent.toml"))),
                    state_dir: PathBuf::from(format!(r"{base}\state")),
                    log_dir: PathBuf::from(format!(r"{base}\logs")),
                }
            }
            Os::Linux => {
                let packaged = |path: &str| Some(PathBuf::from(path)).filter(|p| exists(p));
                Self {
                    config_file: packaged(PACKAGED_CONFIG_FILE),
                    state_dir: packaged(PACKAGED_STATE_DIR)
                        .unwrap_or_else(|| PathBuf::from(WORKING_DIR_STATE)),
                    log_dir: PathBuf::from(WORKING_DIR_STATE),
                }
            }
            Os::Unix => Self {
                config_file: None,
                state_dir: PathBuf::from(WORKING_DIR_STATE),
                log_dir: PathBuf::from(WORKING_DIR_STATE),
            },
        }
    }

    /// The defaults on this machine. Looks at the file system.
    pub fn here() -> Self {
        Self::for_os(Os::current(), &process_env, &|p| p.exists())
    }
}

/// The config file to read when none is given: this OS's default, if it is a file. Blocks.
pub fn default_config_file() -> Option<PathBuf> {
    Defaults::here().config_file.filter(|f| f.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_paths_live_under_program_data() {
        let cases = [
            (Some(r"D:\Data"), r"D:\Data\Firstline"),
            (Some(r"C:\ProgramData\"), r"C:\ProgramData\Firstline"),
            (Some(""), r"C:\ProgramData\Firstline"),
            (None, r"C:\ProgramData\Firstline"),
        ];
        for (program_data, base) in cases {
            let env = |name: &str| {
                (name == "ProgramData")
                    .then(|| program_data.map(str::to_owned))
                    .flatten()
            };
            let d = Defaults::for_os(Os::Windows, &env, &|_| true);
            assert_eq!(
                d.config_file,
                Some(PathBuf::from(format!(r"{base}\agent.toml"))),
                "{program_data:?}"
            );
            assert_eq!(d.state_dir, PathBuf::from(format!(r"{base}\state")));
            assert_eq!(d.log_dir, PathBuf::from(format!(r"{base}\logs")));
        }
    }

    #[test]
    fn linux_uses_the_packaged_layout_where_it_exists() {
        let packaged_config = Some(PathBuf::from("/etc/firstline/agent.toml"));
        let packaged_state = PathBuf::from("/var/lib/firstline-agent");
        let here = PathBuf::from("firstline-agent-data");
        // (paths that exist, expected config file, expected state directory)
        let cases = [
            (vec![], None, &here),
            (
                vec!["/etc/firstline/agent.toml", "/var/lib/firstline-agent"],
                packaged_config.clone(),
                &packaged_state,
            ),
            // Installed but never started (no state yet), or the config deleted: each
            // default stands on its own.
            (
                vec!["/etc/firstline/agent.toml"],
                packaged_config.clone(),
                &here,
            ),
            (vec!["/var/lib/firstline-agent"], None, &packaged_state),
            // Other paths do not count.
            (vec!["/etc/firstline", "/var/lib"], None, &here),
        ];
        for (present, config_file, state_dir) in cases {
            let exists = |p: &Path| present.iter().any(|q| Path::new(q) == p);
            let d = Defaults::for_os(Os::Linux, &|_| None, &exists);
            assert_eq!(d.config_file, config_file, "{present:?}");
            assert_eq!(&d.state_dir, state_dir, "{present:?}");
        }
    }

    #[test]
    fn elsewhere_the_state_is_in_the_working_directory() {
        // macOS: its launchd job passes both paths; the packaged Linux paths mean nothing.
        let d = Defaults::for_os(Os::Unix, &|_| Some("/ignored".into()), &|_| true);
        assert_eq!(d.config_file, None);
        assert_eq!(d.state_dir, PathBuf::from("firstline-agent-data"));
    }
}
