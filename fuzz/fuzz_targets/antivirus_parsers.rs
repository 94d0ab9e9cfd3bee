//! Fuzz target: the antivirus probe's parsers: Windows Security Center and Defender JSON (from
//! PowerShell), Microsoft Defender for Endpoint's `mdatp health` (JSON and text), ClamAV's
//! clamd `VERSION` reply, database header and clamd.conf, and the XProtect plist. Each input
//! goes through every parser; none may panic or hang.

#![no_main]

use std::hint::black_box;

use firstline_agent::probe::antivirus::{clamav, macos, mdatp, windows};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A .cvd/.cld/.cud file is bytes; its header is read from them.
    let header = clamav::parse_db_header(data);
    let Ok(text) = std::str::from_utf8(data) else {
        black_box(clamav::definitions_ms(header.as_ref(), None));
        return;
    };
    let _ = black_box(windows::parse_security_center(text));
    let _ = black_box(windows::parse_defender_status(text));
    black_box(mdatp::parse_health_json(text));
    black_box(mdatp::parse_health_text(text));
    let version = clamav::parse_version(text);
    black_box(clamav::parse_ctime(text));
    black_box(clamav::definitions_ms(header.as_ref(), version.as_ref()));
    black_box(clamav::parse_clamd_conf(text));
    black_box(macos::xprotect_version(text));
});
