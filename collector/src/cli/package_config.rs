//! `firstline-collector package-config`: prints, for each OS, the exact commands that install
//! the agent and enroll it with this collector: its URL, a fresh enrollment token (made as
//! `token create` makes one) and its CA certificate embedded, for a technician to paste into
//! an RMM, GPO/Intune or MDM. Every OS passes the same three values (collector URL, token,
//! CA file) the agent reads from `[enrollment]` or `FIRSTLINE_*` variables; only the way they
//! reach the machine differs. Works on the store; the collector may be stopped.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};

use crate::config::Config;
use crate::pki::Authority;
use crate::tokens;

/// Options of `package-config`.
#[derive(Debug, Args)]
pub struct PackageConfigArgs {
    /// The URL agents reach this collector at. Default: https:// and the first
    /// `grpc.server_names` entry, else the listen address, with the listen port.
    #[arg(long)]
    pub url: Option<String>,
    /// How many machines may enroll with the token.
    #[arg(long, default_value_t = 50)]
    pub uses: u32,
    /// How long the token stays valid, e.g. 24h, 7d.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// A note for operators, e.g. the batch of machines it is for.
    #[arg(long, default_value = "package-config")]
    pub label: String,
    /// Only this OS's commands.
    #[arg(long, value_enum)]
    pub os: Option<Os>,
}

/// The operating systems commands are printed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Os {
    Debian,
    Rhel,
    Windows,
    Macos,
}

/// What every command embeds.
#[derive(Debug, Clone)]
pub struct Values {
    pub url: String,
    pub token: String,
    pub ca_pem: String,
    /// The agent package's version, in file names.
    pub version: String,
}

/// Where the Linux packages keep the agent's state (the unit's StateDirectory).
const LINUX_STATE_DIR: &str = "/var/lib/firstline-agent";
/// Where the Linux commands put the CA certificate.
const LINUX_CA_FILE: &str = "/etc/firstline/ca.crt";
/// Where the Windows commands put it (the MSI's data folder).
const WINDOWS_CA_FILE: &str = r"C:\ProgramData\Firstline\ca.crt";
/// The macOS package's folder.
const MACOS_SUPPORT: &str = "/Library/Application Support/Firstline";
/// Ends the here-documents; a PEM certificate never holds it.
const HEREDOC_END: &str = "FIRSTLINE_CA";

/// Creates the token, reads the CA and prints the commands.
pub async fn run(config: &Config, args: PackageConfigArgs) -> Result<()> {
    let url = match args.url {
        Some(url) => url,
        None => default_url(config)?,
    };
    if !url.starts_with("https://") {
        bail!("--url {url:?}: agents need an https:// URL");
    }
    let authority = Authority::load_or_create(&config.data_dir, &config.server_names)
        .with_context(|| format!("reading the CA in {}", config.data_dir.display()))?;
    let store = super::local::open_store(config).await?;
    let created = tokens::create_token(&store, &args.label, args.ttl, args.uses).await;
    store.close().await;
    let created = created?;
    let values = Values {
        url,
        token: created.secret,
        ca_pem: authority.ca_cert_pem().trim_end().to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let expires =
        humantime::format_rfc3339_seconds(crate::clock::from_ms(created.row.expires_at_ms));
    println!(
        "# Enrollment token for {} machine(s), valid until {expires} (label {:?}).",
        args.uses, args.label
    );
    println!("# The token is a secret: treat these commands as you would a password.\n");
    let all = [Os::Debian, Os::Rhel, Os::Windows, Os::Macos];
    for os in all
        .into_iter()
        .filter(|os| args.os.is_none_or(|o| o == *os))
    {
        println!("{}", render(os, &values));
    }
    Ok(())
}

/// The commands for `os`.
pub fn render(os: Os, v: &Values) -> String {
    match os {
        Os::Debian => linux(
            "Debian / Ubuntu",
            &format!(
                "apt-get install -y ./firstline-agent_{}-1_amd64.deb",
                v.version
            ),
            v,
        ),
        Os::Rhel => linux(
            "RHEL / Fedora",
            &format!(
                "dnf install -y ./firstline-agent-{}-1.x86_64.rpm",
                v.version
            ),
            v,
        ),
        Os::Windows => windows(v),
        Os::Macos => macos(v),
    }
}

/// Installs the package, writes the CA, enrolls with the values in the environment, and
/// restarts the service (which would also find the identity on its next restart by itself).
fn linux(title: &str, install: &str, v: &Values) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {title} (as root)");
    let _ = writeln!(out, "{install}");
    let _ = writeln!(out, "install -d -m 0755 /etc/firstline");
    let _ = writeln!(out, "cat > {LINUX_CA_FILE} <<'{HEREDOC_END}'");
    let _ = writeln!(out, "{}", v.ca_pem);
    let _ = writeln!(out, "{HEREDOC_END}");
    let _ = writeln!(
        out,
        "FIRSTLINE_COLLECTOR_URL={} FIRSTLINE_ENROLL_TOKEN={} FIRSTLINE_CA_FILE={LINUX_CA_FILE} \\\n  firstline-agent --state-dir {LINUX_STATE_DIR} enroll",
        sh_quote(&v.url),
        sh_quote(&v.token)
    );
    let _ = writeln!(out, "systemctl restart firstline-agent");
    out
}

/// PowerShell, as an RMM or Intune runs it (elevated): writes the CA file, then runs msiexec
/// with the MSI's public properties. A PowerShell single-quoted here-string keeps the PEM as
/// it is; the property values hold no quote or space, so msiexec gets them unchanged.
fn windows(v: &Values) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Windows (PowerShell, elevated; RMM, GPO startup script or Intune)"
    );
    let _ = writeln!(
        out,
        "New-Item -ItemType Directory -Force -Path 'C:\\ProgramData\\Firstline' | Out-Null"
    );
    let _ = writeln!(
        out,
        "@'\n{}\n'@ | Set-Content -Encoding ascii -Path '{WINDOWS_CA_FILE}'",
        v.ca_pem
    );
    let _ = writeln!(
        out,
        "Start-Process msiexec.exe -Wait -ArgumentList '/i firstline-agent.msi /qn /l*v firstline-agent-install.log COLLECTOR_URL=\"{}\" ENROLL_TOKEN=\"{}\" CA_FILE=\"{WINDOWS_CA_FILE}\"'",
        ps_single(&v.url),
        ps_single(&v.token)
    );
    out
}

/// Without MDM: the config with `[enrollment]` and the CA written before the package (its
/// postinstall keeps both); with MDM: the configuration profile its postinstall reads.
fn macos(v: &Values) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### macOS without MDM (as root)");
    let _ = writeln!(out, "mkdir -p '{MACOS_SUPPORT}'");
    let _ = writeln!(out, "cat > '{MACOS_SUPPORT}/ca.crt' <<'{HEREDOC_END}'");
    let _ = writeln!(out, "{}", v.ca_pem);
    let _ = writeln!(out, "{HEREDOC_END}");
    let _ = writeln!(out, "cat > '{MACOS_SUPPORT}/agent.toml' <<'{HEREDOC_END}'");
    let _ = writeln!(out, "[enrollment]");
    let _ = writeln!(out, "collector_url = {}", toml_string(&v.url));
    let _ = writeln!(out, "token = {}", toml_string(&v.token));
    let _ = writeln!(
        out,
        "ca_file = {}",
        toml_string(&format!("{MACOS_SUPPORT}/ca.crt"))
    );
    let _ = writeln!(out, "{HEREDOC_END}");
    let _ = writeln!(out, "chmod 0600 '{MACOS_SUPPORT}/agent.toml'");
    let _ = writeln!(out, "installer -pkg firstline-agent.pkg -target /");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "### macOS with MDM: upload this profile (com.firstline.agent.mobileconfig), then the .pkg"
    );
    let _ = write!(out, "{}", mobileconfig(v));
    out
}

/// The configuration profile whose payload becomes
/// `/Library/Managed Preferences/com.firstline.agent.plist`.
pub fn mobileconfig(v: &Values) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>PayloadDisplayName</key><string>Firstline Agent enrollment</string>
    <key>PayloadIdentifier</key><string>com.firstline.agent.profile</string>
    <key>PayloadType</key><string>Configuration</string>
    <key>PayloadUUID</key><string>{profile}</string>
    <key>PayloadVersion</key><integer>1</integer>
    <key>PayloadScope</key><string>System</string>
    <key>PayloadContent</key>
    <array>
        <dict>
            <key>PayloadType</key><string>com.firstline.agent</string>
            <key>PayloadIdentifier</key><string>com.firstline.agent.enrollment</string>
            <key>PayloadUUID</key><string>{payload}</string>
            <key>PayloadVersion</key><integer>1</integer>
            <key>CollectorURL</key><string>{url}</string>
            <key>EnrollToken</key><string>{token}</string>
            <key>CACertificate</key><string>{ca}</string>
        </dict>
    </array>
</dict>
</plist>
"#,
        profile = uuid::Uuid::new_v4().to_string().to_uppercase(),
        payload = uuid::Uuid::new_v4().to_string().to_uppercase(),
        url = xml_escape(&v.url),
        token = xml_escape(&v.token),
        ca = xml_escape(&v.ca_pem),
    )
}

/// `https://` + the first server name, else the listen address (not a wildcard one), with
/// the listen port.
fn default_url(config: &Config) -> Result<String> {
    let port = config.grpc_listen.port();
    if let Some(name) = config.server_names.first() {
        return Ok(match name.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("https://[{ip}]:{port}"),
            _ => format!("https://{name}:{port}"),
        });
    }
    let ip = config.grpc_listen.ip();
    if ip.is_unspecified() {
        bail!(
            "grpc.listen is {}: pass --url with the name agents reach this collector by \
             (and list it in grpc.server_names, so the server certificate holds it)",
            config.grpc_listen
        );
    }
    if ip.is_loopback() {
        eprintln!(
            "warning: {ip} is a loopback address; only agents on this machine reach it (pass --url)"
        );
    }
    Ok(format!("https://{}", config.grpc_listen))
}

/// `s` as one shell word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `s` inside a PowerShell single-quoted string.
fn ps_single(s: &str) -> String {
    s.replace('\'', "''")
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values {
            url: "https://collector.example.com:7443".into(),
            token: "flt_0123abcd".into(),
            ca_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----".into(),
            version: "1.2.3".into(),
        }
    }

    #[test]
    fn every_os_gets_the_url_the_token_and_the_ca() {
        let v = values();
        for os in [Os::Debian, Os::Rhel, Os::Windows, Os::Macos] {
            let text = render(os, &v);
            for part in [&v.url, &v.token, "-----BEGIN CERTIFICATE-----\nMIIB\n"] {
                assert!(text.contains(part), "{os:?} lacks {part:?}:\n{text}");
            }
        }
        let windows = render(Os::Windows, &v);
        assert!(
            windows.contains(
                "COLLECTOR_URL=\"https://collector.example.com:7443\" ENROLL_TOKEN=\"flt_0123abcd\" CA_FILE=\"C:\\ProgramData\\Firstline\\ca.crt\""
            ),
            "{windows}"
        );
        assert!(render(Os::Debian, &v).contains("./firstline-agent_1.2.3-1_amd64.deb"));
        assert!(render(Os::Rhel, &v).contains("./firstline-agent-1.2.3-1.x86_64.rpm"));
    }

    #[test]
    fn quoting_survives_awkward_values() {
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(ps_single("it's"), "it''s");
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(xml_escape("<a&b>"), "&lt;a&amp;b&gt;");
    }

    #[test]
    fn the_default_url_comes_from_the_server_names_then_the_listen_address() {
        let mut config = Config {
            grpc_listen: "10.0.0.5:7443".parse().expect("addr"),
            ..Config::default()
        };
        assert_eq!(default_url(&config).expect("url"), "https://10.0.0.5:7443");
        config.server_names = vec!["collector.corp".into(), "10.0.0.5".into()];
        assert_eq!(
            default_url(&config).expect("url"),
            "https://collector.corp:7443"
        );
        config.server_names = vec!["fd00::5".into()];
        assert_eq!(default_url(&config).expect("url"), "https://[fd00::5]:7443");
        config.server_names.clear();
        config.grpc_listen = "0.0.0.0:7443".parse().expect("addr");
        let error = default_url(&config).expect_err("wildcard").to_string();
        assert!(error.contains("pass --url"), "{error}");
    }
}
