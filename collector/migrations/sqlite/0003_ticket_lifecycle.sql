-- Ticket lifecycle: SLA due times, escalation tier, assignee, knowledge-base article; and the
-- conditions rules track between reports (`for` durations, consecutive counts).
-- Keep in step with ../postgres/0003_ticket_lifecycle.sql.
ALTER TABLE tickets ADD COLUMN tier INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tickets ADD COLUMN assignee TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN acknowledged_at_ms INTEGER;
ALTER TABLE tickets ADD COLUMN response_due_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN resolve_due_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN kb TEXT NOT NULL DEFAULT '';
CREATE INDEX tickets_dedupe_resolved ON tickets (dedupe_key, resolved_at_ms);

ALTER TABLE ticket_events ADD COLUMN actor TEXT NOT NULL DEFAULT '';

CREATE TABLE conditions (
    agent_id      TEXT NOT NULL REFERENCES agents (agent_id),
    rule_id       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    since_ms      INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    holds_count   INTEGER NOT NULL,
    PRIMARY KEY (agent_id, rule_id, subject)
);
