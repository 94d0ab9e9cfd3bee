//! Fuzz target: what the agent reads back from its spool directory: an entry file's bytes
//! checked as a frame (`spool::unframe`: a torn one is told, a whole one gives its payload
//! back exactly as `spool::frame` took it), the payload decoded as the snapshot to send
//! (`spool::decode_entry`) and the uplink diagnosis `status` shows from
//! it, an entry's file name, and a number file's text. A damaged disk or a hand edit can put
//! anything there; none of it may panic.

#![no_main]

use std::hint::black_box;

use firstline_agent::{spool, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = spool::unframe(data) {
        let _ = black_box(spool::decode_entry(payload));
    }
    assert_eq!(spool::unframe(&spool::frame(data)), Ok(data));
    let _ = black_box(spool::decode_entry(data));
    black_box(wire::diagnosis_in(data));
    if let Ok(text) = std::str::from_utf8(data) {
        black_box(spool::parse_name(text));
        black_box(spool::parse_number(text));
    }
});
