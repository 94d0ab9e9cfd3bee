//! Tests of the report edge: what is refused whole, what is rejected per snapshot, and how the
//! agent's clock is corrected.

use super::*;

const NOW: i64 = 1_800_000_000_000;

fn fs(mount: &str, total: u64, used: u64, avail: u64) -> v1::Filesystem {
    v1::Filesystem {
        mount_point: mount.into(),
        device: "/dev/sda1".into(),
        fs_type: "ext4".into(),
        total_bytes: total,
        used_bytes: used,
        available_bytes: avail,
        total_inodes: 100,
        used_inodes: 10,
    }
}

fn snap(seq: u64, filesystems: Vec<v1::Filesystem>) -> v1::Snapshot {
    v1::Snapshot {
        seq,
        taken_at_ms: NOW - 1000,
        hostname: "pc-1".into(),
        filesystems,
        ..Default::default()
    }
}

fn batch(snapshots: Vec<v1::Snapshot>) -> Result<Batch, String> {
    Batch::from_wire(
        v1::ReportRequest {
            snapshots,
            sent_at_ms: 0,
        },
        NOW,
    )
    .map_err(|e| e.to_string())
}

/// The rejection reason of the one snapshot in a batch, or "valid".
fn verdict(s: v1::Snapshot) -> String {
    match batch(vec![s])
        .expect("batch shape is fine")
        .entries
        .remove(0)
    {
        Entry::Valid(_) => "valid".into(),
        Entry::Rejected { reason, .. } => reason,
    }
}

#[test]
fn accepts_a_sane_batch_and_sorts_it() {
    let b = batch(vec![snap(2, vec![]), snap(1, vec![fs("/", 100, 50, 40)])]).expect("valid");
    let seqs: Vec<u64> = b.entries.iter().map(Entry::seq).collect();
    assert_eq!(seqs, [1, 2]);
    let Entry::Valid(s) = &b.entries[0] else {
        panic!("first is valid")
    };
    let percent = s.filesystems[0].used_percent();
    assert!((percent - 50.0 / 90.0 * 100.0).abs() < 1e-9, "{percent}");
}

#[test]
fn a_wrong_batch_shape_is_refused_whole() {
    for (input, expected) in [
        (vec![], "batch is empty"),
        (
            vec![snap(1, vec![]), snap(1, vec![])],
            "seq 1 appears twice",
        ),
        ((1..=65).map(|i| snap(i, vec![])).collect(), "65 snapshots"),
        (
            vec![
                snap(1, vec![]),
                v1::Snapshot {
                    spool_epoch: 9,
                    ..snap(2, vec![])
                },
            ],
            "mixes spool epochs",
        ),
    ] {
        let error = batch(input).expect_err(expected);
        assert!(
            error.contains(expected),
            "{error:?} should contain {expected:?}"
        );
    }
}

#[test]
fn a_bad_snapshot_is_rejected_alone_with_a_reason() {
    let nan_cpu = v1::Snapshot {
        system: Some(v1::SystemFacts {
            cpu_percent: f64::NAN,
            ..Default::default()
        }),
        ..snap(3, vec![])
    };
    let inf_millis = v1::Snapshot {
        connectivity: Some(v1::Connectivity {
            dns: vec![v1::NamedCheck {
                target: "example.org".into(),
                millis: f64::INFINITY,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..snap(3, vec![])
    };
    let old_definitions = v1::Snapshot {
        antivirus: Some(v1::AntivirusState {
            products: vec![v1::AntivirusProduct {
                definitions_updated_ms: i64::MIN,
                ..Default::default()
            }],
        }),
        ..snap(3, vec![])
    };
    let cases = [
        (snap(0, vec![]), "seq 0: seq must be"),
        (snap(u64::MAX, vec![]), "seq must be between"),
        (
            snap(3, vec![fs("/", 10, 11, 0)]),
            "/: used_bytes exceeds total_bytes",
        ),
        (snap(3, vec![fs("/", u64::MAX, 1, 0)]), "is out of range"),
        (snap(3, vec![fs("", 10, 1, 1)]), "mount_point is empty"),
        (
            snap(3, vec![fs(&"x".repeat(5000), 10, 1, 1)]),
            "mount_point is 5000 bytes",
        ),
        (
            snap(3, vec![fs("/a", 10, 1, 1), fs("/a", 10, 1, 1)]),
            "listed twice",
        ),
        (
            snap(
                3,
                (0..300).map(|i| fs(&format!("/m{i}"), 10, 1, 1)).collect(),
            ),
            "300 entries",
        ),
        (nan_cpu, "system.cpu_percent NaN"),
        (inf_millis, "connectivity.millis inf"),
        (old_definitions, "definitions_updated_ms"),
        (
            v1::Snapshot {
                dropped_snapshots: u64::MAX,
                ..snap(3, vec![])
            },
            "dropped_snapshots",
        ),
        (
            v1::Snapshot {
                hostname: "a\u{0}b".into(),
                ..snap(3, vec![])
            },
            "hostname contains control characters",
        ),
    ];
    for (input, expected) in cases {
        let reason = verdict(input);
        assert!(
            reason.contains(expected),
            "{reason:?} should contain {expected:?}"
        );
    }
    let mixed = batch(vec![
        snap(1, vec![]),
        snap(2, vec![fs("", 1, 1, 0)]),
        snap(3, vec![]),
    ])
    .expect("shape is fine");
    let kinds: Vec<bool> = mixed
        .entries
        .iter()
        .map(|e| matches!(e, Entry::Valid(_)))
        .collect();
    assert_eq!(kinds, [true, false, true], "only the bad one is rejected");
}

#[test]
fn oversized_facts_are_rejected() {
    let mut s = snap(1, vec![]);
    s.patches = Some(v1::PatchState {
        updates: (0..limits::MAX_UPDATES + 1)
            .map(|_| v1::PendingUpdate::default())
            .collect(),
        ..Default::default()
    });
    assert!(verdict(s).contains("patches.updates: 501 entries"));
    let mut s = snap(1, vec![]);
    s.antivirus = Some(v1::AntivirusState {
        products: vec![v1::AntivirusProduct {
            name: "x".repeat(300),
            ..Default::default()
        }],
    });
    assert!(verdict(s).contains("antivirus.name is 300 bytes"));
}

#[test]
fn the_agents_clock_is_corrected_when_far_off() {
    let minute = 60_000;
    // (taken_at, skew) -> (at, adjusted)
    let cases = [
        // A sane clock: its own time, never after arrival.
        (NOW - 10_000, Some(2_000), NOW - 10_000, false),
        (NOW + 1_000, Some(1_000), NOW, false),
        // A year ahead, with the skew known: shifted back onto the collector's clock.
        (
            NOW + 365 * 1440 * minute - 30_000,
            Some(365 * 1440 * minute),
            NOW - 30_000,
            true,
        ),
        // A day behind, with the skew known.
        (
            NOW - 1440 * minute - 5_000,
            Some(-1440 * minute),
            NOW - 5_000,
            true,
        ),
        // Skew unknown: the future is cut to the arrival, the past kept (a spooled snapshot).
        (NOW + 60 * minute, None, NOW, true),
        (NOW - 60 * minute, None, NOW - 60 * minute, false),
        // Nonsense times become the arrival time.
        (0, None, NOW, true),
        (-5, Some(0), NOW, true),
        (i64::MAX, None, NOW, true),
    ];
    for (taken, skew, at, adjusted) in cases {
        assert_eq!(
            collector_time(taken, NOW, skew),
            (at, adjusted),
            "taken {taken} skew {skew:?}"
        );
    }
    let b = Batch::from_wire(
        v1::ReportRequest {
            snapshots: vec![snap(1, vec![])],
            sent_at_ms: NOW + 3_600_000,
        },
        NOW,
    )
    .expect("valid");
    assert_eq!(b.clock_skew_ms, Some(3_600_000));
}
