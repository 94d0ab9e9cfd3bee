//! Fuzz target: the operator's rule file (`[[rules]]` over the shipped rules) parsed and
//! checked as the collector and `firstline-collector check-rules` load it. Any text must give
//! a rule set or an error naming the rule and the key, never a panic or a hang.

#![no_main]

use std::hint::black_box;

use firstline_collector::rules::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = black_box(config::from_toml("rules.toml", text).map_err(|e| e.to_string()));
});
