//! Fuzz target: the agent's configuration file (agent.toml) parsed and validated as
//! `firstline-agent` loads it, with no enrollment variables in the environment. Any text must
//! give a config or an error naming the file, never a panic or a hang.

#![no_main]

use std::hint::black_box;

use firstline_agent::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = black_box(Config::from_toml("agent.toml", text, &|_| None).map_err(|e| e.to_string()));
});
