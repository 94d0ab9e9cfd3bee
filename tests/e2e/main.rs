//! The end-to-end test binary (one binary, one link): real collector and agent processes, real
//! filesystems, a real PostgreSQL server, gRPC over loopback with mutual TLS.

mod agent_behaviour;
mod agent_cli;
mod agent_cli_checks;
mod antivirus;
mod bad_input;
mod certificates;
mod cli;
mod clones;
mod collector_cli;
mod collector_core;
mod dashboard;
mod dashboard_auth;
mod disk_tickets;
mod enroll_at_start;
mod feeds_alertmanager;
mod feeds_grpc;
mod feeds_nats;
mod feeds_watch;
mod feeds_webhooks;
mod helpdesk_email;
mod helpdesk_rt;
mod helpdesk_templates;
mod hostile_connections;
mod http_api;
mod live_channel;
mod metrics;
mod outage;
mod outage_storms;
mod patches;
mod probes;
mod properties;
mod rate_limits;
mod replicas;
mod scenarios;
mod store;
