-- Firstline schema v1 (SQLite dialect). Keep in step with ../postgres/0001_init.sql: the same
-- tables, columns and indexes; only the type names and identity columns differ.
CREATE TABLE enrollment_tokens (
    token_hash     TEXT PRIMARY KEY,
    label          TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL,
    uses_total     INTEGER NOT NULL,
    uses_left      INTEGER NOT NULL
);

CREATE TABLE agents (
    agent_id           TEXT PRIMARY KEY,
    hostname           TEXT NOT NULL,
    os                 TEXT NOT NULL DEFAULT '',
    agent_version      TEXT NOT NULL DEFAULT '',
    enrolled_at_ms     INTEGER NOT NULL,
    last_seen_at_ms    INTEGER NOT NULL DEFAULT 0,
    last_seq           INTEGER NOT NULL DEFAULT 0,
    snapshots_stored   INTEGER NOT NULL DEFAULT 0,
    dropped_snapshots  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE certificates (
    fingerprint    TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    subject        TEXT NOT NULL,
    issued_at_ms   INTEGER NOT NULL,
    not_after_ms   INTEGER NOT NULL,
    revoked_at_ms  INTEGER
);
CREATE INDEX certificates_subject ON certificates (subject);

CREATE TABLE snapshots (
    agent_id        TEXT NOT NULL REFERENCES agents (agent_id),
    seq             INTEGER NOT NULL,
    taken_at_ms     INTEGER NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    trigger_kind    TEXT NOT NULL,
    payload         BLOB NOT NULL,
    PRIMARY KEY (agent_id, seq)
);

CREATE TABLE filesystems (
    agent_id         TEXT NOT NULL REFERENCES agents (agent_id),
    mount_point      TEXT NOT NULL,
    device           TEXT NOT NULL,
    fs_type          TEXT NOT NULL,
    total_bytes      INTEGER NOT NULL,
    used_bytes       INTEGER NOT NULL,
    available_bytes  INTEGER NOT NULL,
    total_inodes     INTEGER NOT NULL,
    used_inodes      INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (agent_id, mount_point)
);

CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key       TEXT NOT NULL,
    agent_id         TEXT NOT NULL REFERENCES agents (agent_id),
    rule_id          TEXT NOT NULL,
    subject          TEXT NOT NULL,
    state            TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    title            TEXT NOT NULL,
    occurrences      INTEGER NOT NULL,
    opened_at_ms     INTEGER NOT NULL,
    last_seen_at_ms  INTEGER NOT NULL,
    resolved_at_ms   INTEGER,
    last_value       REAL NOT NULL
);
-- The dedupe invariant: at most one ticket per key that is not resolved or closed.
CREATE UNIQUE INDEX tickets_one_open_per_key ON tickets (dedupe_key)
    WHERE state IN ('new', 'acknowledged');
CREATE INDEX tickets_agent_state ON tickets (agent_id, state);

-- Append-only log of ticket changes; the cursor only grows.
CREATE TABLE ticket_events (
    cursor     INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    at_ms      INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL
);
