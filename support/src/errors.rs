//! Error chains in one line. Each error type says its own context and exposes its cause as
//! `source()`; [`chain`] walks the causes once. Some libraries (tonic's and hyper's transport
//! errors, `std::io::Error` wrappers) also repeat their cause in their own message, so a message
//! already in the text is left out and a message that extends the previous one replaces it.

use std::error::Error;

/// `error` and its sources joined with ": ", each message once.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    chain_from(&error.to_string(), error.source())
}

/// `head` followed by `source` and its sources, each message once (for errors whose own
/// `Display` is not the message to show, such as a gRPC status).
pub fn chain_from(head: &str, source: Option<&(dyn Error + 'static)>) -> String {
    let mut parts: Vec<String> = Vec::new();
    push(&mut parts, head.trim());
    let mut next = source;
    while let Some(cause) = next {
        push(&mut parts, cause.to_string().trim());
        next = cause.source();
    }
    parts.join(": ")
}

/// Adds one message unless the text already says it; a message that contains the previous one
/// (`tcp connect error` then `tcp connect error: refused`) takes its place.
fn push(parts: &mut Vec<String>, message: &str) {
    if message.is_empty() || parts.iter().any(|p| p.contains(message)) {
        return;
    }
    if parts
        .last()
        .is_some_and(|last| message.contains(last.as_str()))
    {
        parts.pop();
    }
    parts.push(message.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    /// An error with a fixed message and an optional cause.
    #[derive(Debug)]
    struct Layer {
        message: &'static str,
        source: Option<Box<Layer>>,
    }

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.message)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.source.as_deref().map(|s| s as &(dyn Error + 'static))
        }
    }

    fn layers(messages: &[&'static str]) -> Layer {
        let mut error: Option<Layer> = None;
        for message in messages.iter().rev() {
            error = Some(Layer {
                message,
                source: error.map(Box::new),
            });
        }
        error.expect("at least one message")
    }

    #[test]
    fn each_message_appears_once() {
        let cases: &[(&[&str], &str)] = &[
            (&["a", "b", "c"], "a: b: c"),
            // tonic: the status, the transport error and hyper's connect error repeat.
            (
                &[
                    "transport error",
                    "transport error",
                    "tcp connect error",
                    "tcp connect error",
                    "Connection refused (os error 111)",
                ],
                "transport error: tcp connect error: Connection refused (os error 111)",
            ),
            // A wrapper that printed its cause already.
            (
                &[
                    "ca.crt: No such file or directory (os error 2)",
                    "No such file or directory (os error 2)",
                ],
                "ca.crt: No such file or directory (os error 2)",
            ),
            // A cause that repeats and extends its wrapper replaces it.
            (
                &["tcp connect error", "tcp connect error: refused"],
                "tcp connect error: refused",
            ),
            (&["", "b", " "], "b"),
            (&["spool file x", "x"], "spool file x"),
        ];
        for (messages, expected) in cases {
            assert_eq!(chain(&layers(messages)), *expected, "{messages:?}");
        }
    }

    #[test]
    fn a_head_replaces_the_first_message() {
        let cause = layers(&["transport error", "invalid peer certificate: UnknownIssuer"]);
        assert_eq!(
            chain_from("transport error", Some(&cause)),
            "transport error: invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(chain_from("status only", None), "status only");
    }

    #[test]
    fn io_errors_and_thiserror_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read {path}")]
        struct ReadError {
            path: &'static str,
            source: std::io::Error,
        }
        let error = ReadError {
            path: "/etc/x",
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(chain(&error), "cannot read /etc/x: entity not found");
    }
}
