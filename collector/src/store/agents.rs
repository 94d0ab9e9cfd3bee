//! Enrollment tokens, enrolled agents and the certificates that identify agents and operators.
//! A token is stored only as its SHA-256 hash; a certificate is known by the SHA-256 of its DER,
//! which is how every authenticated RPC finds out who is calling (and whether it was revoked).

use sqlx::Row;

use super::{Store, StoreError};

/// What a client certificate stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Agent,
    Operator,
}

/// The caller behind a certificate fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: CertKind,
    /// Agent id, or the operator's name.
    pub subject: String,
    pub revoked: bool,
    /// When the certificate was issued, ms since the epoch.
    pub issued_at_ms: i64,
}

/// An enrollment token as listed for operators (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token_hash: String,
    pub label: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub uses_total: i64,
    pub uses_left: i64,
    /// When an operator revoked it; a revoked token is refused.
    pub revoked_at_ms: Option<i64>,
    /// Labels every agent enrolled with it starts with (its group, e.g. `lab`).
    pub host_labels: Vec<String>,
}

/// A client certificate as listed for operators: whose it is and whether it still works.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateRow {
    pub fingerprint: String,
    /// agent or operator.
    pub kind: String,
    /// The agent id, or the operator's name.
    pub subject: String,
    /// The agent's host name (empty for operators).
    pub hostname: String,
    pub issued_at_ms: i64,
    pub not_after_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// An agent about to be enrolled.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub agent_id: String,
    pub hostname: String,
    /// The OS machine id the agent sent; empty when unknown.
    pub machine_id: String,
    pub enrolled_at_ms: i64,
}

/// What enrolling found out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrolled {
    /// Agents already enrolled with the same machine id, with their host names.
    pub same_machine_as: Vec<(String, String)>,
}

/// A certificate the CA just issued.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    pub fingerprint: String,
    pub kind: CertKind,
    pub subject: String,
    pub issued_at_ms: i64,
    pub not_after_ms: i64,
}

/// What became of a renewal (`Store::renew_certificate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The new certificate is recorded.
    Recorded,
    /// The agent was issued a certificate at `last_issued_ms`, too recently: nothing recorded.
    TooSoon { last_issued_ms: i64 },
    /// The agent's certificates are revoked: nothing recorded.
    Revoked,
}

impl CertKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Operator => "operator",
        }
    }
}

impl Store {
    /// Records a new enrollment token by its hash.
    pub async fn create_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO enrollment_tokens \
             (token_hash, label, created_at_ms, expires_at_ms, uses_total, uses_left, host_labels) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.token_hash)
        .bind(&token.label)
        .bind(token.created_at_ms)
        .bind(token.expires_at_ms)
        .bind(token.uses_total)
        .bind(token.uses_left)
        .bind(token.host_labels.join(","))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every token, newest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_hash, label, created_at_ms, expires_at_ms, uses_total, uses_left, \
             revoked_at_ms, host_labels FROM enrollment_tokens ORDER BY created_at_ms DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRow {
                    token_hash: r.try_get(0)?,
                    label: r.try_get(1)?,
                    created_at_ms: r.try_get(2)?,
                    expires_at_ms: r.try_get(3)?,
                    uses_total: r.try_get(4)?,
                    uses_left: r.try_get(5)?,
                    revoked_at_ms: r.try_get(6)?,
                    host_labels: super::reports::split_labels(&r.try_get::<String, _>(7)?),
                })
            })
            .collect()
    }

    /// Revokes the token whose hash is `hash` or starts with it (at least 8 characters, as
    /// listed): it is refused from now on. Returns the full hash. Not found, ambiguous or
    /// already revoked: an error that says which.
    pub async fn revoke_token(&self, hash: &str, now_ms: i64) -> Result<String, StoreError> {
        if hash.len() < 8 || hash.len() > 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::NotFound("enrollment token"));
        }
        let mut w = self.begin_write().await?;
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT token_hash, revoked_at_ms FROM enrollment_tokens \
             WHERE substr(token_hash, 1, $2) = $1 LIMIT 2",
        )
        .bind(hash.to_ascii_lowercase())
        .bind(i64::try_from(hash.len()).unwrap_or(64))
        .fetch_all(&mut *w.tx)
        .await?;
        let (full, revoked) = match rows.as_slice() {
            [] => return Err(StoreError::NotFound("enrollment token")),
            [one] => one.clone(),
            _ => {
                return Err(StoreError::Conflict(format!(
                    "{hash} is the start of more than one token's hash: give more of it"
                )));
            }
        };
        if revoked.is_some() {
            return Err(StoreError::Conflict(format!(
                "enrollment token {} is already revoked",
                &full[..12]
            )));
        }
        sqlx::query("UPDATE enrollment_tokens SET revoked_at_ms = $2 WHERE token_hash = $1")
            .bind(&full)
            .bind(now_ms)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(full)
    }

    /// Client certificates, newest first, `limit` from `offset`, with their total count.
    /// `kind` ("agent" or "operator") narrows them when given.
    pub async fn list_certificates(
        &self,
        kind: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<CertificateRow>, i64), StoreError> {
        let kind = kind.unwrap_or("");
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM certificates WHERE ($1 = '' OR kind = $1)")
                .bind(kind)
                .fetch_one(&self.pool)
                .await?;
        let rows = sqlx::query(
            "SELECT c.fingerprint, c.kind, c.subject, COALESCE(a.hostname, ''), c.issued_at_ms, \
             c.not_after_ms, c.revoked_at_ms FROM certificates c \
             LEFT JOIN agents a ON c.kind = 'agent' AND a.agent_id = c.subject \
             WHERE ($1 = '' OR c.kind = $1) \
             ORDER BY c.issued_at_ms DESC, c.fingerprint LIMIT $2 OFFSET $3",
        )
        .bind(kind)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let list = rows
            .iter()
            .map(|r| {
                Ok(CertificateRow {
                    fingerprint: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    hostname: r.try_get(3)?,
                    issued_at_ms: r.try_get(4)?,
                    not_after_ms: r.try_get(5)?,
                    revoked_at_ms: r.try_get(6)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((list, total))
    }

    /// Spends one use of a token and records the agent (with the token's host labels) and its
    /// certificate, all in one transaction: a refused token leaves the store exactly as it was.
    pub async fn enroll(
        &self,
        token_hash: &str,
        now_ms: i64,
        agent: &NewAgent,
        cert: &NewCertificate,
    ) -> Result<Enrolled, StoreError> {
        let mut w = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT expires_at_ms, uses_left, revoked_at_ms, host_labels FROM enrollment_tokens \
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::TokenUnknown);
        };
        let expires_at_ms: i64 = row.try_get(0)?;
        let uses_left: i64 = row.try_get(1)?;
        let revoked_at_ms: Option<i64> = row.try_get(2)?;
        let host_labels: String = row.try_get(3)?;
        if revoked_at_ms.is_some() {
            return Err(StoreError::TokenRevoked);
        }
        if expires_at_ms <= now_ms {
            return Err(StoreError::TokenExpired);
        }
        if uses_left <= 0 {
            return Err(StoreError::TokenUsedUp);
        }
        sqlx::query("UPDATE enrollment_tokens SET uses_left = uses_left - 1 WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *w.tx)
            .await?;
        let same_machine_as: Vec<(String, String)> = if agent.machine_id.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT agent_id, hostname FROM agents WHERE machine_id = $1 ORDER BY agent_id LIMIT 100",
            )
            .bind(&agent.machine_id)
            .fetch_all(&mut *w.tx)
            .await?
        };
        sqlx::query(
            "INSERT INTO agents (agent_id, hostname, machine_id, enrolled_at_ms, labels) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&agent.agent_id)
        .bind(&agent.hostname)
        .bind(&agent.machine_id)
        .bind(agent.enrolled_at_ms)
        .bind(&host_labels)
        .execute(&mut *w.tx)
        .await?;
        insert_certificate(&mut w, cert).await?;
        w.commit().await?;
        Ok(Enrolled { same_machine_as })
    }

    /// Records a certificate issued outside enrollment (operator certificates).
    pub async fn register_certificate(&self, cert: &NewCertificate) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        insert_certificate(&mut w, cert).await?;
        w.commit().await
    }

    /// What [`Store::renew_certificate`] would answer now, read without a transaction (the
    /// transaction checks again): `Recorded` means "may renew".
    pub async fn renewal_standing(
        &self,
        subject: &str,
        issued_after_ms: i64,
    ) -> Result<Renewal, StoreError> {
        let (last_issued_ms, revoked): (Option<i64>, i64) = sqlx::query_as(
            "SELECT MAX(issued_at_ms), COUNT(revoked_at_ms) FROM certificates \
             WHERE subject = $1 AND kind = 'agent'",
        )
        .bind(subject)
        .fetch_one(&self.pool)
        .await?;
        Ok(standing(last_issued_ms, revoked, issued_after_ms))
    }

    /// Records an agent's renewed certificate, in one transaction with the checks that bound
    /// renewals: refused when the agent was issued a certificate after `issued_after_ms`, or
    /// when its certificates are revoked (a revocation that raced the renewal wins).
    pub async fn renew_certificate(
        &self,
        cert: &NewCertificate,
        issued_after_ms: i64,
    ) -> Result<Renewal, StoreError> {
        let mut w = self.begin_write().await?;
        let (last_issued_ms, revoked): (Option<i64>, i64) = sqlx::query_as(
            "SELECT MAX(issued_at_ms), COUNT(revoked_at_ms) FROM certificates \
             WHERE subject = $1 AND kind = 'agent'",
        )
        .bind(&cert.subject)
        .fetch_one(&mut *w.tx)
        .await?;
        let answer = standing(last_issued_ms, revoked, issued_after_ms);
        if answer != Renewal::Recorded {
            return Ok(answer);
        }
        insert_certificate(&mut w, cert).await?;
        w.commit().await?;
        Ok(Renewal::Recorded)
    }

    /// Agents whose valid certificates were all issued before `since_ms` (during a CA
    /// rotation: those still on the old CA).
    pub async fn agents_on_certificates_before(
        &self,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT subject) FROM certificates c WHERE c.kind = 'agent' \
             AND c.revoked_at_ms IS NULL AND c.not_after_ms > $2 \
             AND NOT EXISTS (SELECT 1 FROM certificates d WHERE d.subject = c.subject \
                AND d.kind = 'agent' AND d.revoked_at_ms IS NULL AND d.issued_at_ms >= $1)",
        )
        .bind(since_ms)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Who a client certificate belongs to, if the collector issued it.
    pub async fn identity(&self, fingerprint: &str) -> Result<Option<Identity>, StoreError> {
        let row = sqlx::query(
            "SELECT c.kind, c.subject, c.revoked_at_ms, c.issued_at_ms, \
             (SELECT COUNT(*) FROM certificates d WHERE d.subject = c.subject \
                AND d.kind = 'agent' AND d.revoked_at_ms IS NOT NULL) \
             FROM certificates c WHERE c.fingerprint = $1",
        )
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get(0)?;
        // An agent is revoked as a whole (`revoke_subject`): a certificate of an agent with
        // any revoked one counts as revoked too, also one a renewal recorded while the
        // revocation ran.
        let revoked: Option<i64> = row.try_get(2)?;
        let agent_revoked: i64 = row.try_get(4)?;
        Ok(Some(Identity {
            kind: match kind.as_str() {
                "operator" => CertKind::Operator,
                "agent" => CertKind::Agent,
                other => {
                    return Err(StoreError::corrupt(
                        "certificate",
                        fingerprint,
                        format!("unknown kind {other:?}"),
                    ));
                }
            },
            subject: row.try_get(1)?,
            revoked: revoked.is_some() || (kind == "agent" && agent_revoked > 0),
            issued_at_ms: row.try_get(3)?,
        }))
    }

    /// The revocation mark: how many certificates are revoked and the latest revocation
    /// time. It moves with every revocation, by any process or replica (one indexed read).
    pub async fn revocation_mark(&self) -> Result<(i64, i64), StoreError> {
        let mark: (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(MAX(revoked_at_ms), 0) FROM certificates \
             WHERE revoked_at_ms IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(mark)
    }

    /// Revokes every certificate of a subject (an agent id or an operator name); returns how
    /// many were revoked.
    pub async fn revoke_subject(&self, subject: &str, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE certificates SET revoked_at_ms = $1 \
             WHERE subject = $2 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(subject)
        .execute(&self.pool)
        .await?;
        self.revocations
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(done.rows_affected())
    }

    /// Counts the rows of a table; the bad-input tests use it to prove nothing was stored.
    pub async fn count_rows(&self, table: CountedTable) -> Result<i64, StoreError> {
        let sql = match table {
            CountedTable::Agents => "SELECT COUNT(*) FROM agents WHERE agent_id <> 'fleet'",
            CountedTable::Snapshots => "SELECT COUNT(*) FROM snapshots",
            CountedTable::Certificates => "SELECT COUNT(*) FROM certificates",
            CountedTable::Tickets => "SELECT COUNT(*) FROM tickets",
            CountedTable::TicketEvents => "SELECT COUNT(*) FROM ticket_events",
        };
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await?;
        Ok(n)
    }
}

impl super::WriteTx {
    /// Agents whose last report is older than `cutoff_ms`, that have no open ticket of
    /// `rule_id` and a valid certificate: (agent id, host name, last seen).
    pub async fn silent_agents(
        &mut self,
        cutoff_ms: i64,
        rule_id: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT a.agent_id, a.hostname, a.last_seen_at_ms FROM agents a \
             WHERE a.last_seen_at_ms > 0 AND a.last_seen_at_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.agent_id = a.agent_id AND t.rule_id = $2 \
                             AND t.state IN ('new', 'acknowledged')) \
             AND EXISTS (SELECT 1 FROM certificates c WHERE c.subject = a.agent_id AND c.revoked_at_ms IS NULL) \
             LIMIT 10000",
        )
        .bind(cutoff_ms)
        .bind(rule_id)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows)
    }
}

/// Tables whose size tests and operators look at.
#[derive(Debug, Clone, Copy)]
pub enum CountedTable {
    Agents,
    Snapshots,
    Certificates,
    Tickets,
    TicketEvents,
}

/// The renewal answer for an agent whose newest certificate was issued at `last_issued_ms`,
/// with `revoked` of its certificates revoked.
fn standing(last_issued_ms: Option<i64>, revoked: i64, issued_after_ms: i64) -> Renewal {
    match last_issued_ms {
        _ if revoked > 0 => Renewal::Revoked,
        Some(last_issued_ms) if last_issued_ms > issued_after_ms => {
            Renewal::TooSoon { last_issued_ms }
        }
        _ => Renewal::Recorded,
    }
}

async fn insert_certificate(
    w: &mut super::WriteTx,
    cert: &NewCertificate,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO certificates (fingerprint, kind, subject, issued_at_ms, not_after_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&cert.fingerprint)
    .bind(cert.kind.as_str())
    .bind(&cert.subject)
    .bind(cert.issued_at_ms)
    .bind(cert.not_after_ms)
    .execute(&mut *w.tx)
    .await?;
    Ok(())
}
