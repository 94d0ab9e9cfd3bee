//! Certificate renewal: when two thirds of the client certificate's life has passed, the agent
//! makes a new key pair, sends a CSR over its current mutual-TLS channel (`Agent/Renew`, no
//! enrollment token) and saves the new key, certificate and CA together
//! (`Identity::save_renewed`). The runner then restarts the uplink and the live channel with
//! the new identity. Failures are retried until the certificate expires and beyond: soon for
//! failures that pass, at the collector's pushback when it says "too soon", daily when the
//! collector has no renewal (an older version), hourly when it refuses the certificate.
//!
//! The timing is a pure function of the certificate's validity ([`renew_at`]); the wait is
//! taken in steps of at most [`STEP`] against the wall clock, so a machine that slept (a
//! laptop's suspend stops the monotonic clock) still renews on time.

use std::path::Path;
use std::time::{Duration, SystemTime};

use firstline_proto::limits;
use firstline_proto::v1::RenewRequest;
use firstline_proto::v1::agent_client::AgentClient;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::backoff::Backoff;
use crate::identity::Identity;

/// The longest single wait; the wall clock is read again after each.
const STEP: Duration = Duration::from_secs(3600);
/// Retries after failures that can pass: from half a minute, doubling up to an hour.
const RETRY_FIRST: Duration = Duration::from_secs(30);
const RETRY_MAX: Duration = Duration::from_secs(3600);
/// Retry after the collector answered that it has no renewal (an older collector).
const RETRY_UNSUPPORTED: Duration = Duration::from_secs(24 * 3600);
/// The longest pushback honoured.
const PUSHBACK_MAX: Duration = Duration::from_secs(24 * 3600);

/// Why a renewal attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    #[error("cannot read the current certificate: {0}")]
    Certificate(String),
    #[error("cannot create the key or CSR")]
    Key(#[from] rcgen::Error),
    #[error("the collector refused the renewal: {}", .0.message())]
    Refused(tonic::Status),
    #[error("the collector's answer is unusable: {0}")]
    Answer(String),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}

/// When a certificate valid from `not_before` to `not_after` is renewed: once two thirds of
/// its life has passed.
pub fn renew_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let life = not_after.duration_since(not_before).unwrap_or_default();
    not_after - life / 3
}

/// The validity (not before, not after) of the first certificate in `pem`.
pub fn validity(pem: &str) -> Result<(SystemTime, SystemTime), String> {
    let der = first_certificate(pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    let v = cert.validity();
    let at = |t: &x509_parser::time::ASN1Time| {
        let secs = t.timestamp();
        u64::try_from(secs)
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
            .map_err(|_| format!("certificate time {secs} is before 1970"))
    };
    Ok((at(&v.not_before)?, at(&v.not_after)?))
}

/// The DER of the first certificate of a PEM text.
fn first_certificate(pem: &str) -> Result<Vec<u8>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut certs = CertificateDer::pem_slice_iter(pem.as_bytes());
    match certs.next() {
        Some(Ok(der)) => Ok(der.to_vec()),
        Some(Err(e)) => Err(format!("not PEM: {e}")),
        None => Err("no certificate in the PEM text".to_owned()),
    }
}

/// Waits until `identity`'s certificate is due for renewal, renews it (retrying failures) and
/// saves the result in `state_dir`. `None` when `shutdown` came first, or when the certificate
/// cannot be read (then it is never renewed, which is logged).
/// `asked` cuts the wait short: the collector asked for a renewal now (a CA rotation).
pub async fn until_renewed(
    identity: &Identity,
    state_dir: &Path,
    channel: Channel,
    asked: &tokio::sync::Notify,
    shutdown: &CancellationToken,
) -> Option<Identity> {
    let (not_before, not_after) = match validity(&identity.cert_pem) {
        Ok(v) => v,
        Err(error) => {
            tracing::error!(%error, "the agent certificate cannot be read; it will not be renewed");
            shutdown.cancelled().await;
            return None;
        }
    };
    let mut due = renew_at(not_before, not_after);
    tracing::debug!(
        renew_at = %humantime::format_rfc3339_seconds(due),
        expires = %humantime::format_rfc3339_seconds(not_after),
        "certificate renewal scheduled"
    );
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX, RETRY_MAX);
    let mut failed = false;
    loop {
        // Once an attempt failed, the retry delay holds even when the collector asks again.
        let heed_asks = !failed;
        while let Ok(left) = due.duration_since(SystemTime::now()) {
            if left.is_zero() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(left.min(STEP)) => {}
                () = asked.notified(), if heed_asks => break,
                () = shutdown.cancelled() => return None,
            }
        }
        let attempt = tokio::select! {
            result = renew_once(identity, channel.clone()) => result,
            () = shutdown.cancelled() => return None,
        };
        let error = match attempt {
            Ok(renewed) => match save(renewed, state_dir).await {
                Ok(renewed) => return Some(renewed),
                Err(error) => error,
            },
            Err(error) => error,
        };
        failed = true;
        let delay = retry_delay(&error, &mut backoff, fastrand::f64());
        let expires_in = not_after
            .duration_since(SystemTime::now())
            .map(|d| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string())
            .unwrap_or_else(|_| "expired".to_owned());
        let retry_in = humantime::format_duration(Duration::from_secs(delay.as_secs().max(1)));
        let error = firstline_support::errors::chain(&error);
        if matches!(
            not_after.duration_since(SystemTime::now()),
            Ok(left) if left > Duration::from_secs(24 * 3600)
        ) {
            tracing::warn!(error, %retry_in, expires_in, "certificate renewal failed");
        } else {
            tracing::error!(
                error,
                %retry_in,
                expires_in,
                hint = "once the certificate expires the agent must be enrolled again",
                "certificate renewal failed"
            );
        }
        due = SystemTime::now() + delay;
    }
}

async fn save(renewed: Identity, state_dir: &Path) -> Result<Identity, RenewError> {
    let dir = state_dir.to_owned();
    let kept = renewed.clone();
    firstline_support::blocking::run(move || kept.save_renewed(&dir)).await?;
    let not_after = validity(&renewed.cert_pem)
        .map(|(_, a)| humantime::format_rfc3339_seconds(a).to_string())
        .unwrap_or_default();
    tracing::info!(
        agent_id = renewed.agent_id,
        not_after,
        "certificate renewed"
    );
    Ok(renewed)
}

/// One renewal: a new key pair, its CSR over `channel`, and the answer checked (the
/// certificate must be for the new key and still valid). Nothing is saved here.
pub async fn renew_once(identity: &Identity, channel: Channel) -> Result<Identity, RenewError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let csr = CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?;
    let answer = AgentClient::new(channel)
        .max_decoding_message_size(limits::MAX_MESSAGE_BYTES)
        .renew(RenewRequest {
            csr_pem: csr.pem()?,
        })
        .await
        .map_err(RenewError::Refused)?
        .into_inner();
    check_answer(&answer.certificate_pem, &key)?;
    let ca_pem = if answer.ca_certificate_pem.trim().is_empty() {
        identity.ca_pem.clone()
    } else {
        first_certificate(&answer.ca_certificate_pem)
            .map_err(|e| RenewError::Answer(format!("CA certificate: {e}")))?;
        answer.ca_certificate_pem
    };
    Ok(Identity {
        key_pem: key.serialize_pem(),
        cert_pem: answer.certificate_pem,
        ca_pem,
        ..identity.clone()
    })
}

/// The renewed certificate certifies `key` and has not expired.
fn check_answer(cert_pem: &str, key: &KeyPair) -> Result<(), RenewError> {
    let der = first_certificate(cert_pem).map_err(RenewError::Answer)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| RenewError::Answer(format!("certificate: {e}")))?;
    if cert.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(key).as_slice() {
        return Err(RenewError::Answer(
            "the certificate is not for the key this agent sent".to_owned(),
        ));
    }
    let (_, not_after) = validity(cert_pem).map_err(RenewError::Answer)?;
    if not_after <= SystemTime::now() {
        return Err(RenewError::Answer(
            "the certificate has already expired".to_owned(),
        ));
    }
    Ok(())
}

/// The wait before the next attempt after `error`.
fn retry_delay(error: &RenewError, backoff: &mut Backoff, unit: f64) -> Duration {
    match error {
        RenewError::Refused(status) => match status.code() {
            tonic::Code::Unimplemented => RETRY_UNSUPPORTED,
            tonic::Code::ResourceExhausted => asked_delay(status)
                .map(|d| d + Duration::from_secs(1))
                .unwrap_or_else(|| backoff.next_delay(unit)),
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => RETRY_MAX,
            _ => backoff.next_delay(unit),
        },
        _ => backoff.next_delay(unit),
    }
}

/// The collector's pushback on a refused renewal, at most a day.
fn asked_delay(status: &tonic::Status) -> Option<Duration> {
    let value = status.metadata().get(crate::uplink::PUSHBACK)?;
    let millis: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_millis(millis).min(PUSHBACK_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn renewal_is_due_at_two_thirds_of_the_life() {
        assert_eq!(renew_at(at(1_000), at(1_300)), at(1_200));
        // A year: renewed about four months before it ends.
        let year = 365 * 24 * 3600;
        assert_eq!(renew_at(at(0), at(year)), at(year - year / 3));
        // A certificate whose dates are upside down is due at once (at its end).
        assert_eq!(renew_at(at(2_000), at(1_000)), at(1_000));
    }

    #[test]
    fn validity_is_read_from_the_certificate() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2027, 1, 1);
        let pem = params.self_signed(&key).expect("cert").pem();
        let (from, to) = validity(&pem).expect("validity");
        assert_eq!(from, at(1_767_225_600));
        assert_eq!(to, at(1_798_761_600));
        assert!(validity("not a certificate").is_err());
        assert!(validity("").is_err());
    }

    #[test]
    fn an_answer_for_another_key_is_refused() {
        let mine = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let params = CertificateParams::new(Vec::<String>::new()).expect("params");
        let pem = params.self_signed(&other).expect("cert").pem();
        assert!(matches!(
            check_answer(&pem, &mine),
            Err(RenewError::Answer(_))
        ));
        let pem = params.self_signed(&mine).expect("cert").pem();
        check_answer(&pem, &mine).expect("the answer for this key is taken");
    }

    #[test]
    fn retries_follow_what_the_collector_said() {
        let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX, RETRY_MAX);
        let refused = |code| RenewError::Refused(tonic::Status::new(code, "no"));
        assert_eq!(
            retry_delay(&refused(tonic::Code::Unimplemented), &mut backoff, 0.0),
            RETRY_UNSUPPORTED
        );
        assert_eq!(
            retry_delay(&refused(tonic::Code::Unauthenticated), &mut backoff, 0.0),
            RETRY_MAX
        );
        let mut busy = tonic::Status::resource_exhausted("too soon");
        busy.metadata_mut()
            .insert("grpc-retry-pushback-ms", "90000".parse().expect("value"));
        let busy = RenewError::Refused(busy);
        assert_eq!(
            retry_delay(&busy, &mut backoff, 0.0),
            Duration::from_secs(91)
        );
        let first = retry_delay(&refused(tonic::Code::Unavailable), &mut backoff, 0.0);
        let second = retry_delay(&refused(tonic::Code::Unavailable), &mut backoff, 0.0);
        assert_eq!((first, second), (RETRY_FIRST / 2, RETRY_FIRST));
    }
}
