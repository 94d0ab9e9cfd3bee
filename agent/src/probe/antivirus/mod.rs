//! Antivirus probe: every product found, in one normalised shape (name, vendor, running,
//! real-time protection, definitions version and date, and how it was learned). Per-source
//! parsers live in their own modules and are pure; the Linux shell queries clamd's socket,
//! reads ClamAV database headers, runs `mdatp health`, and looks for EDR agents' processes.

pub mod clamav;
pub mod edr;
pub mod macos;
pub mod mdatp;
pub mod windows;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(any(windows, target_os = "macos"))]
mod other_os;

use std::path::PathBuf;
use std::time::Duration;

use crate::probe::Offload;

/// One antivirus or EDR product.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AvProduct {
    pub name: String,
    pub vendor: String,
    pub running: bool,
    pub realtime_protection: bool,
    pub definitions_version: String,
    /// ms since the epoch; 0 when unknown.
    pub definitions_updated_ms: i64,
    pub engine_version: String,
    pub source: String,
}

/// Where the antivirus probe looks; from the agent's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvSettings {
    /// clamd's configuration, for its socket and database directory.
    pub clamd_conf: PathBuf,
    /// Used when clamd.conf names no DatabaseDirectory.
    pub clamav_db_dir: PathBuf,
    /// How long clamd's PING and VERSION together may take: most of `[antivirus] timeout`
    /// (a busy clamd answers late), the rest left for the other products, so a hung clamd is
    /// reported as such instead of the whole run timing out.
    pub clamd_budget: Duration,
}

impl AvSettings {
    /// clamd's share of the probe's `timeout`.
    pub fn clamd_budget(timeout: Duration) -> Duration {
        timeout * 4 / 5
    }
}

impl Default for AvSettings {
    fn default() -> Self {
        Self {
            clamd_conf: "/etc/clamav/clamd.conf".into(),
            clamav_db_dir: "/var/lib/clamav".into(),
            clamd_budget: Self::clamd_budget(Duration::from_secs(30)),
        }
    }
}

/// Where ClamAV's databases are: clamd.conf's `DatabaseDirectory`, else the agent's
/// `clamav_db_dir`. The probe reads and the file watcher watches this one folder.
pub fn clamav_db_dir(settings: &AvSettings, conf: &clamav::ClamdConf) -> PathBuf {
    conf.database_directory
        .clone()
        .unwrap_or_else(|| settings.clamav_db_dir.clone())
}

/// Runs the antivirus probe for this OS.
#[cfg(target_os = "linux")]
pub async fn collect(
    settings: &AvSettings,
    offload: &Offload,
) -> Result<Vec<AvProduct>, crate::probe::ProbeError> {
    linux::collect(settings, offload).await
}

/// Runs the probe on Windows and macOS through their thin shells in `other_os`.
#[cfg(any(windows, target_os = "macos"))]
pub async fn collect(
    _settings: &AvSettings,
    offload: &Offload,
) -> Result<Vec<AvProduct>, crate::probe::ProbeError> {
    other_os::collect(offload).await
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
pub async fn collect(
    _settings: &AvSettings,
    _offload: &Offload,
) -> Result<Vec<AvProduct>, crate::probe::ProbeError> {
    Err(crate::probe::ProbeError::Unsupported(
        "antivirus probe on this OS",
    ))
}
