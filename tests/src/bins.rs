//! Finds the `firstline-collector` and `firstline-agent` binaries of this workspace, building
//! them once per test run so the processes tested are the code under test.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Directory holding the binaries (`target/<profile>`), after making sure they are built.
fn bin_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // The test executable lives in target/<profile>/deps/.
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile> directory")
            .to_owned();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "--quiet",
            "-p",
            "firstline-collector",
            "-p",
            "firstline-agent",
            "--bins",
        ]);
        if release {
            build.arg("--release");
        }
        // Cargo gives this process the variables of the crate under test (CARGO_PKG_NAME,
        // CARGO_MANIFEST_DIR, ...). A nested build that inherits them finds ring's build
        // inputs changed and rebuilds it and every crate above it, and the next plain build
        // rebuilds them back.
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(is_crate_variable) {
                build.env_remove(key);
            }
        }
        let status = build.status().expect("run cargo build for the binaries");
        assert!(status.success(), "building the binaries failed");
        dir
    })
}

/// Whether `key` is one of the variables cargo sets for the crate it runs (not one of cargo's
/// own settings such as `CARGO_HOME` or `CARGO_TARGET_DIR`, which the nested build needs).
fn is_crate_variable(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || key.starts_with("CARGO_BIN_EXE_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

/// Path of the collector binary.
pub fn collector() -> PathBuf {
    bin_dir().join("firstline-collector")
}

/// Path of the agent binary.
pub fn agent() -> PathBuf {
    bin_dir().join("firstline-agent")
}
