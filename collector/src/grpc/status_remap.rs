//! Maps tonic's `OUT_OF_RANGE` for an oversized request to `RESOURCE_EXHAUSTED`, the code the
//! gRPC specification gives for "message larger than the server accepts". Tonic rejects such a
//! request before any handler runs, so this is done on the response headers; no handler of
//! ours returns `OUT_OF_RANGE`, so the mapping cannot hide anything else.

use tonic::codegen::http::{HeaderValue, Response};

const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// Rewrites the status header of a trailers-only error response.
pub fn remap<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    if headers
        .get("grpc-status")
        .is_some_and(|v| v == OUT_OF_RANGE)
    {
        headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_out_of_range_is_rewritten() {
        let response = |code: &'static str| {
            let mut r = Response::new(());
            r.headers_mut()
                .insert("grpc-status", HeaderValue::from_static(code));
            remap(r).headers()["grpc-status"].clone()
        };
        assert_eq!(response("11"), "8");
        assert_eq!(response("3"), "3");
        assert_eq!(response("0"), "0");
    }
}
