//! Probes collect typed facts about the machine. Parsing of what the OS prints or exposes lives
//! in pure functions compiled on every platform and tested on captured fixtures; the call into
//! the OS is a thin, `cfg`-gated shell. Every run has a timeout (see `scheduler`), and external
//! tools run through [`command::run`], which kills them when they overrun.

pub mod antivirus;
pub mod command;
pub mod connectivity;
pub mod disk;
pub mod patch;
pub mod system;

/// Why a probe produced no facts this round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    Failed(String),
}

impl ProbeError {
    /// The state name reported to the collector.
    pub fn state(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unsupported(_) => "unsupported",
            Self::Failed(_) => "error",
        }
    }
}
