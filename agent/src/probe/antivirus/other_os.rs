//! The thin OS shells of the antivirus probe on Windows (Security Center and Defender through
//! PowerShell) and macOS (XProtect's property lists, Defender's `mdatp`); parsing is in
//! `windows`, `macos` and `mdatp`, tested on every platform.

use std::time::Duration;

use super::AvProduct;
use crate::probe::command::run;
use crate::probe::{Offload, ProbeError};

const TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(windows)]
pub async fn collect(_offload: &Offload) -> Result<Vec<AvProduct>, ProbeError> {
    // An async block owns the argument list the returned future borrows.
    let ps = |script: &'static str| async move {
        run(
            "powershell.exe",
            &["-NoProfile", "-NonInteractive", "-Command", script],
            TIMEOUT,
        )
        .await
    };
    // Windows Server has no Security Center: an error there means "no entries", not a failure.
    let mut products = match ps("Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct | Select-Object displayName,productState | ConvertTo-Json").await {
        Ok(out) => super::windows::parse_security_center(&out.stdout).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let defender = ps("Get-MpComputerStatus | Select-Object AMServiceEnabled,AntivirusEnabled,RealTimeProtectionEnabled,AntivirusSignatureVersion,AntivirusSignatureLastUpdated,AMEngineVersion,AMRunningMode | ConvertTo-Json").await;
    if let Ok(out) = defender
        && let Ok(status) = super::windows::parse_defender_status(&out.stdout)
    {
        // Defender's own status is richer than its Security Center entry.
        products.retain(|p| !(p.vendor == "Microsoft" && p.name.contains("Defender")));
        products.push(status);
    }
    Ok(products)
}

#[cfg(target_os = "macos")]
pub async fn collect(offload: &Offload) -> Result<Vec<AvProduct>, ProbeError> {
    // The property lists and PATH are files: read them off the async threads.
    let (versions, mdatp) = offload
        .run(|| {
            let versions: Vec<String> = super::macos::XPROTECT_PLISTS
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .filter_map(|xml| super::macos::xprotect_version(&xml))
                .collect();
            (versions, crate::probe::command::available("mdatp"))
        })
        .await?;
    let mut products: Vec<AvProduct> = super::macos::xprotect_product(&versions)
        .into_iter()
        .collect();
    if mdatp
        && let Ok(out) = run("mdatp", &["health", "--output", "json"], TIMEOUT).await
        && let Some(p) = super::mdatp::parse_health_json(&out.stdout)
    {
        products.push(p);
    }
    Ok(products)
}
