//! Tests of the spool: numbering across restarts, losses and rollovers, bounds, and entries
//! that must leave the queue without being sent.

use std::fs;
use std::path::Path;

use super::files::{EPOCH, LAST_SEQ, entry_name};
use super::*;

const ROOMY: SpoolLimits = SpoolLimits {
    max_entries: 100,
    max_bytes: 1 << 20,
};

fn open(dir: &Path) -> Spool {
    Spool::open(dir, ROOMY).expect("open")
}

fn push(spool: &mut Spool, text: &str) -> Stamp {
    spool.push(|_| text.as_bytes().to_vec()).expect("push")
}

fn seqs(spool: &mut Spool) -> Vec<u64> {
    spool.peek(100, 1 << 20).iter().map(|e| e.id.seq).collect()
}

fn write(dir: &Path, name: &str, text: &str) {
    fs::write(dir.join(name), text).expect("write");
}

#[test]
fn entries_survive_reopen_and_leave_only_after_ack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    let stamps = [
        push(&mut spool, "a"),
        push(&mut spool, "b"),
        push(&mut spool, "c"),
    ];
    assert_eq!(stamps.map(|s| s.seq), [1, 2, 3]);
    let epoch = spool.epoch();
    drop(spool);
    let mut spool = open(dir.path());
    assert_eq!(seqs(&mut spool), [1, 2, 3]);
    assert_eq!(spool.acknowledge(epoch, &[1, 2, 99]).expect("ack"), 2);
    assert_eq!(
        spool.acknowledge(epoch + 1, &[3]).expect("ack"),
        0,
        "other epoch"
    );
    assert_eq!(spool.peek(10, 1 << 20)[0].data, b"c");
}

#[test]
fn sequence_numbers_never_repeat_after_the_spool_empties() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    push(&mut spool, "a");
    let epoch = push(&mut spool, "b").epoch;
    spool.acknowledge(epoch, &[1, 2]).expect("ack");
    assert!(spool.is_empty());
    drop(spool);
    let mut spool = open(dir.path());
    assert_eq!(
        push(&mut spool, "c"),
        Stamp {
            epoch,
            seq: 3,
            dropped: 0,
            rejected: 0
        }
    );
}

#[test]
fn a_fresh_spool_gets_a_nonzero_epoch_that_reopening_keeps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool_dir = dir.path().join("spool");
    let epoch = open(&spool_dir).epoch();
    assert!((1..=MAX_SEQ).contains(&epoch), "{epoch}");
    assert_eq!(open(&spool_dir).epoch(), epoch);
    // Losing the spool (a reinstall, a wiped disk) starts a new numbering from 1.
    let mut spool = open(&spool_dir);
    push(&mut spool, "a");
    drop(spool);
    fs::remove_dir_all(&spool_dir).expect("rm");
    let mut spool = open(&spool_dir);
    let stamp = push(&mut spool, "b");
    assert_ne!(stamp.epoch, epoch);
    assert_ne!(stamp.epoch, 0);
    assert_eq!(stamp.seq, 1);
}

#[test]
fn damaged_or_missing_number_files_start_a_new_epoch() {
    let cases = [
        ("epoch", Some("x")),
        ("last_seq", Some("-3")),
        ("last_seq", Some("")),
        ("last_seq", None),
    ];
    for (file, text) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = open(dir.path());
        let before = push(&mut spool, "a");
        drop(spool);
        match text {
            Some(text) => write(dir.path(), file, text),
            None => fs::remove_file(dir.path().join(file)).expect("rm"),
        }
        let mut spool = open(dir.path());
        let after = push(&mut spool, "b");
        assert_ne!(after.epoch, before.epoch, "{file} = {text:?}");
        assert_eq!(after.seq, 1, "{file} = {text:?}");
        // The old entry is still sent, first, in its own epoch.
        let batch = spool.peek(10, 1 << 20);
        assert_eq!(
            batch.iter().map(|e| e.id).collect::<Vec<_>>(),
            [EntryId {
                epoch: before.epoch,
                seq: 1
            }]
        );
    }
}

#[test]
fn a_spool_from_before_epochs_keeps_numbering_in_epoch_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), LAST_SEQ, "41\n");
    write(dir.path(), &entry_name(0, 42, true), "old");
    let mut spool = open(dir.path());
    assert_eq!(spool.epoch(), 0);
    assert_eq!(push(&mut spool, "new").seq, 43);
    let batch = spool.peek(10, 1 << 20);
    let ids: Vec<(u64, u64, &[u8])> = batch
        .iter()
        .map(|e| (e.id.epoch, e.id.seq, e.data.as_slice()))
        .collect();
    assert_eq!(
        ids,
        [(0, 42, b"old".as_slice()), (0, 43, b"new".as_slice())]
    );
    assert_eq!(spool.acknowledge(0, &[42, 43]).expect("ack"), 2);
    assert!(fs::read_dir(dir.path()).expect("ls").all(|e| {
        !e.expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".pb")
    }));
    drop(spool);
    assert_eq!(open(dir.path()).epoch(), 0, "epoch 0 is written down");
}

#[test]
fn old_entries_without_last_seq_go_first_in_their_own_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &entry_name(0, 1, true), "old1");
    write(dir.path(), &entry_name(0, 2, true), "old2");
    let mut spool = open(dir.path());
    let epoch = spool.epoch();
    assert_ne!(epoch, 0, "no last_seq and no epoch: a new numbering");
    push(&mut spool, "new");
    let first = spool.peek(10, 1 << 20);
    assert_eq!(
        first.iter().map(|e| e.id).collect::<Vec<_>>(),
        [EntryId { epoch: 0, seq: 1 }, EntryId { epoch: 0, seq: 2 }]
    );
    spool.acknowledge(0, &[1, 2]).expect("ack");
    let second = spool.peek(10, 1 << 20);
    assert_eq!(
        second.iter().map(|e| e.id).collect::<Vec<_>>(),
        [EntryId { epoch, seq: 1 }]
    );
}

#[test]
fn rollover_near_the_limit_waits_for_an_empty_spool() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), EPOCH, "7");
    write(dir.path(), LAST_SEQ, &(ROLLOVER_AT - 1).to_string());
    let mut spool = open(dir.path());
    assert_eq!(
        push(&mut spool, "a"),
        Stamp {
            epoch: 7,
            seq: ROLLOVER_AT,
            dropped: 0,
            rejected: 0
        }
    );
    // Not empty: numbering goes on in epoch 7.
    assert_eq!(push(&mut spool, "b").seq, ROLLOVER_AT + 1);
    spool
        .acknowledge(7, &[ROLLOVER_AT, ROLLOVER_AT + 1])
        .expect("ack");
    let fresh = push(&mut spool, "c");
    assert!(fresh.epoch != 7 && fresh.epoch != 0, "{fresh:?}");
    assert_eq!(fresh.seq, 1);
    drop(spool);
    let mut spool = open(dir.path());
    assert_eq!((spool.epoch(), push(&mut spool, "d").seq), (fresh.epoch, 2));
}

#[test]
fn numbering_never_passes_max_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), EPOCH, "7");
    write(dir.path(), LAST_SEQ, &(MAX_SEQ - 1).to_string());
    write(dir.path(), &entry_name(7, MAX_SEQ - 1, false), "waiting");
    let mut spool = open(dir.path());
    assert_eq!(push(&mut spool, "last").seq, MAX_SEQ);
    let refused = spool.push(|_| b"one too many".to_vec());
    assert!(
        matches!(
            refused,
            Err(SpoolError::Exhausted {
                epoch: 7,
                waiting: 2,
                ..
            })
        ),
        "{refused:?}"
    );
    spool.acknowledge(7, &[MAX_SEQ - 1, MAX_SEQ]).expect("ack");
    let fresh = push(&mut spool, "again");
    assert_eq!(fresh.seq, 1);
    assert_ne!(fresh.epoch, 7);
}

#[test]
fn full_spool_drops_the_oldest_and_reports_the_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = SpoolLimits {
        max_entries: 2,
        max_bytes: 1 << 20,
    };
    let mut spool = Spool::open(dir.path(), limits).expect("open");
    push(&mut spool, "a");
    push(&mut spool, "b");
    let stamp = push(&mut spool, "c");
    assert_eq!((stamp.seq, stamp.dropped), (3, 1));
    assert_eq!(seqs(&mut spool), [2, 3]);
    assert_eq!(
        push(&mut spool, "d").dropped,
        1,
        "each drop is reported once"
    );
}

#[test]
fn peek_respects_the_byte_budget_but_always_returns_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    push(&mut spool, "0123456789");
    push(&mut spool, "0123456789");
    assert_eq!(spool.peek(10, 15).len(), 1);
    assert_eq!(spool.peek(10, 5).len(), 1);
    assert_eq!(spool.peek(10, 20).len(), 2);
    assert_eq!(spool.peek(1, 20).len(), 1);
}

#[test]
fn rejected_entries_are_deleted_and_counted_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    let epoch = push(&mut spool, "bad").epoch;
    push(&mut spool, "good");
    assert_eq!(spool.discard_rejected(epoch, &[1, 5]).expect("reject"), 1);
    assert_eq!(seqs(&mut spool), [2]);
    drop(spool);
    let mut spool = open(dir.path());
    assert_eq!(spool.rejected_pending(), 1);
    assert_eq!(push(&mut spool, "next").rejected, 1);
    assert_eq!(push(&mut spool, "after").rejected, 0, "reported once");
    drop(spool);
    assert_eq!(open(dir.path()).rejected_pending(), 0);
}

#[test]
fn drops_not_yet_reported_are_counted_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    let epoch = push(&mut spool, "unreadable later").epoch;
    push(&mut spool, "fine");
    spool
        .set_aside(EntryId { epoch, seq: 1 })
        .expect("set aside");
    drop(spool);
    let mut spool = open(dir.path());
    assert_eq!(
        push(&mut spool, "next").dropped,
        1,
        "the drop survives the restart"
    );
    assert_eq!(push(&mut spool, "after").dropped, 0, "reported once");
    drop(spool);
    assert_eq!(push(&mut open(dir.path()), "again").dropped, 0);
}

#[test]
fn removing_the_newest_entry_keeps_its_number_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    let epoch = push(&mut spool, "a").epoch;
    push(&mut spool, "b");
    spool.discard_rejected(epoch, &[2]).expect("reject");
    spool
        .set_aside(EntryId { epoch, seq: 1 })
        .expect("set aside");
    assert!(spool.is_empty());
    drop(spool);
    assert_eq!(push(&mut open(dir.path()), "c").seq, 3);
}

#[test]
fn unreadable_entries_are_set_aside_and_never_block_the_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spool = open(dir.path());
    let epoch = push(&mut spool, "a").epoch;
    push(&mut spool, "b");
    push(&mut spool, "c");
    // One file vanishes behind the spool's back, one is replaced by something unreadable.
    fs::remove_file(dir.path().join(entry_name(epoch, 1, false))).expect("rm");
    let second = dir.path().join(entry_name(epoch, 2, false));
    fs::remove_file(&second).expect("rm");
    fs::create_dir(&second).expect("a directory where a file was");
    let batch = spool.peek(10, 1 << 20);
    assert_eq!(batch.iter().map(|e| e.id.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(spool.len(), 1);
    assert!(
        dir.path()
            .join(UNREADABLE)
            .join(entry_name(epoch, 2, false))
            .exists()
    );
    assert_eq!(push(&mut spool, "d").dropped, 2);
}

#[test]
fn inspect_reads_without_changing() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        Spool::inspect(&dir.path().join("none")).expect("inspect"),
        SpoolSummary::default()
    );
    let mut spool = open(dir.path());
    let epoch = push(&mut spool, "a").epoch;
    push(&mut spool, "b");
    spool.discard_rejected(epoch, &[1]).expect("reject");
    write(dir.path(), "x.tmp", "crash leftover");
    let summary = Spool::inspect(dir.path()).expect("inspect");
    assert_eq!(
        summary,
        SpoolSummary {
            waiting: 1,
            epoch: Some(epoch),
            last_seq: 2,
            rejected_pending: 1,
            newest: Some(b"b".to_vec()),
        }
    );
    assert!(dir.path().join("x.tmp").exists());
}

#[tokio::test]
async fn the_shared_handle_does_the_same_off_the_async_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = SharedSpool::open(dir.path().join("spool"), ROOMY)
        .await
        .expect("open");
    let here = std::thread::current().id();
    let stamp = spool
        .push(move |stamp| {
            assert_ne!(
                std::thread::current().id(),
                here,
                "encoded on the async thread"
            );
            stamp.seq.to_string().into_bytes()
        })
        .await
        .expect("push");
    let batch = spool.peek(10, 1 << 20).await;
    assert_eq!(
        batch,
        [Entry {
            id: EntryId {
                epoch: stamp.epoch,
                seq: 1
            },
            data: b"1".to_vec()
        }]
    );
    assert_eq!(
        spool.acknowledge(stamp.epoch, vec![1]).await.expect("ack"),
        1
    );
    assert_eq!(spool.counts().await.waiting, 0);
}
