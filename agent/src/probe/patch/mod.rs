//! Patch probe: which package manager this machine uses, what updates are pending (and which
//! of them fix security issues), whether a reboot is required, and when packages were last
//! updated. Each package manager's output is parsed by a pure function in its own module,
//! tested on captured output; running the tools is a thin shell with a timeout (`run`).

pub mod apt;
pub mod dnf;
pub mod inputs;
pub mod kernel;
pub mod macos;
pub mod pacman;
pub mod windows;
pub mod zypper;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(any(windows, target_os = "macos"))]
mod other_os;

use firstline_proto::limits;

use crate::probe::Offload;

/// What the patch probe reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PatchFacts {
    pub package_manager: String,
    pub pending_count: u32,
    pub security_count: u32,
    pub updates: Vec<PendingUpdate>,
    pub updates_truncated: bool,
    /// Packages held by the administrator (`apt-mark hold`) that have a newer version; not
    /// in `pending_count`. Exact count; `held` keeps at most `limits::MAX_UPDATES`.
    pub held_count: u32,
    pub held: Vec<PendingUpdate>,
    pub reboot_required: bool,
    pub reboot_reason: String,
    /// Last successful package update, ms since the epoch; 0 when unknown.
    pub last_update_ms: i64,
}

/// One pending update.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingUpdate {
    pub name: String,
    pub installed_version: String,
    pub candidate_version: String,
    pub security: bool,
}

/// Where the probe looks; from the agent's config so tests and unusual systems can point
/// elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchSettings {
    /// Files whose existence means "reboot required" (Debian/Ubuntu's marker by default).
    pub reboot_markers: Vec<std::path::PathBuf>,
    /// apt's history log, for the time of the last update.
    pub apt_history: std::path::PathBuf,
    /// apt's configuration file (what `APT_CONFIG` names); `None`: `APT_CONFIG` from the
    /// agent's environment, else apt's own default.
    pub apt_config: Option<std::path::PathBuf>,
    /// dpkg's status file, passed to apt (`Dir::State::status`) and watched; `None`: apt's
    /// setting, and the default file watched.
    pub dpkg_status: Option<std::path::PathBuf>,
    /// apt's package lists folder (`Dir::State::lists`), passed and watched the same way.
    pub apt_lists: Option<std::path::PathBuf>,
    /// Least time from one run to a rerun for changed package databases: an upgrade's many
    /// writes make one run.
    pub rerun_gap: std::time::Duration,
    /// CPU time (the tool and what it starts) one package-manager run may use.
    pub cpu_budget: std::time::Duration,
    /// Resident memory (the tool's process tree) one package-manager run may use, in bytes.
    pub memory_budget: u64,
}

impl PatchSettings {
    /// The dpkg status file the watcher watches.
    pub fn dpkg_status_file(&self) -> std::path::PathBuf {
        self.dpkg_status
            .clone()
            .unwrap_or_else(|| "/var/lib/dpkg/status".into())
    }

    /// The apt lists folder the watcher watches.
    pub fn apt_lists_dir(&self) -> std::path::PathBuf {
        self.apt_lists
            .clone()
            .unwrap_or_else(|| "/var/lib/apt/lists".into())
    }
}

impl Default for PatchSettings {
    fn default() -> Self {
        Self {
            reboot_markers: vec![
                "/var/run/reboot-required".into(),
                "/run/reboot-required".into(),
            ],
            apt_history: "/var/log/apt/history.log".into(),
            apt_config: None,
            dpkg_status: None,
            apt_lists: None,
            rerun_gap: std::time::Duration::from_secs(60),
            cpu_budget: std::time::Duration::from_secs(60),
            memory_budget: 1024 * 1024 * 1024,
        }
    }
}

impl PatchFacts {
    /// Builds facts from a full list of updates, keeping exact counts but at most
    /// `limits::MAX_UPDATES` entries (security updates first).
    pub fn from_updates(package_manager: &str, updates: Vec<PendingUpdate>) -> Self {
        let (updates, pending_count, security_count, updates_truncated) = bounded(updates);
        Self {
            package_manager: package_manager.to_owned(),
            pending_count,
            security_count,
            updates,
            updates_truncated,
            ..Self::default()
        }
    }

    /// Sets the held packages that have a newer version (kept out of the pending ones).
    pub fn set_held(&mut self, held: Vec<PendingUpdate>) {
        let (held, count, _, _) = bounded(held);
        self.held = held;
        self.held_count = count;
    }
}

/// Sorts (security first), drops duplicates and cuts to `limits::MAX_UPDATES`; returns the
/// list, the exact count and security count, and whether it was cut.
fn bounded(mut updates: Vec<PendingUpdate>) -> (Vec<PendingUpdate>, u32, u32, bool) {
    updates.sort_by(|a, b| b.security.cmp(&a.security).then(a.name.cmp(&b.name)));
    updates.dedup_by(|a, b| a.name == b.name);
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let security = count(updates.iter().filter(|u| u.security).count());
    let all = count(updates.len());
    let truncated = updates.len() > limits::MAX_UPDATES;
    updates.truncate(limits::MAX_UPDATES);
    (updates, all, security, truncated)
}

/// Runs the patch probe for this OS. `memo` keeps apt's last answer (in memory and in
/// `state_dir`), so apt runs only when its inputs changed.
#[cfg(target_os = "linux")]
pub async fn collect(
    settings: &PatchSettings,
    offload: &Offload,
    memo: &inputs::Memo,
    state_dir: &std::path::Path,
) -> Result<PatchFacts, crate::probe::ProbeError> {
    linux::collect(settings, offload, memo, state_dir).await
}

/// Re-evaluates only whether a reboot is required (a few file checks, so it blocks), keeping
/// the package facts of the last full run: what the file watcher does when a reboot marker
/// appears.
#[cfg(target_os = "linux")]
pub fn refresh_reboot(facts: &mut PatchFacts, settings: &PatchSettings) {
    let from_tool = facts.reboot_required && facts.reboot_reason == "needs-restarting -r";
    if !from_tool {
        let reason = linux::reboot_reason(settings);
        facts.reboot_required = reason.is_some();
        facts.reboot_reason = reason.unwrap_or_default();
    }
}

#[cfg(not(target_os = "linux"))]
pub fn refresh_reboot(_facts: &mut PatchFacts, _settings: &PatchSettings) {}

/// Runs the probe on Windows and macOS through their thin shells in `other_os`.
#[cfg(any(windows, target_os = "macos"))]
pub async fn collect(
    _settings: &PatchSettings,
    _offload: &Offload,
    _memo: &inputs::Memo,
    _state_dir: &std::path::Path,
) -> Result<PatchFacts, crate::probe::ProbeError> {
    other_os::collect().await
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
pub async fn collect(
    _settings: &PatchSettings,
    _offload: &Offload,
    _memo: &inputs::Memo,
    _state_dir: &std::path::Path,
) -> Result<PatchFacts, crate::probe::ProbeError> {
    Err(crate::probe::ProbeError::Unsupported(
        "patch probe on this OS",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, security: bool) -> PendingUpdate {
        PendingUpdate {
            name: name.into(),
            security,
            ..PendingUpdate::default()
        }
    }

    #[test]
    fn counts_stay_exact_when_the_list_is_cut() {
        let mut updates: Vec<PendingUpdate> = (0..limits::MAX_UPDATES + 10)
            .map(|i| update(&format!("pkg{i:04}"), false))
            .collect();
        updates.push(update("zz-openssl", true));
        let facts = PatchFacts::from_updates("apt", updates);
        assert_eq!(facts.pending_count as usize, limits::MAX_UPDATES + 11);
        assert_eq!(facts.security_count, 1);
        assert!(facts.updates_truncated);
        assert_eq!(facts.updates.len(), limits::MAX_UPDATES);
        assert_eq!(
            facts.updates[0].name, "zz-openssl",
            "security updates are kept first"
        );
    }

    #[test]
    fn held_packages_are_apart_from_the_pending_ones() {
        let mut facts = PatchFacts::from_updates("apt", vec![update("vim", false)]);
        facts.set_held(vec![update("zlib", false), update("openssl", true)]);
        assert_eq!((facts.pending_count, facts.security_count), (1, 0));
        assert_eq!(facts.held_count, 2);
        let held: Vec<(&str, bool)> = facts
            .held
            .iter()
            .map(|u| (u.name.as_str(), u.security))
            .collect();
        assert_eq!(held, [("openssl", true), ("zlib", false)]);
    }
}
