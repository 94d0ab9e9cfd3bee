-- E-mail notifications (collector/src/helpdesk/email.rs): one row per event and route that
-- is to be mailed, due now, at the end of quiet hours, or with its route's next digest.
-- Taking events into the outbox moves the mailer's cursor in the same transaction.
-- Keep in step with ../sqlite/0019_email_outbox.sql.
CREATE TABLE email_outbox (
    id BIGSERIAL PRIMARY KEY,
    route TEXT NOT NULL,
    ticket_id BIGINT NOT NULL,
    event_cursor BIGINT NOT NULL,
    digest BIGINT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX email_outbox_due ON email_outbox (due_at_ms);
