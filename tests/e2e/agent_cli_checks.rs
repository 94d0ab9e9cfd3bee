//! `firstline-agent check --json` on the real binary, for what a technician reads about a
//! failing check: a refused certificate named by its problem (private CA, wrong name, expired)
//! against real TLS servers, and a DNS server that is down told from one out of reach, in
//! network namespaces; the package result taken from the running agent, and the text report
//! streamed probe by probe.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use firstline_tests::https::{CertSpec, HttpsServer};
use firstline_tests::netns::NetLab;
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::{bins, wait_for};
use serde_json::Value;

use crate::agent_cli::{check, https_check, patched_apt};

/// A server with a certificate a private CA signed for `names`, valid from `valid_from` for
/// `valid_for` (from now); its CA goes into `ca_file`.
fn company_server(
    names: &[&str],
    valid_from: time::Duration,
    valid_for: time::Duration,
    ca_file: &Path,
) -> HttpsServer {
    let spec = CertSpec {
        names,
        valid_from,
        valid_for,
        private_ca: true,
    };
    let server = HttpsServer::with_certificate(&spec, "200 OK");
    std::fs::write(ca_file, &server.ca_pem).expect("CA file");
    server
}

#[test]
fn https_check_names_what_is_wrong_with_the_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake_bin = patched_apt(dir.path());
    let ca_files: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("ca-{i}.pem")))
        .collect();
    let local = &["localhost", "127.0.0.1"];
    let hours = time::Duration::hours;
    let good = company_server(local, hours(-1), hours(90 * 24 + 12), &ca_files[0]);
    let wrong_name = company_server(
        &["intranet.example.test"],
        hours(-1),
        hours(90 * 24 + 12),
        &ca_files[1],
    );
    // Expired two days and a half ago: whole days left round down, to -3.
    let expired = company_server(local, hours(-30 * 24), hours(-60), &ca_files[2]);
    let not_after = time::OffsetDateTime::now_utc() - hours(60);
    let urls = [good.url("/"), wrong_name.url("/"), expired.url("/")];
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[connectivity]\ntimeout = \"5s\"\nhttps_urls = {urls:?}\nhttps_ca_files = {:?}\n",
            dir.path().join("state").display().to_string(),
            ca_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        ),
    )
    .expect("config");
    let checked = check(&config, &fake_bin, None);
    let outcome = |url: &str| {
        let r = https_check(&checked.report, url);
        (
            r["ok"].as_bool(),
            r["failure"].as_str().map(str::to_owned),
            r["certificate_days_left"].as_i64(),
        )
    };
    assert_eq!(
        outcome(&urls[0]),
        (Some(true), Some(String::new()), Some(90)),
        "a private CA trusted through https_ca_files: {}",
        checked.report
    );
    assert_eq!(
        outcome(&urls[1]),
        (Some(false), Some("name_mismatch".into()), Some(90)),
        "{}",
        checked.report
    );
    let mismatch = https_check(&checked.report, &urls[1]);
    assert!(
        mismatch["detail"]
            .as_str()
            .is_some_and(|d| d.contains("127.0.0.1") && d.ends_with("intranet.example.test")),
        "the detail names both names: {mismatch}"
    );
    assert_eq!(
        outcome(&urls[2]),
        (Some(false), Some("certificate_expired".into()), Some(-3)),
        "{}",
        checked.report
    );
    let gone = https_check(&checked.report, &urls[2]);
    let expiry_day = not_after.date().to_string();
    assert!(
        gone["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&expiry_day)),
        "the expiry as a day ({expiry_day}): {gone}"
    );
    let not_after_ms = gone["certificate_not_after_ms"]
        .as_i64()
        .unwrap_or_default();
    let expected_ms = i64::try_from(not_after.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    assert!(
        (not_after_ms - expected_ms).abs() < 120_000,
        "certificate_not_after_ms {not_after_ms} against {expected_ms}: {gone}"
    );
    for url in &urls[1..] {
        assert!(
            checked.report["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["level"] == "warning"
                    && f["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(&format!("https {url} failed: ")))),
            "a refused certificate is a warning: {}",
            checked.report["findings"]
        );
    }
}

/// The DNS check of `report` for `name`: (ok, failure, resolver, detail).
fn dns_check(report: &Value, name: &str) -> (bool, String, String, String) {
    let check = report["facts"]["connectivity"]["dns"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["target"] == name))
        .unwrap_or_else(|| panic!("no dns check for {name}: {report}"));
    let text = |key: &str| check[key].as_str().unwrap_or_default().to_owned();
    (
        check["ok"] == true,
        text("failure"),
        text("resolver"),
        text("detail"),
    )
}

/// A config that resolves `intranet.firstline.test` with `server` only.
fn dns_config(dir: &Path, server: &str) -> PathBuf {
    let config = dir.join(format!("dns-{server}.toml"));
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[connectivity]\ntimeout = \"2s\"\ndns_servers = [\"{server}\"]\n\
             dns_names = [\"intranet.firstline.test\"]\n",
            dir.join("state").display().to_string(),
        ),
    )
    .expect("config");
    config
}

#[test]
fn dns_check_tells_a_resolver_that_is_down_from_one_out_of_reach() {
    let lab = NetLab::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let fake_bin = patched_apt(dir.path());
    let name = "intranet.firstline.test";

    // The server namespace is up, nothing listens on port 53: its kernel answers ICMP port
    // unreachable, which is a resolver that is down, not a lost packet.
    let server = lab.server_ip.to_string();
    let down = check(
        &dns_config(dir.path(), &server),
        &fake_bin,
        Some(&lab.client),
    );
    let (ok, failure, resolver, detail) = dns_check(&down.report, name);
    assert_eq!(
        (ok, failure.as_str(), resolver.as_str()),
        (false, "refused", format!("{server}:53").as_str()),
        "{}\n{}",
        down.report,
        down.stderr
    );
    assert!(
        detail.contains(&server) && !detail.contains('{'),
        "in words, naming the resolver: {detail}"
    );

    // No default route: a resolver off the local subnet cannot be reached at all.
    lab.remove_default_route();
    let far = "192.0.2.53";
    let cut = check(&dns_config(dir.path(), far), &fake_bin, Some(&lab.client));
    let (ok, failure, resolver, detail) = dns_check(&cut.report, name);
    assert_eq!(
        (ok, failure.as_str(), resolver.as_str()),
        (false, "unreachable", format!("{far}:53").as_str()),
        "{}\n{}",
        cut.report,
        cut.stderr
    );
    assert!(detail.contains(far), "{detail}");
    assert_eq!(cut.code, Some(2), "a failing DNS check is critical");
}

/// Keeps a package result in `state_dir` as the running agent does: one security update.
fn keep_patches(state_dir: &Path, taken_at_ms: i64) {
    use firstline_agent::check::cache::Kept;
    use firstline_agent::facts::ProbeOutput;
    use firstline_agent::probe::patch::{PatchFacts, PendingUpdate};
    let probes = firstline_agent::registry::ProbeSet::new();
    let id = probes.id("patches").expect("patches probe");
    let facts = PatchFacts::from_updates(
        "apt",
        vec![PendingUpdate {
            name: "openssl".into(),
            installed_version: "3.0.1".into(),
            candidate_version: "3.0.2".into(),
            security: true,
        }],
    );
    Kept::new(&probes, id, ProbeOutput::new(facts), taken_at_ms)
        .save(state_dir)
        .expect("keep the result");
}

#[test]
fn check_takes_the_package_result_of_the_running_agent_and_streams_its_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake_bin = patched_apt(dir.path());
    let state = dir.path().join("state");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[patches]\ninterval = \"1h\"\n",
            state.display().to_string()
        ),
    )
    .expect("config");
    let now_ms = firstline_agent::clock::now_ms();

    // Ten minutes old, within the hour between package runs: taken, not run again (the fake
    // apt-get would find nothing to update).
    keep_patches(&state, now_ms - 600_000);
    let kept = check(&config, &fake_bin, None);
    let patches = &kept.report["facts"]["patches"];
    assert_eq!(
        (
            patches["pending_count"].as_u64(),
            patches["security_count"].as_u64()
        ),
        (Some(1), Some(1)),
        "{}",
        kept.report
    );
    let texts: Vec<&str> = kept.report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["section"] == "patches")
        .filter_map(|f| f["text"].as_str())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("as the running agent found 10m")),
        "{texts:?}"
    );

    // In text, each section as its probe finishes, then the summary with the same verdict.
    let out = Command::new(bins::agent())
        .arg("--config")
        .arg(&config)
        .arg("check")
        .env("PATH", path_with(&fake_bin))
        .env("NO_COLOR", "1")
        .output()
        .expect("run check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), kept.code, "{text}");
    let summary = text.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("Firstline health check for ")
            && summary.ends_with(&kept.report["status"].as_str().unwrap_or("?").to_uppercase()),
        "{text}"
    );
    for section in [
        "DISK  (",
        "SYSTEM  (",
        "PATCHES  (the running agent's)",
        "CONNECTIVITY  (",
    ] {
        assert!(text.contains(&format!("\n{section}")), "{section}: {text}");
    }

    // Older than the interval: the probe runs again.
    keep_patches(&state, now_ms - 2 * 3_600_000);
    let stale = check(&config, &fake_bin, None);
    assert_eq!(
        stale.report["facts"]["patches"]["pending_count"].as_u64(),
        Some(0),
        "{}",
        stale.report
    );
}

/// `PATH` with `fake_bin` first.
fn path_with(fake_bin: &Path) -> String {
    format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn the_running_agent_keeps_its_package_result_for_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake_bin = patched_apt(dir.path());
    let collector = CollectorProc::start(dir.path(), "");
    let mut agent = AgentProc::new(dir.path(), "[patches]\ninterval = \"1h\"\n");
    agent.enroll(&collector);
    let path = path_with(&fake_bin);
    agent.start_with_env(&[("PATH", &path)]);
    let kept = dir.path().join("agent/last/patches.json");
    wait_for("the package result kept", Duration::from_secs(60), || {
        kept.exists().then_some(())
    });
    let out = Command::new(bins::agent())
        .arg("--config")
        .arg(dir.path().join("agent.toml"))
        .args(["check", "--json"])
        .env("PATH", &path)
        .output()
        .expect("run check");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["section"] == "patches"
                && f["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("as the running agent found"))),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        report["facts"]["patches"]["package_manager"], "apt",
        "{report}"
    );
    agent.stop();
}
