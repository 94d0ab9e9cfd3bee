//! Command-line behaviour an operator relies on: configuration errors name the file and the
//! key and exit non-zero, and the shipped default configuration is what the binary uses.

use std::process::Command;

use firstline_tests::bins;

fn run(bin: std::path::PathBuf, config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_config_files_are_refused_naming_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            bins::collector(),
            "[tickets]\nreopen_windw = \"1h\"\n",
            "typo",
            "reopen_windw",
        ),
        (
            bins::collector(),
            "[sla]\np2_resolve = \"later\"\n",
            "sla",
            "sla.p2_resolve",
        ),
        (
            bins::agent(),
            "[spool]\nmax_snapshots = -1\n",
            "neg",
            "max_snapshots",
        ),
        (
            bins::agent(),
            "[disk]\ninterval = \"often\"\n",
            "interval",
            "disk.interval",
        ),
    ];
    for (bin, text, name, key) in cases {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write config");
        let (ok, stderr) = run(bin, &path, &["check-config"]);
        assert!(!ok, "{name}: a bad config must fail");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: file not named: {stderr}"
        );
        assert!(
            stderr.contains(key),
            "{name}: key {key} not named: {stderr}"
        );
    }
}

#[test]
fn rule_files_are_checked_naming_file_rule_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rules]]\nid = \"disk.usage\"\nclear_percent = 95.0\n\n[[rules]]\nid = \"x\"\nkind = \"moon\"\n").expect("write");
    let out = Command::new(bins::collector())
        .arg("check-rules")
        .arg(&rules)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for expected in [
        rules.display().to_string(),
        "rule \"disk.usage\": clear_percent".into(),
        "rule \"x\": kind".into(),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} not in {stderr}");
    }
    std::fs::write(
        &rules,
        "[[rules]]\nid = \"disk.usage\"\nopen_percent = 80.0\nclear_percent = 70.0\n",
    )
    .expect("write");
    let out = Command::new(bins::collector())
        .arg("check-rules")
        .arg(&rules)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("disk.usage"));
    // The same errors stop `serve` when the config names the file.
    let config = dir.path().join("collector.toml");
    std::fs::write(&rules, "[[rules]]\nid = \"x\"\nkind = \"moon\"\n").expect("write");
    std::fs::write(
        &config,
        format!("[rules]\nfile = {:?}\n", rules.display().to_string()),
    )
    .expect("write");
    let (ok, stderr) = run(bins::collector(), &config, &["check-config"]);
    assert!(!ok && stderr.contains("rule \"x\": kind"), "{stderr}");
}

#[test]
fn shipped_collector_config_is_the_default_one() {
    let shipped = include_str!("../../deploy/collector/collector.toml");
    let out = Command::new(bins::collector())
        .arg("print-default-config")
        .output()
        .expect("run collector");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        shipped,
        "deploy/collector/collector.toml is stale"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("collector.toml");
    std::fs::write(&path, shipped).expect("write");
    let (ok, stderr) = run(bins::collector(), &path, &["check-config"]);
    assert!(ok, "shipped config must validate: {stderr}");
}

#[test]
fn shipped_agent_config_validates() {
    let (ok, stderr) = run(
        bins::agent(),
        std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/agent/agent.toml"
        )),
        &["check-config"],
    );
    assert!(ok, "deploy/agent/agent.toml must validate: {stderr}");
}
