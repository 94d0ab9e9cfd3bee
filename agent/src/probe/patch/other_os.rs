//! The thin OS shells of the patch probe on Windows (Windows Update Agent through PowerShell)
//! and macOS (`softwareupdate --list`); everything they print is parsed in `windows` and
//! `macos`, which are tested on every platform.

use std::time::Duration;

use super::PatchFacts;
use crate::probe::ProbeError;
use crate::probe::command::run;

/// Searching Windows Update can take minutes on a slow link.
const TIMEOUT: Duration = Duration::from_secs(600);

#[cfg(windows)]
pub async fn collect() -> Result<PatchFacts, ProbeError> {
    let args = [
        "-NoProfile",
        "-NonInteractive",
        "-Command",
        super::windows::WUA_SCRIPT,
    ];
    let out = run("powershell.exe", &args, TIMEOUT).await?;
    let parsed = super::windows::parse_wua_json(&out.stdout).map_err(ProbeError::Failed)?;
    let mut facts = PatchFacts::from_updates("windows-update", parsed.updates);
    if let Some(reason) = parsed.reboot_reason {
        facts.reboot_required = true;
        facts.reboot_reason = reason;
    }
    facts.last_update_ms = parsed.last_install_ms.unwrap_or(0);
    Ok(facts)
}

#[cfg(target_os = "macos")]
pub async fn collect() -> Result<PatchFacts, ProbeError> {
    let out = run("softwareupdate", &["--list"], TIMEOUT).await?;
    // "No new software available." goes to stderr, the list to stdout.
    let text = format!("{}\n{}", out.stdout, out.stderr);
    Ok(PatchFacts::from_updates(
        "softwareupdate",
        super::macos::parse_softwareupdate(&text),
    ))
}
