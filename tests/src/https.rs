//! An HTTPS server on 127.0.0.1:0 for the agent's HTTPS check: a certificate made by the test
//! (rcgen; self-signed, or signed by a private CA of the test's) with the names and validity
//! the test chose, every request answered with one status, in
//! a thread of its own. It counts connections, finished handshakes and answered requests, and
//! keeps each handshake's error, so a test can tell what the agent got as far as.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

/// A running server, stopped on drop.
pub struct HttpsServer {
    pub port: u16,
    /// The server certificate (PEM), e.g. to trust it explicitly.
    pub certificate_pem: String,
    /// The certificate to trust for this server: its CA, or itself when self-signed.
    pub ca_pem: String,
    seen: Arc<Seen>,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    handshakes: AtomicUsize,
    requests: AtomicUsize,
    handshake_errors: Mutex<Vec<String>>,
}

/// The server certificate the test wants: its names, when it is valid (relative to now), and
/// whether a private CA of the test's signs it (otherwise it is self-signed).
pub struct CertSpec<'a> {
    pub names: &'a [&'a str],
    pub valid_from: time::Duration,
    pub valid_for: time::Duration,
    pub private_ca: bool,
}

impl HttpsServer {
    /// Starts a server whose certificate (for `localhost` and 127.0.0.1) expires `valid_for`
    /// from now, answering every request with `status` (e.g. "204 No Content").
    pub fn start(valid_for: time::Duration, status: &str) -> Self {
        Self::with_certificate(
            &CertSpec {
                names: &["localhost", "127.0.0.1"],
                valid_from: -time::Duration::hours(1),
                valid_for,
                private_ca: false,
            },
            status,
        )
    }

    /// Starts a server with the certificate `spec` describes; `ca_pem` is then what to trust.
    pub fn with_certificate(spec: &CertSpec<'_>, status: &str) -> Self {
        let (cert, key, ca_pem) = certificate(spec);
        let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key_der)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("bound address").port();
        let seen = Arc::new(Seen::default());
        let stop = CancellationToken::new();
        let response =
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || serve(listener, acceptor, response, seen, stop))
        };
        Self {
            port,
            certificate_pem: cert.pem(),
            ca_pem,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::Acquire)
    }

    /// TLS handshakes completed.
    pub fn handshakes(&self) -> usize {
        self.seen.handshakes.load(Ordering::Acquire)
    }

    /// HTTP requests answered.
    pub fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::Acquire)
    }

    /// Why handshakes failed, as the server saw it (e.g. the client's alert).
    pub fn handshake_errors(&self) -> Vec<String> {
        self.seen
            .handshake_errors
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server certificate, its key, and the PEM certificate a client should trust for it.
/// A certificate as `spec` describes it, its key, and the PEM to trust for it.
pub fn certificate(spec: &CertSpec<'_>) -> (rcgen::Certificate, rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let names: Vec<String> = spec.names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("certificate params");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + spec.valid_from;
    params.not_after = now + spec.valid_for;
    let (cert, ca_pem) = if spec.private_ca {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Firstline Test Company CA");
        ca.not_before = now - time::Duration::days(1);
        ca.not_after = now + time::Duration::days(3650);
        let issuer = rcgen::CertifiedIssuer::self_signed(ca, ca_key).expect("CA certificate");
        let cert = params.signed_by(&key, &issuer).expect("signed certificate");
        (cert, issuer.pem())
    } else {
        let cert = params.self_signed(&key).expect("self-signed certificate");
        let pem = cert.pem();
        (cert, pem)
    };
    (cert, key, ca_pem)
}

fn serve(
    listener: std::net::TcpListener,
    acceptor: TlsAcceptor,
    response: String,
    seen: Arc<Seen>,
    stop: CancellationToken,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else { continue };
            seen.connections.fetch_add(1, Ordering::AcqRel);
            let (acceptor, response, seen) = (acceptor.clone(), response.clone(), seen.clone());
            tokio::spawn(async move { answer(stream, acceptor, &response, &seen).await });
        }
    });
}

/// One connection: handshake, read the request head, answer, close.
async fn answer(stream: tokio::net::TcpStream, acceptor: TlsAcceptor, response: &str, seen: &Seen) {
    let mut tls = match acceptor.accept(stream).await {
        Ok(tls) => tls,
        Err(error) => {
            if let Ok(mut errors) = seen.handshake_errors.lock() {
                errors.push(error.to_string());
            }
            return;
        }
    };
    seen.handshakes.fetch_add(1, Ordering::AcqRel);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    if tls.write_all(response.as_bytes()).await.is_ok() {
        seen.requests.fetch_add(1, Ordering::AcqRel);
    }
    let _ = tls.shutdown().await;
}
