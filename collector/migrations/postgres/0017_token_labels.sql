-- The labels an enrollment token gives every agent enrolled with it (a group such as "lab"),
-- comma-separated like agents.labels. Keep in step with ../sqlite/0017_token_labels.sql.
ALTER TABLE enrollment_tokens ADD COLUMN host_labels TEXT NOT NULL DEFAULT '';
