//! EDR and antivirus agents recognised by their running processes, for products that offer no
//! local status interface: the process running is the most that can be said without their
//! management consoles.

use super::AvProduct;

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
    ("clamonacc", "ClamAV on-access scanner", "Cisco"),
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
    }
}
