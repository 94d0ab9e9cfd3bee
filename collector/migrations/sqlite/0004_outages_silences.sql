-- Outage correlation and silences. Outage tickets belong to the pseudo agent 'fleet' (never
-- enrolled, never listed as a host); per-host tickets under an outage are 'suppressed' and
-- point to it. Silences match by host, label or rule until they end.
-- Keep in step with ../postgres/0004_outages_silences.sql.
INSERT INTO agents (agent_id, hostname, enrolled_at_ms) VALUES ('fleet', '(fleet)', 0);
ALTER TABLE tickets ADD COLUMN parent_id INTEGER;
CREATE UNIQUE INDEX tickets_one_suppressed_per_key ON tickets (dedupe_key) WHERE state = 'suppressed';
CREATE INDEX tickets_parent ON tickets (parent_id);

ALTER TABLE agents ADD COLUMN labels TEXT NOT NULL DEFAULT '';

CREATE TABLE silences (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    matcher_kind   TEXT NOT NULL,
    matcher_value  TEXT NOT NULL,
    starts_at_ms   INTEGER NOT NULL,
    ends_at_ms     INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    created_by     TEXT NOT NULL
);
