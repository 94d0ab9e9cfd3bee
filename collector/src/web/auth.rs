//! Who is calling the HTTP listener, and what they may do (docs/dashboard.md, "Users and
//! sign-in").
//!
//! A request is authenticated by one of:
//! - `Authorization: Bearer <token>`: a user's API token (`user token NAME`), looked up by its
//!   hash, or the machine's own `api.key`, the token of the built-in admin `local-admin`;
//! - the `firstline_session` cookie of a sign-in (`POST /api/session`). A state-changing
//!   request (POST, PUT, PATCH, DELETE) on a session must also carry the session's CSRF token
//!   in `X-CSRF-Token` (a browser sends the cookie on its own; it never sends a bearer token
//!   or a custom header on its own, so bearer requests are exempt).
//!
//! Every handler asks [`Web::caller`] first and then [`Caller::require`] the role its
//! operation needs; pages and the JSON API share this, so the server refuses what a role may
//! not do whether or not a button is shown. The name on every timeline entry is the
//! credential's user.

use axum::http::{HeaderMap, Method, StatusCode, header};

use crate::clock::now_ms;
pub use crate::service::Role;
use crate::service::{LOCAL_ADMIN, SignedIn};

use super::{ApiError, Web};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "firstline_session";
/// The header carrying a session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user's name, recorded on every timeline entry they cause.
    pub name: String,
    pub role: Role,
    /// The session's CSRF token when the request was authenticated by a session cookie
    /// (`None` for an API token, which is not sent by browsers on their own).
    pub csrf: Option<String>,
}

impl Caller {
    /// Refuses (403, JSON) unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "{} is a {}; this needs the {} role",
                    self.name, self.role, role
                ),
            ))
        }
    }
}

impl From<SignedIn> for Caller {
    fn from(s: SignedIn) -> Self {
        Self {
            name: s.name,
            role: s.role,
            csrf: s.csrf,
        }
    }
}

/// Why a session request was refused by the CSRF check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfRefusal {
    #[error("this request changes state and needs its session's X-CSRF-Token header")]
    Missing,
    #[error("the X-CSRF-Token header does not match the session")]
    Mismatch,
}

/// Whether `method` may change state (everything but GET, HEAD, OPTIONS and TRACE).
pub fn changes_state(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The CSRF decision, pure: a request authenticated by a session (`session_csrf` is its
/// token) that changes state must carry the same token in the header; reads and requests
/// authenticated by an API token (`session_csrf` is `None`) pass.
pub fn csrf_decision(
    method: &Method,
    session_csrf: Option<&str>,
    header: Option<&str>,
) -> Result<(), CsrfRefusal> {
    let Some(expected) = session_csrf else {
        return Ok(());
    };
    if !changes_state(method) {
        return Ok(());
    }
    match header {
        None | Some("") => Err(CsrfRefusal::Missing),
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(CsrfRefusal::Mismatch),
    }
}

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of the session cookie, from any `Cookie` header.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

fn unauthorized(message: &str) -> ApiError {
    ApiError(StatusCode::UNAUTHORIZED, message.to_owned())
}

impl Web {
    /// Authenticates a request (401 when it carries no valid credentials; 403 when a
    /// state-changing `method` authenticated by a session lacks its CSRF token).
    pub async fn caller(&self, headers: &HeaderMap, method: &Method) -> Result<Caller, ApiError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    unauthorized("the Authorization header must be Bearer <api token>")
                })?;
            if constant_time_eq(
                crate::tokens::hash_token(token).as_bytes(),
                self.key_hash.as_bytes(),
            ) {
                return Ok(Caller {
                    name: LOCAL_ADMIN.to_owned(),
                    role: Role::Admin,
                    csrf: None,
                });
            }
            return match self.service.users().by_token(token).await? {
                Some(user) => Ok(user.into()),
                None => Err(unauthorized(
                    "the API token is not valid (unknown, or its user is disabled)",
                )),
            };
        }
        let Some(secret) = session_cookie(headers) else {
            return Err(unauthorized(
                "sign in (POST /api/session) or send Authorization: Bearer <api token>",
            ));
        };
        let Some(user) = self.service.users().session(secret, now_ms()).await? else {
            return Err(unauthorized("the session has ended; sign in again"));
        };
        let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        csrf_decision(method, user.csrf.as_deref(), given)
            .map_err(|e| ApiError(StatusCode::FORBIDDEN, e.to_string()))?;
        Ok(user.into())
    }

    /// The signed-in user of an HTML page request (session cookie only); `None` when there is
    /// no valid session, and the page then sends the browser to /login.
    pub async fn page_caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let secret = session_cookie(headers)?;
        match self.service.users().session(secret, now_ms()).await {
            Ok(user) => user.map(Caller::from),
            Err(error) => {
                tracing::warn!(%error, "session lookup failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_role_allows_what_the_roles_below_it_allow() {
        let caller = |role| Caller {
            name: "ada".into(),
            role,
            csrf: None,
        };
        assert!(caller(Role::Admin).require(Role::Technician).is_ok());
        assert!(caller(Role::Technician).require(Role::Technician).is_ok());
        assert!(caller(Role::Technician).require(Role::Viewer).is_ok());
        let refused = caller(Role::Viewer)
            .require(Role::Technician)
            .expect_err("viewer");
        assert_eq!(refused.0, StatusCode::FORBIDDEN);
        assert_eq!(refused.1, "ada is a viewer; this needs the technician role");
        assert!(caller(Role::Technician).require(Role::Admin).is_err());
    }

    #[test]
    fn csrf_is_needed_for_session_writes_only() {
        let t = Some("abc123");
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert_eq!(csrf_decision(&m, t, None), Ok(()), "{m}");
        }
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(csrf_decision(&m, t, None), Err(CsrfRefusal::Missing), "{m}");
            assert_eq!(csrf_decision(&m, t, Some("")), Err(CsrfRefusal::Missing));
            assert_eq!(
                csrf_decision(&m, t, Some("abc124")),
                Err(CsrfRefusal::Mismatch)
            );
            assert_eq!(
                csrf_decision(&m, t, Some("abc1234")),
                Err(CsrfRefusal::Mismatch)
            );
            assert_eq!(csrf_decision(&m, t, Some("abc123")), Ok(()));
            // An API token: browsers never send one on their own.
            assert_eq!(csrf_decision(&m, None, None), Ok(()));
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_cookie(&headers), None);
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; firstline_session=s3cr3t; b=2"),
        );
        assert_eq!(session_cookie(&headers), Some("s3cr3t"));
        let mut empty = HeaderMap::new();
        empty.insert(
            header::COOKIE,
            HeaderValue::from_static("firstline_session="),
        );
        assert_eq!(session_cookie(&empty), None);
    }
}
