//! One agent identity on two machines (a cloned disk image) against one machine that rebooted:
//! the reboot carries on, the copy's snapshots are rejected with a reason that says what to do
//! and change nothing of the original's state, a retry after a lost acknowledgement is not
//! taken for a copy, and the host shows the conflict.

use firstline_agent::identity::Identity;
use firstline_agent::uplink::channel;
use firstline_collector::clock::now_ms;
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{Filesystem, Host, ListHostsRequest, ReportAck, ReportRequest, Snapshot};
use firstline_tests::admin;
use firstline_tests::inproc::InProcess;

/// A snapshot of `/` at `used` percent, from `host` on machine `machine`, boot `boot`.
fn snapshot(seq: u64, host: &str, machine: &str, boot: &str, used: u64) -> Snapshot {
    Snapshot {
        seq,
        taken_at_ms: now_ms(),
        hostname: host.into(),
        machine_id: machine.into(),
        boot_id: boot.into(),
        filesystems: vec![Filesystem {
            mount_point: "/".into(),
            total_bytes: 100,
            used_bytes: used,
            available_bytes: 100 - used,
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn send(identity: &Identity, snapshots: Vec<Snapshot>) -> ReportAck {
    AgentClient::new(channel(identity).expect("channel"))
        .report(ReportRequest {
            snapshots,
            sent_at_ms: now_ms(),
        })
        .await
        .expect("report")
        .into_inner()
}

async fn host(c: &InProcess, agent_id: &str) -> Host {
    let mut client = admin::connect(&c.url(), &c.data_dir).await;
    client
        .list_hosts(ListHostsRequest {})
        .await
        .expect("ListHosts")
        .into_inner()
        .hosts
        .into_iter()
        .find(|h| h.agent_id == agent_id)
        .expect("the host")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cloned_identity_is_flagged_and_cannot_overwrite_the_original() {
    let c = InProcess::start().await;
    let identity = c.enroll("pc-1").await;
    let agent_id = identity.agent_id.clone();
    let machine = "4f1c2a9e0b7d4c3a8e6f5d2b1a0c9e8d";

    // The original, then the same machine after a reboot: numbering goes on, no conflict.
    let ack = send(
        &identity,
        (1..=3)
            .map(|seq| snapshot(seq, "pc-1", machine, "boot-a", 40))
            .collect(),
    )
    .await;
    assert_eq!(ack.stored_seqs, [1, 2, 3]);
    let after_reboot = snapshot(4, "pc-1", machine, "boot-b", 41);
    let ack = send(&identity, vec![after_reboot.clone()]).await;
    assert_eq!(
        (ack.stored_seqs.as_slice(), ack.rejected.len()),
        (&[4][..], 0)
    );
    // The same snapshot again (its acknowledgement was lost): stored already, not a copy.
    let ack = send(&identity, vec![after_reboot]).await;
    assert_eq!(
        (ack.stored_seqs.as_slice(), ack.rejected.len()),
        (&[4][..], 0)
    );
    let h = host(&c, &agent_id).await;
    assert_eq!(h.identity_conflict_at_ms, 0, "a reboot is no conflict");

    // A copy made when the original was at seq 3 starts its own boot and numbers from 4 on,
    // with a full disk of its own.
    let ack = send(
        &identity,
        vec![
            snapshot(4, "pc-1-copy", machine, "boot-c", 97),
            snapshot(5, "pc-1-copy", machine, "boot-c", 97),
        ],
    )
    .await;
    // Both rejected: 4 reuses a number, and 5, though newer than anything stored, comes
    // from the boot that did.
    let rejected: Vec<u64> = ack.rejected.iter().map(|r| r.seq).collect();
    assert_eq!(
        (ack.stored_seqs.len(), rejected),
        (0, vec![4, 5]),
        "{ack:?}"
    );
    let reason = &ack.rejected[0].reason;
    for part in [
        "two machines",
        "\"pc-1-copy\"",
        "\"pc-1\"",
        "enroll --force",
    ] {
        assert!(reason.contains(part), "{part} in {reason}");
    }
    let h = host(&c, &agent_id).await;
    assert!(h.identity_conflict_at_ms > 0, "the host is flagged");
    assert!(
        h.identity_conflict.contains("pc-1-copy"),
        "{}",
        h.identity_conflict
    );
    // Nothing of the copy reached the original's state: its name and disk stand, no ticket.
    assert_eq!(h.hostname, "pc-1");
    let root = h
        .filesystems
        .iter()
        .find(|f| f.mount_point == "/")
        .expect("/");
    assert_eq!(root.used_bytes, 41);
    let mut client = admin::connect(&c.url(), &c.data_dir).await;
    assert!(
        admin::list_tickets(&mut client, &agent_id).await.is_empty(),
        "the copy's full disk opened nothing"
    );
    // The original goes on reporting.
    let ack = send(&identity, vec![snapshot(5, "pc-1", machine, "boot-b", 42)]).await;
    assert_eq!(
        (ack.stored_seqs.as_slice(), ack.rejected.len()),
        (&[5][..], 0)
    );
    // The copy, rebooted (a boot not yet marked) and behind: rejected again.
    let ack = send(
        &identity,
        vec![snapshot(5, "pc-1-copy", machine, "boot-d", 97)],
    )
    .await;
    assert_eq!(ack.rejected.len(), 1, "{ack:?}");
    assert_eq!(host(&c, &agent_id).await.hostname, "pc-1");
}
