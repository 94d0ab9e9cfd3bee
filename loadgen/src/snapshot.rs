//! The snapshots one simulated agent sends: shaped like a real Linux workstation's (four
//! filesystems, apt with a few pending updates, ClamAV with fresh definitions, a gateway, two
//! DNS and two TCP checks), valid for every bound `collector/src/report.rs` checks, so the
//! collector does its full work (store, host state, rules) on each.
//!
//! Two patterns make the rules engine open and resolve tickets as a fleet would:
//! - a *crossing*: in `cross_share` of the reports a filesystem goes from its usual level to
//!   93% (over the 90% threshold) and stays there for [`CROSS_HOLD`] reports, then drops to
//!   under 85% again, so the disk ticket opens and resolves itself;
//! - a *storm*: while it lasts, the TCP check of [`STORM_TARGET`] fails as unreachable (the
//!   caller decides which agents take part and when).

use firstline_proto::v1;

/// The TCP target that fails during a storm (only a string in the report: nothing connects).
pub const STORM_TARGET: &str = "10.9.9.9:443";
/// Reports a crossed filesystem stays over the threshold.
pub const CROSS_HOLD: u32 = 3;
/// The level of a crossed filesystem, percent.
pub const CROSSED_PERCENT: u64 = 93;

const GIB: u64 = 1 << 30;
/// Mount point, device, type and size in GiB of the four filesystems.
const FILESYSTEMS: [(&str, &str, &str, u64); 4] = [
    ("/", "/dev/nvme0n1p2", "ext4", 100),
    ("/home", "/dev/nvme0n1p3", "ext4", 400),
    ("/var", "/dev/nvme0n1p4", "xfs", 50),
    ("/boot/efi", "/dev/nvme0n1p1", "vfat", 1),
];
const AGENT_VERSION: &str = concat!("loadgen-", env!("CARGO_PKG_VERSION"));

/// One agent's snapshot source: its numbering and the state of its filesystems.
#[derive(Debug)]
pub struct Generator {
    n: usize,
    hostname: String,
    epoch: u64,
    seq: u64,
    /// Usual level of each filesystem, percent (30..=75).
    base: [u64; 4],
    /// The crossed filesystem and the reports it has left over the threshold.
    crossed: Option<(usize, u32)>,
    cross_share: f64,
    rng: fastrand::Rng,
}

impl Generator {
    /// The generator of agent `n` (host name `load-<n>`), numbering in spool epoch `epoch`.
    pub fn new(n: usize, epoch: u64, cross_share: f64, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let base = [0; 4].map(|_| rng.u64(30..=75));
        Self {
            n,
            hostname: format!("load-{n}"),
            epoch,
            seq: 0,
            base,
            crossed: None,
            cross_share,
            rng,
        }
    }

    /// The next snapshot, taken at `at_ms`; `storm`: the storm target fails in it.
    pub fn next(&mut self, at_ms: i64, storm: bool) -> v1::Snapshot {
        self.seq += 1;
        let levels = self.levels();
        v1::Snapshot {
            seq: self.seq,
            taken_at_ms: at_ms,
            trigger: if self.seq == 1 {
                v1::Trigger::Startup
            } else {
                v1::Trigger::Heartbeat
            } as i32,
            hostname: self.hostname.clone(),
            agent_version: AGENT_VERSION.into(),
            filesystems: filesystems(&levels),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            system: Some(self.system(at_ms)),
            patches: Some(patches(at_ms)),
            antivirus: Some(antivirus(at_ms)),
            connectivity: Some(self.connectivity(storm)),
            spool_epoch: self.epoch,
            ..Default::default()
        }
    }

    /// Filesystem levels of this report, moving the crossing state on by one report.
    fn levels(&mut self) -> [u64; 4] {
        let mut levels = self.base;
        match self.crossed {
            Some((fs, left)) if left > 0 => {
                levels[fs] = CROSSED_PERCENT;
                self.crossed = Some((fs, left - 1));
            }
            Some(_) => self.crossed = None, // back to its usual level, under 85%
            None if self.rng.f64() < self.cross_share => {
                let fs = self.rng.usize(..levels.len());
                levels[fs] = CROSSED_PERCENT;
                self.crossed = Some((fs, CROSS_HOLD - 1));
            }
            None => {}
        }
        levels
    }

    fn system(&self, at_ms: i64) -> v1::SystemFacts {
        v1::SystemFacts {
            hostname: self.hostname.clone(),
            machine_id: format!("{:032x}", self.n as u128 + 0x10ad_0000_0000),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            os_build: "6.1.0-28-amd64".into(),
            architecture: "x86_64".into(),
            uptime_seconds: 86_400 + (at_ms / 1000 % 86_400) as u64,
            cpu_percent: 7.5,
            memory_total_bytes: 16 * GIB,
            memory_used_bytes: 6 * GIB,
            agent_version: AGENT_VERSION.into(),
            agent_rss_bytes: 12 << 20,
            agent_cpu_millis: self.seq * 40,
        }
    }

    fn connectivity(&self, storm: bool) -> v1::Connectivity {
        let ok = |target: &str, millis, resolver: &str| v1::NamedCheck {
            target: target.into(),
            ok: true,
            millis,
            resolver: resolver.into(),
            ..Default::default()
        };
        let storm_check = if storm {
            v1::NamedCheck {
                target: STORM_TARGET.into(),
                ok: false,
                millis: 3000.0,
                failure: "unreachable".into(),
                detail: "connect: no route to host".into(),
                ..Default::default()
            }
        } else {
            ok(STORM_TARGET, 4.2, "")
        };
        v1::Connectivity {
            gateway: Some(v1::GatewayCheck {
                present: true,
                address: format!("10.{}.{}.1", (self.n >> 8) % 256, self.n % 256),
                interface: "eth0".into(),
                reachable: true,
            }),
            dns: vec![
                ok("intranet.example.com", 2.1, "10.0.0.53:53"),
                ok("updates.example.com", 3.4, "10.0.0.54:53"),
            ],
            tcp: vec![storm_check, ok("10.1.0.10:8080", 1.3, "")],
            ..Default::default()
        }
    }
}

fn filesystems(levels: &[u64; 4]) -> Vec<v1::Filesystem> {
    FILESYSTEMS
        .iter()
        .zip(levels)
        .map(|(&(mount, device, fs_type, gib), &percent)| {
            let total = gib * GIB;
            let used = total / 100 * percent;
            v1::Filesystem {
                mount_point: mount.into(),
                device: device.into(),
                fs_type: fs_type.into(),
                total_bytes: total,
                used_bytes: used,
                // No root reserve, so the collector's used / (used + available) is `percent`.
                available_bytes: total - used,
                total_inodes: if fs_type == "vfat" { 0 } else { gib * 65_536 },
                used_inodes: if fs_type == "vfat" {
                    0
                } else {
                    gib * 65_536 / 10
                },
            }
        })
        .collect()
}

fn patches(at_ms: i64) -> v1::PatchState {
    let update = |name: &str, from: &str, to: &str, security| v1::PendingUpdate {
        name: name.into(),
        installed_version: from.into(),
        candidate_version: to.into(),
        security,
    };
    v1::PatchState {
        package_manager: "apt".into(),
        pending_count: 3,
        security_count: 1,
        updates: vec![
            update("openssl", "3.0.15-1~deb12u1", "3.0.16-1~deb12u1", true),
            update("tzdata", "2024a-0+deb12u1", "2025a-0+deb12u1", false),
            update("curl", "7.88.1-10+deb12u8", "7.88.1-10+deb12u12", false),
        ],
        last_update_ms: at_ms - 2 * 86_400_000,
        ..Default::default()
    }
}

fn antivirus(at_ms: i64) -> v1::AntivirusState {
    v1::AntivirusState {
        products: vec![v1::AntivirusProduct {
            name: "ClamAV".into(),
            vendor: "Cisco".into(),
            running: true,
            realtime_protection: true,
            definitions_version: "27500".into(),
            definitions_updated_ms: at_ms - 6 * 3_600_000,
            engine_version: "1.0.7".into(),
            source: "clamd-socket".into(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn over(s: &v1::Snapshot) -> Vec<u64> {
        s.filesystems
            .iter()
            .map(|f| f.used_bytes * 100 / (f.used_bytes + f.available_bytes))
            .collect()
    }

    #[test]
    fn every_report_crosses_and_clears_when_the_share_is_one() {
        let mut g = Generator::new(7, 99, 1.0, 1);
        let crossed: Vec<bool> = (0..8)
            .map(|i| over(&g.next(1_000 + i, false)).iter().any(|p| *p >= 90))
            .collect();
        // Three reports over the threshold, one back under, then the next crossing.
        assert_eq!(crossed, [true, true, true, false, true, true, true, false]);
    }

    #[test]
    fn without_crossings_every_level_stays_under_the_clear_band() {
        let mut g = Generator::new(1, 5, 0.0, 42);
        for i in 0..50 {
            let s = g.next(i, false);
            assert!(over(&s).iter().all(|p| *p < 85), "{:?}", over(&s));
            assert_eq!((s.seq, s.spool_epoch), (i as u64 + 1, 5));
        }
    }

    #[test]
    fn the_crossing_share_is_about_what_was_asked() {
        let mut g = Generator::new(3, 1, 0.02, 7);
        let reports = 20_000;
        let mut starts = 0;
        let mut was_over = false;
        for i in 0..reports {
            let is_over = over(&g.next(i, false)).iter().any(|p| *p >= 90);
            starts += u32::from(is_over && !was_over);
            was_over = is_over;
        }
        let share = f64::from(starts) / reports as f64;
        assert!((0.015..0.025).contains(&share), "{share}");
    }

    #[test]
    fn a_storm_fails_the_storm_target_only() {
        let mut g = Generator::new(2, 1, 0.0, 3);
        let tcp = |s: v1::Snapshot| {
            s.connectivity
                .expect("connectivity")
                .tcp
                .into_iter()
                .map(|c| (c.target, c.ok))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            tcp(g.next(1, true)),
            [
                (STORM_TARGET.to_owned(), false),
                ("10.1.0.10:8080".into(), true)
            ]
        );
        assert!(tcp(g.next(2, false)).iter().all(|(_, ok)| *ok));
    }

    #[test]
    fn the_host_name_and_available_space_are_consistent() {
        let mut g = Generator::new(12, 1, 0.5, 9);
        let s = g.next(1_700_000_000_000, false);
        assert_eq!(s.hostname, "load-12");
        for f in &s.filesystems {
            assert!(f.used_bytes + f.available_bytes <= f.total_bytes);
            assert!(f.used_inodes <= f.total_inodes);
        }
    }
}
