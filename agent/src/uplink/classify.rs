//! Which gRPC failures can pass by waiting, which need a person, and which mean the snapshot
//! itself is refused. One table, so the uplink's reaction to each code is decided in one place.

use tonic::Code;

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
