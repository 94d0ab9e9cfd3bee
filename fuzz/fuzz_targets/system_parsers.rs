//! Fuzz target: the system probe's parsers (os-release, macOS `ioreg`, Windows `reg query`
//! output) and the clock's reading of PowerShell dates. Each input goes through every parser;
//! none may panic or hang.

#![no_main]

use std::hint::black_box;

use firstline_agent::clock;
use firstline_agent::probe::system;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    black_box(system::parse_os_release(text));
    black_box(system::parse_ioreg_uuid(text));
    black_box(system::parse_reg_machine_guid(text));
    // The value the agent asks for, and whatever name the text's first word makes.
    black_box(system::parse_reg_dword(text, "UBR"));
    if let Some(name) = text.split_whitespace().next() {
        black_box(system::parse_reg_dword(text, name));
    }
    black_box(clock::parse_powershell_date(text));
    black_box(clock::parse_powershell_date(text.trim()));
    black_box(clock::month_number(text));
});
