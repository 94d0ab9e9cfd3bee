-- Which machine and boot an agent's newest snapshot came from, and the last time two of them
-- were seen using one agent identity, with the boot that was the second one
-- (collector/src/ingest/instance.rs). Keep in step with
-- ../sqlite/0016_instances.sql.
ALTER TABLE agents ADD COLUMN instance_machine_id TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN instance_boot_id TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN diverged_at_ms BIGINT;
ALTER TABLE agents ADD COLUMN diverged_detail TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN diverged_boot_id TEXT NOT NULL DEFAULT '';
