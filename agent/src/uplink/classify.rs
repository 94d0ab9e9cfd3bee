//! Which gRPC failures can pass by waiting, which need a person, and which mean the snapshot
//! itself is refused. One table, so the uplink's reaction to each code is decided in one place.

use std::time::Duration;

use tonic::Code;

/// The header a busy collector sets on RESOURCE_EXHAUSTED: milliseconds to wait before the
/// next attempt (gRPC's retry pushback).
pub const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// The longest pushback honoured; a larger value is taken as this.
const PUSHBACK_MAX: Duration = Duration::from_secs(60);

/// The delay the collector asked for, if it did: a whole number of milliseconds, at most a
/// minute. Anything else (absent, negative, not a number) is no request.
pub fn pushback(status: &tonic::Status) -> Option<Duration> {
    let value = status.metadata().get(PUSHBACK)?.to_str().ok()?;
    let millis: u64 = value.trim().parse().ok()?;
    Some(Duration::from_millis(millis).min(PUSHBACK_MAX))
}

/// The wait before sending again after a pushback: the delay asked for plus up to half of it
/// again (`unit` in [0, 1)), so a fleet told the same delay does not come back as one wave.
pub fn pushback_delay(asked: Duration, unit: f64) -> Duration {
    asked + (asked / 2).mul_f64(unit.clamp(0.0, 1.0))
}

/// What a failed Report call means for the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request itself is refused (a malformed snapshot, or a batch an older collector
    /// cannot take): it would fail again, so it is split, and a single snapshot deleted.
    Refused,
    /// The collector or the network is down or busy: retry with backoff, for ever.
    Transient,
    /// The collector does not accept this agent's certificate: retry at the longest step,
    /// and say that the agent must enroll again.
    Credentials,
    /// The collector cannot take reports at all (not a Firstline collector, a version
    /// mismatch): retry at the longest step, and say so as an error. Nothing is deleted.
    Misconfigured,
}

/// The failure a status code means.
pub fn classify(code: Code) -> Failure {
    match code {
        Code::InvalidArgument => Failure::Refused,
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Internal
        | Code::Unknown
        | Code::Cancelled => Failure::Transient,
        Code::Unauthenticated | Code::PermissionDenied => Failure::Credentials,
        Code::Ok
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::DataLoss => Failure::Misconfigured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(value: &str) -> tonic::Status {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(PUSHBACK, value.parse().expect("ascii"));
        tonic::Status::with_metadata(Code::ResourceExhausted, "busy", metadata)
    }

    #[test]
    fn a_pushback_is_honoured_bounded_and_spread() {
        assert_eq!(pushback(&busy("750")), Some(Duration::from_millis(750)));
        assert_eq!(pushback(&busy("86400000")), Some(PUSHBACK_MAX));
        assert_eq!(pushback(&busy("-1")), None);
        assert_eq!(pushback(&busy("soon")), None);
        assert_eq!(pushback(&tonic::Status::resource_exhausted("busy")), None);
        let asked = Duration::from_millis(1000);
        assert_eq!(pushback_delay(asked, 0.0), asked);
        assert_eq!(pushback_delay(asked, 1.0), Duration::from_millis(1500));
    }

    #[test]
    fn every_code_has_one_reaction() {
        let cases = [
            (Code::InvalidArgument, Failure::Refused),
            (Code::Unavailable, Failure::Transient),
            (Code::DeadlineExceeded, Failure::Transient),
            (Code::ResourceExhausted, Failure::Transient),
            (Code::Aborted, Failure::Transient),
            (Code::Internal, Failure::Transient),
            (Code::Unknown, Failure::Transient),
            (Code::Cancelled, Failure::Transient),
            (Code::Unauthenticated, Failure::Credentials),
            (Code::PermissionDenied, Failure::Credentials),
            (Code::NotFound, Failure::Misconfigured),
            (Code::Unimplemented, Failure::Misconfigured),
            (Code::FailedPrecondition, Failure::Misconfigured),
            (Code::OutOfRange, Failure::Misconfigured),
            (Code::AlreadyExists, Failure::Misconfigured),
            (Code::DataLoss, Failure::Misconfigured),
            (Code::Ok, Failure::Misconfigured),
        ];
        for (code, expected) in cases {
            assert_eq!(classify(code), expected, "{code:?}");
        }
    }
}
