//! Disk probe: every real mounted filesystem with its bytes and inodes, measured with
//! `statvfs`. Pseudo filesystems, read-only mounts (snap squashfs images, ISO images), network
//! filesystems and bind-mount duplicates are left out, since none of them can fill up from this
//! machine's use. The mount table parser is pure and tested on captured `/proc/self/mountinfo`.

use firstline_proto::limits;

/// One filesystem's usage, as `df` would show it.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Parses `/proc/self/mountinfo` (see proc(5)). Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let dev = left.get(2)?;
    let mount_point = unescape(left.get(4)?);
    let options = left.get(5)?;
    let fs_type = right.next()?;
    let source = unescape(right.next().unwrap_or(""));
    Some(MountEntry {
        dev: (*dev).to_owned(),
        mount_point,
        fs_type: fs_type.to_owned(),
        source,
        read_only: options.split(',').any(|o| o == "ro"),
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

/// Measures every selected filesystem now.
#[cfg(target_os = "linux")]
pub fn collect(filter: &DiskFilter) -> std::io::Result<Vec<FsUsage>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mounts = select_mounts(parse_mountinfo(&text), filter);
    Ok(mounts
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
pub fn collect(_filter: &DiskFilter) -> std::io::Result<Vec<FsUsage>> {
    Ok(Vec::new())
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
