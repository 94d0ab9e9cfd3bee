//! The rule engine on ingest: every rule reads the snapshot, each observation updates its
//! tracked condition, and a condition that has held long enough (`for`) and often enough
//! (consecutive reports) opens a ticket, counts an occurrence, raises its priority, or, when
//! it clears, resolves it. A recurrence within the reopen window reopens the resolved ticket
//! instead of opening another; opened or reopened, the ticket goes through outage correlation
//! (`crate::correlation`) first. All of it runs in the ingest transaction; what each change
//! does to a ticket is decided by `tickets::lifecycle`.
//!
//! One reading below the clear threshold resolves a ticket, however long it was open: the
//! hysteresis band between the open and the clear threshold already absorbs noise, and a
//! ticket that comes back within the flap window reopens, is marked flapping, and from then on
//! resolves only after its condition stayed clear for the whole window.

use std::time::Duration;

use crate::correlation::{Correlation, Placement};
use crate::facts::{Snapshot, os_family};
use crate::rules::{Observation, Rule, RuleKind, Verdict};
use crate::store::{Condition, NewTicket, StoreError, WriteTx};
use crate::tickets::lifecycle::{self, ClearDecision, Recurrence, Sla, ms};
use crate::tickets::{Ticket, dedupe_key};

/// Rule id of the "agent silent" tickets (opened by the sweep, resolved by a report).
pub const SILENT_RULE: &str = "agent.silent";

/// The rules and the ticket policy ingest applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    pub rules: Vec<Rule>,
    pub sla: Sla,
    pub reopen_window: Duration,
    pub correlation: Correlation,
    /// A ticket reopened this soon after resolving is flapping: it then resolves only after
    /// its condition stayed clear this long.
    pub flap_window: Duration,
}

impl Default for Engine {
    fn default() -> Self {
        Self {
            rules: crate::rules::defaults::rules(),
            sla: Sla::default(),
            reopen_window: Duration::from_secs(24 * 3600),
            correlation: Correlation::default(),
            flap_window: Duration::from_secs(15 * 60),
        }
    }
}

/// A tracked condition as [`Engine::steady`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    pub since_ms: i64,
    pub holds_count: i64,
    /// A ticket is open on it.
    pub ticket: bool,
}

/// A tracked condition that holds once more (see [`Engine::steady`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    pub rule_id: String,
    pub subject: String,
    pub value: f64,
    /// The ticket's title for this value (when a ticket is open).
    pub title: String,
    pub ticket: bool,
}

/// What applying the rules to one snapshot changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub opened: usize,
    pub reopened: usize,
    pub resolved: usize,
}

/// What one rule finds stored for the agent: its open tickets and tracked conditions.
#[derive(Clone, Copy)]
struct RuleInputs<'a> {
    open: &'a [Ticket],
    conditions: &'a [Condition],
}

/// One rule's view of one snapshot, for the steps below.
struct Step<'a> {
    agent_id: &'a str,
    rule: &'a Rule,
    snapshot: &'a Snapshot,
    silenced: bool,
}

impl Engine {
    /// The disk usage boundaries agents should report crossings of at once.
    pub fn disk_thresholds(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self
            .rules
            .iter()
            .flat_map(|r| match r.kind {
                RuleKind::DiskUsage {
                    open_percent,
                    clear_percent,
                    critical_percent,
                    ..
                } => vec![clear_percent, open_percent, critical_percent],
                _ => Vec::new(),
            })
            .filter(|p| (0.0..=100.0).contains(p))
            .collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    }

    /// What the rules would do with this snapshot of an agent whose tracked conditions (by
    /// rule and subject, with whether a ticket is open on each) `tracked` tells, when that is
    /// only to count one more holding of some of them: each holds again, on its open ticket
    /// without a priority raise, or not yet due to open one; nothing else holds. `None` when
    /// anything else would happen (a condition starts, clears or becomes due, a priority
    /// rises), which is the full path's to do. The caller checks that every tracked condition
    /// holds again (none is gone from the report). The forecast is left out: it runs when a
    /// disk sample is due, on the full path.
    pub fn steady(
        &self,
        snapshot: &Snapshot,
        tracked: impl Fn(&str, &str) -> Option<Tracked>,
    ) -> Option<Vec<Occurrence>> {
        let family = os_family(&snapshot.os, &snapshot.facts);
        let at_ms = snapshot.at_ms;
        let mut holding = Vec::new();
        for rule in self.rules.iter().filter(|r| r.applies_to(family)) {
            if matches!(rule.kind, RuleKind::DiskForecast { .. }) {
                continue;
            }
            let observations = rule.kind.observe(snapshot, at_ms).unwrap_or_default();
            for o in &observations {
                match (o.verdict, tracked(&rule.id, &o.subject)) {
                    (Verdict::Holds, Some(t)) => {
                        let steady = if t.ticket {
                            o.raised_priority.is_none()
                        } else {
                            // Would the next holding make it due? Then it opens: full path.
                            let due = at_ms - t.since_ms >= ms(rule.hold_for)
                                && t.holds_count + 1 >= i64::from(rule.kind.consecutive());
                            !due
                        };
                        if !steady {
                            return None;
                        }
                        holding.push(Occurrence {
                            rule_id: rule.id.clone(),
                            subject: o.subject.clone(),
                            value: o.value,
                            title: rule.title_for(&snapshot.hostname, &o.subject, o.value),
                            ticket: t.ticket,
                        });
                    }
                    (Verdict::Clear | Verdict::Between, None) => {}
                    _ => return None,
                }
            }
        }
        Some(holding)
    }

    /// Whether `rule_id` is a forecast rule (evaluated only when a disk sample is due).
    pub fn is_forecast(&self, rule_id: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.id == rule_id && matches!(r.kind, RuleKind::DiskForecast { .. }))
    }

    /// Applies every rule to a newly stored, newest snapshot of `agent_id`. `new_sample`:
    /// this snapshot added a disk sample, so the forecast has a new point to read (it runs
    /// on the sampling cadence, not on every report).
    pub async fn apply(
        &self,
        tx: &mut WriteTx,
        agent_id: &str,
        snapshot: &Snapshot,
        new_sample: bool,
    ) -> Result<Changes, StoreError> {
        let at_ms = snapshot.at_ms;
        let mut changes = Changes::default();
        // Every input the rules need about this agent, read once.
        let mut open = tx.open_tickets_of(agent_id).await?;
        let mut conditions = tx.conditions_of(agent_id).await?;
        // A report ends any "agent silent" ticket.
        for t in open.iter().filter(|t| t.rule_id == SILENT_RULE) {
            tx.resolve_ticket(t.id, at_ms, 0.0, "the agent reported again")
                .await?;
            changes.resolved += 1;
        }
        open.retain(|t| t.rule_id != SILENT_RULE);
        let silences = tx.silences_at(at_ms).await?;
        let labels = if silences.is_empty() {
            Vec::new()
        } else {
            tx.labels(agent_id).await?
        };
        let family = os_family(&snapshot.os, &snapshot.facts);
        for rule in self.rules.iter().filter(|r| r.applies_to(family)) {
            let observations = match &rule.kind {
                RuleKind::DiskForecast { horizon_hours } => {
                    if !new_sample {
                        continue;
                    }
                    Some(forecast(tx, agent_id, snapshot, *horizon_hours).await?)
                }
                kind => kind.observe(snapshot, at_ms),
            };
            let Some(observations) = observations else {
                continue;
            };
            // Silenced: conditions are still tracked, but no ticket opens.
            let silenced = silences.iter().any(|s| {
                s.matcher
                    .covers(agent_id, &snapshot.hostname, &labels, &rule.id)
            });
            let step = Step {
                agent_id,
                rule,
                snapshot,
                silenced,
            };
            let rule_open: Vec<Ticket> = open
                .iter()
                .filter(|t| t.rule_id == rule.id)
                .cloned()
                .collect();
            let rule_conditions = conditions.remove(&rule.id).unwrap_or_default();
            let inputs = RuleInputs {
                open: &rule_open,
                conditions: &rule_conditions,
            };
            self.apply_rule(tx, &step, &observations, inputs, &mut changes)
                .await?;
        }
        Ok(changes)
    }

    async fn apply_rule(
        &self,
        tx: &mut WriteTx,
        step: &Step<'_>,
        observations: &[Observation],
        inputs: RuleInputs<'_>,
        changes: &mut Changes,
    ) -> Result<(), StoreError> {
        let (agent_id, rule, at_ms) = (step.agent_id, step.rule, step.snapshot.at_ms);
        let (open, conditions) = (inputs.open, inputs.conditions);
        for o in observations {
            let ticket = open.iter().find(|t| t.subject == o.subject);
            let previous = conditions.iter().find(|c| c.subject == o.subject);
            match o.verdict {
                Verdict::Holds => {
                    let c = tx
                        .condition_holds(agent_id, &rule.id, previous, &o.subject, at_ms)
                        .await?;
                    let due = at_ms - c.since_ms >= ms(rule.hold_for)
                        && c.holds_count >= i64::from(rule.kind.consecutive());
                    match ticket {
                        Some(t) => self.recur(tx, step, t, o).await?,
                        None if due && !step.silenced => {
                            self.open_or_reopen(tx, step, o, changes).await?;
                        }
                        None => {}
                    }
                }
                Verdict::Clear => {
                    if previous.is_some() {
                        tx.condition_clears(agent_id, &rule.id, &o.subject).await?;
                    }
                    if let Some(t) = ticket {
                        match lifecycle::on_clear(t, at_ms, self.flap_window) {
                            ClearDecision::Wait { since_ms } => {
                                tx.note_value(t.id, o.value, Some(since_ms)).await?;
                                // Clear, though held by its own flap window: its outage
                                // need not wait for it.
                                crate::correlation::after_clear(tx, t, at_ms).await?;
                            }
                            ClearDecision::Resolve => {
                                tx.resolve_ticket(t.id, at_ms, o.value, "condition cleared")
                                    .await?;
                                crate::correlation::after_clear(tx, t, at_ms).await?;
                                changes.resolved += 1;
                            }
                        }
                    }
                }
                Verdict::Between => {
                    if let Some(t) = ticket {
                        tx.note_value(t.id, o.value, t.clear_since_ms).await?;
                    }
                }
            }
        }
        // A subject no longer reported (an unplugged disk, a removed check) cannot clear by
        // itself: resolve its ticket and forget its condition.
        for t in open
            .iter()
            .filter(|t| !observations.iter().any(|o| o.subject == t.subject))
        {
            tx.resolve_ticket(t.id, at_ms, t.last_value, "no longer reported")
                .await?;
            crate::correlation::after_clear(tx, t, at_ms).await?;
            changes.resolved += 1;
        }
        for c in conditions
            .iter()
            .filter(|c| !observations.iter().any(|o| o.subject == c.subject))
        {
            tx.condition_clears(agent_id, &rule.id, &c.subject).await?;
        }
        Ok(())
    }

    /// The condition holds again on an open ticket: one more occurrence, its current title,
    /// and a raise of priority (with the due times and title of the new priority) when due.
    async fn recur(
        &self,
        tx: &mut WriteTx,
        step: &Step<'_>,
        t: &Ticket,
        o: &Observation,
    ) -> Result<(), StoreError> {
        let at_ms = step.snapshot.at_ms;
        let title = step
            .rule
            .title_for(&step.snapshot.hostname, &o.subject, o.value);
        tx.bump_ticket(t.id, at_ms, o.value, &title).await?;
        if let Some(p) = o.raised_priority
            && let Some(raise) = lifecycle::raise(t, p, at_ms, &self.sla)
        {
            tx.raise_priority(t.id, &raise, &title, at_ms).await?;
        }
        Ok(())
    }

    /// Opens a ticket for a condition that became due, or reopens its resolved one within the
    /// reopen window. Both go through correlation first, so a second storm on the same check
    /// becomes an outage again rather than hundreds of reopened host tickets.
    async fn open_or_reopen(
        &self,
        tx: &mut WriteTx,
        step: &Step<'_>,
        o: &Observation,
        changes: &mut Changes,
    ) -> Result<(), StoreError> {
        let (agent_id, rule, at_ms) = (step.agent_id, step.rule, step.snapshot.at_ms);
        let key = dedupe_key(agent_id, &rule.id, &o.subject);
        let reopen = match tx.last_resolved(&key).await? {
            Some((id, resolved_at)) => match lifecycle::recurrence(
                Some(resolved_at),
                at_ms,
                self.reopen_window,
                self.flap_window,
            ) {
                Recurrence::Reopen { flapping } => Some((id, flapping)),
                Recurrence::New => None,
            },
            None => None,
        };
        let priority = o
            .raised_priority
            .map_or(rule.priority, |p| p.min(rule.priority));
        let title = rule.title_for(&step.snapshot.hostname, &o.subject, o.value);
        let (response_due_ms, resolve_due_ms) = self.sla.due(at_ms, priority);
        let new = NewTicket {
            agent_id,
            rule_id: &rule.id,
            subject: &o.subject,
            priority,
            title: &title,
            at_ms,
            value: o.value,
            response_due_ms,
            resolve_due_ms,
            kb: &rule.kb,
        };
        // Decide first, so an outage opened now suppresses only the tickets before this one.
        let placement = crate::correlation::place(tx, &self.correlation, &new, &o.cause).await?;
        let id = match reopen {
            Some((id, flapping)) => {
                tx.reopen_ticket(
                    id,
                    at_ms,
                    o.value,
                    &self.sla,
                    "the condition recurred within the reopen window",
                )
                .await?;
                if flapping {
                    tx.mark_flapping(id, at_ms).await?;
                }
                changes.reopened += 1;
                id
            }
            None => {
                changes.opened += 1;
                tx.open_ticket(&new).await?
            }
        };
        if !o.cause.is_empty() || reopen.is_some() {
            tx.set_cause(id, &o.cause).await?;
        }
        if let Placement::Under(outage) = placement {
            crate::correlation::join(tx, &self.correlation, &self.sla, id, outage, at_ms).await?;
        }
        Ok(())
    }
}

/// The disk-full forecast of every mount in the snapshot, from the last day of samples.
async fn forecast(
    tx: &mut WriteTx,
    agent_id: &str,
    snapshot: &Snapshot,
    horizon_hours: f64,
) -> Result<Vec<Observation>, StoreError> {
    let mut samples = tx
        .disk_samples_of(agent_id, snapshot.at_ms - 86_400_000)
        .await?;
    let mut out = Vec::with_capacity(snapshot.filesystems.len());
    for fs in &snapshot.filesystems {
        let mut points: Vec<(i64, u64)> = samples
            .remove(&fs.mount_point)
            .unwrap_or_default()
            .iter()
            .map(|s| (s.at_ms, s.used_bytes))
            .collect();
        if points.last().is_none_or(|(t, _)| *t < snapshot.at_ms) {
            points.push((snapshot.at_ms, fs.used_bytes));
        }
        let hours = crate::rules::forecast::hours_to_full(&points, fs.available_bytes);
        let verdict = match hours {
            Some(h) if h <= horizon_hours => Verdict::Holds,
            Some(h) if h <= horizon_hours * 1.5 => Verdict::Between,
            _ => Verdict::Clear,
        };
        out.push(Observation {
            subject: fs.mount_point.clone(),
            verdict,
            value: hours.unwrap_or(f64::INFINITY).min(1e9),
            raised_priority: None,
            cause: String::new(),
        });
    }
    Ok(out)
}
