-- The version of an agent's ticket state: every ticket event of the agent adds one. Ingest's
-- quiet path (collector/src/ingest/quiet.rs) stores a report without reading the agent's
-- tickets only while this, the spool epoch and the last sequence number are what it last
-- saw, so a change made by another replica, the sweep or a person sends the next report
-- through the full rules. Keep in step with ../sqlite/0010_state_version.sql.
ALTER TABLE agents ADD COLUMN state_version BIGINT NOT NULL DEFAULT 0;
