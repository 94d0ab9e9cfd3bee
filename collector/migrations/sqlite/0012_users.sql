-- Local accounts of the dashboard and the HTTP API (collector/src/service/users.rs): users
-- with a role and an argon2id password hash, their API tokens and their sign-in sessions
-- (both stored only as SHA-256 hashes). Keep in step with ../postgres/0012_users.sql.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'technician', 'admin')),
    password_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    disabled_at_ms INTEGER
);

CREATE TABLE user_tokens (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    label TEXT NOT NULL DEFAULT '',
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX user_tokens_user ON user_tokens (user_name);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    csrf TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_seen_at_ms INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);
