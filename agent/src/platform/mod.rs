//! What differs between the OSes the agent runs on, kept out of the rest of the agent: default
//! paths, the rotating log file a service writes, and the Windows service. The decisions are
//! pure functions compiled (and tested) on every OS; only the calls into the Windows service
//! API are `cfg(windows)`.

pub mod logfile;
pub mod paths;
pub mod service;
#[cfg(windows)]
pub mod windows_service;
