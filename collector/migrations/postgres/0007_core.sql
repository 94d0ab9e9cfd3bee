-- Spool epochs (the idempotency key becomes agent, epoch, seq), clock skew and duplicate
-- machines on agents, tier-3 escalation, and host facts in the store's own format (JSON).
-- Keep in step with ../sqlite/0007_core.sql.
ALTER TABLE snapshots ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE snapshots DROP CONSTRAINT snapshots_pkey;
ALTER TABLE snapshots ADD PRIMARY KEY (agent_id, epoch, seq);
ALTER TABLE snapshots ALTER COLUMN epoch DROP DEFAULT;

ALTER TABLE agents ADD COLUMN spool_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN machine_id TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN clock_skew_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN rejected_snapshots BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN clock_adjusted_snapshots BIGINT NOT NULL DEFAULT 0;
CREATE INDEX agents_machine_id ON agents (machine_id);

ALTER TABLE tickets ADD COLUMN escalated_at_ms BIGINT;
ALTER TABLE tickets ADD COLUMN opened_priority BIGINT NOT NULL DEFAULT 0;
UPDATE tickets SET opened_priority = priority;
CREATE INDEX tickets_state_tier ON tickets (state, tier);

-- Facts were the encoded wire message; they are JSON now and refresh with the next report.
DELETE FROM host_facts;
