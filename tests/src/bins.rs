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
        let status = build.status().expect("run cargo build for the binaries");
        assert!(status.success(), "building the binaries failed");
        dir
    })
}

/// Path of the collector binary.
pub fn collector() -> PathBuf {
    bin_dir().join("firstline-collector")
}

/// Path of the agent binary.
pub fn agent() -> PathBuf {
    bin_dir().join("firstline-agent")
}
