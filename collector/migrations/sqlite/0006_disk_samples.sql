-- Recent disk usage samples per mount (at most one per 10 minutes, kept for 7 days) for the
-- disk-full forecast rule. Keep in step with ../postgres/0006_disk_samples.sql.
CREATE TABLE disk_samples (
    agent_id         TEXT NOT NULL REFERENCES agents (agent_id),
    mount_point      TEXT NOT NULL,
    at_ms            INTEGER NOT NULL,
    used_bytes       INTEGER NOT NULL,
    available_bytes  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, mount_point, at_ms)
);
