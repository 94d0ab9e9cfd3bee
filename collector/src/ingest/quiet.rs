//! The quiet path: most reports of a healthy fleet change nothing the rules keep (no
//! condition holds, nothing is open), yet the full path reads the agent's tickets, conditions
//! and current state before it knows that. The writer remembers, per agent, what the store
//! held after its last report (row version, and fingerprints of the host's facts and mounts),
//! and a report that is the next one of the same spool epoch, carries every probe's facts,
//! finds no condition holding, and is not due for a disk sample is stored without a read,
//! together with the other quiet reports of its group (`store::quiet`: a few statements per
//! hundred reports).
//!
//! Safe with several writers: the agent row is advanced with a compare-and-set on (epoch,
//! last sequence number, ticket-state version). Every ticket event of the agent (the sweep's
//! silent ticket, a technician's reopen, another replica's report) moves one of them, so a
//! stale memory fails the compare, changes nothing, and the report takes the full path,
//! which then refreshes the memory. The store stays the source of truth: after a restart the
//! memory is empty and the first report of each agent takes the full path.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use super::IngestOutcome;
use crate::engine::Engine;
use crate::engine::{SILENT_RULE, Tracked};
use crate::facts::Snapshot;
use crate::report::{Batch, Entry};
use crate::store::{AgentVersion, QuietRow, Recurring, Store, StoreError, WriteTx};
use crate::tickets::TicketState;

/// A tracked condition as remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Condition {
    since_ms: i64,
    holds_count: i64,
    ticket: Option<i64>,
}

/// What the writer remembers of one agent after its last report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    version: AgentVersion,
    /// Fingerprint of the host's stored facts.
    facts: u64,
    /// Fingerprint of the set of mounts stored (the values may differ).
    mounts: u64,
    /// Fingerprint of the machine and boot of the newest snapshot (`super::instance`): a
    /// report from another goes the full path, which judges it.
    instance: u64,
    /// The agent's tracked conditions by (rule, subject), with the ticket open on each.
    tracked: Arc<HashMap<(String, String), Condition>>,
}

/// The writer's memory of agents whose last report left nothing open.
#[derive(Debug, Default)]
pub struct QuietMemory {
    known: HashMap<String, Known>,
    /// Reports stored on the quiet path so far.
    pub stored: u64,
}

/// A report the quiet path will store, with what it needs.
pub struct Plan<'a> {
    pub agent_id: &'a str,
    snapshot: &'a Snapshot,
    known: Known,
    clock_skew_ms: Option<i64>,
    /// The facts as stored, when they changed.
    facts: Option<Vec<u8>>,
    facts_print: u64,
    now_ms: i64,
    /// Open tickets that count one more occurrence.
    recurring: Vec<Recurring>,
}

impl Plan<'_> {
    /// The row for the batched statements.
    pub fn row(&self) -> QuietRow<'_> {
        QuietRow {
            agent_id: self.agent_id,
            seen: self.known.version,
            snapshot: self.snapshot,
            received_at_ms: self.now_ms,
            clock_skew_ms: self.clock_skew_ms,
            facts: self.facts.as_deref(),
            recurring: &self.recurring,
        }
    }

    /// The acknowledgement of a report stored on the quiet path.
    pub fn outcome(&self) -> IngestOutcome {
        IngestOutcome {
            stored_seqs: vec![self.snapshot.seq],
            new_snapshots: 1,
            ..IngestOutcome::default()
        }
    }
}

impl QuietMemory {
    /// Agents remembered.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The plan for `batch` if it is a quiet report of a remembered agent: the next snapshot
    /// of the same spool epoch, with every probe's facts and the same mounts as stored, no
    /// condition holding, no disk sample due.
    pub fn plan<'a>(
        &self,
        store: &Store,
        engine: &Engine,
        agent_id: &'a str,
        batch: &'a Batch,
        now_ms: i64,
    ) -> Result<Option<Plan<'a>>, StoreError> {
        let [Entry::Valid(snapshot)] = batch.entries.as_slice() else {
            return Ok(None);
        };
        let Some(known) = self.known.get(agent_id) else {
            return Ok(None);
        };
        if snapshot.epoch != known.version.epoch
            || snapshot.seq <= known.version.last_seq
            || !complete(snapshot)
            || mounts_print(snapshot) != known.mounts
            || instance_print(snapshot) != known.instance
            || store.sample_may_be_due(agent_id, snapshot.at_ms)
        {
            return Ok(None);
        }
        let tracked = &known.tracked;
        let Some(holding) = engine.steady(snapshot, |rule, subject| {
            tracked
                .get(&(rule.to_owned(), subject.to_owned()))
                .map(|c| Tracked {
                    since_ms: c.since_ms,
                    holds_count: c.holds_count,
                    ticket: c.ticket.is_some(),
                })
        }) else {
            return Ok(None);
        };
        // Every tracked condition holds again (the forecast's wait for their next sample).
        let forecast = tracked
            .keys()
            .filter(|(r, _)| engine.is_forecast(r))
            .count();
        if holding.len() + forecast != tracked.len() {
            return Ok(None);
        }
        let recurring = holding
            .into_iter()
            .filter_map(|o| {
                let c = tracked.get(&(o.rule_id.clone(), o.subject.clone()))?;
                Some(Recurring {
                    ticket_id: c.ticket,
                    rule_id: o.rule_id,
                    subject: o.subject,
                    value: o.value,
                    title: o.title,
                })
            })
            .collect();
        let known = known.clone();
        let encoded = serde_json::to_vec(&snapshot.facts)
            .map_err(|e| StoreError::corrupt("host facts", agent_id, e))?;
        let facts_print = print(&encoded);
        if facts_print != known.facts {
            // New facts go the full path, which lays them over the stored ones: the uplink's
            // last spell of failures and its recovery are kept there, not in the snapshot.
            return Ok(None);
        }
        Ok(Some(Plan {
            agent_id,
            snapshot,
            known,
            clock_skew_ms: batch.clock_skew_ms,
            facts: None,
            facts_print,
            now_ms,
            recurring,
        }))
    }

    /// The plan's report is stored (in a transaction not yet committed: a failed commit makes
    /// the next compare fail, which is safe).
    pub fn stored(&mut self, plan: &Plan<'_>) {
        self.stored += 1;
        let mut tracked = (*plan.known.tracked).clone();
        for r in &plan.recurring {
            if let Some(c) = tracked.get_mut(&(r.rule_id.clone(), r.subject.clone())) {
                c.holds_count += 1;
            }
        }
        self.known.insert(
            plan.agent_id.to_owned(),
            Known {
                version: AgentVersion {
                    last_seq: plan.snapshot.seq,
                    ..plan.known.version
                },
                facts: plan.facts_print,
                mounts: plan.known.mounts,
                instance: plan.known.instance,
                tracked: Arc::new(tracked),
            },
        );
    }

    /// After the full path stored `batch`: remember the agent if its newest snapshot carried
    /// every probe's facts and its tickets are plain ones (see below); forget it otherwise.
    /// Only a snapshot the full path stored (`stored_seqs`) is learnt from: a rejected one
    /// (another machine's, reusing the newest number) never is.
    pub async fn learn(
        &mut self,
        tx: &mut WriteTx,
        agent_id: &str,
        batch: &Batch,
        stored_seqs: &[u64],
    ) -> Result<(), StoreError> {
        self.known.remove(agent_id);
        let Some(version) = tx.agent_version(agent_id).await? else {
            return Ok(());
        };
        let newest = batch.entries.iter().rev().find_map(|e| match e {
            Entry::Valid(s)
                if s.epoch == version.epoch
                    && s.seq == version.last_seq
                    && stored_seqs.contains(&s.seq) =>
            {
                Some(s)
            }
            _ => None,
        });
        let Some(snapshot) = newest else {
            return Ok(());
        };
        if !complete(snapshot) {
            return Ok(());
        }
        // Remembered only when every open ticket is a plain one with its condition: then a
        // report can only hold again or change course.
        let tickets = tx.open_tickets_of(agent_id).await?;
        let conditions = tx.conditions_of(agent_id).await?;
        let plain = tickets.iter().all(|t| {
            matches!(t.state, TicketState::New | TicketState::Acknowledged)
                && t.clear_since_ms.is_none()
                && t.rule_id != SILENT_RULE
                && conditions
                    .get(&t.rule_id)
                    .is_some_and(|cs| cs.iter().any(|c| c.subject == t.subject))
        });
        if !plain {
            return Ok(());
        }
        let mut tracked = HashMap::new();
        for (rule_id, cs) in conditions {
            for c in cs {
                let ticket = tickets
                    .iter()
                    .find(|t| t.rule_id == rule_id && t.subject == c.subject)
                    .map(|t| t.id);
                tracked.insert(
                    (rule_id.clone(), c.subject),
                    Condition {
                        since_ms: c.since_ms,
                        holds_count: c.holds_count,
                        ticket,
                    },
                );
            }
        }
        let encoded = serde_json::to_vec(&snapshot.facts)
            .map_err(|e| StoreError::corrupt("host facts", agent_id, e))?;
        self.known.insert(
            agent_id.to_owned(),
            Known {
                version,
                facts: print(&encoded),
                mounts: mounts_print(snapshot),
                instance: instance_print(snapshot),
                tracked: Arc::new(tracked),
            },
        );
        Ok(())
    }

    /// Forgets an agent (its report was rolled back).
    pub fn forget(&mut self, agent_id: &str) {
        self.known.remove(agent_id);
    }
}

/// Whether the snapshot carries every probe's facts (then they replace the stored ones whole).
fn complete(snapshot: &Snapshot) -> bool {
    let f = &snapshot.facts;
    f.system.is_some() && f.patches.is_some() && f.antivirus.is_some() && f.connectivity.is_some()
}

fn print(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Fingerprint of the snapshot's machine and boot.
fn instance_print(snapshot: &Snapshot) -> u64 {
    let mut h = DefaultHasher::new();
    (&snapshot.machine_id, &snapshot.boot_id).hash(&mut h);
    h.finish()
}

/// Fingerprint of the snapshot's set of mounts, in any order.
fn mounts_print(snapshot: &Snapshot) -> u64 {
    let mut mounts: Vec<&str> = snapshot
        .filesystems
        .iter()
        .map(|f| f.mount_point.as_str())
        .collect();
    mounts.sort_unstable();
    let mut h = DefaultHasher::new();
    mounts.hash(&mut h);
    h.finish()
}
