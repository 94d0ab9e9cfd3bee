//! Local accounts and sign-in (docs/dashboard.md, "Users and sign-in"): users with a role and
//! an argon2id password hash, per-user API tokens, and sessions with a CSRF token. The CLI
//! (`firstline-collector user …`, on the store) and the HTTP API (`/api/users`, `/api/session`)
//! both go through [`Users`], so a name or a password is checked the same way at every door.
//!
//! Secrets (API tokens, session ids) are random, shown once and stored as SHA-256 hashes
//! (`crate::tokens::hash_token`); passwords as argon2id PHC strings, hashed and verified on
//! the blocking pool. A session ends 12 hours after its last use or 7 days after sign-in.
//! The machine's own API key (`api.key`) is the token of the built-in admin [`LOCAL_ADMIN`],
//! which has no row and cannot be created, disabled or signed in as.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use super::{ServiceError, ServiceResult};
use crate::pki::hex;
use crate::store::{SessionRow, Store, UserRow, UserTokenRow};
use crate::tokens::hash_token;

/// The built-in admin whose API token is the collector's `api.key`.
pub const LOCAL_ADMIN: &str = "local-admin";
/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password, in bytes (argon2 would take more, but nobody types it).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest user name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// A session ends this long after its last use…
pub const SESSION_IDLE_MS: i64 = 12 * 3_600_000;
/// …and this long after sign-in whatever its use.
pub const SESSION_MAX_MS: i64 = 7 * 86_400_000;
/// A session's last use is written at most this often.
const TOUCH_EVERY_MS: i64 = 60_000;
/// Prefix of a user's API token (an enrollment token is `flt_`, the machine key `fla_`).
const TOKEN_PREFIX: &str = "flu_";

/// What a user may do; each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Works tickets: acknowledge, assign, comment, resolve, reopen, close; silences; labels;
    /// "check now".
    Technician,
    /// Users, enrollment tokens, revocation, feeds.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Technician, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Technician => "technician",
            Self::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = ServiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "role must be viewer, technician or admin, not {s:?}"
                ))
            })
    }
}

/// A user as every interface shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at_ms: i64,
    pub disabled_at_ms: Option<i64>,
}

/// A freshly created API token: the secret is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedUserToken {
    pub token: String,
    pub name: String,
    pub label: String,
    pub created_at_ms: i64,
}

/// An API token as listed (its hash's start, never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserTokenView {
    pub hash_prefix: String,
    pub label: String,
    pub created_at_ms: i64,
}

/// Who a credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub name: String,
    pub role: Role,
    /// The session's CSRF token; `None` for an API token.
    pub csrf: Option<String>,
}

/// A new session: the cookie value (shown once) and who it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub secret: String,
    pub user: SignedIn,
}

/// Local accounts over the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Users {
    store: Store,
}

fn random_hex(bytes: usize) -> ServiceResult<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| ServiceError::Internal("the system random generator failed".into()))?;
    Ok(hex(&buf))
}

/// Checks a user name: 1 to 64 bytes of letters, digits, `.`, `_`, `-`, `@`; not the
/// built-in [`LOCAL_ADMIN`].
pub fn check_name(name: &str) -> ServiceResult<()> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(ServiceError::Invalid(format!(
            "a user name is 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(ServiceError::Invalid(
            "a user name holds only letters, digits and . _ - @".into(),
        ));
    }
    if name == LOCAL_ADMIN {
        return Err(ServiceError::Invalid(format!(
            "{LOCAL_ADMIN} is the built-in admin of the machine's api.key; choose another name"
        )));
    }
    Ok(())
}

/// Checks a new password's length: at least 10 characters, at most 1024 bytes.
pub fn check_password(password: &str) -> ServiceResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ServiceError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ServiceError::Invalid(format!(
            "a password is at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The argon2id PHC string of `password` with a fresh salt (slow on purpose: call it on the
/// blocking pool).
pub fn hash_password(password: &str) -> ServiceResult<String> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| ServiceError::Internal("the system random generator failed".into()))?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing the password failed: {e}")))
}

/// Whether `password` matches the PHC string `hash` (slow on purpose: blocking pool).
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A hash no password is checked against in earnest: verifying against it when the user is
/// unknown takes as long as a real check, so timing does not tell which names exist.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

fn view(row: UserRow) -> ServiceResult<UserView> {
    Ok(UserView {
        role: row.role.parse().map_err(|_| {
            ServiceError::Internal(format!("stored user {} has role {:?}", row.name, row.role))
        })?,
        disabled: row.disabled_at_ms.is_some(),
        name: row.name,
        created_at_ms: row.created_at_ms,
        disabled_at_ms: row.disabled_at_ms,
    })
}

/// Whether a session created at `created_at_ms` and last used at `last_seen_at_ms` is still
/// valid at `now_ms`.
pub fn session_alive(created_at_ms: i64, last_seen_at_ms: i64, now_ms: i64) -> bool {
    now_ms - last_seen_at_ms < SESSION_IDLE_MS && now_ms - created_at_ms < SESSION_MAX_MS
}

impl Users {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Adds a user with a password.
    pub async fn add(
        &self,
        name: &str,
        role: Role,
        password: &str,
        now_ms: i64,
    ) -> ServiceResult<UserView> {
        check_name(name)?;
        check_password(password)?;
        let password = password.to_owned();
        let password_hash =
            firstline_support::blocking::run(move || hash_password(&password)).await?;
        let row = UserRow {
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            password_hash,
            created_at_ms: now_ms,
            disabled_at_ms: None,
        };
        self.store.create_user(&row).await?;
        view(row)
    }

    /// Every user, by name.
    pub async fn list(&self) -> ServiceResult<Vec<UserView>> {
        self.store
            .list_users()
            .await?
            .into_iter()
            .map(view)
            .collect()
    }

    /// Disables a user: their sessions end at once and their API tokens stop working.
    pub async fn disable(&self, name: &str, now_ms: i64) -> ServiceResult<UserView> {
        if name == LOCAL_ADMIN {
            return Err(ServiceError::Invalid(format!(
                "{LOCAL_ADMIN} is the machine's api.key; replace that file to change it"
            )));
        }
        view(self.store.disable_user(name, now_ms).await?)
    }

    /// Creates an API token for an enabled user; the token is returned once.
    pub async fn create_token(
        &self,
        name: &str,
        label: &str,
        now_ms: i64,
    ) -> ServiceResult<CreatedUserToken> {
        super::short_text("label", label, 255)?;
        let user = self
            .store
            .user(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no user named {name}")))?;
        if user.disabled_at_ms.is_some() {
            return Err(ServiceError::Conflict(format!("user {name} is disabled")));
        }
        let token = format!("{TOKEN_PREFIX}{}", random_hex(24)?);
        self.store
            .create_user_token(&UserTokenRow {
                token_hash: hash_token(&token),
                user_name: name.to_owned(),
                label: label.to_owned(),
                created_at_ms: now_ms,
            })
            .await?;
        Ok(CreatedUserToken {
            token,
            name: name.to_owned(),
            label: label.to_owned(),
            created_at_ms: now_ms,
        })
    }

    /// A user's API tokens, newest first.
    pub async fn tokens(&self, name: &str) -> ServiceResult<Vec<UserTokenView>> {
        Ok(self
            .store
            .user_tokens(name)
            .await?
            .into_iter()
            .map(|t| UserTokenView {
                hash_prefix: t.token_hash.chars().take(12).collect(),
                label: t.label,
                created_at_ms: t.created_at_ms,
            })
            .collect())
    }

    /// The enabled user an API token belongs to.
    pub async fn by_token(&self, token: &str) -> ServiceResult<Option<SignedIn>> {
        let Some(row) = self.store.user_by_token(&hash_token(token)).await? else {
            return Ok(None);
        };
        let user = view(row)?;
        Ok(Some(SignedIn {
            name: user.name,
            role: user.role,
            csrf: None,
        }))
    }

    /// Checks a name and password; on success starts a session. `None` for an unknown user,
    /// a disabled one or a wrong password alike (the check takes as long in every case).
    pub async fn sign_in(
        &self,
        name: &str,
        password: &str,
        now_ms: i64,
    ) -> ServiceResult<Option<NewSession>> {
        let row = if check_name(name).is_ok() && password.len() <= MAX_PASSWORD_BYTES {
            self.store.user(name).await?
        } else {
            None
        };
        let usable = row.filter(|r| r.disabled_at_ms.is_none());
        let hash = usable.as_ref().map(|r| r.password_hash.clone());
        let password = password.to_owned();
        let matches = firstline_support::blocking::run(move || match hash {
            Some(hash) => verify_password(&password, &hash),
            None => {
                let _ = verify_password(&password, decoy_hash());
                false
            }
        })
        .await;
        let Some(row) = usable.filter(|_| matches) else {
            return Ok(None);
        };
        let user = view(row)?;
        let secret = random_hex(32)?;
        let csrf = random_hex(32)?;
        self.store
            .create_session(
                &SessionRow {
                    token_hash: hash_token(&secret),
                    user_name: user.name.clone(),
                    csrf: csrf.clone(),
                    created_at_ms: now_ms,
                    last_seen_at_ms: now_ms,
                },
                now_ms - SESSION_IDLE_MS,
                now_ms - SESSION_MAX_MS,
            )
            .await?;
        Ok(Some(NewSession {
            secret,
            user: SignedIn {
                name: user.name,
                role: user.role,
                csrf: Some(csrf),
            },
        }))
    }

    /// Who a session cookie value belongs to, while the session lives and its user is
    /// enabled; marks it used.
    pub async fn session(&self, secret: &str, now_ms: i64) -> ServiceResult<Option<SignedIn>> {
        let hash = hash_token(secret);
        let Some((session, row)) = self.store.session(&hash).await? else {
            return Ok(None);
        };
        if !session_alive(session.created_at_ms, session.last_seen_at_ms, now_ms) {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        }
        if now_ms - session.last_seen_at_ms >= TOUCH_EVERY_MS {
            self.store.touch_session(&hash, now_ms).await?;
        }
        let user = view(row)?;
        Ok(Some(SignedIn {
            name: user.name,
            role: user.role,
            csrf: Some(session.csrf),
        }))
    }

    /// Ends a session; whether there was one.
    pub async fn sign_out(&self, secret: &str) -> ServiceResult<bool> {
        Ok(self.store.delete_session(&hash_token(secret)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_viewer_technician_admin() {
        assert!(Role::Viewer < Role::Technician && Role::Technician < Role::Admin);
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().ok(), Some(r));
            assert_eq!(
                serde_json::to_value(r).ok(),
                Some(serde_json::json!(r.as_str()))
            );
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_name("ada.l@example").is_ok());
        for bad in ["", "a b", "x\u{7}", LOCAL_ADMIN, &"n".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_password("short").is_err());
        assert!(check_password("long enough!").is_ok());
        assert!(check_password(&"p".repeat(1025)).is_err());
    }

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn sessions_expire_when_idle_or_old() {
        let day = 86_400_000;
        assert!(session_alive(0, 0, SESSION_IDLE_MS - 1));
        assert!(!session_alive(0, 0, SESSION_IDLE_MS));
        assert!(session_alive(0, 6 * day, 6 * day + 1));
        assert!(!session_alive(0, 7 * day - 1, 7 * day));
    }
}
