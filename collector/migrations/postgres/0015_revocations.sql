-- Revocations: the collector remembers identities and asks only whether anything was revoked
-- since (a count and the latest time over this index). Keep in step with ../sqlite/0015_revocations.sql.
CREATE INDEX certificates_revoked ON certificates (revoked_at_ms) WHERE revoked_at_ms IS NOT NULL;
