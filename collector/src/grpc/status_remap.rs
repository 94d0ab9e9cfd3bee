//! Fixes the codes tonic answers before any handler of ours runs, on the response headers of a
//! trailers-only error response:
//! - `OUT_OF_RANGE` for an oversized request becomes `RESOURCE_EXHAUSTED`, the code the gRPC
//!   specification gives for "message larger than the server accepts";
//! - `INTERNAL` for a request that does not decode (invalid UTF-8 in a string, a malformed
//!   field) becomes `INVALID_ARGUMENT`: the caller sent it, and sending it again fails again.
//!
//! No handler of ours returns `OUT_OF_RANGE`, and the `INTERNAL` rewrite looks at tonic's own
//! decode message, so neither mapping can hide anything else.

use tonic::codegen::http::{HeaderValue, Response};

const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";
const INTERNAL: &str = "13";
const INVALID_ARGUMENT: &str = "3";

/// Rewrites the status header of a trailers-only error response.
pub fn remap<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    let code = headers.get("grpc-status").cloned();
    let decode_failure = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| m.replace("%20", " ").starts_with("failed to decode"));
    if code.as_ref().is_some_and(|v| v == OUT_OF_RANGE) {
        headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
    } else if code.as_ref().is_some_and(|v| v == INTERNAL) && decode_failure {
        headers.insert("grpc-status", HeaderValue::from_static(INVALID_ARGUMENT));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tonics_own_refusals_are_rewritten() {
        let response = |code: &'static str, message: &'static str| {
            let mut r = Response::new(());
            r.headers_mut()
                .insert("grpc-status", HeaderValue::from_static(code));
            r.headers_mut()
                .insert("grpc-message", HeaderValue::from_static(message));
            remap(r).headers()["grpc-status"].clone()
        };
        assert_eq!(response("11", ""), "8");
        assert_eq!(response("3", ""), "3");
        assert_eq!(response("0", ""), "0");
        let decode = "failed%20to%20decode%20Protobuf%20message:%20invalid%20string";
        assert_eq!(response("13", decode), "3");
        assert_eq!(response("13", "disk%20on%20fire"), "13");
    }
}
