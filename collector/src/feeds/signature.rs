//! The webhook signature: `X-Firstline-Signature: v1=<hex>`, the HMAC-SHA256 with the
//! endpoint's secret over `"<timestamp>.<body>"`, where the timestamp is the request's
//! `X-Firstline-Timestamp` (Unix seconds) and the body the exact bytes sent. Signing the
//! timestamp with the body lets a receiver refuse a replayed request: it checks the signature,
//! then that the timestamp is within a few minutes of its own clock ([`TOLERANCE`]), and
//! remembers the `X-Firstline-Event-Id` values it already took for that long.
//!
//! Pure functions; a receiver written in Rust can use [`verify`] as it is (docs/feeds.md shows
//! the same in a few lines of Python).

use std::time::Duration;

use ring::hmac;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-Firstline-Signature";
/// The timestamp header's name (Unix seconds, signed with the body).
pub const TIMESTAMP_HEADER: &str = "X-Firstline-Timestamp";
/// The scheme prefix of the one signature version there is.
pub const SCHEME: &str = "v1=";
/// How far a request's timestamp may be from the receiver's clock.
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// Why a request's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header holds no `v1=<hex>` signature.
    #[error("the signature header holds no v1=<64 hex digits> signature")]
    Malformed,
    /// The timestamp is outside the tolerance around `now`: an old request replayed, or a
    /// clock far off.
    #[error("timestamp {timestamp} is more than {tolerance_secs} s from now ({now})")]
    Stale {
        timestamp: i64,
        now: i64,
        tolerance_secs: u64,
    },
    /// No signature of the header matches the body with this secret.
    #[error("the signature does not match the body and timestamp")]
    Mismatch,
}

/// The header value for `body` sent at `timestamp` (Unix seconds): `v1=<64 hex digits>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(signed_prefix(timestamp).as_bytes());
    ctx.update(body);
    format!("{SCHEME}{}", hex(ctx.sign().as_ref()))
}

/// Checks a received request: `header` is the signature header's value (one `v1=` signature,
/// or several separated by commas, e.g. during a secret rotation on the receiver's side),
/// `timestamp` the timestamp header's value, `body` the raw body, `now` the receiver's clock
/// (Unix seconds). The comparison is constant-time (`ring::hmac::verify`).
pub fn verify(
    secret: &[u8],
    header: &str,
    timestamp: i64,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let tags: Vec<Vec<u8>> = header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix(SCHEME))
        .filter_map(unhex)
        .filter(|tag| tag.len() == 32)
        .collect();
    if tags.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let tolerance_secs = tolerance.as_secs();
    if timestamp.abs_diff(now) > tolerance_secs {
        return Err(SignatureError::Stale {
            timestamp,
            now,
            tolerance_secs,
        });
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut message = signed_prefix(timestamp).into_bytes();
    message.extend_from_slice(body);
    if tags
        .iter()
        .any(|tag| hmac::verify(&key, &message, tag).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// What comes before the body in the signed message.
fn signed_prefix(timestamp: i64) -> String {
    format!("{timestamp}.")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn the_signature_matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec-test",
        //   b"1700000000.{\"version\":1}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"whsec-test", NOW, br#"{"version":1}"#),
            "v1=274fa19a2b82656d91420a4e63c58e236ebef72fa5a30d4eae149450e313ba4c"
        );
        // hmac.new(b"", b"0.", hashlib.sha256)
        assert_eq!(
            sign(b"", 0, b""),
            "v1=b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3"
        );
    }

    #[test]
    fn a_signed_request_verifies_within_the_tolerance() {
        let body = br#"{"version":1,"event":{}}"#;
        let header = sign(b"k", NOW, body);
        assert_eq!(verify(b"k", &header, NOW, body, NOW, TOLERANCE), Ok(()));
        assert_eq!(
            verify(b"k", &header, NOW, body, NOW + 299, TOLERANCE),
            Ok(())
        );
        assert_eq!(
            verify(b"k", &header, NOW, body, NOW - 300, TOLERANCE),
            Ok(())
        );
        // Several signatures: any one that matches will do.
        let rotated = format!("v1={}, {header}", "00".repeat(32));
        assert_eq!(verify(b"k", &rotated, NOW, body, NOW, TOLERANCE), Ok(()));
    }

    #[test]
    fn tampering_another_secret_and_replays_are_refused() {
        let body = b"{\"a\":1}";
        let header = sign(b"k", NOW, body);
        assert_eq!(
            verify(b"k", &header, NOW, b"{\"a\":2}", NOW, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &header, NOW, body, NOW, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it forward to pass the replay check breaks it.
        assert_eq!(
            verify(b"k", &header, NOW + 600, body, NOW + 600, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"k", &header, NOW, body, NOW + 301, TOLERANCE),
            Err(SignatureError::Stale {
                timestamp: NOW,
                now: NOW + 301,
                tolerance_secs: 300
            })
        );
        assert!(matches!(
            verify(b"k", &header, NOW, body, NOW - 301, TOLERANCE),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in ["", "v1=", "v1=zz", "v0=abcd", "sha256=00", "v1=abc"] {
            assert_eq!(
                verify(b"k", header, NOW, b"", NOW, TOLERANCE),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
        let short = format!("v1={}", "ab".repeat(16));
        assert_eq!(
            verify(b"k", &short, NOW, b"", NOW, TOLERANCE),
            Err(SignatureError::Malformed)
        );
    }
}
