//! [`Probe`] with its facts type-erased, so probes with different facts fit in one list: the
//! blanket implementation stores each probe's facts as a `ProbeOutput` and hands them back
//! typed, so a probe can only ever see its own kind of facts.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use firstline_proto::v1;

use super::{Context, Level, Limits, Probe, Watched};
use crate::config::Config;
use crate::facts::{ProbeOutput, Signature};
use crate::probe::ProbeError;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Probe`] with its facts type-erased, so different probes fit in one list.
pub(super) trait Erased: Send + Sync {
    fn name(&self) -> &'static str;
    fn timing(&self, config: &Config) -> (Duration, Duration);
    fn rerun_gap(&self, config: &Config) -> Duration;
    fn collect<'a>(
        &'a self,
        config: &'a Config,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<ProbeOutput, ProbeError>>;
    fn signature(&self, output: &ProbeOutput, thresholds: &[f64], signature: &mut Signature);
    fn report(&self, output: &ProbeOutput, snapshot: &mut v1::Snapshot);
    fn judge(&self, output: &ProbeOutput, limits: &Limits, now_ms: i64) -> Vec<(Level, String)>;
    fn watched(&self, config: &Config) -> Vec<Watched>;
    fn refresh<'a>(
        &'a self,
        output: &'a ProbeOutput,
        config: &'a Config,
    ) -> BoxFuture<'a, Option<ProbeOutput>>;
    fn gates_first_snapshot(&self) -> bool;
    fn changes(&self) -> Option<std::sync::Arc<tokio::sync::Notify>>;
}

impl<P: Probe> Erased for P {
    fn name(&self) -> &'static str {
        Probe::name(self)
    }

    fn timing(&self, config: &Config) -> (Duration, Duration) {
        Probe::timing(self, config)
    }

    fn rerun_gap(&self, config: &Config) -> Duration {
        Probe::rerun_gap(self, config)
    }

    fn collect<'a>(
        &'a self,
        config: &'a Config,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<ProbeOutput, ProbeError>> {
        Box::pin(async move {
            Probe::collect(self, config, ctx)
                .await
                .map(ProbeOutput::new)
        })
    }

    fn signature(&self, output: &ProbeOutput, thresholds: &[f64], signature: &mut Signature) {
        if let Some(facts) = output.get::<P::Facts>() {
            Probe::signature(self, facts, thresholds, signature);
        }
    }

    fn report(&self, output: &ProbeOutput, snapshot: &mut v1::Snapshot) {
        if let Some(facts) = output.get::<P::Facts>() {
            Probe::report(self, facts, snapshot);
        }
    }

    fn judge(&self, output: &ProbeOutput, limits: &Limits, now_ms: i64) -> Vec<(Level, String)> {
        output
            .get::<P::Facts>()
            .map(|facts| Probe::judge(self, facts, limits, now_ms))
            .unwrap_or_default()
    }

    fn watched(&self, config: &Config) -> Vec<Watched> {
        Probe::watched(self, config)
    }

    fn refresh<'a>(
        &'a self,
        output: &'a ProbeOutput,
        config: &'a Config,
    ) -> BoxFuture<'a, Option<ProbeOutput>> {
        Box::pin(async move {
            let facts = output.get::<P::Facts>()?;
            Probe::refresh(self, facts, config)
                .await
                .map(ProbeOutput::new)
        })
    }

    fn gates_first_snapshot(&self) -> bool {
        Probe::gates_first_snapshot(self)
    }

    fn changes(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        Probe::changes(self)
    }
}
