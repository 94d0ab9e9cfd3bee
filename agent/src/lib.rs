//! Firstline agent library: everything `firstline-agent` does, so tests drive the same code as
//! the binary. See docs/ARCHITECTURE.md for the map.

pub mod autoenroll;
pub mod backoff;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod diagnose;
pub mod enroll;
pub mod enrollment;
pub mod facts;
pub mod identity;
pub mod platform;
pub mod probe;
pub mod registry;
pub mod renew;
pub mod reporter;
pub mod runner;
pub mod scheduler;
pub mod spool;
pub mod status;
pub mod trigger;
pub mod uplink;
pub mod watch;
pub mod wire;

#[cfg(test)]
mod layering;
