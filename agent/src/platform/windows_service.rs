//! `firstline-agent service`: the agent as a Windows service, started by the Service Control
//! Manager (the MSI's ServiceInstall registers it with this subcommand). It logs to a rotated
//! file under `%ProgramData%\Firstline\logs`, runs the same `run` as every other OS, and turns
//! Stop and Shutdown into the cancellation SIGTERM triggers elsewhere, reporting stop-pending
//! with a wait hint of the grace time. The decisions are in `service` (tested everywhere);
//! this file only maps them onto the `windows-service` crate.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use tokio_util::sync::CancellationToken;
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_dispatcher;

use super::service::{Control, Reply, SERVICE_NAME, STOP_GRACE, State, Status, on_control};

/// What the service runs: `main` passes `cli::run` of `run` (this module stays below `cli`).
pub type Agent =
    Box<dyn FnOnce(CancellationToken) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>>>> + Send>;

/// The agent to run, handed from `main` to the SCM's thread.
static AGENT: Mutex<Option<Agent>> = Mutex::new(None);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot open the log folder {dir}")]
    Log { dir: String, source: std::io::Error },
    #[error("cannot connect to the Service Control Manager (run this only as a service)")]
    Dispatcher(#[source] windows_service::Error),
}

/// Starts logging and hands the process to the SCM, which runs `agent`; returns when the
/// service has stopped.
pub fn run(agent: Agent) -> Result<(), ServiceError> {
    let dir = super::paths::Defaults::here().log_dir;
    super::logfile::init(&dir).map_err(|source| ServiceError::Log {
        dir: dir.display().to_string(),
        source,
    })?;
    *AGENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(agent);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).map_err(ServiceError::Dispatcher)
}

/// The entry point the SCM calls on its own thread. The service's arguments are not used:
/// the command line registered by the MSI carries everything.
extern "system" fn ffi_service_main(_argc: u32, _argv: *mut *mut u16) {
    if let Err(error) = serve() {
        tracing::error!(%error, "the service failed");
    }
}

fn serve() -> windows_service::Result<()> {
    let shutdown = CancellationToken::new();
    let handle = Arc::new(OnceLock::new());
    let (stop, status_handle) = (shutdown.clone(), handle.clone());
    let handler = move |control: ServiceControl| {
        let mapped = match control {
            ServiceControl::Stop => Control::Stop,
            ServiceControl::Shutdown => Control::Shutdown,
            ServiceControl::Interrogate => Control::Interrogate,
            _ => Control::Other,
        };
        match on_control(mapped) {
            Reply::Stop => {
                tracing::info!(control = ?mapped, "stop requested by the service manager");
                if let Some(h) = status_handle.get() {
                    report(h, Status::stop_pending());
                }
                stop.cancel();
                ServiceControlHandlerResult::NoError
            }
            Reply::Ok => ServiceControlHandlerResult::NoError,
            Reply::NotImplemented => ServiceControlHandlerResult::NotImplemented,
        }
    };
    let status_handle = service_control_handler::register(SERVICE_NAME, handler)?;
    let _ = handle.set(status_handle);
    report(&status_handle, Status::running());
    let result = run_agent(shutdown.clone());
    report(
        &status_handle,
        Status::stopped(result, shutdown.is_cancelled()),
    );
    Ok(())
}

/// Runs `run` until `shutdown`, giving it the grace time to finish once cancelled.
fn run_agent(shutdown: CancellationToken) -> Result<u8, ()> {
    let Some(agent) = AGENT.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return Err(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
        .map_err(|error| tracing::error!(%error, "cannot start the runtime"))?;
    runtime.block_on(async {
        let mut agent = agent(shutdown.clone());
        let ended = tokio::select! {
            ended = &mut agent => ended,
            () = shutdown.cancelled() => {
                match tokio::time::timeout(STOP_GRACE, &mut agent).await {
                    Ok(ended) => ended,
                    Err(_) => {
                        tracing::warn!(grace = ?STOP_GRACE, "the agent did not stop within the grace time");
                        return Ok(0);
                    }
                }
            }
        };
        ended.map_err(|error| {
            tracing::error!(error = %firstline_support::errors::chain(error.as_ref()), "the agent stopped");
        })
    })
}

/// Sends `status` to the SCM; a failure is only logged (nothing else can be done).
fn report(handle: &service_control_handler::ServiceStatusHandle, status: Status) {
    let state = match status.state {
        State::Running => ServiceState::Running,
        State::StopPending => ServiceState::StopPending,
        State::Stopped => ServiceState::Stopped,
    };
    let raw = ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: if status.accepts_stop {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: if status.exit_code == 0 {
            ServiceExitCode::Win32(0)
        } else {
            ServiceExitCode::ServiceSpecific(status.exit_code)
        },
        checkpoint: u32::from(status.state == State::StopPending),
        wait_hint: status.wait_hint,
        process_id: None,
    };
    if let Err(error) = handle.set_service_status(raw) {
        tracing::warn!(%error, state = ?status.state, "cannot report the service status");
    }
}
