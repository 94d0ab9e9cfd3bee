//! EDR and antivirus agents recognised by their installation and their running processes, for
//! products that offer no local status interface: installed and running is the most that can
//! be said without their management consoles. Installation is checked first (a few `stat`s),
//! so the process table is only read when one of them is installed.

use super::AvProduct;

/// Paths whose existence means the product is installed, with the product name.
pub const INSTALL_MARKERS: &[(&str, &str)] = &[
    ("/opt/CrowdStrike/falconctl", "CrowdStrike Falcon"),
    ("/opt/sentinelone/bin/sentinelctl", "SentinelOne"),
    ("/opt/carbonblack", "VMware Carbon Black"),
    ("/opt/Elastic/Endpoint", "Elastic Defend"),
    ("/opt/sophos-spl", "Sophos Protection"),
    ("/opt/ds_agent", "Trend Micro Deep Security"),
    ("/opt/cylance", "Cylance"),
    ("/opt/eset", "ESET Endpoint"),
    ("/opt/kaspersky", "Kaspersky Endpoint Security"),
];

/// Products installed but whose process is not running, as not-running products.
pub fn installed_not_running(installed: &[&str], running: &[AvProduct]) -> Vec<AvProduct> {
    let mut out: Vec<AvProduct> = Vec::new();
    for name in installed {
        if running.iter().any(|p| p.name == *name) || out.iter().any(|p| p.name == *name) {
            continue;
        }
        let vendor = KNOWN
            .iter()
            .find(|k| k.1 == *name)
            .map(|k| k.2)
            .unwrap_or_default();
        out.push(AvProduct {
            name: (*name).to_owned(),
            vendor: vendor.to_owned(),
            source: "process".into(),
            ..AvProduct::default()
        });
    }
    out
}

/// Process name -> (product, vendor).
const KNOWN: &[(&str, &str, &str)] = &[
    ("falcon-sensor", "CrowdStrike Falcon", "CrowdStrike"),
    ("falcond", "CrowdStrike Falcon", "CrowdStrike"),
    ("sentinelone-agent", "SentinelOne", "SentinelOne"),
    ("s1-agent", "SentinelOne", "SentinelOne"),
    ("SentinelAgent", "SentinelOne", "SentinelOne"),
    ("cbagentd", "VMware Carbon Black", "VMware"),
    ("cbdaemon", "VMware Carbon Black", "VMware"),
    ("elastic-endpoint", "Elastic Defend", "Elastic"),
    ("sophos-spl", "Sophos Protection", "Sophos"),
    ("SophosScanD", "Sophos Protection", "Sophos"),
    ("ds_agent", "Trend Micro Deep Security", "Trend Micro"),
    ("cylancesvc", "Cylance", "BlackBerry"),
    ("esets_daemon", "ESET Endpoint", "ESET"),
    ("klnagent", "Kaspersky Endpoint Security", "Kaspersky"),
    ("wdavdaemon", "Microsoft Defender for Endpoint", "Microsoft"),
];

/// Products whose process appears among `process_names` (each once).
pub fn detect(process_names: &[String]) -> Vec<AvProduct> {
    let mut out: Vec<AvProduct> = Vec::new();
    for (process, product, vendor) in KNOWN {
        // Linux truncates process names to 15 bytes in /proc/<pid>/comm.
        let short = &process[..process.len().min(15)];
        let seen = process_names.iter().any(|n| n == process || n == short);
        if seen && !out.iter().any(|p| p.name == *product) {
            out.push(AvProduct {
                name: (*product).to_owned(),
                vendor: (*vendor).to_owned(),
                running: true,
                realtime_protection: true,
                source: "process".into(),
                ..AvProduct::default()
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_agents_are_recognised_once() {
        let names: Vec<String> = [
            "systemd",
            "falcon-sensor",
            "falcond",
            "sshd",
            "elastic-endpoin",
        ]
        .map(String::from)
        .to_vec();
        let found: Vec<String> = detect(&names).into_iter().map(|p| p.name).collect();
        assert_eq!(found, ["CrowdStrike Falcon", "Elastic Defend"]);
        assert!(detect(&[]).is_empty());
        let running = detect(&names);
        let stopped = installed_not_running(&["CrowdStrike Falcon", "SentinelOne"], &running);
        assert_eq!(stopped.len(), 1);
        assert_eq!(
            (stopped[0].name.as_str(), stopped[0].running),
            ("SentinelOne", false)
        );
    }
}
