//! Two collector replicas on one PostgreSQL, one CA: agents report to either, and when the
//! replica holding the duty lease is killed mid-stream, the other goes on: every acknowledged
//! snapshot is stored exactly once, no ticket is opened twice, and the time-driven work (the
//! silent-agent sweep) moves to the survivor.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use firstline_agent::enroll::{EnrollParams, enroll};
use firstline_agent::identity::Identity;
use firstline_agent::uplink::channel;
use firstline_collector::clock::now_ms;
use firstline_collector::pki::CA_CERT_FILE;
use firstline_collector::store::{Store, TicketFilter};
use firstline_collector::tickets::Ticket;
use firstline_collector::tokens::create_token;
use firstline_proto::v1::agent_client::AgentClient;
use firstline_proto::v1::{Filesystem, ReportRequest, Snapshot};
use firstline_tests::pg::TempPostgres;
use firstline_tests::procs::CollectorProc;
use firstline_tests::{wait_for, wait_for_async};
use tokio::sync::watch;
use tonic::transport::Channel;

/// A safety net against hangs, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(60);
const AGENTS: usize = 20;
/// Snapshots per agent; the first `BEFORE_KILL` race the kill, the rest follow it.
const REPORTS: u64 = 15;
const BEFORE_KILL: u64 = 10;
/// How often an in-test agent reports (its cadence, so the kill lands mid-stream).
const CADENCE: Duration = Duration::from_millis(100);
/// What a replica logs when it takes the duty lease (`collector/src/duty.rs`).
const LEASE_TAKEN: &str = "this collector now runs the time-driven work (sweep, retention)";
/// The CA's private key in the data directory (`collector/src/pki.rs`).
const CA_KEY_FILE: &str = "ca.key";
/// The agent that stops reporting right after the kill, and should be found silent.
const QUIET: usize = 0;

/// One in-test agent: its identity and a channel to each replica.
struct Agent {
    index: usize,
    identity: Identity,
    to_a: AgentClient<Channel>,
    to_b: AgentClient<Channel>,
}

/// What the agents and the test share while reports stream.
#[derive(Clone)]
struct Stream {
    /// Snapshots acknowledged so far, by all agents.
    progress: Arc<AtomicUsize>,
    /// Set just before A is killed: reports sent earlier were in flight if they failed.
    killing: Arc<AtomicBool>,
    /// Set once A is dead: seqs after `BEFORE_KILL` wait for it.
    killed: watch::Receiver<bool>,
}

/// What one agent saw.
#[derive(Debug, Default)]
struct Outcome {
    agent_id: String,
    index: usize,
    last_seq: u64,
    /// Every seq that came back in `stored_seqs`.
    acked: BTreeSet<u64>,
    /// The seq whose report to A failed (its snapshots stayed in the spool), if one did, and
    /// whether that report was sent before the kill (was in flight when A died).
    failed_to_a: Option<(u64, bool)>,
    /// Reports to B that failed (and were sent again): none are expected.
    failed_to_b: Vec<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_postgres_survive_the_loss_of_one() {
    let pg = TempPostgres::start();
    let url = pg.database("replicas");
    let dir = tempfile::tempdir().expect("tempdir");
    // Heartbeat 2 s: an agent is silent after 6 s.
    let extra = format!("[store]\nurl = {url:?}\n\n[report]\nheartbeat = \"2s\"\n");
    let mut a = CollectorProc::start(&subdir(dir.path(), "a"), &extra);
    wait_for("replica A to take the duty lease", LIMIT, || {
        a.log().contains(LEASE_TAKEN).then_some(())
    });
    let b = start_with_ca_of(&a, &subdir(dir.path(), "b"), &extra);
    let store = Store::open(&url).await.expect("the shared store");
    let agents = enroll_agents(&a, &b, &store, &subdir(dir.path(), "agents")).await;

    let (killed_tx, killed) = watch::channel(false);
    let stream = Stream {
        progress: Arc::new(AtomicUsize::new(0)),
        killing: Arc::new(AtomicBool::new(false)),
        killed,
    };
    let tasks: Vec<_> = agents
        .into_iter()
        .map(|agent| {
            let last = if agent.index == QUIET {
                BEFORE_KILL + 2
            } else {
                REPORTS
            };
            tokio::spawn(drive(agent, last, stream.clone()))
        })
        .collect();
    // Mid-stream: half of what may go before the kill is acknowledged.
    let half = AGENTS * usize::try_from(BEFORE_KILL).expect("small") / 2;
    wait_for_async("half the reports before the kill", LIMIT, || {
        let acked = stream.progress.load(Ordering::SeqCst);
        async move { (acked >= half).then_some(()) }
    })
    .await;
    assert!(
        !b.log().contains(LEASE_TAKEN),
        "replica B took the duty lease while A held it:\n{}",
        b.log()
    );
    stream.killing.store(true, Ordering::SeqCst);
    a.kill();
    let killed_at_ms = now_ms();
    killed_tx.send(true).expect("agents are waiting");
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("agent task"));
    }
    print_failures(&outcomes);

    wait_for(
        "replica B to take the duty lease after A died",
        LIMIT,
        || b.log().contains(LEASE_TAKEN).then_some(()),
    );
    assert_stored_exactly_once(&store, &outcomes).await;
    assert_disk_tickets(&store, &outcomes).await;
    let quiet = &outcomes[QUIET].agent_id;
    let silent = wait_for_async("the quiet agent's agent.silent ticket", LIMIT, || async {
        let open = open_tickets(&store, Some(quiet.clone())).await;
        open.into_iter().find(|t| t.rule_id == "agent.silent")
    })
    .await;
    assert!(
        silent.opened_at_ms > killed_at_ms,
        "the silent ticket was opened before A died, so not by B: {silent:?}"
    );
    assert_no_duplicate_open_tickets(&store).await;
}

/// Says which reports failed: to A in flight at the kill or after it, and to B (none expected).
fn print_failures(outcomes: &[Outcome]) {
    let (in_flight, after): (Vec<_>, Vec<_>) = outcomes
        .iter()
        .filter_map(|o| o.failed_to_a)
        .partition(|(_, before_kill)| *before_kill);
    let failed_to_b: Vec<&String> = outcomes.iter().flat_map(|o| &o.failed_to_b).collect();
    eprintln!(
        "failed reports to A: {} in flight at the kill, {} after it; failed reports to B: \
         {failed_to_b:?}",
        in_flight.len(),
        after.len()
    );
}

fn subdir(parent: &Path, name: &str) -> std::path::PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).expect("create directory");
    dir
}

/// Starts replica B in `dir` with A's CA (certificate and key) in its data directory, so its
/// server certificate chains to the CA the agents trust.
fn start_with_ca_of(a: &CollectorProc, dir: &Path, extra: &str) -> CollectorProc {
    let data_dir = dir.join("collector");
    private_dir(&data_dir);
    for name in [CA_CERT_FILE, CA_KEY_FILE] {
        std::fs::copy(a.data_dir.join(name), data_dir.join(name))
            .unwrap_or_else(|e| panic!("copy {name} from A to B: {e}"));
    }
    let b = CollectorProc::start(dir, extra);
    let ca = |c: &CollectorProc| std::fs::read_to_string(c.data_dir.join(CA_CERT_FILE));
    assert_eq!(
        ca(a).expect("A's CA"),
        ca(&b).expect("B's CA"),
        "B must keep A's CA"
    );
    b
}

/// A private directory (0700), as the collector makes its data directory.
fn private_dir(dir: &Path) {
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(builder.recursive(true), 0o700);
    builder.create(dir).expect("create data directory");
}

/// Enrolls the agents through A's Enrollment RPC with one token, and opens a channel to each
/// replica for each.
async fn enroll_agents(
    a: &CollectorProc,
    b: &CollectorProc,
    store: &Store,
    dir: &Path,
) -> Vec<Agent> {
    let uses = u32::try_from(AGENTS).expect("small");
    let token = create_token(store, "replicas", Duration::from_secs(3600), uses)
        .await
        .expect("token");
    let ca_pem = std::fs::read_to_string(a.data_dir.join(CA_CERT_FILE)).expect("A's CA");
    let mut agents = Vec::new();
    for index in 0..AGENTS {
        let hostname = hostname(index);
        let params = EnrollParams {
            collector_url: &a.url(),
            token: &token.secret,
            ca_pem: &ca_pem,
            hostname: &hostname,
            force: false,
        };
        let identity = enroll(&dir.join(&hostname), &params)
            .await
            .unwrap_or_else(|e| panic!("enroll {hostname} through A: {e}"));
        let on_b = Identity {
            collector_url: b.url(),
            ..identity.clone()
        };
        agents.push(Agent {
            index,
            to_a: AgentClient::new(channel(&identity).expect("channel to A")),
            to_b: AgentClient::new(channel(&on_b).expect("channel to B")),
            identity,
        });
    }
    agents
}

fn hostname(index: usize) -> String {
    format!("pc-{index:02}")
}

/// Agent `index`'s snapshot `seq`. Every third agent's root fills up from seq 3 (a disk
/// ticket that stays open); the next one's /data is full for seqs 4 to 8, then clears.
fn snapshot(index: usize, seq: u64) -> Snapshot {
    let root = if fills_root(index) && seq >= 3 {
        95
    } else {
        40
    };
    let data = if index % 3 == 1 && (4..=8).contains(&seq) {
        96
    } else {
        20
    };
    Snapshot {
        seq,
        spool_epoch: 1,
        taken_at_ms: now_ms(),
        hostname: hostname(index),
        filesystems: vec![fs("/", root), fs("/data", data)],
        ..Default::default()
    }
}

/// Whether agent `index`'s root filesystem fills up (and stays full).
fn fills_root(index: usize) -> bool {
    index.is_multiple_of(3)
}

fn fs(mount: &str, used_percent: u64) -> Filesystem {
    let total = 100 * 1024 * 1024 * 1024;
    let used = total / 100 * used_percent;
    Filesystem {
        mount_point: mount.into(),
        device: "/dev/sda1".into(),
        fs_type: "ext4".into(),
        total_bytes: total,
        used_bytes: used,
        available_bytes: total - used,
        total_inodes: 1_000_000,
        used_inodes: 1000,
    }
}

/// Reports seqs 1 to `last`, alternating replicas, with every unacknowledged snapshot kept in
/// the spool and sent again with the next report (as the agent's spool does). Seqs after
/// `BEFORE_KILL` wait for the kill; a failed report to A sends the rest to B.
async fn drive(mut agent: Agent, last: u64, mut stream: Stream) -> Outcome {
    let mut out = Outcome {
        agent_id: agent.identity.agent_id.clone(),
        index: agent.index,
        last_seq: last,
        ..Outcome::default()
    };
    let mut spool: Vec<Snapshot> = Vec::new();
    let mut a_failed = false;
    let mut cadence = tokio::time::interval(CADENCE);
    for seq in 1..=last {
        if seq == BEFORE_KILL + 1 {
            stream
                .killed
                .wait_for(|k| *k)
                .await
                .expect("the test is running");
        }
        cadence.tick().await;
        spool.push(snapshot(agent.index, seq));
        let to_a = !a_failed && seq % 2 == 1;
        let before_kill = !stream.killing.load(Ordering::SeqCst);
        let client = if to_a {
            &mut agent.to_a
        } else {
            &mut agent.to_b
        };
        match report(client, &spool).await {
            Ok(stored) => {
                stream.progress.fetch_add(stored.len(), Ordering::SeqCst);
                spool.retain(|s| !stored.contains(&s.seq));
                out.acked.extend(stored);
            }
            Err(status) if to_a => {
                a_failed = true;
                out.failed_to_a = Some((seq, before_kill));
                eprintln!(
                    "{}: report of seq {seq} to A failed ({} unacknowledged): {status}",
                    hostname(agent.index),
                    spool.len()
                );
            }
            Err(status) => out
                .failed_to_b
                .push(format!("{}: {status}", hostname(agent.index))),
        }
    }
    flush_to_b(&mut agent, &mut spool, &mut out).await;
    out
}

/// Sends what is still unacknowledged to B until B stores it, as the agent's spool would.
async fn flush_to_b(agent: &mut Agent, spool: &mut Vec<Snapshot>, out: &mut Outcome) {
    let start = tokio::time::Instant::now();
    while !spool.is_empty() {
        match report(&mut agent.to_b, spool).await {
            Ok(stored) => {
                spool.retain(|s| !stored.contains(&s.seq));
                out.acked.extend(stored);
            }
            Err(status) => {
                out.failed_to_b
                    .push(format!("{}: {status}", hostname(agent.index)));
                assert!(
                    start.elapsed() < LIMIT,
                    "B never stored {}'s spool: {:?}",
                    hostname(agent.index),
                    out.failed_to_b
                );
                tokio::time::sleep(CADENCE).await;
            }
        }
    }
}

/// Sends a batch; returns the seqs acknowledged as stored (nothing may be rejected).
async fn report(
    client: &mut AgentClient<Channel>,
    snapshots: &[Snapshot],
) -> Result<Vec<u64>, tonic::Status> {
    let ack = client
        .report(ReportRequest {
            snapshots: snapshots.to_vec(),
            sent_at_ms: now_ms(),
        })
        .await?
        .into_inner();
    assert!(
        ack.rejected.is_empty(),
        "valid snapshots rejected: {:?}",
        ack.rejected
    );
    Ok(ack.stored_seqs)
}

/// The open tickets, of one agent or of all.
async fn open_tickets(store: &Store, agent_id: Option<String>) -> Vec<Ticket> {
    store
        .list_tickets(&TicketFilter {
            open: Some(true),
            agent_id,
            limit: 10_000,
        })
        .await
        .expect("list open tickets")
}

/// Every acknowledged (agent, seq) is stored once; after the flush to B, every seq was
/// acknowledged.
async fn assert_stored_exactly_once(store: &Store, outcomes: &[Outcome]) {
    for o in outcomes {
        let rows = store.stored_seqs(&o.agent_id).await.expect("stored seqs");
        let distinct: BTreeSet<u64> = rows.iter().copied().collect();
        assert_eq!(
            rows.len(),
            distinct.len(),
            "{}: a snapshot stored twice: {rows:?}",
            hostname(o.index)
        );
        let missing: Vec<&u64> = o.acked.difference(&distinct).collect();
        assert!(
            missing.is_empty(),
            "{}: acknowledged but not stored: {missing:?}",
            hostname(o.index)
        );
        let sent: BTreeSet<u64> = (1..=o.last_seq).collect();
        assert_eq!(o.acked, sent, "{}: not all acknowledged", hostname(o.index));
        assert_eq!(distinct, sent, "{}: stored seqs", hostname(o.index));
    }
}

/// Every agent whose root stayed full has its disk ticket open.
async fn assert_disk_tickets(store: &Store, outcomes: &[Outcome]) {
    for o in outcomes.iter().filter(|o| fills_root(o.index)) {
        let open = open_tickets(store, Some(o.agent_id.clone())).await;
        assert!(
            open.iter()
                .any(|t| t.rule_id == "disk.usage" && t.subject == "/"),
            "{}: no open disk.usage ticket on /: {open:#?}",
            hostname(o.index)
        );
    }
}

/// At most one open ticket per (agent, rule, subject).
async fn assert_no_duplicate_open_tickets(store: &Store) {
    let mut by_key: BTreeMap<(String, String, String), Vec<i64>> = BTreeMap::new();
    for t in open_tickets(store, None).await {
        by_key
            .entry((t.agent_id, t.rule_id, t.subject))
            .or_default()
            .push(t.id);
    }
    by_key.retain(|_, ids| ids.len() > 1);
    assert!(by_key.is_empty(), "duplicate open tickets: {by_key:#?}");
}
