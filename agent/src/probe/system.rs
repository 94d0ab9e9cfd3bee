//! System probe: host name, the OS's machine identity, OS name/version/build, uptime, CPU and
//! memory use, and the agent's own footprint. Values come from `sysinfo` (all platforms); the
//! machine id and the OS release file are parsed by pure functions tested on fixtures. Every
//! function here blocks (it reads `/proc`, `/etc` or runs `reg`/`ioreg`): call it from the
//! blocking pool.

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// What the system probe reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemFacts {
    pub hostname: String,
    pub machine_id: String,
    pub os_name: String,
    pub os_version: String,
    pub os_build: String,
    pub architecture: String,
    pub uptime_seconds: u64,
    pub cpu_percent: f64,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub agent_version: String,
    pub agent_rss_bytes: u64,
    pub agent_cpu_millis: u64,
}

/// Keeps `sysinfo` state between runs (CPU use is a difference between two refreshes).
pub struct SystemProbe {
    sys: Option<System>,
    pid: Option<Pid>,
}

impl Default for SystemProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemProbe {
    pub fn new() -> Self {
        Self {
            sys: System::new().ok(),
            pid: sysinfo::get_current_pid().ok(),
        }
    }

    /// Measures now.
    pub fn collect(&mut self) -> SystemFacts {
        let mut facts = SystemFacts {
            hostname: hostname(),
            machine_id: machine_id(),
            os_name: System::name().unwrap_or_default(),
            os_version: System::os_version().unwrap_or_default(),
            os_build: os_build(),
            architecture: System::cpu_arch(),
            uptime_seconds: System::uptime().unwrap_or(0),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..SystemFacts::default()
        };
        if let Some(sys) = self.sys.as_mut() {
            sys.refresh_memory();
            sys.refresh_cpu_usage();
            facts.cpu_percent = f64::from(sys.global_cpu_usage());
            facts.memory_total_bytes = sys.total_memory();
            facts.memory_used_bytes = sys.used_memory();
            if let Some(pid) = self.pid {
                sys.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    false,
                    ProcessRefreshKind::nothing().with_memory().with_cpu(),
                );
                if let Some(me) = sys.process(pid) {
                    facts.agent_rss_bytes = me.memory();
                    facts.agent_cpu_millis = me.accumulated_cpu_time();
                }
            }
        }
        facts
    }
}

/// The host name as the OS reports it; empty when it cannot be read.
pub fn hostname() -> String {
    System::host_name().unwrap_or_default()
}

fn os_build() -> String {
    let kernel = System::kernel_version().unwrap_or_default();
    #[cfg(windows)]
    return windows_build(&kernel);
    #[cfg(not(windows))]
    kernel
}

/// Parses `/etc/os-release` (os-release(5)) into (NAME, VERSION_ID).
pub fn parse_os_release(text: &str) -> (String, String) {
    let mut name = String::new();
    let mut version = String::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').trim_matches('\'').to_owned();
        match key.trim() {
            "NAME" => name = value,
            "VERSION_ID" => version = value,
            _ => {}
        }
    }
    (name, version)
}

/// Extracts `IOPlatformUUID` from `ioreg -rd1 -c IOPlatformExpertDevice` (macOS).
pub fn parse_ioreg_uuid(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.contains("\"IOPlatformUUID\""))
        .and_then(|l| l.split('=').nth(1))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// Extracts `MachineGuid` from `reg query HKLM\SOFTWARE\Microsoft\Cryptography /v MachineGuid`.
pub fn parse_reg_machine_guid(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.trim_start().starts_with("MachineGuid"))
        .and_then(|l| l.split_whitespace().nth(2))
        .map(str::to_owned)
}

/// A `REG_DWORD` value from `reg query ... /v NAME` output (`    UBR    REG_DWORD    0xd0e`).
pub fn parse_reg_dword(text: &str, name: &str) -> Option<u32> {
    text.lines()
        .map(str::split_whitespace)
        .find_map(|mut f| {
            (f.next() == Some(name) && f.next() == Some("REG_DWORD"))
                .then(|| f.next())
                .flatten()
        })
        .and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok())
}

/// Windows' full build number: CurrentBuild plus the update build revision (UBR).
#[cfg(windows)]
fn windows_build(current: &str) -> String {
    std::process::Command::new("reg")
        .args([
            "query",
            r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion",
            "/v",
            "UBR",
        ])
        .output()
        .ok()
        .and_then(|o| parse_reg_dword(&String::from_utf8_lossy(&o.stdout), "UBR"))
        .map(|ubr| format!("{current}.{ubr}"))
        .unwrap_or_else(|| current.to_owned())
}

/// The OS's machine identity; empty when it cannot be read.
#[cfg(target_os = "linux")]
pub fn machine_id() -> String {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(target_os = "macos")]
pub fn machine_id() -> String {
    std::process::Command::new("ioreg")
        .args(["-rd1", "-c", "IOPlatformExpertDevice"])
        .output()
        .ok()
        .and_then(|o| parse_ioreg_uuid(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

#[cfg(windows)]
pub fn machine_id() -> String {
    std::process::Command::new("reg")
        .args([
            "query",
            r"HKLM\SOFTWARE\Microsoft\Cryptography",
            "/v",
            "MachineGuid",
        ])
        .output()
        .ok()
        .and_then(|o| parse_reg_machine_guid(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub fn machine_id() -> String {
    String::new()
}

/// This boot's identity: Linux's random boot id, elsewhere the boot time (whole seconds,
/// which a reboot changes and a clone booted apart from its original does not share).
/// Empty when unknown.
pub fn boot_id() -> String {
    #[cfg(target_os = "linux")]
    {
        if let Some(id) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .and_then(|text| parse_boot_id(&text))
        {
            return id;
        }
    }
    boot_time_id(sysinfo::System::boot_time().unwrap_or(0))
}

/// The boot id in the kernel's file: one UUID (36 characters of hex and dashes).
pub fn parse_boot_id(text: &str) -> Option<String> {
    let id = text.trim();
    let shaped = id.len() == 36
        && id.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    shaped.then(|| id.to_ascii_lowercase())
}

/// The boot id made of a boot time (seconds since the epoch); empty when it is unknown (0).
pub fn boot_time_id(boot_time_secs: u64) -> String {
    if boot_time_secs == 0 {
        String::new()
    } else {
        format!("boot-time:{boot_time_secs}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_ids_from_the_kernel_and_from_the_boot_time() {
        // proc(5): "a random UUID, generated once per boot", one line.
        assert_eq!(
            parse_boot_id("7C3E1AB2-94f1-4c6e-9d4b-5e0b7a1c2d3e\n").as_deref(),
            Some("7c3e1ab2-94f1-4c6e-9d4b-5e0b7a1c2d3e")
        );
        assert_eq!(parse_boot_id(""), None);
        assert_eq!(parse_boot_id("not-a-uuid"), None);
        assert_eq!(parse_boot_id("7c3e1ab2x94f1-4c6e-9d4b-5e0b7a1c2d3e"), None);
        assert_eq!(boot_time_id(1_764_000_000), "boot-time:1764000000");
        assert_eq!(boot_time_id(0), "");
        #[cfg(target_os = "linux")]
        {
            let kernel =
                std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot_id");
            assert_eq!(boot_id(), kernel.trim(), "this machine's boot id");
        }
    }

    #[test]
    fn os_release_name_and_version() {
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
        assert_eq!(
            parse_os_release(debian),
            ("Debian GNU/Linux".into(), "12".into())
        );
        assert_eq!(parse_os_release(""), (String::new(), String::new()));
    }

    #[test]
    fn machine_ids_from_macos_and_windows_tools() {
        let ioreg = "+-o J314sAP  <class IOPlatformExpertDevice, id 0x100000110>\n    {\n      \"IOPlatformUUID\" = \"5F1C2A3B-1111-2222-3333-444455556666\"\n    }\n";
        assert_eq!(
            parse_ioreg_uuid(ioreg).as_deref(),
            Some("5F1C2A3B-1111-2222-3333-444455556666")
        );
        let reg = "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Cryptography\r\n    MachineGuid    REG_SZ    0b6d1c5e-1234-4cde-9f00-1a2b3c4d5e6f\r\n\r\n";
        assert_eq!(
            parse_reg_machine_guid(reg).as_deref(),
            Some("0b6d1c5e-1234-4cde-9f00-1a2b3c4d5e6f")
        );
        assert_eq!(parse_ioreg_uuid("garbage"), None);
        let ubr = "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\r\n    UBR    REG_DWORD    0xd0e\r\n";
        assert_eq!(parse_reg_dword(ubr, "UBR"), Some(3342));
        assert_eq!(parse_reg_dword(ubr, "CurrentBuild"), None);
        assert_eq!(parse_reg_machine_guid(""), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn collects_this_machine() {
        let facts = SystemProbe::new().collect();
        assert!(!facts.hostname.is_empty());
        assert!(
            facts.memory_total_bytes > 0 && facts.memory_used_bytes <= facts.memory_total_bytes
        );
        assert!(facts.agent_rss_bytes > 0, "{facts:?}");
    }
}
