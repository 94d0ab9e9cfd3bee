//! Probes collect typed facts about the machine. Parsing of what the OS prints or exposes lives
//! in pure functions compiled on every platform and tested on captured fixtures; the call into
//! the OS is a thin, `cfg`-gated shell. Every run has a timeout (see `registry`), external tools
//! run through [`command::run`], which kills them when they overrun, and every file read or
//! other blocking call goes through the probe's [`Offload`], off the async threads.

pub mod antivirus;
pub mod command;
pub mod connectivity;
pub mod disk;
pub mod patch;
pub mod system;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a probe produced no facts this round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    Failed(String),
    /// A tool went over its CPU or memory budget and was stopped; the text names the tool and
    /// what it used.
    #[error("{0}")]
    OverBudget(String),
}

/// A probe's lane on the blocking pool. A probe's file reads and other blocking calls go
/// through it one at a time: a call that hangs (`statvfs` on a dead network mount) keeps the
/// lane busy, and the probe's next runs fail at once instead of piling up blocked threads in
/// the pool the spool's writes need too.
#[derive(Debug, Clone, Default)]
pub struct Offload {
    busy: Arc<AtomicBool>,
}

/// Clears the busy flag when the blocking call ends, returning or panicking; a call that
/// never ends keeps it set.
struct Lane(Arc<AtomicBool>);

impl ProbeError {
    /// The state name reported to the collector.
    pub fn state(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unsupported(_) => "unsupported",
            Self::Failed(_) => "error",
            Self::OverBudget(_) => "over_budget",
        }
    }
}

impl Offload {
    /// Runs `f` on the blocking pool, unless this probe's previous call is still stuck there.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ProbeError> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(ProbeError::Failed(
                "the previous run is still hanging".into(),
            ));
        }
        let lane = Lane(self.busy.clone());
        tokio::task::spawn_blocking(move || {
            let _lane = lane;
            f()
        })
        .await
        .map_err(|e| ProbeError::Failed(format!("probe panicked: {e}")))
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hung_call_blocks_only_its_own_lane() {
        let offload = Offload::default();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let hung = tokio::spawn({
            let offload = offload.clone();
            async move {
                offload
                    .run(move || {
                        let _ = started_tx.send(());
                        let _ = wait.recv();
                    })
                    .await
            }
        });
        started.await.expect("the first call started");
        assert_eq!(
            offload.run(|| 1).await,
            Err(ProbeError::Failed(
                "the previous run is still hanging".into()
            ))
        );
        assert_eq!(Offload::default().run(|| 2).await, Ok(2), "other lanes run");
        release.send(()).expect("release");
        hung.await.expect("joined").expect("ran");
        assert_eq!(offload.run(|| 3).await, Ok(3), "the lane is free again");
    }

    #[tokio::test]
    async fn a_panic_frees_the_lane() {
        let offload = Offload::default();
        assert!(matches!(
            offload.run(|| -> u8 { panic!("boom") }).await,
            Err(ProbeError::Failed(_))
        ));
        assert_eq!(offload.run(|| 4).await, Ok(4));
    }
}
