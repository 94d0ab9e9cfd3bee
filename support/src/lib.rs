//! Pieces both Firstline binaries need in the same shape: loading a TOML config file with errors
//! that name the file and the key, writing private files atomically, error chains printed once,
//! blocking work kept off the async threads, and the process plumbing (logging, signals to
//! cancellation). Kept apart from `proto`, which is only the wire contract.

pub mod blocking;
pub mod config_file;
pub mod errors;
pub mod files;
pub mod process;
