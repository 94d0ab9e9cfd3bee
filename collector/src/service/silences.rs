//! Silences (maintenance windows): create, list, end early.

use serde::Serialize;

use super::{Service, ServiceError, ServiceResult};
use crate::store::{Matcher, Silence};

/// Longest silence: a maintenance window, not a way to switch monitoring off.
const MAX_SILENCE_MS: i64 = 90 * 86_400_000;

/// A silence as asked for: exactly one of host, label, rule.
#[derive(Debug, Clone, Default)]
pub struct SilenceRequest {
    pub host: String,
    pub label: String,
    pub rule: String,
    /// 0: now.
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub reason: String,
}

/// A silence as every interface shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SilenceView {
    pub id: i64,
    pub matcher_kind: String,
    pub matcher_value: String,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub reason: String,
    pub created_by: String,
}

impl From<Silence> for SilenceView {
    fn from(s: Silence) -> Self {
        let (kind, value) = s.matcher.kind_and_value();
        Self {
            id: s.id,
            matcher_kind: kind.to_owned(),
            matcher_value: value.to_owned(),
            starts_at_ms: s.starts_at_ms,
            ends_at_ms: s.ends_at_ms,
            reason: s.reason,
            created_by: s.created_by,
        }
    }
}

impl Service {
    /// Creates a silence by `actor`. A host is named by agent id or host name and must be
    /// enrolled; a rule must be one the collector has.
    pub async fn create_silence(
        &self,
        req: &SilenceRequest,
        actor: &str,
        now_ms: i64,
    ) -> ServiceResult<SilenceView> {
        let given = [
            !req.host.is_empty(),
            !req.label.is_empty(),
            !req.rule.is_empty(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(ServiceError::Invalid(
                "give exactly one of host, label, rule".into(),
            ));
        }
        for (what, v) in [
            ("host", &req.host),
            ("label", &req.label),
            ("rule", &req.rule),
        ] {
            super::short_text(what, v, 255)?;
        }
        super::short_text("reason", &req.reason, 1024)?;
        let matcher = if !req.host.is_empty() {
            Matcher::Host(self.resolve_host(&req.host).await?)
        } else if !req.label.is_empty() {
            Matcher::Label(req.label.clone())
        } else {
            let known = self.engine.rules.iter().any(|r| r.id == req.rule)
                || req.rule == crate::engine::SILENT_RULE;
            if !known {
                return Err(ServiceError::NotFound(format!("no rule {:?}", req.rule)));
            }
            Matcher::Rule(req.rule.clone())
        };
        let starts = if req.starts_at_ms == 0 {
            now_ms
        } else {
            req.starts_at_ms
        };
        if req.ends_at_ms <= starts || req.ends_at_ms <= now_ms {
            return Err(ServiceError::Invalid(
                "ends_at_ms must be after the start and in the future".into(),
            ));
        }
        if req.ends_at_ms - starts > MAX_SILENCE_MS {
            return Err(ServiceError::Invalid(
                "a silence lasts at most 90 days".into(),
            ));
        }
        let reason = req.reason.trim().to_owned();
        let id = self
            .store
            .create_silence(&matcher, starts, req.ends_at_ms, &reason, actor)
            .await?;
        tracing::info!(silence = id, actor, matcher = ?matcher, "silence created");
        Ok(SilenceView::from(Silence {
            id,
            matcher,
            starts_at_ms: starts,
            ends_at_ms: req.ends_at_ms,
            reason,
            created_by: actor.to_owned(),
        }))
    }

    /// Silences that have not ended.
    pub async fn list_silences(&self, now_ms: i64) -> ServiceResult<Vec<SilenceView>> {
        let list = self.store.current_silences(now_ms).await?;
        Ok(list.into_iter().map(SilenceView::from).collect())
    }

    /// Ends a running or upcoming silence now.
    pub async fn end_silence(
        &self,
        id: i64,
        actor: &str,
        now_ms: i64,
    ) -> ServiceResult<SilenceView> {
        let ended = self
            .store
            .end_silence(id, now_ms)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no running silence {id}")))?;
        tracing::info!(silence = id, actor, "silence ended");
        Ok(SilenceView::from(ended))
    }
}
