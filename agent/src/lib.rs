//! Firstline agent library: everything `firstline-agent` does, so tests drive the same code as
//! the binary. See docs/ARCHITECTURE.md for the map.

pub mod backoff;
pub mod cli;
pub mod config;
pub mod enroll;
pub mod identity;
pub mod probe;
pub mod runner;
pub mod sampler;
pub mod spool;
pub mod status;
pub mod trigger;
pub mod uplink;
