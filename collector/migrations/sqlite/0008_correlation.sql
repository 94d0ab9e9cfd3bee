-- Correlation and timelines: when a ticket was last opened or reopened (the correlation
-- window counts from it), the shared cause a host ticket's failure points to (a DNS resolver,
-- a gateway; empty when none), and the time an event was observed when the timeline shows it
-- later (an event is never placed before the previous event of its ticket).
-- Keep in step with ../postgres/0008_correlation.sql.
ALTER TABLE tickets ADD COLUMN last_opened_at_ms INTEGER NOT NULL DEFAULT 0;
UPDATE tickets SET last_opened_at_ms = opened_at_ms;
ALTER TABLE tickets ADD COLUMN cause TEXT NOT NULL DEFAULT '';
CREATE INDEX tickets_rule_cause ON tickets (rule_id, cause);
ALTER TABLE ticket_events ADD COLUMN observed_at_ms INTEGER NOT NULL DEFAULT 0;
UPDATE ticket_events SET observed_at_ms = at_ms;
