-- The dashboard's trends: tickets opened and reopened in a window are found from their events
-- by kind and time (a covering index; without it every ticket's events were read, 0.3 s on a
-- store of 50,000 tickets). Keep in step with ../postgres/0013_dashboard.sql.
CREATE INDEX ticket_events_kind_at ON ticket_events (kind, at_ms, ticket_id);
