//! Local accounts: users (a role, an argon2id password hash, disabled or not), their API
//! tokens and their sign-in sessions. Tokens and session ids are stored only as SHA-256
//! hashes; a disabled user's sessions are deleted and their tokens no longer match.
//! Validation, password hashing and expiry rules live in `service/users.rs`.

use sqlx::Row;

use super::{Store, StoreError};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    /// "viewer", "technician" or "admin" (a CHECK constraint keeps it so).
    pub role: String,
    /// The PHC string of the argon2id hash.
    pub password_hash: String,
    pub created_at_ms: i64,
    pub disabled_at_ms: Option<i64>,
}

/// A user's API token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTokenRow {
    pub token_hash: String,
    pub user_name: String,
    pub label: String,
    pub created_at_ms: i64,
}

/// A sign-in session, by the hash of its cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_name: String,
    pub csrf: String,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
}

const USER_COLUMNS: &str = "u.name, u.role, u.password_hash, u.created_at_ms, u.disabled_at_ms";

fn user_from(r: &sqlx::any::AnyRow, at: usize) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        name: r.try_get(at)?,
        role: r.try_get(at + 1)?,
        password_hash: r.try_get(at + 2)?,
        created_at_ms: r.try_get(at + 3)?,
        disabled_at_ms: r.try_get(at + 4)?,
    })
}

impl Store {
    /// Adds a user; `Conflict` when the name is taken.
    pub async fn create_user(&self, user: &UserRow) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_at_ms, disabled_at_ms) \
             VALUES ($1, $2, $3, $4, NULL) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&user.name)
        .bind(&user.role)
        .bind(&user.password_hash)
        .bind(user.created_at_ms)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "a user named {} already exists",
                user.name
            )));
        }
        Ok(())
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| user_from(r, 0)).collect()
    }

    /// One user, disabled or not.
    pub async fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| user_from(r, 0)).transpose()
    }

    /// Disables a user and ends their sessions, in one transaction; `NotFound` for an unknown
    /// name. Disabling twice keeps the first time.
    pub async fn disable_user(&self, name: &str, now_ms: i64) -> Result<UserRow, StoreError> {
        let mut w = self.begin_write().await?;
        let known: Option<String> = sqlx::query_scalar("SELECT name FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *w.tx)
            .await?;
        if known.is_none() {
            return Err(StoreError::NotFound("user"));
        }
        sqlx::query(
            "UPDATE users SET disabled_at_ms = $2 WHERE name = $1 AND disabled_at_ms IS NULL",
        )
        .bind(name)
        .bind(now_ms)
        .execute(&mut *w.tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        self.user(name).await?.ok_or(StoreError::NotFound("user"))
    }

    /// Records a user's API token by its hash.
    pub async fn create_user_token(&self, token: &UserTokenRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_tokens (token_hash, user_name, label, created_at_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&token.token_hash)
        .bind(&token.user_name)
        .bind(&token.label)
        .bind(token.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A user's API tokens, newest first.
    pub async fn user_tokens(&self, user_name: &str) -> Result<Vec<UserTokenRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_hash, user_name, label, created_at_ms FROM user_tokens \
             WHERE user_name = $1 ORDER BY created_at_ms DESC",
        )
        .bind(user_name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserTokenRow {
                    token_hash: r.try_get(0)?,
                    user_name: r.try_get(1)?,
                    label: r.try_get(2)?,
                    created_at_ms: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// The enabled user an API token (by hash) belongs to.
    pub async fn user_by_token(&self, token_hash: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM user_tokens t JOIN users u ON u.name = t.user_name \
             WHERE t.token_hash = $1 AND u.disabled_at_ms IS NULL"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| user_from(r, 0)).transpose()
    }

    /// Records a new session, first deleting every session that expired (idle since before
    /// `idle_before_ms`, or created before `created_before_ms`).
    pub async fn create_session(
        &self,
        session: &SessionRow,
        idle_before_ms: i64,
        created_before_ms: i64,
    ) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        sqlx::query("DELETE FROM sessions WHERE last_seen_at_ms < $1 OR created_at_ms < $2")
            .bind(idle_before_ms)
            .bind(created_before_ms)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_name, csrf, created_at_ms, last_seen_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.token_hash)
        .bind(&session.user_name)
        .bind(&session.csrf)
        .bind(session.created_at_ms)
        .bind(session.last_seen_at_ms)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// A session (by hash) with its user, when the user is enabled. Expiry is the caller's.
    pub async fn session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(SessionRow, UserRow)>, StoreError> {
        let sql = format!(
            "SELECT s.token_hash, s.user_name, s.csrf, s.created_at_ms, s.last_seen_at_ms, \
             {USER_COLUMNS} FROM sessions s JOIN users u ON u.name = s.user_name \
             WHERE s.token_hash = $1 AND u.disabled_at_ms IS NULL"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let session = SessionRow {
            token_hash: r.try_get(0)?,
            user_name: r.try_get(1)?,
            csrf: r.try_get(2)?,
            created_at_ms: r.try_get(3)?,
            last_seen_at_ms: r.try_get(4)?,
        };
        Ok(Some((session, user_from(&r, 5)?)))
    }

    /// Marks a session used at `now_ms` (its idle expiry starts again).
    pub async fn touch_session(&self, token_hash: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at_ms = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session; whether there was one.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
