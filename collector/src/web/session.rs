//! Sign-in over HTTP (`/api/session`): the login that sets the session cookie, the current
//! session, logout; and the in-memory bound on failed logins.
//!
//! The login has no session yet, so no CSRF token: it is protected by requiring
//! `Content-Type: application/json` (a cross-site HTML form cannot send that without a CORS
//! preflight, which this server never grants) and by the cookie's `SameSite=Strict`. An
//! unknown user, a disabled one and a wrong password get the same 401 and the same message;
//! more than [`MAX_FAILURES`] failures for one name within [`FAILURE_WINDOW`] get 429 with
//! `Retry-After` until the oldest of them is out of the window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::{SESSION_COOKIE, session_cookie};
use super::{ApiError, Web, bad};
use crate::clock::now_ms;
use crate::service::SESSION_MAX_MS;

/// Failed logins allowed per name within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// How long a failed login counts.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Names tracked at most; beyond it, the names whose last failure is oldest are forgotten.
const MAX_TRACKED: usize = 100_000;

/// The message of every refused login, whatever the reason.
pub const LOGIN_REFUSED: &str = "unknown user or wrong password";

/// Failed logins per user name, held in memory (per collector process).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    fn key(name: &str) -> String {
        name.to_lowercase()
    }

    /// `Err(wait)` when `name` has used up its failures at `now`.
    pub fn check(&self, name: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(times) = map.get_mut(&Self::key(name)) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= MAX_FAILURES {
            let oldest = times.front().copied().unwrap_or(now);
            let wait = FAILURE_WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(wait.max(Duration::from_secs(1)));
        }
        Ok(())
    }

    /// Counts a failed login of `name` at `now`.
    pub fn fail(&self, name: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, t| {
                t.back()
                    .is_some_and(|last| now.duration_since(*last) < FAILURE_WINDOW)
            });
            if map.len() >= MAX_TRACKED {
                let mut lasts: Vec<Instant> =
                    map.values().filter_map(|t| t.back().copied()).collect();
                lasts.sort_unstable();
                let cut = lasts[lasts.len() / 2];
                map.retain(|_, t| t.back().is_some_and(|last| *last > cut));
            }
        }
        let times = map.entry(Self::key(name)).or_default();
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }

    /// Forgets the failures of `name` (after a successful login).
    pub fn clear(&self, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&Self::key(name));
    }
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie_header(secret: &str, secure: bool) -> String {
    let max_age = SESSION_MAX_MS / 1000;
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie_header(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

/// Whether the request says its body is JSON (`application/json`, any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    name: String,
    password: String,
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /api/session`: signs in; sets the session cookie and answers {name, role, csrf}.
pub async fn login(
    State(web): State<Web>,
    headers: HeaderMap,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    if !is_json(&headers) {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a sign-in must be sent as Content-Type: application/json".into(),
        ));
    }
    let Json(body) = bad(body)?;
    if let Err(wait) = web.limiter.check(&body.name, Instant::now()) {
        let secs = wait.as_secs().max(1);
        let mut response = ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed sign-ins for this name; try again in {secs} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(response);
    }
    let users = web.service.users();
    match users.sign_in(&body.name, &body.password, now_ms()).await? {
        Some(session) => {
            web.limiter.clear(&body.name);
            tracing::info!(user = %session.user.name, "signed in");
            let answer = Json(json!({
                "name": session.user.name,
                "role": session.user.role,
                "csrf": session.user.csrf,
            }));
            Ok(with_cookie(
                answer.into_response(),
                &session_cookie_header(&session.secret, web.secure_cookies),
            ))
        }
        None => {
            web.limiter.fail(&body.name, Instant::now());
            tracing::info!(name = %body.name.escape_debug(), "sign-in refused");
            Err(ApiError(StatusCode::UNAUTHORIZED, LOGIN_REFUSED.into()))
        }
    }
}

/// `GET /api/session`: who is signed in (the API token's user, `csrf` null, for a token).
pub async fn current(State(web): State<Web>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = web.caller(&headers, &Method::GET).await?;
    let answer = Json(json!({"name": caller.name, "role": caller.role, "csrf": caller.csrf}));
    let mut response = answer.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `DELETE /api/session`: signs out (needs the CSRF token); the cookie is removed.
pub async fn logout(State(web): State<Web>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = web.caller(&headers, &Method::DELETE).await?;
    let Some(secret) = caller.csrf.as_ref().and(session_cookie(&headers)) else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "this request carries an API token, not a session; there is nothing to sign out".into(),
        ));
    };
    web.service.users().sign_out(secret).await?;
    tracing::info!(user = %caller.name, "signed out");
    Ok(with_cookie(
        Json(json!({"signed_out": true})).into_response(),
        &cleared_cookie_header(web.secure_cookies),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_when_asked() {
        let plain = session_cookie_header("abc", false);
        assert_eq!(
            plain,
            "firstline_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=604800"
        );
        let secure = session_cookie_header("abc", true);
        assert!(secure.ends_with("; Secure"), "{secure}");
        let cleared = cleared_cookie_header(true);
        assert!(cleared.starts_with("firstline_session=;") && cleared.contains("Max-Age=0"));
        assert!(cleared.contains("HttpOnly") && cleared.ends_with("; Secure"));
    }

    #[test]
    fn failures_are_bounded_per_name_within_the_window() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(limiter.check("Ada", t0).is_ok(), "failure {i}");
            limiter.fail("Ada", t0 + Duration::from_secs(i as u64));
        }
        let wait = limiter
            .check("ada", t0 + Duration::from_secs(10))
            .expect_err("locked");
        assert_eq!(wait, FAILURE_WINDOW - Duration::from_secs(10));
        assert!(
            limiter.check("bob", t0).is_ok(),
            "other names are not affected"
        );
        assert!(
            limiter.check("ada", t0 + FAILURE_WINDOW).is_ok(),
            "the window passes"
        );
        limiter.fail("bob", t0);
        limiter.clear("bob");
        assert!(limiter.check("bob", t0).is_ok());
    }

    #[test]
    fn only_json_logins_are_taken() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(is_json(&h));
    }
}
