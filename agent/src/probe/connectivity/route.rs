//! Default gateway and VPN interfaces. Linux reads /proc/net/route, /proc/net/arp and
//! /sys/class/net; the text formats of `netstat -rn` (macOS) and `route print` (Windows) are
//! parsed too, for their shells. All parsers are pure.

use std::net::Ipv4Addr;

use super::Gateway;
use crate::probe::Offload;

/// Interface name prefixes that are VPN tunnels.
const VPN_PREFIXES: &[&str] = &[
    "tun",
    "tap",
    "wg",
    "utun",
    "ppp",
    "ipsec",
    "gpd",
    "vpn",
    "tailscale",
    "zt",
    "nordlynx",
    "cscotun",
];

/// The default IPv4 route from `/proc/net/route` (hex, little-endian addresses).
pub fn parse_proc_route(text: &str) -> Option<(String, Ipv4Addr)> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (iface, dest, gw, flags, mask) =
            (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?, f.get(7)?);
        let flags = u32::from_str_radix(flags, 16).ok()?;
        let is_default =
            *dest == "00000000" && *mask == "00000000" && flags & 0x2 != 0 && flags & 0x1 != 0;
        is_default.then(|| {
            Some((
                (*iface).to_owned(),
                Ipv4Addr::from(u32::from_str_radix(gw, 16).ok()?.swap_bytes()),
            ))
        })?
    })
}

/// Whether `/proc/net/arp` has a complete entry (flags 0x2) for `ip`.
pub fn arp_complete(text: &str, ip: Ipv4Addr) -> bool {
    let ip = ip.to_string();
    text.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.first() == Some(&ip.as_str())
            && f.get(2)
                .and_then(|fl| u32::from_str_radix(fl.trim_start_matches("0x"), 16).ok())
                .is_some_and(|fl| fl & 0x2 != 0)
            && f.get(3).is_some_and(|mac| *mac != "00:00:00:00:00:00")
    })
}

/// The default gateway from macOS/BSD `netstat -rn -f inet`.
pub fn parse_netstat_default(text: &str) -> Option<(String, String)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.first() == Some(&"default"))
            .then(|| Some(((*f.get(3)?).to_owned(), (*f.get(1)?).to_owned())))?
    })
}

/// The default gateway from Windows `route print -4` (`0.0.0.0  0.0.0.0  gateway  interface  metric`).
pub fn parse_route_print_default(text: &str) -> Option<(String, String)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["0.0.0.0", "0.0.0.0", gw, iface, _metric] if gw.parse::<Ipv4Addr>().is_ok() => {
                Some(((*iface).to_owned(), (*gw).to_owned()))
            }
            _ => None,
        }
    })
}

/// Whether an interface name is a VPN tunnel.
pub fn is_vpn_name(name: &str) -> bool {
    VPN_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The default route's interface and gateway, and whether the gateway's link-layer address
/// is known (Linux: /proc/net/route and /proc/net/arp). Blocks.
#[cfg(target_os = "linux")]
pub fn read_gateway() -> Option<(String, Ipv4Addr, bool)> {
    let (interface, ip) = std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|t| parse_proc_route(&t))?;
    Some((interface, ip, arp_resolved(ip)))
}

#[cfg(not(target_os = "linux"))]
pub fn read_gateway() -> Option<(String, Ipv4Addr, bool)> {
    None
}

/// Whether the kernel knows `ip`'s link-layer address. Blocks (reads /proc/net/arp).
#[cfg(target_os = "linux")]
pub fn arp_resolved(ip: Ipv4Addr) -> bool {
    std::fs::read_to_string("/proc/net/arp")
        .map(|t| arp_complete(&t, ip))
        .unwrap_or(false)
}

#[cfg(not(target_os = "linux"))]
pub fn arp_resolved(_ip: Ipv4Addr) -> bool {
    false
}

/// The default gateway from what [`read_gateway`] found; when its address is not resolved yet,
/// asks the kernel to resolve it and looks again (through `offload`).
pub async fn gateway(found: Option<(String, Ipv4Addr, bool)>, offload: &Offload) -> Gateway {
    let Some((interface, ip, mut reachable)) = found else {
        return Gateway::default();
    };
    if !reachable {
        // Any datagram to the gateway makes the kernel resolve its address; the discard port
        // costs the gateway nothing.
        if let Ok(sock) = tokio::net::UdpSocket::bind("0.0.0.0:0").await {
            let _ = sock.send_to(&[0], (ip, 9)).await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            reachable = offload.run(move || arp_resolved(ip)).await.unwrap_or(false);
        }
    }
    Gateway {
        present: true,
        address: ip.to_string(),
        interface,
        reachable,
    }
}

/// VPN interfaces and whether each is up (Linux: /sys/class/net/<if>/flags). Blocks.
#[cfg(target_os = "linux")]
pub fn vpn_interfaces() -> Vec<(String, bool)> {
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut out: Vec<(String, bool)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| is_vpn_name(name))
        .map(|name| {
            let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
                .ok()
                .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
                .unwrap_or(0);
            (name, flags & 0x1 != 0) // IFF_UP
        })
        .collect();
    out.sort();
    out.truncate(firstline_proto::limits::MAX_ITEMS);
    out
}

#[cfg(not(target_os = "linux"))]
pub fn vpn_interfaces() -> Vec<(String, bool)> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_and_arp_from_proc() {
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
                     eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(
            parse_proc_route(route),
            Some(("eth0".into(), Ipv4Addr::new(192, 168, 0, 1)))
        );
        assert_eq!(parse_proc_route("Iface\tDestination\n"), None);
        let arp = "IP address       HW type     Flags       HW address            Mask     Device\n\
                   192.168.0.1      0x1         0x2         52:54:00:12:34:56     *        eth0\n\
                   192.168.0.9      0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        assert!(arp_complete(arp, Ipv4Addr::new(192, 168, 0, 1)));
        assert!(!arp_complete(arp, Ipv4Addr::new(192, 168, 0, 9)));
        assert!(!arp_complete(arp, Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn default_route_from_macos_and_windows_tools() {
        let netstat = "Routing tables\n\nInternet:\nDestination        Gateway            Flags        Netif Expire\ndefault            192.168.1.1        UGScg          en0       \n127                127.0.0.1          UCS            lo0\n";
        assert_eq!(
            parse_netstat_default(netstat),
            Some(("en0".into(), "192.168.1.1".into()))
        );
        let route = "IPv4 Route Table\n===========================================================================\nActive Routes:\nNetwork Destination        Netmask          Gateway       Interface  Metric\n          0.0.0.0          0.0.0.0      192.168.1.1    192.168.1.23     25\n        127.0.0.0        255.0.0.0         On-link         127.0.0.1    331\n";
        assert_eq!(
            parse_route_print_default(route),
            Some(("192.168.1.23".into(), "192.168.1.1".into()))
        );
        assert_eq!(parse_route_print_default(""), None);
    }

    #[test]
    fn vpn_interface_names() {
        for name in ["tun0", "wg0", "utun3", "ppp0", "tailscale0"] {
            assert!(is_vpn_name(name), "{name}");
        }
        for name in ["eth0", "wlan0", "lo", "docker0", "veth1a2b"] {
            assert!(!is_vpn_name(name), "{name}");
        }
    }
}
