//! Outage correlation: when the same rule fails for the same subject (one DNS name, one
//! target) on many hosts within a short window, one outage ticket opens on the pseudo host
//! `fleet` with the hosts linked, and the per-host tickets are suppressed under it. When the
//! last linked host recovers, the outage resolves. The SQL is in `store/outages.rs`.

use std::time::Duration;

use crate::store::{FLEET, NewTicket, StoreError, WriteTx};
use crate::tickets::Ticket;
use crate::tickets::lifecycle::ms;

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
    /// Host tickets opened within this window count towards an outage.
    pub window: Duration,
}

impl Default for Correlation {
    fn default() -> Self {
        Self {
            rules: vec!["connectivity.failure".into()],
            min_hosts: 5,
            min_fraction: 0.2,
            window: Duration::from_secs(600),
        }
    }
}

impl Correlation {
    /// How many failing hosts make an outage when `active_hosts` reported recently.
    pub fn threshold(&self, active_hosts: i64) -> i64 {
        let by_fraction = (active_hosts as f64 * self.min_fraction).ceil() as i64;
        i64::from(self.min_hosts).min(by_fraction).max(2)
    }
}

/// What correlation decided for a host's new ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// No outage: open an ordinary host ticket.
    Host,
    /// Open the host ticket suppressed under this outage ticket.
    Under(i64),
}

/// Decides where a host's new ticket goes, opening the outage (and suppressing the host
/// tickets already open for it) when this host makes the threshold.
pub async fn place(
    tx: &mut WriteTx,
    c: &Correlation,
    ticket: &NewTicket<'_>,
    outage_title: &str,
) -> Result<Placement, StoreError> {
    if !c.rules.iter().any(|r| r == ticket.rule_id) {
        return Ok(Placement::Host);
    }
    if let Some(outage) = tx.open_outage(ticket.rule_id, ticket.subject).await? {
        return Ok(Placement::Under(outage));
    }
    let others = tx
        .recent_host_tickets(ticket.rule_id, ticket.subject, ticket.at_ms - ms(c.window))
        .await?;
    let active = tx.active_hosts(ticket.at_ms - 3_600_000).await?;
    if i64::try_from(others.len()).unwrap_or(i64::MAX) + 1 < c.threshold(active) {
        return Ok(Placement::Host);
    }
    let outage = tx
        .open_ticket(&NewTicket {
            agent_id: FLEET,
            title: outage_title,
            ..*ticket
        })
        .await?;
    for id in others {
        tx.suppress(id, outage, ticket.at_ms).await?;
    }
    Ok(Placement::Under(outage))
}

/// After a host ticket resolved: resolves its outage when no linked host is still failing.
pub async fn after_resolve(
    tx: &mut WriteTx,
    ticket: &Ticket,
    at_ms: i64,
) -> Result<(), StoreError> {
    let Some(outage) = ticket.parent_id else {
        return Ok(());
    };
    if tx.unresolved_children(outage).await? == 0 {
        tx.resolve_ticket(outage, at_ms, 0.0, "every linked host recovered")
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
}
