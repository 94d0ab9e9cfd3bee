//! Windows: pending updates and reboot state from the Windows Update Agent, read by a
//! PowerShell script (`WUA_SCRIPT`) that prints JSON; the JSON is parsed here. The searcher
//! (`Microsoft.Update.Session`) sees what `Get-HotFix` does not: pending, not installed updates.

use serde::Deserialize;

use super::PendingUpdate;

/// The script the Windows shell runs (`powershell -NoProfile -NonInteractive -Command`).
pub const WUA_SCRIPT: &str = r#"
$ErrorActionPreference = 'Stop'
$s = New-Object -ComObject Microsoft.Update.Session
$r = $s.CreateUpdateSearcher().Search("IsInstalled=0 and IsHidden=0 and Type='Software'")
$u = foreach ($x in $r.Updates) { [pscustomobject]@{
  UpdateID = $x.Identity.UpdateID; Title = $x.Title; KBArticleIDs = @($x.KBArticleIDs)
  MsrcSeverity = $x.MsrcSeverity; Categories = @($x.Categories | ForEach-Object { $_.Name })
  RebootRequired = $x.RebootRequired; IsDownloaded = $x.IsDownloaded } }
$k = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion'
$h = $s.CreateUpdateSearcher(); $n = $h.GetTotalHistoryCount(); $last = $null
if ($n -gt 0) { $last = ($h.QueryHistory(0, [Math]::Min($n, 100)) | Where-Object { $_.ResultCode -eq 2 } | Sort-Object Date -Descending | Select-Object -First 1).Date }
[pscustomobject]@{
  LastSuccessfulInstall = $last
  RebootPending = [pscustomobject]@{
    WuaSystemInfoRebootRequired = (New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired
    CbsRebootPending = Test-Path "$k\Component Based Servicing\RebootPending"
    WuAutoUpdateRebootRequired = Test-Path "$k\WindowsUpdate\Auto Update\RebootRequired"
    PendingFileRenameOperations = $null -ne (Get-ItemProperty 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager' -Name PendingFileRenameOperations -ErrorAction SilentlyContinue)
  }
  Updates = @($u)
} | ConvertTo-Json -Depth 4
"#;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Report {
    reboot_pending: Option<RebootPending>,
    last_successful_install: Option<String>,
    #[serde(default)]
    updates: Vec<Update>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RebootPending {
    #[serde(default)]
    wua_system_info_reboot_required: Option<bool>,
    #[serde(default)]
    cbs_reboot_pending: Option<bool>,
    #[serde(default)]
    wu_auto_update_reboot_required: Option<bool>,
    #[serde(default)]
    pending_file_rename_operations: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Update {
    title: Option<String>,
    #[serde(default, rename = "KBArticleIDs")]
    kb_article_ids: Vec<String>,
    msrc_severity: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
}

/// What the script reported: updates, and the reboot reason if a reboot is pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsPatches {
    pub updates: Vec<PendingUpdate>,
    pub reboot_reason: Option<String>,
    /// The last successfully installed update (from the update history), ms since the epoch.
    pub last_install_ms: Option<i64>,
}

/// Parses the script's JSON.
pub fn parse_wua_json(json: &str) -> Result<WindowsPatches, String> {
    let report: Report = serde_json::from_str(json.trim_start_matches('\u{feff}'))
        .map_err(|e| format!("unexpected Windows Update output: {e}"))?;
    let updates = report
        .updates
        .into_iter()
        .map(|u| {
            let title = u.title.unwrap_or_default();
            let security = u.msrc_severity.as_deref().is_some_and(|s| !s.is_empty())
                || u.categories.iter().any(|c| c == "Security Updates")
                || title.starts_with("Security Update")
                || title.contains("Cumulative Security Update");
            let kb = u
                .kb_article_ids
                .first()
                .map(|k| format!("KB{k}"))
                .unwrap_or_default();
            PendingUpdate {
                name: if kb.is_empty() {
                    title.clone()
                } else {
                    format!("{kb} {title}")
                },
                installed_version: String::new(),
                candidate_version: kb,
                security,
            }
        })
        .collect();
    let r = report.reboot_pending.unwrap_or_default();
    let reason = [
        (
            r.wua_system_info_reboot_required,
            "Windows Update (SystemInfo.RebootRequired)",
        ),
        (
            r.wu_auto_update_reboot_required,
            "WindowsUpdate\\Auto Update\\RebootRequired",
        ),
        (
            r.cbs_reboot_pending,
            "Component Based Servicing\\RebootPending",
        ),
        (
            r.pending_file_rename_operations,
            "PendingFileRenameOperations",
        ),
    ]
    .into_iter()
    .find(|(flag, _)| *flag == Some(true))
    .map(|(_, why)| why.to_owned());
    let last_install_ms = report
        .last_successful_install
        .as_deref()
        .and_then(crate::clock::parse_powershell_date);
    Ok(WindowsPatches {
        updates,
        reboot_reason: reason,
        last_install_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_updates_with_security_flags() {
        let got = parse_wua_json(include_str!(
            "../../../testdata/windows/WindowsUpdate-pending.json"
        ))
        .expect("valid");
        assert_eq!(got.updates.len(), 3);
        assert!(
            got.updates[0].security,
            "Security Update title: {:?}",
            got.updates[0]
        );
        assert!(!got.updates[1].security);
        assert_eq!(got.updates[0].candidate_version, "KB3004365");
        assert_eq!(got.reboot_reason, None);
    }

    #[test]
    fn reboot_pending_and_empty_and_malformed() {
        let got = parse_wua_json(include_str!(
            "../../../testdata/windows/WindowsUpdate-none-reboot-pending.json"
        ))
        .expect("valid");
        assert!(got.updates.is_empty());
        assert!(got.reboot_reason.is_some());
        let none = parse_wua_json(include_str!(
            "../../../testdata/windows/WindowsUpdate-none.json"
        ))
        .expect("valid");
        assert!(none.updates.is_empty() && none.reboot_reason.is_none());
        let with_history = parse_wua_json(r#"{"LastSuccessfulInstall":"/Date(1717488387000)/","RebootPending":null,"Updates":[]}"#).expect("valid");
        assert_eq!(with_history.last_install_ms, Some(1_717_488_387_000));
        assert!(parse_wua_json("").is_err());
        assert!(parse_wua_json("Exception calling \"Search\"").is_err());
    }
}
