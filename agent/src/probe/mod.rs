//! Probes collect typed facts about the machine. Parsing of what the OS prints or exposes lives
//! in pure functions compiled on every platform and tested on captured fixtures; the call into
//! the OS is a thin, `cfg`-gated shell.

pub mod disk;
