//! Fuzz target: the disk probe's parser of /proc/self/mountinfo (octal escapes, optional
//! fields, empty sources) and the selection of the mounts it reports; neither may panic or
//! hang, whatever the kernel (or a container runtime) writes there.

#![no_main]

use std::hint::black_box;

use firstline_agent::probe::disk::{self, DiskFilter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let entries = disk::parse_mountinfo(text);
    black_box(disk::select_mounts(entries, &DiskFilter::default()));
});
