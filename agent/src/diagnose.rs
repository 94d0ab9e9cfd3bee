//! What a failed connection to the collector means for the person fixing it. The cause sits
//! deep in tonic's source chain (often inside an `io::Error` that hides it from `source()`);
//! this finds the TLS verdict there and turns it into a hint that names the file to fix. Used
//! by `enroll` (the `--ca-file`), the uplink's logs and diagnosis, and so `status`.

use std::error::Error;
use std::path::Path;

use firstline_support::errors::{chain, chain_from};
use rustls::{AlertDescription, CertificateError};

/// Why the TLS handshake with the collector failed, as far as it matters to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsCause {
    /// The collector's certificate is not signed by the CA the agent trusts (rustls says
    /// `UnknownIssuer`, or `BadSignature` when the other CA has the same name, as every
    /// collector's CA does).
    NotSignedByCa,
    /// The certificate does not name the host in the collector URL.
    WrongName,
    /// Expired or not valid yet: a clock is off, or the certificate is old.
    OutOfDate,
    /// Some other verdict on the collector's certificate.
    BadCertificate,
    /// The collector refused the agent's own certificate.
    ClientRefused,
}

/// A failure in words: the cause chain once, and a hint when the cause is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub error: String,
    pub hint: Option<String>,
}

impl Explained {
    /// The hint first (what to do), then the technical chain.
    pub fn text(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{hint}: {}", self.error),
            None => self.error.clone(),
        }
    }
}

/// The TLS cause somewhere in `error`'s chain.
pub fn tls_cause(error: &(dyn Error + 'static)) -> Option<TlsCause> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(cause) = rustls_in(e).and_then(classify) {
            return Some(cause);
        }
        next = e.source();
    }
    // Some wrappers keep only the message (hyper turns some errors into text).
    classify_text(&chain(error))
}

/// The hint for a TLS cause; `ca_file` is where the agent's trusted CA comes from.
pub fn hint(cause: TlsCause, ca_file: &Path) -> String {
    let ca = ca_file.display();
    match cause {
        TlsCause::NotSignedByCa => format!(
            "the collector's certificate is not signed by the CA in {ca} (copy ca.crt from the \
             collector's data directory)"
        ),
        TlsCause::WrongName => "the collector's certificate does not name the host in the \
             collector URL (use the name or address the collector's certificate was issued for)"
            .to_owned(),
        TlsCause::OutOfDate => "the collector's certificate is expired or not valid yet (check \
             the clocks of this machine and the collector)"
            .to_owned(),
        TlsCause::BadCertificate => format!(
            "the collector's certificate cannot be verified with the CA in {ca} (copy ca.crt \
             from the collector's data directory)"
        ),
        TlsCause::ClientRefused => CREDENTIALS_HINT.to_owned(),
    }
}

/// The hint when the collector refuses this agent's certificate or identity.
pub const CREDENTIALS_HINT: &str = "the collector does not accept this agent's certificate \
     (revoked, or issued by another collector): enroll again with `firstline-agent enroll --force`";

/// `error`'s chain with a hint when its cause is a known TLS problem.
pub fn explain(error: &(dyn Error + 'static), ca_file: &Path) -> Explained {
    Explained {
        error: chain(error),
        hint: tls_cause(error).map(|c| hint(c, ca_file)),
    }
}

/// A gRPC status explained: its message and the source chain once, with a hint. tonic makes
/// the message of a transport failure from one of its causes; then the chain alone says it all,
/// in order.
pub fn explain_status(status: &tonic::Status, ca_file: &Path) -> Explained {
    let error = match status.source() {
        Some(source) if chain(source).contains(status.message()) => chain(source),
        source => chain_from(status.message(), source),
    };
    let hint = tls_cause(status)
        .or_else(|| classify_text(&error))
        .map(|c| hint(c, ca_file))
        .or_else(|| {
            matches!(
                status.code(),
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            )
            .then(|| CREDENTIALS_HINT.to_owned())
        });
    Explained { error, hint }
}

/// rustls's error, directly or inside an `io::Error` (which hides its inner error from
/// `source()`).
fn rustls_in<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>().or_else(|| {
        e.downcast_ref::<std::io::Error>()?
            .get_ref()?
            .downcast_ref::<rustls::Error>()
    })
}

fn classify(e: &rustls::Error) -> Option<TlsCause> {
    match e {
        rustls::Error::InvalidCertificate(c) => Some(match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                TlsCause::NotSignedByCa
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsCause::WrongName
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsCause::OutOfDate,
            _ => TlsCause::BadCertificate,
        }),
        rustls::Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRequired
            | AlertDescription::AccessDenied,
        ) => Some(TlsCause::ClientRefused),
        _ => None,
    }
}

/// The same verdicts recognised in text, as rustls prints them.
fn classify_text(text: &str) -> Option<TlsCause> {
    // Alerts first: "received fatal alert: CertificateExpired" is about our certificate.
    const PATTERNS: [(&str, TlsCause); 10] = [
        (
            "received fatal alert: BadCertificate",
            TlsCause::ClientRefused,
        ),
        ("received fatal alert: UnknownCA", TlsCause::ClientRefused),
        ("UnknownIssuer", TlsCause::NotSignedByCa),
        ("BadSignature", TlsCause::NotSignedByCa),
        ("certificate not valid for name", TlsCause::WrongName),
        ("NotValidForName", TlsCause::WrongName),
        ("invalid peer certificate: Expired", TlsCause::OutOfDate),
        ("certificate expired", TlsCause::OutOfDate),
        ("NotValidYet", TlsCause::OutOfDate),
        ("invalid peer certificate", TlsCause::BadCertificate),
    ];
    PATTERNS
        .iter()
        .find(|(pattern, _)| text.contains(pattern))
        .map(|(_, cause)| *cause)
}

#[cfg(test)]
mod tests;
