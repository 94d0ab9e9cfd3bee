-- Alert feeds (collector/src/feeds/): how far each feed has read the event log, and the
-- deliveries a webhook still owes (pending, with its next attempt) or gave up on (dead).
-- Keep in step with ../sqlite/0011_feeds.sql.
CREATE TABLE feed_cursors (
    feed TEXT PRIMARY KEY,
    cursor BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE feed_deliveries (
    feed TEXT NOT NULL,
    event_cursor BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at_ms BIGINT NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    created_at_ms BIGINT NOT NULL,
    failed_at_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (feed, event_cursor)
);
CREATE INDEX feed_deliveries_due ON feed_deliveries (state, next_at_ms);
