-- Help-desk sync (collector/src/helpdesk/): the remote ticket each Firstline ticket has in a
-- help desk (stored with its key before the remote ticket is created, so a retry finds it
-- instead of creating another), and the tickets whose sync is due.
-- Keep in step with ../postgres/0018_helpdesk.sql.
CREATE TABLE helpdesk_links (
    system TEXT NOT NULL,
    ticket_id INTEGER NOT NULL,
    sync_key TEXT NOT NULL,
    remote_id TEXT NOT NULL DEFAULT '',
    synced_cursor INTEGER NOT NULL DEFAULT 0,
    remote_status TEXT NOT NULL DEFAULT '',
    remote_owner TEXT NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT '',
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (system, ticket_id)
);
CREATE INDEX helpdesk_links_remote ON helpdesk_links (system, remote_id);

CREATE TABLE helpdesk_queue (
    system TEXT NOT NULL,
    ticket_id INTEGER NOT NULL,
    due_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (system, ticket_id)
);
CREATE INDEX helpdesk_queue_due ON helpdesk_queue (system, due_at_ms);
