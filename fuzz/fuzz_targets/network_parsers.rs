//! Fuzz target: the connectivity probe's parsers: the default route from /proc/net/route,
//! `netstat -rn` (macOS) and `route print` (Windows), /proc/net/arp, the HTTPS check's URL
//! split and the status line of an HTTP response head. Each input goes through every parser;
//! none may panic or hang.

#![no_main]

use std::hint::black_box;
use std::net::Ipv4Addr;

use firstline_agent::probe::connectivity::{checks, route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let gateway = route::parse_proc_route(text);
    let ip = gateway.map_or(Ipv4Addr::new(192, 168, 0, 1), |(_, ip)| ip);
    black_box(route::arp_complete(text, ip));
    black_box(route::parse_netstat_default(text));
    black_box(route::parse_route_print_default(text));
    black_box(route::is_vpn_name(text));
    black_box(checks::parse_status_line(text));
    black_box(checks::split_url(text));
});
