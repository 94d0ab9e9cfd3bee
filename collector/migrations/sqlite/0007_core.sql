-- Spool epochs (the idempotency key becomes agent, epoch, seq), clock skew and duplicate
-- machines on agents, tier-3 escalation, and host facts in the store's own format (JSON).
-- Keep in step with ../postgres/0007_core.sql.
CREATE TABLE snapshots_by_epoch (
    agent_id        TEXT NOT NULL REFERENCES agents (agent_id),
    epoch           INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    taken_at_ms     INTEGER NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    trigger_kind    TEXT NOT NULL,
    payload         BLOB NOT NULL,
    PRIMARY KEY (agent_id, epoch, seq)
);
INSERT INTO snapshots_by_epoch (agent_id, epoch, seq, taken_at_ms, received_at_ms, trigger_kind, payload)
    SELECT agent_id, 0, seq, taken_at_ms, received_at_ms, trigger_kind, payload FROM snapshots;
DROP TABLE snapshots;
ALTER TABLE snapshots_by_epoch RENAME TO snapshots;

ALTER TABLE agents ADD COLUMN spool_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN machine_id TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN clock_skew_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN rejected_snapshots INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN clock_adjusted_snapshots INTEGER NOT NULL DEFAULT 0;
CREATE INDEX agents_machine_id ON agents (machine_id);

ALTER TABLE tickets ADD COLUMN escalated_at_ms INTEGER;
ALTER TABLE tickets ADD COLUMN opened_priority INTEGER NOT NULL DEFAULT 0;
UPDATE tickets SET opened_priority = priority;
CREATE INDEX tickets_state_tier ON tickets (state, tier);

-- Facts were the encoded wire message; they are JSON now and refresh with the next report.
DELETE FROM host_facts;
