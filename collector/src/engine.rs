//! The rule engine on ingest: every rule reads the snapshot, each observation updates its
//! tracked condition, and a condition that has held long enough (`for`) and often enough
//! (consecutive reports) opens a ticket, counts an occurrence, raises its priority, or, when
//! it clears, resolves it. A recurrence within the reopen window reopens the resolved ticket
//! instead of opening another. All of it runs in the ingest transaction.

use std::time::Duration;

use crate::report::Snapshot;
use crate::rules::{Rule, Verdict};
use crate::store::{NewTicket, StoreError, WriteTx, dedupe_key};

/// Response and resolve times per priority (index 0 is P1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sla {
    pub response: [Duration; 4],
    pub resolve: [Duration; 4],
}

impl Default for Sla {
    fn default() -> Self {
        let m = |minutes: u64| Duration::from_secs(minutes * 60);
        Self {
            response: [m(15), m(60), m(4 * 60), m(24 * 60)],
            resolve: [m(4 * 60), m(8 * 60), m(3 * 24 * 60), m(7 * 24 * 60)],
        }
    }
}

impl Sla {
    fn due(&self, from_ms: i64, priority: u32, resolve: bool) -> i64 {
        let i = usize::try_from(priority.clamp(1, 4) - 1).unwrap_or(3);
        let d = if resolve {
            self.resolve[i]
        } else {
            self.response[i]
        };
        from_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// The rules and the ticket policy ingest applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    pub rules: Vec<Rule>,
    pub sla: Sla,
    pub reopen_window: Duration,
    pub correlation: crate::correlation::Correlation,
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
            correlation: crate::correlation::Correlation::default(),
            flap_window: Duration::from_secs(15 * 60),
        }
    }
}

/// What applying the rules to one snapshot changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub opened: usize,
    pub reopened: usize,
    pub resolved: usize,
}

impl Engine {
    /// The disk usage boundaries agents should report crossings of at once.
    pub fn disk_thresholds(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self
            .rules
            .iter()
            .flat_map(|r| match r.kind {
                crate::rules::RuleKind::DiskUsage {
                    open_percent,
                    clear_percent,
                    critical_percent,
                    ..
                } => {
                    vec![clear_percent, open_percent, critical_percent]
                }
                _ => Vec::new(),
            })
            .filter(|p| (0.0..=100.0).contains(p))
            .collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    }

    /// Applies every rule to a newly stored, newest snapshot of `agent_id`.
    pub async fn apply(
        &self,
        tx: &mut WriteTx,
        agent_id: &str,
        snapshot: &Snapshot,
        at_ms: i64,
    ) -> Result<Changes, StoreError> {
        let mut changes = Changes::default();
        // A report ends any "agent silent" ticket.
        for t in tx.open_tickets(agent_id, crate::sweep::SILENT_RULE).await? {
            tx.resolve_ticket(t.id, at_ms, 0.0, "the agent reported again")
                .await?;
            changes.resolved += 1;
        }
        let silences = tx.active_silences(at_ms).await?;
        let labels = if silences.is_empty() {
            Vec::new()
        } else {
            tx.labels(agent_id).await?
        };
        for rule in &self.rules {
            let observations = match &rule.kind {
                crate::rules::RuleKind::DiskForecast { horizon_hours } => {
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
            let open = tx.open_tickets(agent_id, &rule.id).await?;
            let conditions = tx.conditions(agent_id, &rule.id).await?;
            for o in &observations {
                let ticket = open.iter().find(|t| t.subject == o.subject);
                let previous = conditions.iter().find(|c| c.subject == o.subject);
                match o.verdict {
                    Verdict::Holds => {
                        let c = tx
                            .condition_holds(agent_id, &rule.id, previous, &o.subject, at_ms)
                            .await?;
                        let held_ms = at_ms - c.since_ms;
                        let due = held_ms
                            >= i64::try_from(rule.hold_for.as_millis()).unwrap_or(i64::MAX)
                            && c.holds_count >= i64::from(rule.kind.consecutive());
                        match ticket {
                            Some(t) => {
                                if t.clear_since_ms.is_some() {
                                    tx.set_clear_since(t.id, None).await?;
                                }
                                tx.bump_ticket(t.id, at_ms, o.value).await?;
                                if let Some(p) = o.raised_priority {
                                    tx.raise_priority(t, p, at_ms).await?;
                                }
                            }
                            None if due && !silenced => {
                                self.open_or_reopen(
                                    tx,
                                    agent_id,
                                    rule,
                                    snapshot,
                                    o,
                                    at_ms,
                                    &mut changes,
                                )
                                .await?;
                            }
                            None => {}
                        }
                    }
                    Verdict::Clear => {
                        if previous.is_some() {
                            tx.condition_clears(agent_id, &rule.id, &o.subject).await?;
                        }
                        if let Some(t) = ticket {
                            let flap_ms =
                                i64::try_from(self.flap_window.as_millis()).unwrap_or(i64::MAX);
                            let clear_since = t.clear_since_ms.unwrap_or(at_ms);
                            if t.flapping && at_ms - clear_since < flap_ms {
                                // Flapping: wait for the condition to stay clear.
                                if t.clear_since_ms.is_none() {
                                    tx.set_clear_since(t.id, Some(at_ms)).await?;
                                }
                                tx.note_value(t.id, o.value).await?;
                            } else {
                                tx.resolve_ticket(t.id, at_ms, o.value, "condition cleared")
                                    .await?;
                                crate::correlation::after_resolve(tx, t, at_ms).await?;
                                changes.resolved += 1;
                            }
                        }
                    }
                    Verdict::Between => {
                        if let Some(t) = ticket {
                            tx.note_value(t.id, o.value).await?;
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
                crate::correlation::after_resolve(tx, t, at_ms).await?;
                changes.resolved += 1;
            }
            for c in conditions
                .iter()
                .filter(|c| !observations.iter().any(|o| o.subject == c.subject))
            {
                tx.condition_clears(agent_id, &rule.id, &c.subject).await?;
            }
        }
        Ok(changes)
    }

    #[allow(clippy::too_many_arguments)]
    async fn open_or_reopen(
        &self,
        tx: &mut WriteTx,
        agent_id: &str,
        rule: &Rule,
        snapshot: &Snapshot,
        o: &crate::rules::Observation,
        at_ms: i64,
        changes: &mut Changes,
    ) -> Result<(), StoreError> {
        let window = i64::try_from(self.reopen_window.as_millis()).unwrap_or(i64::MAX);
        let key = dedupe_key(agent_id, &rule.id, &o.subject);
        if let Some(id) = tx
            .recently_resolved(&key, at_ms.saturating_sub(window))
            .await?
        {
            let flap_ms = i64::try_from(self.flap_window.as_millis()).unwrap_or(i64::MAX);
            let quick = tx
                .last_resolved_at(id)
                .await?
                .is_some_and(|r| at_ms - r < flap_ms);
            tx.reopen_ticket(
                id,
                at_ms,
                o.value,
                "",
                "the condition recurred within the reopen window",
            )
            .await?;
            if quick {
                tx.mark_flapping(id, at_ms).await?;
            }
            changes.reopened += 1;
            return Ok(());
        }
        let priority = o
            .raised_priority
            .map_or(rule.priority, |p| p.min(rule.priority));
        let title = rule.title_for(&snapshot.hostname, &o.subject, o.value);
        let new = NewTicket {
            agent_id,
            rule_id: &rule.id,
            subject: &o.subject,
            priority,
            title: &title,
            at_ms,
            value: o.value,
            response_due_ms: self.sla.due(at_ms, priority, false),
            resolve_due_ms: self.sla.due(at_ms, priority, true),
            kb: &rule.kb,
        };
        let outage_title = format!("Outage: {} failing on many hosts", o.subject);
        // Decide first, so an outage opened now suppresses only the tickets before this one.
        let placement =
            crate::correlation::place(tx, &self.correlation, &new, &outage_title).await?;
        let id = tx.open_ticket(&new).await?;
        if let crate::correlation::Placement::Under(outage) = placement {
            tx.suppress(id, outage, at_ms).await?;
        }
        changes.opened += 1;
        Ok(())
    }
}

/// The disk-full forecast of every mount in the snapshot, from the last day of samples.
async fn forecast(
    tx: &mut WriteTx,
    agent_id: &str,
    snapshot: &Snapshot,
    horizon_hours: f64,
) -> Result<Vec<crate::rules::Observation>, StoreError> {
    let mut out = Vec::with_capacity(snapshot.filesystems.len());
    for fs in &snapshot.filesystems {
        let samples = tx
            .disk_samples(agent_id, &fs.mount_point, snapshot.taken_at_ms - 86_400_000)
            .await?;
        let mut points: Vec<(i64, u64)> = samples.iter().map(|s| (s.at_ms, s.used_bytes)).collect();
        if points.last().is_none_or(|(t, _)| *t < snapshot.taken_at_ms) {
            points.push((snapshot.taken_at_ms, fs.used_bytes));
        }
        let hours = crate::rules::forecast::hours_to_full(&points, fs.available_bytes);
        let verdict = match hours {
            Some(h) if h <= horizon_hours => Verdict::Holds,
            Some(h) if h <= horizon_hours * 1.5 => Verdict::Between,
            _ => Verdict::Clear,
        };
        out.push(crate::rules::Observation {
            subject: fs.mount_point.clone(),
            verdict,
            value: hours.unwrap_or(f64::INFINITY).min(1e9),
            raised_priority: None,
        });
    }
    Ok(out)
}
