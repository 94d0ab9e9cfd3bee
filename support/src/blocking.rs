//! Blocking work (file reads, `fsync`, `statvfs`, reading `/proc`) run on tokio's blocking pool,
//! so the async threads that drive timers and sockets never wait on a disk.

/// Runs `f` on the blocking pool and returns its result. A panic in `f` continues here, as if
/// `f` had been called directly.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // The runtime is shutting down and drops this task at its next await: there is no
        // result to return and nobody left to return it to.
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_on_another_thread_and_returns_the_result() {
        let here = std::thread::current().id();
        let (value, there) = run(|| (21 * 2, std::thread::current().id())).await;
        assert_eq!(value, 42);
        assert_ne!(here, there, "the closure ran on the async thread");
    }

    #[tokio::test]
    async fn a_panic_reaches_the_caller() {
        let outcome = tokio::spawn(run(|| -> u8 { panic!("disk on fire") })).await;
        assert!(outcome.is_err_and(|e| e.is_panic()));
    }
}
