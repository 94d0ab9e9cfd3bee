-- Flapping: a ticket whose condition toggles faster than the flap window stays open, marked,
-- and resolves only once the condition has stayed clear for the whole window.
-- Keep in step with ../postgres/0005_flapping.sql.
ALTER TABLE tickets ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN clear_since_ms INTEGER;
