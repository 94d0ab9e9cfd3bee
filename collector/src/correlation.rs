//! Outage correlation: when the same rule fails for the same subject (one DNS name, one
//! target) or the same cause (one DNS resolver, one gateway address) on many hosts within a
//! short window, one outage ticket opens on the pseudo host `fleet` with the hosts linked, and
//! the per-host tickets are suppressed under it. A reopened host ticket goes through the same
//! decision as a new one, and the window counts from each ticket's latest (re)opening. The
//! outage's title carries its host count and its priority rises with its reach. When no linked
//! host's condition still holds (a flapping host ticket waiting out its own flap window counts
//! as clear), the outage resolves with the host tickets still under it. The SQL is in
//! `store/outages.rs`.
//!
//! Concurrent writers: the decision (is there an outage, how many hosts count towards one) and
//! the writes that follow must be atomic, or two reports both open "the first" outage, or a
//! host ticket committed beside the outage is never linked. On PostgreSQL `place` first takes
//! the event-log advisory lock (`store/events.rs`), which every ticket writer takes before its
//! first event and holds until commit; its reads then see every committed ticket and no other
//! writer can change tickets before this transaction ends. A lock per correlation key would
//! queue fewer writers, but it would be taken after the event-log lock in some transactions
//! and before it in others (a batch holds several snapshots), which can deadlock. On SQLite
//! writers are serialised by `BEGIN IMMEDIATE` already.

use std::time::Duration;

use crate::store::{FLEET, NewTicket, StoreError, WriteTx};
use crate::tickets::Ticket;
use crate::tickets::lifecycle::{self, Sla, ms};

/// When host conditions become one outage.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    /// Rules whose failures are correlated across hosts.
    pub rules: Vec<String>,
    /// An outage needs at least this many hosts...
    pub min_hosts: u32,
    /// ...or this fraction of the hosts that reported recently (whichever is smaller, but
    /// never fewer than two hosts).
    pub min_fraction: f64,
    /// Host tickets (re)opened within this window count towards an outage.
    pub window: Duration,
    /// `(hosts, priority)`: an outage reaching this many hosts is raised to this priority
    /// (never lowered). It opens at the rule's priority.
    pub priority_by_hosts: Vec<(u32, u32)>,
}

impl Default for Correlation {
    fn default() -> Self {
        Self {
            rules: vec!["connectivity.failure".into()],
            min_hosts: 5,
            min_fraction: 0.2,
            window: Duration::from_secs(600),
            priority_by_hosts: vec![(50, 1)],
        }
    }
}

impl Correlation {
    /// How many failing hosts make an outage when `active_hosts` reported recently.
    pub fn threshold(&self, active_hosts: i64) -> i64 {
        let by_fraction = (active_hosts as f64 * self.min_fraction).ceil() as i64;
        i64::from(self.min_hosts).min(by_fraction).max(2)
    }

    /// The most urgent priority an outage on `hosts` hosts calls for, if any.
    pub fn priority_for(&self, hosts: i64) -> Option<u32> {
        self.priority_by_hosts
            .iter()
            .filter(|(n, _)| i64::from(*n) <= hosts)
            .map(|(_, p)| *p)
            .min()
    }
}

/// What correlation decided for a host's new or reopened ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// No outage: an ordinary host ticket.
    Host,
    /// The host ticket goes under this outage ticket (see [`join`]).
    Under(i64),
}

/// The correlation key of a host failure: its shared cause when it has one, else its subject.
pub fn key<'a>(subject: &'a str, cause: &'a str) -> &'a str {
    if cause.is_empty() { subject } else { cause }
}

/// The title of an outage on `hosts` hosts.
pub fn outage_title(key: &str, hosts: i64) -> String {
    let hosts = if hosts == 1 {
        "1 host".to_owned()
    } else {
        format!("{hosts} hosts")
    };
    if let Some(resolver) = key.strip_prefix("resolver ") {
        format!("DNS resolver {resolver} not answering on {hosts}")
    } else if let Some(gateway) = key.strip_prefix("gateway ") {
        format!("Gateway {gateway} not answering on {hosts}")
    } else {
        format!("Outage: {key} failing on {hosts}")
    }
}

/// Decides where a host's ticket goes before it is opened or reopened, opening the outage
/// (and suppressing the host tickets already open for it) when this host makes the threshold.
/// `ticket` describes the host ticket; `cause` is its shared cause ("" when none).
pub async fn place(
    tx: &mut WriteTx,
    c: &Correlation,
    ticket: &NewTicket<'_>,
    cause: &str,
) -> Result<Placement, StoreError> {
    if !c.rules.iter().any(|r| r == ticket.rule_id) {
        return Ok(Placement::Host);
    }
    tx.lock_event_log().await?;
    let key = key(ticket.subject, cause);
    if let Some(outage) = tx.open_outage(ticket.rule_id, key).await? {
        return Ok(Placement::Under(outage));
    }
    let others = tx
        .recent_host_tickets(
            ticket.rule_id,
            ticket.subject,
            cause,
            ticket.at_ms - ms(c.window),
        )
        .await?;
    let mut hosts: Vec<&str> = others.iter().map(|(_, a)| a.as_str()).collect();
    hosts.push(ticket.agent_id);
    hosts.sort_unstable();
    hosts.dedup();
    let active = tx.active_hosts(ticket.at_ms - 3_600_000).await?;
    if i64::try_from(hosts.len()).unwrap_or(i64::MAX) < c.threshold(active) {
        return Ok(Placement::Host);
    }
    let title = outage_title(key, i64::try_from(hosts.len()).unwrap_or(i64::MAX));
    let outage = tx
        .open_ticket(&NewTicket {
            agent_id: FLEET,
            subject: key,
            title: &title,
            ..*ticket
        })
        .await?;
    for (id, _) in others {
        tx.suppress(id, outage, ticket.at_ms).await?;
    }
    Ok(Placement::Under(outage))
}

/// Puts an opened (or reopened) host ticket under its outage, and brings the outage's title
/// (its host count) and priority (its reach) up to date.
pub async fn join(
    tx: &mut WriteTx,
    c: &Correlation,
    sla: &Sla,
    id: i64,
    outage: i64,
    at_ms: i64,
) -> Result<(), StoreError> {
    tx.suppress(id, outage, at_ms).await?;
    let hosts = tx.outage_hosts(outage).await?;
    let ticket = tx.ticket(outage).await?;
    let title = outage_title(&ticket.subject, hosts);
    match c
        .priority_for(hosts)
        .and_then(|p| lifecycle::raise(&ticket, p, at_ms, sla))
    {
        Some(raise) => tx.raise_priority(outage, &raise, &title, at_ms).await,
        None if title != ticket.title => tx.set_title(outage, &title).await,
        None => Ok(()),
    }
}

/// After a host ticket resolved or went clear (a flapping one waits out its flap window):
/// when no host under its outage still fails, resolves the outage and the host tickets still
/// under it, whatever their own flap hold.
pub async fn after_clear(tx: &mut WriteTx, ticket: &Ticket, at_ms: i64) -> Result<(), StoreError> {
    let Some(outage) = ticket.parent_id else {
        return Ok(());
    };
    if tx.failing_children(outage).await? > 0 {
        return Ok(());
    }
    tx.resolve_ticket(outage, at_ms, 0.0, "every linked host recovered")
        .await?;
    for id in tx.suppressed_children(outage).await? {
        let child = tx.ticket(id).await?;
        tx.resolve_ticket(
            id,
            at_ms,
            child.last_value,
            "condition clear and its outage resolved",
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_the_smaller_of_count_and_fraction_but_at_least_two() {
        let c = Correlation::default();
        assert_eq!(c.threshold(1000), 5);
        assert_eq!(c.threshold(10), 2);
        assert_eq!(c.threshold(20), 4);
        assert_eq!(c.threshold(1), 2);
    }

    #[test]
    fn outage_titles_name_the_cause_and_count_hosts() {
        let cases = [
            (
                "dns example.org",
                37,
                "Outage: dns example.org failing on 37 hosts",
            ),
            (
                "resolver 10.0.0.53",
                12,
                "DNS resolver 10.0.0.53 not answering on 12 hosts",
            ),
            (
                "gateway 10.0.0.1",
                1,
                "Gateway 10.0.0.1 not answering on 1 host",
            ),
            ("gateway", 5, "Outage: gateway failing on 5 hosts"),
        ];
        for (key, hosts, title) in cases {
            assert_eq!(outage_title(key, hosts), title);
        }
    }

    #[test]
    fn priority_rises_with_reach() {
        let c = Correlation {
            priority_by_hosts: vec![(20, 2), (50, 1)],
            ..Correlation::default()
        };
        assert_eq!(c.priority_for(5), None);
        assert_eq!(c.priority_for(20), Some(2));
        assert_eq!(c.priority_for(500), Some(1));
    }
}
