//! Microsoft Defender for Endpoint on Linux and macOS: `mdatp health --output json`. Settings
//! there are wrapped objects (`{"value": true, "isManaged": false, ...}`) and times are epoch
//! milliseconds in strings; older versions print only `key : value` text, parsed as well.

use serde_json::Value;

use super::AvProduct;

/// Parses `mdatp health --output json`.
pub fn parse_health_json(json: &str) -> Option<AvProduct> {
    let v: Value = serde_json::from_str(json).ok()?;
    let setting = |key: &str| -> Option<Value> {
        let raw = v.get(key)?;
        Some(raw.get("value").cloned().unwrap_or_else(|| raw.clone()))
    };
    let text = |key: &str| {
        setting(key)
            .and_then(|x| x.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let passive = setting("passiveModeEnabled")
        .and_then(|x| x.as_bool())
        .unwrap_or(false);
    let realtime = setting("realTimeProtectionEnabled")
        .and_then(|x| x.as_bool())
        .unwrap_or(false);
    let updated = setting("definitionsUpdated")
        .and_then(|x| {
            x.as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| x.as_i64())
        })
        .unwrap_or(0);
    Some(AvProduct {
        name: if passive {
            "Microsoft Defender for Endpoint (passive)".into()
        } else {
            "Microsoft Defender for Endpoint".into()
        },
        vendor: "Microsoft".into(),
        running: v.get("healthy").and_then(Value::as_bool).unwrap_or(false),
        realtime_protection: realtime,
        definitions_version: text("definitionsVersion"),
        definitions_updated_ms: updated,
        engine_version: text("engineVersion"),
        source: "mdatp".into(),
    })
}

/// Parses the older text output (`real_time_protection_enabled : true`).
pub fn parse_health_text(text: &str) -> Option<AvProduct> {
    let field = |key: &str| {
        text.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        })
    };
    let healthy = field("healthy")?;
    Some(AvProduct {
        name: "Microsoft Defender for Endpoint".into(),
        vendor: "Microsoft".into(),
        running: healthy == "true",
        realtime_protection: field("real_time_protection_enabled").as_deref() == Some("true"),
        definitions_version: field("definitions_version").unwrap_or_default(),
        definitions_updated_ms: 0,
        engine_version: field("engine_version").unwrap_or_default(),
        source: "mdatp".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_health_from_linux_and_macos() {
        let linux = parse_health_json(include_str!(
            "../../../testdata/linux/mdatp-health-101.23062.0010.json"
        ))
        .expect("parses");
        assert!(linux.running);
        assert!(
            !linux.realtime_protection,
            "the fixture has real-time protection off"
        );
        assert_eq!(linux.definitions_version, "1.395.30.0");
        assert_eq!(linux.definitions_updated_ms, 1_691_587_153_787);
        assert_eq!(linux.name, "Microsoft Defender for Endpoint (passive)");
        let mac = parse_health_json(include_str!(
            "../../../testdata/macos/mdatp-health-101.98.30.json"
        ))
        .expect("parses");
        assert_eq!(mac.definitions_version, "1.389.10.0");
        assert!(parse_health_json("not json").is_none());
    }

    #[test]
    fn text_health() {
        let p = parse_health_text(include_str!(
            "../../../testdata/macos/mdatp-health-101.70.19.txt"
        ))
        .expect("parses");
        assert!(p.running && p.realtime_protection);
        assert_eq!(p.definitions_version, "1.369.896.0");
        assert!(parse_health_text("").is_none());
    }
}
