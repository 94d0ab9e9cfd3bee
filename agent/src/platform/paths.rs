//! Where the agent looks for its config and keeps its state when the command line does not
//! say: on Windows under `%ProgramData%\Firstline` (what the MSI installs), elsewhere the
//! working directory's `firstline-agent-data` (the Linux and macOS service definitions pass
//! `--config` and `--state-dir` explicitly).

use std::path::PathBuf;

use crate::enrollment::process_env;

/// The OS families whose defaults differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Windows,
    Unix,
}

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
        } else {
            Self::Unix
        }
    }
}

impl Defaults {
    /// The defaults on `os`, with `env` looking up environment variables (`ProgramData`).
    pub fn for_os(os: Os, env: &dyn Fn(&str) -> Option<String>) -> Self {
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
            Os::Unix => Self {
                config_file: None,
                state_dir: PathBuf::from("firstline-agent-data"),
                log_dir: PathBuf::from("firstline-agent-data"),
            },
        }
    }

    /// The defaults on this machine.
    pub fn here() -> Self {
        Self::for_os(Os::current(), &process_env)
    }
}

/// The config file to read when none is given: this OS's default, if it exists. Blocks.
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
            let d = Defaults::for_os(Os::Windows, &env);
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
    fn elsewhere_the_state_is_in_the_working_directory() {
        let d = Defaults::for_os(Os::Unix, &|_| Some("/ignored".into()));
        assert_eq!(d.config_file, None);
        assert_eq!(d.state_dir, PathBuf::from("firstline-agent-data"));
    }
}
