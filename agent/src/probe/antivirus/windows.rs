//! Windows: Security Center's `AntiVirusProduct` (root/SecurityCenter2) with `productState`
//! decoded, and Defender's own status (`Get-MpComputerStatus`). Both are read by PowerShell
//! as JSON; decoding is here. `productState` is not documented by Microsoft; the decoding is
//! the one community tools agree on (see testdata/SOURCES.md).

use serde::Deserialize;
use serde_json::Value;

use super::AvProduct;

/// The decoded `productState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductState {
    pub enabled: bool,
    pub snoozed: bool,
    pub expired: bool,
    pub up_to_date: bool,
    pub microsoft: bool,
}

/// Decodes `productState`: bits 12-15 scanner (0 off, 1 on, 2 snoozed, 3 expired), bits 8-11
/// owner (1 Microsoft), bits 4-7 definitions (0 up to date, 1 out of date).
pub fn decode_product_state(state: u32) -> ProductState {
    let scanner = (state >> 12) & 0xF;
    ProductState {
        enabled: scanner == 1,
        snoozed: scanner == 2,
        expired: scanner == 3,
        up_to_date: (state >> 4) & 0xF == 0,
        microsoft: (state >> 8) & 0xF == 1,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecurityCenterProduct {
    display_name: String,
    product_state: u32,
}

/// Parses the `AntiVirusProduct` instances (an array, or one object).
pub fn parse_security_center(json: &str) -> Result<Vec<AvProduct>, String> {
    let json = json.trim().trim_start_matches('\u{feff}');
    if json.is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(json)
        .map_err(|e| format!("unexpected SecurityCenter2 output: {e}"))?;
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| {
            let p: SecurityCenterProduct =
                serde_json::from_value(item).map_err(|e| e.to_string())?;
            let st = decode_product_state(p.product_state);
            Ok(AvProduct {
                name: p.display_name,
                vendor: if st.microsoft {
                    "Microsoft".into()
                } else {
                    String::new()
                },
                running: st.enabled || st.snoozed,
                realtime_protection: st.enabled,
                definitions_version: if st.up_to_date {
                    "up to date".into()
                } else {
                    "out of date".into()
                },
                source: "security-center".into(),
                ..AvProduct::default()
            })
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MpStatus {
    #[serde(rename = "AMServiceEnabled")]
    am_service_enabled: Option<bool>,
    antivirus_enabled: Option<bool>,
    real_time_protection_enabled: Option<bool>,
    antivirus_signature_version: Option<String>,
    antivirus_signature_last_updated: Option<Value>,
    #[serde(rename = "AMEngineVersion")]
    am_engine_version: Option<String>,
    #[serde(rename = "AMRunningMode")]
    am_running_mode: Option<String>,
}

/// Parses `Get-MpComputerStatus | ConvertTo-Json`.
pub fn parse_defender_status(json: &str) -> Result<AvProduct, String> {
    let s: MpStatus = serde_json::from_str(json.trim().trim_start_matches('\u{feff}'))
        .map_err(|e| format!("unexpected Get-MpComputerStatus output: {e}"))?;
    let running = s.am_service_enabled.unwrap_or(false)
        && s.antivirus_enabled.unwrap_or(false)
        && s.am_running_mode.as_deref() != Some("Not running");
    Ok(AvProduct {
        name: "Microsoft Defender Antivirus".into(),
        vendor: "Microsoft".into(),
        running,
        realtime_protection: running && s.real_time_protection_enabled.unwrap_or(false),
        definitions_version: s.antivirus_signature_version.unwrap_or_default(),
        definitions_updated_ms: s
            .antivirus_signature_last_updated
            .as_ref()
            .and_then(|v| v.as_str())
            .and_then(crate::clock::parse_powershell_date)
            .unwrap_or(0),
        engine_version: s.am_engine_version.unwrap_or_default(),
        source: "defender".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_state_decoding_table() {
        for (state, enabled, up_to_date, microsoft) in [
            (397_568, true, true, true),
            (393_472, false, true, true),
            (266_240, true, true, false),
            (262_160, false, false, false),
            (397_584, true, false, true),
        ] {
            let d = decode_product_state(state);
            assert_eq!(
                (d.enabled, d.up_to_date, d.microsoft),
                (enabled, up_to_date, microsoft),
                "{state}"
            );
        }
        assert!(decode_product_state(0x062000).snoozed);
        assert!(decode_product_state(0x063000).expired);
    }

    #[test]
    fn security_center_products() {
        let two = parse_security_center(include_str!(
            "../../../testdata/windows/AntiVirusProduct-bitdefender-on-defender-off.json"
        ))
        .expect("parses");
        let summary: Vec<(&str, bool)> = two
            .iter()
            .map(|p| (p.name.as_str(), p.realtime_protection))
            .collect();
        assert_eq!(
            summary,
            [("Bitdefender Antivirus", true), ("Windows Defender", false)]
        );
        let none = parse_security_center(include_str!(
            "../../../testdata/windows/AntiVirusProduct-none.json"
        ))
        .expect("parses");
        assert!(none.is_empty());
        assert!(parse_security_center("Get-CimInstance : Invalid namespace").is_err());
    }

    #[test]
    fn defender_status() {
        let on = parse_defender_status(include_str!(
            "../../../testdata/windows/Get-MpComputerStatus-normal.json"
        ))
        .expect("parses");
        assert!(on.running && on.realtime_protection);
        assert_eq!(on.definitions_version, "1.413.102.0");
        assert!(on.definitions_updated_ms > 0);
        let off = parse_defender_status(include_str!(
            "../../../testdata/windows/Get-MpComputerStatus-not-running.json"
        ))
        .expect("parses");
        assert!(!off.running);
        assert!(parse_defender_status("").is_err());
    }
}
