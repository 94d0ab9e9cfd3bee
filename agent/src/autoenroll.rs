//! Enrollment by `run` itself: with no identity yet and enrollment values present (see
//! `enrollment`), the agent enrolls before its uplink starts, while the probes already run and
//! their snapshots wait in the spool. Each failure is logged with the collector, the cause and
//! when the next attempt is; a refusal that will repeat (the token is unknown, expired or used
//! up, or the CA does not match) waits the long step, since only a person can fix it, and a
//! changed config (a new token written into agent.toml) is tried at once. Never gives up.

use std::sync::Arc;
use std::time::Duration;

use firstline_support::blocking;
use firstline_support::errors::chain;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::Config;
use crate::enroll::{EnrollError, EnrollParams, Machine, enroll_machine};
use crate::enrollment::{Enrollment, ValueError};
use crate::identity::Identity;

/// First retry after about this long, doubling up to [`MAX_STEP`].
const FIRST_STEP: Duration = Duration::from_secs(2);
/// Failures that can pass (collector unreachable) are retried at least this often.
const MAX_STEP: Duration = Duration::from_secs(300);
/// Failures that need a person (a refused token) are retried this often.
const REFUSED_STEP: Duration = Duration::from_secs(1800);

/// How a failed attempt is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// It may pass by itself: the collector is down or unreachable, a file not there yet.
    Soon,
    /// It will fail the same way until someone changes the token, the CA or the URL.
    Refused,
}

/// One failed attempt.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error(transparent)]
    Enroll(#[from] EnrollError),
}

/// Enrolls with the values of the current config, retrying until it succeeds (the identity is
/// saved in the state directory) or `shutdown` (`None`). Another `enroll` finishing meanwhile
/// counts as success: its identity is used, never a second one made.
pub async fn until_enrolled(
    mut config: watch::Receiver<Arc<Config>>,
    machine_id: String,
    hostname: String,
    shutdown: CancellationToken,
) -> Option<Identity> {
    let mut backoff = Backoff::new(FIRST_STEP, MAX_STEP, REFUSED_STEP);
    loop {
        let current = config.borrow_and_update().clone();
        let delay = match current.enrollment.ready() {
            None => {
                tracing::warn!(
                    missing = current.enrollment.missing().join(", "),
                    "not enrolled and enrollment values incomplete; waiting for them in \
                     [enrollment] of the config file or the FIRSTLINE_* environment"
                );
                None
            }
            Some(ready) => {
                let url = ready.collector_url.to_owned();
                match attempt(&current, &machine_id, &hostname).await {
                    Ok(identity) => return Some(identity),
                    Err(error) => {
                        let retry = classify(&error);
                        let delay = match retry {
                            Retry::Soon => backoff.next_delay(fastrand::f64()),
                            Retry::Refused => backoff.next_max_delay(fastrand::f64()),
                        };
                        log_failure(&url, &error, retry, delay, backoff.failures());
                        Some(delay)
                    }
                }
            }
        };
        let wait = async {
            match delay {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait => {}
            changed = config.changed() => {
                if changed.is_err() {
                    return None;
                }
                tracing::info!("configuration changed; trying to enroll again now");
                backoff.reset();
            }
            () = shutdown.cancelled() => return None,
        }
    }
}

/// One attempt: reads the token and the CA, enrolls, saves the identity.
async fn attempt(
    config: &Config,
    machine_id: &str,
    hostname: &str,
) -> Result<Identity, AttemptError> {
    let values: Enrollment = config.enrollment.clone();
    let (token, ca_pem, ca_file, url) = blocking::run(move || {
        let ready = values
            .ready()
            .unwrap_or_else(|| unreachable!("checked by the caller"));
        Ok::<_, ValueError>((
            ready.token.read()?,
            ready.ca_file.read_ca()?,
            ready.ca_file.value.clone(),
            ready.collector_url.to_owned(),
        ))
    })
    .await?;
    let params = EnrollParams {
        collector_url: &url,
        token: &token,
        ca_pem: &ca_pem,
        hostname,
        force: false,
    };
    let machine = Machine {
        machine_id: machine_id.to_owned(),
        ca_file: Some(ca_file),
    };
    match enroll_machine(&config.state_dir, &params, &machine).await {
        Ok(enrolled) => {
            if let Some(warning) = &enrolled.warning {
                tracing::warn!(warning, "the collector warns about this enrollment");
            }
            tracing::info!(
                agent_id = enrolled.identity.agent_id,
                collector = url,
                state_dir = %config.state_dir.display(),
                "enrolled"
            );
            Ok(enrolled.identity)
        }
        Err(EnrollError::AlreadyEnrolled { .. }) => {
            let dir = config.state_dir.clone();
            let identity = blocking::run(move || Identity::load(&dir))
                .await
                .map_err(EnrollError::from)?;
            tracing::info!(
                agent_id = identity.agent_id,
                "enrolled meanwhile by another command; using that identity"
            );
            Ok(identity)
        }
        Err(error) => Err(error.into()),
    }
}

/// Whether `error` can pass by itself. The collector answers an unknown token with
/// UNAUTHENTICATED, an expired or used-up one with PERMISSION_DENIED, and a request it cannot
/// accept with INVALID_ARGUMENT: all repeat until someone acts, as does an untrusted server
/// certificate or a malformed URL.
pub fn classify(error: &AttemptError) -> Retry {
    use tonic::Code;
    match error {
        AttemptError::Enroll(EnrollError::Refused(status)) => match status.code() {
            Code::Unauthenticated | Code::PermissionDenied | Code::InvalidArgument => {
                Retry::Refused
            }
            _ => Retry::Soon,
        },
        AttemptError::Enroll(EnrollError::Untrusted { .. } | EnrollError::Url { .. }) => {
            Retry::Refused
        }
        AttemptError::Enroll(_) | AttemptError::Value(_) => Retry::Soon,
    }
}

fn log_failure(url: &str, error: &AttemptError, retry: Retry, delay: Duration, failures: u32) {
    let next_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + delay);
    let retry_in = humantime::format_duration(Duration::from_secs(delay.as_secs().max(1)));
    let code = match error {
        AttemptError::Enroll(EnrollError::Refused(status)) => format!("{:?}", status.code()),
        _ => "none".to_owned(),
    };
    match retry {
        Retry::Refused => tracing::error!(
            collector = url,
            code,
            error = %chain(error),
            failures,
            %retry_in,
            %next_at,
            "enrollment refused; this will repeat until the token (or CA, or URL) is replaced \
             in the config, which is tried at once"
        ),
        Retry::Soon => tracing::warn!(
            collector = url,
            error = %chain(error),
            failures,
            %retry_in,
            %next_at,
            "enrollment failed; retrying"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_that_repeat_wait_for_a_person() {
        let refused = |status| AttemptError::Enroll(EnrollError::Refused(status));
        let cases = [
            (
                refused(tonic::Status::unauthenticated("unknown token")),
                Retry::Refused,
            ),
            (
                refused(tonic::Status::permission_denied("expired")),
                Retry::Refused,
            ),
            (
                refused(tonic::Status::invalid_argument("hostname")),
                Retry::Refused,
            ),
            (
                refused(tonic::Status::unavailable("restarting")),
                Retry::Soon,
            ),
            (refused(tonic::Status::internal("store")), Retry::Soon),
            (
                AttemptError::Value(ValueError::EmptyToken {
                    origin: crate::enrollment::Origin::File("token_file"),
                    path: "/t".into(),
                }),
                Retry::Soon,
            ),
        ];
        for (error, retry) in cases {
            assert_eq!(classify(&error), retry, "{error}");
        }
    }
}
