//! Firstline collector library: everything `firstline-collector` does, so tests drive the same
//! code as the binary. See docs/ARCHITECTURE.md for the map.

pub mod cli;
pub mod clock;
pub mod config;
pub mod correlation;
pub mod duty;
pub mod engine;
pub mod facts;
pub mod feeds;
pub mod grpc;
pub mod helpdesk;
pub mod ingest;
pub mod kb;
pub mod labels;
pub mod pki;
pub mod rate_limits;
pub mod report;
pub mod retention;
pub mod rules;
pub mod server;
pub mod service;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod tickets;
pub mod tokens;
pub mod web;

#[cfg(test)]
mod test_fixtures;
#[cfg(test)]
mod tidy;
