-- Flapping: a ticket whose condition toggles faster than the flap window stays open, marked,
-- and resolves only once the condition has stayed clear for the whole window.
-- Keep in step with ../sqlite/0005_flapping.sql.
ALTER TABLE tickets ADD COLUMN flapping BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN clear_since_ms BIGINT;
