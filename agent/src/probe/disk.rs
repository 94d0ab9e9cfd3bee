//! Disk probe: every real mounted filesystem with its bytes and inodes, measured with
//! `statvfs`. Pseudo filesystems, read-only filesystems (snap squashfs images, ISO images),
//! network filesystems and bind-mount duplicates are left out, since none of them can fill up
//! from this machine's use. The mount table parser is pure and tested on captured
//! `/proc/self/mountinfo` and on lines in the format proc_pid_mountinfo(5) documents.

use firstline_proto::limits;

/// One filesystem's usage, as `df` would show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsUsage {
    pub mount_point: String,
    pub device: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub total_inodes: u64,
    pub used_inodes: u64,
}

impl FsUsage {
    /// `df`'s Use%: used / (used + available), 0 for an empty filesystem.
    pub fn used_percent(&self) -> f64 {
        let denominator = self.used_bytes.saturating_add(self.available_bytes);
        if denominator == 0 {
            return 0.0;
        }
        self.used_bytes as f64 * 100.0 / denominator as f64
    }
}

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// `major:minor` of the device, used to drop bind-mount duplicates.
    pub dev: String,
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
    /// The filesystem itself is read-only (its superblock options say `ro`). A mount that is
    /// only read-only in this mount namespace (systemd's `ProtectSystem=`, a read-only bind
    /// mount) still fills up from the machine's use elsewhere, so it does not count.
    pub read_only: bool,
}

/// Which mounts the probe reports; from the agent's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFilter {
    pub exclude_fs_types: Vec<String>,
    pub exclude_mount_prefixes: Vec<String>,
}

/// Filesystem types that never hold user data or cannot fill from this machine.
pub const DEFAULT_EXCLUDED_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sysfs",
    "tracefs",
    "squashfs",
    "erofs",
    "iso9660",
    "udf",
    "cramfs",
    "fuse.portal",
    "fuse.gvfsd-fuse",
    "fuse.lxcfs",
    "fuse.snapfuse",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "fuse.sshfs",
    "ceph",
    "glusterfs",
    "overlay",
];

/// Mount point prefixes that only hold kernel interfaces.
pub const DEFAULT_EXCLUDED_MOUNT_PREFIXES: &[&str] = &["/proc", "/sys"];

impl Default for DiskFilter {
    fn default() -> Self {
        Self {
            exclude_fs_types: DEFAULT_EXCLUDED_FS_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            exclude_mount_prefixes: DEFAULT_EXCLUDED_MOUNT_PREFIXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Parses `/proc/self/mountinfo` (see proc_pid_mountinfo(5)). Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

/// One line: `ID PARENT MAJ:MIN ROOT MOUNT_POINT MOUNT_OPTIONS [OPTIONAL...] - FSTYPE SOURCE
/// SUPER_OPTIONS`. `ro` is read from the superblock options, the last field: the per-mount
/// options (field 6) say `ro` on every mount of a service under `ProtectSystem=strict` or
/// `ProtectHome=read-only`, though the filesystems stay writable.
fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    // Split on single spaces: an empty source shows as two spaces in a row.
    let mut right = right.split(' ');
    let dev = left.get(2)?;
    let mount_point = unescape(left.get(4)?);
    // The per-mount options must be there for the line to be well-formed.
    left.get(5)?;
    let fs_type = right.next()?;
    let source = unescape(right.next().unwrap_or(""));
    let super_options = right.next().unwrap_or("");
    Some(MountEntry {
        dev: (*dev).to_owned(),
        mount_point,
        fs_type: fs_type.to_owned(),
        source,
        read_only: super_options.split(',').any(|o| o == "ro"),
    })
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\134` for a backslash...).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let value = (u32::from(d[0] - b'0') << 6)
                    | (u32::from(d[1] - b'0') << 3)
                    | u32::from(d[2] - b'0');
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts worth measuring: filtered, one per device (the shortest mount point wins),
/// bounded in count and path length.
pub fn select_mounts(entries: Vec<MountEntry>, filter: &DiskFilter) -> Vec<MountEntry> {
    // A later mount on the same point hides the earlier one: only the last is visible.
    let visible: Vec<MountEntry> = entries
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            !entries[i + 1..]
                .iter()
                .any(|later| later.mount_point == m.mount_point)
        })
        .map(|(_, m)| m.clone())
        .collect();
    let mut kept: Vec<MountEntry> = visible
        .into_iter()
        .filter(|m| !m.read_only)
        // In a container the root filesystem is an overlay, and it is the disk that fills.
        .filter(|m| {
            (m.fs_type == "overlay" && m.mount_point == "/")
                || !filter.exclude_fs_types.contains(&m.fs_type)
        })
        .filter(|m| {
            !filter.exclude_mount_prefixes.iter().any(|p| {
                m.mount_point == *p
                    || m.mount_point
                        .starts_with(&format!("{}/", p.trim_end_matches('/')))
            })
        })
        .filter(|m| {
            m.mount_point.len() <= limits::MAX_STRING_BYTES
                && m.source.len() <= limits::MAX_STRING_BYTES
        })
        .collect();
    kept.sort_by(|a, b| {
        a.mount_point
            .len()
            .cmp(&b.mount_point.len())
            .then(a.mount_point.cmp(&b.mount_point))
    });
    let mut seen_devs = Vec::new();
    kept.retain(|m| {
        // Anonymous devices (major 0) are distinct filesystems per mount (tmpfs); real block
        // devices mounted twice are bind mounts of one filesystem.
        if m.dev.starts_with("0:") || !seen_devs.contains(&m.dev) {
            seen_devs.push(m.dev.clone());
            true
        } else {
            false
        }
    });
    kept.truncate(limits::MAX_FILESYSTEMS);
    kept.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    kept
}

/// Raw `statvfs` numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatVfs {
    pub fragment_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
}

/// Turns `statvfs` numbers into usage the way `df` does: used = total - free.
pub fn usage(mount: &MountEntry, st: &StatVfs) -> Option<FsUsage> {
    if st.blocks == 0 {
        return None; // pseudo filesystem with no size
    }
    let total = st.blocks.saturating_mul(st.fragment_size);
    let free = st
        .blocks_free
        .min(st.blocks)
        .saturating_mul(st.fragment_size);
    let available = st
        .blocks_available
        .min(st.blocks)
        .saturating_mul(st.fragment_size);
    Some(FsUsage {
        mount_point: mount.mount_point.clone(),
        device: mount.source.clone(),
        fs_type: mount.fs_type.clone(),
        total_bytes: total,
        used_bytes: total - free,
        available_bytes: available,
        total_inodes: st.files,
        used_inodes: st.files.saturating_sub(st.files_free),
    })
}

/// The selected mounts, read again from `/proc/self/mountinfo` only when the kernel says the
/// mount table changed (the file polls readable with `POLLPRI` after a mount or unmount, see
/// proc(5)), so a check is one `poll` and a `statvfs` per filesystem.
#[derive(Debug, Default)]
pub struct MountTable {
    #[cfg(target_os = "linux")]
    file: Option<std::fs::File>,
    filter: Option<DiskFilter>,
    selected: Vec<MountEntry>,
}

impl MountTable {
    /// Measures every selected filesystem now. Blocks (`statvfs`).
    #[cfg(target_os = "linux")]
    pub fn measure(&mut self, filter: &DiskFilter) -> std::io::Result<Vec<FsUsage>> {
        let stale = self.filter.as_ref() != Some(filter)
            || self.file.as_ref().is_none_or(mount_table_changed);
        if stale {
            use std::io::Read;
            // Opened before it is read: a change in between shows at the next poll.
            let mut file = std::fs::File::open("/proc/self/mountinfo")?;
            let mut text = String::new();
            file.read_to_string(&mut text)?;
            self.selected = select_mounts(parse_mountinfo(&text), filter);
            self.file = Some(file);
            self.filter = Some(filter.clone());
        }
        Ok(self
            .selected
            .iter()
            .filter_map(|m| {
                let st = rustix::fs::statvfs(m.mount_point.as_str()).ok()?;
                usage(
                    m,
                    &StatVfs {
                        fragment_size: st.f_frsize,
                        blocks: st.f_blocks,
                        blocks_free: st.f_bfree,
                        blocks_available: st.f_bavail,
                        files: st.f_files,
                        files_free: st.f_ffree,
                    },
                )
            })
            .collect())
    }

    /// Other platforms get their disk list in a later probe; until then they report none.
    #[cfg(not(target_os = "linux"))]
    pub fn measure(&mut self, filter: &DiskFilter) -> std::io::Result<Vec<FsUsage>> {
        self.filter = Some(filter.clone());
        self.selected.clear();
        Ok(Vec::new())
    }
}

/// Whether the mount table changed since `file` was opened or last polled (polling resets
/// it). A poll that fails counts as a change: the table is read again.
#[cfg(target_os = "linux")]
fn mount_table_changed(file: &std::fs::File) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(file, PollFlags::PRI)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(0) => false,
        Ok(_) => fds[0]
            .revents()
            .intersects(PollFlags::PRI | PollFlags::ERR | PollFlags::NVAL),
        Err(_) => true,
    }
}

/// Measures every selected filesystem now, reading the mount table afresh.
pub fn collect(filter: &DiskFilter) -> std::io::Result<Vec<FsUsage>> {
    MountTable::default().measure(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selected(fixture: &str) -> Vec<(String, String)> {
        select_mounts(parse_mountinfo(fixture), &DiskFilter::default())
            .into_iter()
            .map(|m| (m.mount_point, m.fs_type))
            .collect()
    }

    #[test]
    fn desktop_keeps_real_filesystems_only() {
        let got = selected(include_str!("../../testdata/mountinfo-ubuntu-desktop.txt"));
        // /home and /srv/data share device 259:3: the bind mount /srv/data is dropped. Snaps
        // (squashfs), NFS, the portal FUSE mount and docker's overlay are not this disk's use.
        let want = [
            ("/", "ext4"),
            ("/boot/efi", "vfat"),
            ("/dev/shm", "tmpfs"),
            ("/home", "ext4"),
            ("/media/user/My Disk", "exfat"),
            ("/run", "tmpfs"),
            ("/run/lock", "tmpfs"),
            ("/run/user/1000", "tmpfs"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn vm_fixture_skips_read_only_and_kernel_mounts() {
        let got = selected(include_str!("../../testdata/mountinfo-linux-vm.txt"));
        assert!(got.contains(&("/".into(), "ext4".into())), "{got:?}");
        assert!(
            got.iter()
                .all(|(m, _)| !m.starts_with("/sys") && !m.starts_with("/proc")),
            "{got:?}"
        );
        assert!(
            got.iter().all(|(m, _)| !m.starts_with("/mnt/sandboxing")),
            "read-only tmpfs kept: {got:?}"
        );
    }

    #[test]
    fn container_root_overlay_is_kept() {
        let text = "100 1 0:90 / / rw,relatime - overlay overlay rw,lowerdir=/a\n\
                    101 100 0:91 / /data rw - overlay overlay rw\n";
        let got = select_mounts(parse_mountinfo(text), &DiskFilter::default());
        let mounts: Vec<&str> = got.iter().map(|m| m.mount_point.as_str()).collect();
        assert_eq!(mounts, ["/"]);
    }

    #[test]
    fn an_overmounted_point_is_reported_once() {
        let text = "25 24 0:23 / /dev/shm rw - tmpfs tmpfs rw\n30 25 0:27 / /dev/shm rw - tmpfs tmpfs rw\n";
        let got = select_mounts(parse_mountinfo(text), &DiskFilter::default());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].dev, "0:27");
    }

    /// One mountinfo line parsed: (mount point, source, read-only).
    fn check_line(line: &str, want: (&str, &str, bool)) {
        let entries = parse_mountinfo(line);
        assert_eq!(entries.len(), 1, "{line}");
        let e = &entries[0];
        assert_eq!(
            (e.mount_point.as_str(), e.source.as_str(), e.read_only),
            want,
            "{line}"
        );
    }

    #[test]
    fn read_only_comes_from_the_superblock_options() {
        // The example line of proc_pid_mountinfo(5), then variations of its options.
        check_line(
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
            ("/mnt2", "/dev/root", false),
        );
        // ProtectSystem=strict / ProtectHome=read-only: read-only in the service's namespace
        // only; the filesystem is writable and fills up as usual.
        check_line(
            "36 35 98:0 / / ro,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro",
            ("/", "/dev/vda1", false),
        );
        check_line(
            "61 36 0:45 / /home ro,nosuid,nodev,relatime master:30 - xfs /dev/sdb1 rw,attr2",
            ("/home", "/dev/sdb1", false),
        );
        // A filesystem mounted read-only (or remounted so after errors) is read-only
        // whatever the mount says.
        check_line(
            "40 30 7:0 / /snap/core22/1122 ro,nodev,relatime shared:24 - squashfs /dev/loop0 ro,errors=continue",
            ("/snap/core22/1122", "/dev/loop0", true),
        );
        check_line(
            "44 36 8:17 / /mnt/usb rw,relatime - vfat /dev/sdc1 rw,fmask=0022,ro",
            ("/mnt/usb", "/dev/sdc1", true),
        );
        // "ro" must be an option of its own, not part of one.
        check_line(
            "45 36 8:18 / /srv rw - ext4 /dev/sdc2 rw,errors=remount-ro,ronly",
            ("/srv", "/dev/sdc2", false),
        );
    }

    #[test]
    fn escaped_fields_and_an_empty_source() {
        // Space, tab, newline and backslash are octal escapes (\040, \011, \012, \134).
        check_line(
            r"50 36 8:33 / /media/user/My\040Disk rw,nosuid shared:7 - exfat /dev/sdd1 rw",
            ("/media/user/My Disk", "/dev/sdd1", false),
        );
        check_line(
            r"51 36 8:34 / /mnt/a\011b\012c\134d ro,relatime - ext4 /dev/disk\040one rw",
            ("/mnt/a\tb\nc\\d", "/dev/disk one", false),
        );
        // Several optional fields before the separator.
        check_line(
            "52 36 0:50 / /run/user/1000 ro shared:5 master:2 propagate_from:2 - tmpfs tmpfs rw,size=1k",
            ("/run/user/1000", "tmpfs", false),
        );
        // A mount without a source shows two spaces; the options are still the last field.
        check_line(
            "53 36 0:51 / /mnt/scratch rw,relatime - tmpfs  ro,size=4k",
            ("/mnt/scratch", "", true),
        );
    }

    #[test]
    fn a_protected_service_still_measures_root_and_home() {
        // /proc/self/mountinfo as a service with ProtectSystem=strict and
        // ProtectHome=read-only sees it: every mount but its state directory is "ro".
        let text = "\
100 99 254:1 / / ro,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
101 100 0:5 / /dev rw,nosuid - devtmpfs udev rw,size=4k,mode=755
102 100 0:24 / /run rw,nosuid,nodev - tmpfs tmpfs rw,size=4k,mode=755
103 100 254:2 / /home ro,nosuid,nodev,relatime shared:30 - ext4 /dev/vda2 rw
104 100 254:1 /var/lib/firstline-agent /var/lib/firstline-agent rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
105 100 0:30 / /tmp ro,nosuid,nodev shared:14 - tmpfs tmpfs rw,size=4k
106 103 0:31 / /home/alice/scratch ro,relatime - tmpfs tmpfs rw,size=4k
107 100 7:0 / /snap/core22/1122 ro,nodev,relatime shared:24 - squashfs /dev/loop0 ro
";
        let got: Vec<String> = select_mounts(parse_mountinfo(text), &DiskFilter::default())
            .into_iter()
            .map(|m| m.mount_point)
            .collect();
        // /var/lib/firstline-agent is / again (same device); the snap is read-only itself.
        assert_eq!(got, ["/", "/home", "/home/alice/scratch", "/run", "/tmp"]);
    }

    #[test]
    fn captured_protected_service_reports_its_writable_filesystems() {
        // A service with the agent unit's ProtectSystem=strict, ProtectHome=read-only,
        // ReadWritePaths= and StateDirectory=, in a Debian 12 container: "/" and "/tmp" are
        // "ro" per mount over writable filesystems; the state directory and /var/log are
        // bind mounts of "/" (dropped as duplicates of its device).
        let got = selected(include_str!(
            "../../testdata/mountinfo-systemd252-protect-strict.txt"
        ));
        let mounts: Vec<&str> = got.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            mounts,
            [
                "/",
                "/dev",
                "/dev/shm",
                "/run",
                "/run/credentials",
                "/run/host",
                "/run/lock",
                "/run/systemd/incoming",
                "/tmp",
            ]
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let entries = parse_mountinfo("garbage\n\n27 1 254:0 / / rw - ext4 /dev/vda rw\n1 2 3\n");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].mount_point, "/");
    }

    #[test]
    fn usage_matches_df_arithmetic() {
        let mount = MountEntry {
            dev: "8:1".into(),
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            source: "/dev/sda1".into(),
            read_only: false,
        };
        let st = StatVfs {
            fragment_size: 4096,
            blocks: 1000,
            blocks_free: 100,
            blocks_available: 50,
            files: 64,
            files_free: 16,
        };
        let u = usage(&mount, &st).expect("sized filesystem");
        assert_eq!(
            (u.total_bytes, u.used_bytes, u.available_bytes),
            (4_096_000, 3_686_400, 204_800)
        );
        assert_eq!((u.total_inodes, u.used_inodes), (64, 48));
        let empty = StatVfs { blocks: 0, ..st };
        assert_eq!(usage(&mount, &empty), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn collects_the_root_filesystem_here() {
        let all = collect(&DiskFilter::default()).expect("mountinfo readable");
        let root = all
            .iter()
            .find(|f| f.mount_point == "/")
            .expect("root filesystem reported");
        assert!(root.total_bytes > 0 && root.used_bytes <= root.total_bytes);
    }
}
