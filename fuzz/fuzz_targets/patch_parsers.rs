//! Fuzz target: the patch probe's parsers of package-manager output (apt, dnf/yum, zypper,
//! pacman, macOS softwareupdate and sw_vers, the Windows Update JSON the PowerShell script
//! prints). Each input goes through every parser, as any of those tools could print it; none
//! may panic or hang, whatever the text.

#![no_main]

use std::hint::black_box;

use firstline_agent::probe::patch::{apt, dnf, kernel, macos, pacman, windows, zypper};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // apt-get -s dist-upgrade, apt-mark showhold, /var/log/apt/history.log.
    let held = apt::parse_showhold(text);
    black_box(apt::parse_simulation(text));
    black_box(apt::held_updates(text, &held));
    black_box(apt::last_upgrade_end(text));
    // dnf/yum check-update, updateinfo list security, needs-restarting -r.
    let mut updates = dnf::parse_check_update(text);
    let security = dnf::parse_security_advisories(text);
    dnf::mark_security(&mut updates, &security);
    black_box(updates);
    for nvra in &security {
        black_box(dnf::name_from_nvra(nvra));
    }
    black_box(dnf::needs_restarting_says_reboot(text));
    // zypper --xmlout list-updates / list-patches.
    black_box(zypper::parse_list_updates(text));
    black_box(zypper::count_security_patches(text));
    // checkupdates / pacman -Qu.
    black_box(pacman::parse_updates(text));
    // softwareupdate -l, sw_vers.
    black_box(macos::parse_softwareupdate(text));
    black_box(macos::parse_sw_vers(text));
    // The Windows Update script's JSON.
    let _ = black_box(windows::parse_wua_json(text));
    // Kernel releases: the first line against the rest.
    let (running, installed) = text.split_once('\n').unwrap_or((text, ""));
    let installed: Vec<String> = installed.lines().map(str::to_owned).collect();
    black_box(kernel::newer_installed(&installed, running));
    black_box(kernel::releases_from_boot(&installed));
});
