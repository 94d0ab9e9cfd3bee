//! Fuzz target: the collector's configuration file (collector.toml) parsed and validated as
//! `firstline-collector` loads it, without command-line overrides. Any text must give a config
//! or an error naming the file and the key, never a panic or a hang.

#![no_main]

use std::hint::black_box;

use firstline_collector::config::{Config, Overrides};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = Config::from_toml("collector.toml", text, &Overrides::default());
    let _ = black_box(config.map_err(|e| e.to_string()));
});
