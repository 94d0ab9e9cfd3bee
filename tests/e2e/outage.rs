//! Nothing is lost while the collector is down: the agent keeps measuring into its spool
//! (across its own restart, too), and once the collector is back every snapshot arrives exactly
//! once. An agent killed with SIGKILL while spooling, its newest entry then torn (cut short, as
//! a power cut can leave it), loses only that entry: it is set aside, counted as dropped and
//! reported; every fully written one arrives.

use std::time::Duration;

use firstline_collector::store::Store;
use firstline_tests::procs::{AgentProc, CollectorProc};
use firstline_tests::wait_for;

const LIMIT: Duration = Duration::from_secs(60);

/// A collector (1 s heartbeat) and an agent measuring every 200 ms in `dir`, once the
/// collector has its first reports; with the agent's id.
fn reporting(dir: &std::path::Path) -> (CollectorProc, AgentProc, String) {
    let collector = CollectorProc::start(dir, "[report]\nheartbeat = \"1s\"\n");
    let mut agent = AgentProc::new(dir, "[disk]\ninterval = \"200ms\"\n");
    agent.enroll(&collector);
    agent.start();
    let agent_id = agent.agent_id();
    wait_for("first reports", LIMIT, || {
        collector.host_last_seq(&agent_id).filter(|s| *s >= 2)
    });
    (collector, agent, agent_id)
}

fn agent_seq(agent: &AgentProc) -> u64 {
    agent.status()["last_seq"].as_u64().expect("last_seq")
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_taken_during_an_outage_arrive_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut collector, mut agent, agent_id) = reporting(dir.path());

    collector.stop();
    let stored_before_outage = agent_seq(&agent);
    wait_for("snapshots spooled while down", LIMIT, || {
        (agent_seq(&agent) >= stored_before_outage + 2).then_some(())
    });
    // The agent restarts during the outage; its spool survives.
    agent.stop();
    agent.start();
    wait_for("more snapshots after the agent restart", LIMIT, || {
        (agent_seq(&agent) >= stored_before_outage + 4).then_some(())
    });
    let taken_while_down = agent_seq(&agent);
    let spooled = agent.status()["spooled_snapshots"]
        .as_u64()
        .expect("spooled");
    assert!(spooled >= 4, "snapshots must wait in the spool: {spooled}");

    collector.restart();
    wait_for("the spool to drain", LIMIT, || {
        let seq = collector.host_last_seq(&agent_id)?;
        (seq >= taken_while_down).then_some(())
    });
    agent.stop();
    let status = agent.status();
    let last = status["last_seq"].as_u64().expect("last_seq");
    let still_spooled = status["spooled_snapshots"].as_u64().expect("spooled");

    let store = Store::open(&collector.store_url()).await.expect("store");
    let stored = store.stored_seqs(&agent_id).await.expect("stored seqs");
    let expected: Vec<u64> = (1..=last - still_spooled).collect();
    assert_eq!(
        stored,
        expected,
        "every snapshot exactly once, in order, none missing\n{}",
        agent.log()
    );
    assert!(
        stored.len() as u64 >= taken_while_down,
        "outage snapshots arrived"
    );
    // Snapshots taken while the collector was down carry the agent's diagnosis of why.
    let mut diagnosed = 0;
    for seq in stored_before_outage + 2..=taken_while_down {
        let payload = store
            .snapshot_payload(&agent_id, seq)
            .await
            .expect("read")
            .expect("stored");
        let snapshot =
            <firstline_proto::v1::Snapshot as prost::Message>::decode(payload.as_slice())
                .expect("decodes");
        if let Some(uplink) = snapshot.uplink {
            assert!(
                uplink.consecutive_failures > 0 && uplink.failing_since_ms > 0,
                "{uplink:?}"
            );
            assert_eq!(uplink.last_code, "Unavailable", "{uplink:?}");
            assert!(!uplink.last_error.is_empty());
            diagnosed += 1;
        }
    }
    assert!(
        diagnosed > 0,
        "no snapshot taken during the outage carried the uplink diagnosis"
    );
    let hosts = collector.json(&["hosts", "--json"]);
    let host = hosts
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["agent_id"] == agent_id.as_str())
        .cloned()
        .expect("host");
    assert_eq!(host["snapshots_stored"].as_u64(), Some(stored.len() as u64));
    assert_eq!(host["dropped_snapshots"].as_u64(), Some(0));
    // The host keeps the outage's diagnosis (the last one its snapshots carried), whether or
    // not a snapshot taken after the recovery has arrived yet.
    let spell = &host["last_uplink_failure"];
    assert!(spell["consecutive_failures"].as_u64() > Some(0), "{host}");
    assert_eq!(spell["last_code"], "Unavailable", "{host}");
    assert!(spell["failing_since_ms"].as_i64() > Some(0), "{host}");
}

/// The spool's entry files, oldest first.
fn spool_entries(agent: &AgentProc) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<std::path::PathBuf> = std::fs::read_dir(agent.state_dir.join("spool"))
        .expect("spool dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pb"))
        .collect();
    entries.sort();
    entries
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_last_entry_after_kill_9_is_the_only_loss_and_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut collector, mut agent, agent_id) = reporting(dir.path());

    collector.stop();
    let before = agent_seq(&agent);
    wait_for("snapshots spooled while down", LIMIT, || {
        (spool_entries(&agent).len() >= 4 && agent_seq(&agent) >= before + 4).then_some(())
    });
    agent.kill();
    let entries = spool_entries(&agent);
    let newest = entries.last().expect("an entry").clone();
    let torn_seq: u64 = newest
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.rsplit('-').next())
        .and_then(|s| s.parse().ok())
        .expect("seq in the name");
    let bytes = std::fs::read(&newest).expect("read newest entry");
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).expect("tear it");

    agent.start();
    collector.restart();
    wait_for(
        "the spool to drain and the drop to be reported",
        LIMIT,
        || {
            let hosts = collector.json(&["hosts", "--json"]);
            let host = hosts
                .as_array()?
                .iter()
                .find(|h| h["agent_id"] == agent_id.as_str())?
                .clone();
            (host["dropped_snapshots"].as_u64() == Some(1)
                && host["last_seq"].as_u64() > Some(torn_seq))
            .then_some(())
        },
    );
    agent.stop();
    let status = agent.status();
    let last = status["last_seq"].as_u64().expect("last_seq");
    let still_spooled = status["spooled_snapshots"].as_u64().expect("spooled");
    let store = Store::open(&collector.store_url()).await.expect("store");
    let stored = store.stored_seqs(&agent_id).await.expect("stored seqs");
    let expected: Vec<u64> = (1..=last - still_spooled)
        .filter(|s| *s != torn_seq)
        .collect();
    assert_eq!(
        stored,
        expected,
        "every fully written snapshot once, only the torn one missing\n{}",
        agent.log()
    );
    // The torn entry is kept aside for inspection, not sent and not left in the queue.
    let aside: Vec<String> = std::fs::read_dir(agent.state_dir.join("spool/unreadable"))
        .expect("unreadable dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        aside,
        [newest
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned()]
    );
    assert!(agent.log().contains("torn entry"), "{}", agent.log());
}
