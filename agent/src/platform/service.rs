//! The Windows service's decisions, as plain data so they are tested on every OS: what each
//! control request from the Service Control Manager does, which status to report when, and how
//! the agent's result becomes the service's exit code (a non-zero code is what makes the
//! SCM apply the restart-on-failure actions the MSI sets). `windows_service` maps these onto
//! the Windows API.

use std::time::Duration;

/// The service's name, as the MSI's ServiceInstall registers it.
pub const SERVICE_NAME: &str = "FirstlineAgent";

/// How long the agent gets to stop (tasks cancelled, the spool's files closed) before the
/// service reports itself stopped anyway; also the wait hint given to the SCM.
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// A control request, as far as the agent cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Stop,
    /// The machine is shutting down.
    Shutdown,
    Interrogate,
    Other,
}

/// What the handler does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Report stop-pending, then cancel the agent (as SIGTERM does elsewhere).
    Stop,
    /// Acknowledge; nothing to do.
    Ok,
    NotImplemented,
}

/// The service states the agent reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    StopPending,
    Stopped,
}

/// One status report to the SCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// Whether Stop and Shutdown are accepted (only while running).
    pub accepts_stop: bool,
    pub wait_hint: Duration,
    /// 0: success; otherwise the service-specific exit code.
    pub exit_code: u32,
}

/// The reply to `control`.
pub fn on_control(control: Control) -> Reply {
    match control {
        Control::Stop | Control::Shutdown => Reply::Stop,
        Control::Interrogate => Reply::Ok,
        Control::Other => Reply::NotImplemented,
    }
}

impl Status {
    pub fn running() -> Self {
        Self {
            state: State::Running,
            accepts_stop: true,
            wait_hint: Duration::ZERO,
            exit_code: 0,
        }
    }

    pub fn stop_pending() -> Self {
        Self {
            state: State::StopPending,
            accepts_stop: false,
            wait_hint: STOP_GRACE,
            exit_code: 0,
        }
    }

    /// Stopped after the agent returned `result` (its exit code, or an error). A stop that
    /// was asked for is a success even when the agent ended with an error while stopping.
    pub fn stopped(result: Result<u8, ()>, stop_requested: bool) -> Self {
        let exit_code = match result {
            Ok(code) => u32::from(code),
            Err(()) if stop_requested => 0,
            Err(()) => 1,
        };
        Self {
            state: State::Stopped,
            accepts_stop: false,
            wait_hint: Duration::ZERO,
            exit_code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_shutdown_stop_the_agent() {
        let cases = [
            (Control::Stop, Reply::Stop),
            (Control::Shutdown, Reply::Stop),
            (Control::Interrogate, Reply::Ok),
            (Control::Other, Reply::NotImplemented),
        ];
        for (control, reply) in cases {
            assert_eq!(on_control(control), reply, "{control:?}");
        }
        assert_eq!(Status::stop_pending().wait_hint, STOP_GRACE);
        assert!(Status::running().accepts_stop && !Status::stop_pending().accepts_stop);
    }

    #[test]
    fn an_unasked_end_is_a_failure_the_scm_restarts() {
        let cases = [
            (Ok(0), false, 0),
            (Ok(0), true, 0),
            (Err(()), false, 1),
            (Err(()), true, 0),
            (Ok(3), false, 3),
        ];
        for (result, asked, code) in cases {
            let status = Status::stopped(result, asked);
            assert_eq!(status.state, State::Stopped);
            assert_eq!(status.exit_code, code, "{result:?} asked={asked}");
        }
    }
}
