-- Retention: the scans that prune history find their rows through an index instead of reading
-- whole tables (snapshots by arrival time; a ticket's events, which the event writer also
-- reads for the ticket's latest time). Keep in step with ../sqlite/0009_retention.sql.
CREATE INDEX snapshots_received ON snapshots (received_at_ms);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, at_ms);
CREATE INDEX tickets_state_resolved ON tickets (state, resolved_at_ms);
