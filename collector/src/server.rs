//! `firstline-collector serve`: opens the store, loads the CA, and serves the gRPC services with
//! TLS until the shutdown token is cancelled. Client certificates are optional at the handshake
//! (enrollment has none yet) but must chain to the collector's CA when presented; every other
//! call checks for one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use firstline_proto::limits::MAX_MESSAGE_BYTES;
use firstline_proto::v1::{
    admin_server::AdminServer, agent_server::AgentServer, enrollment_server::EnrollmentServer,
    feed_server::FeedServer,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::clock::{now_ms, to_ms};
use crate::config::Config;
use crate::feeds::Feeds;
use crate::grpc::{
    AdminService, AgentService, EnrollmentService, FeedService, LiveRegistry, Shared, status_remap,
};
use crate::helpdesk::FeedsAndHelpdesk;
use crate::ingest::writer::{Writer, WriterLimits};
use crate::pki::{Authority, OPERATOR_CERT_FILE, fingerprint};
use crate::service::Service;
use crate::store::{CertKind, NewCertificate, Store};

/// Name of the operator certificate the collector issues for local use.
pub const LOCAL_OPERATOR: &str = "local-admin";

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("help-desk sync: {0}")]
    Helpdesk(String),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("gRPC reflection cannot start: {0}")]
    Reflection(String),
}

/// The services the health service reports on, by their full gRPC names.
const SERVICES: [&str; 4] = [
    "firstline.v1.Enrollment",
    "firstline.v1.Agent",
    "firstline.v1.Admin",
    "firstline.v1.Feed",
];

/// A bound, ready server; `run` serves it.
pub struct Collector {
    listener: TcpListener,
    retention: crate::retention::RetentionPolicy,
    http: Option<(TcpListener, String)>,
    web_options: crate::web::WebOptions,
    shared: Arc<Shared>,
    feeds: Arc<FeedsAndHelpdesk>,
}

impl Collector {
    /// Opens the store, loads or creates the CA and the local operator certificate, and binds.
    pub async fn start(config: &Config) -> Result<Self, ServeError> {
        raise_open_files_limit();
        crate::telemetry::init();
        let mut authority = Authority::load_or_create(&config.data_dir, &config.server_names)?;
        authority.take_up_rotation(&config.data_dir, now_ms())?;
        let store = Store::open(&config.effective_store_url()).await?;
        ensure_operator_certificate(&store, &authority, config).await?;
        let listener = TcpListener::bind(config.grpc_listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.grpc_listen,
                source,
            })?;
        let engine = Arc::new(config.engine.clone());
        let store_handle = store.clone();
        let feeds = FeedsAndHelpdesk::new(
            Feeds::new(config.feeds.clone()),
            &config.helpdesk,
            config.engine.sla,
            &config.engine.correlation.rules,
            config.kb_dir.clone(),
        )
        .map_err(ServeError::Helpdesk)?;
        let live = Arc::new(LiveRegistry::default());
        let service = Service::new(store, engine.clone(), config.kb_dir.clone())
            .with_feeds(feeds.clone())
            .with_live(live.clone());
        let writer = Writer::start(store_handle, engine, WriterLimits::default());
        let shared = Arc::new(Shared {
            service,
            writer,
            identities: Default::default(),
            authority,
            certificate_validity: config.certificate_validity,
            heartbeat_seconds: u32::try_from(config.heartbeat.as_secs()).unwrap_or(u32::MAX),
            duty: tokio::sync::watch::Sender::new(false),
            watch_stall_timeout: config.watch_stall_timeout,
            live,
            limits: crate::rate_limits::RateLimits::new(&config.limits),
        });
        let http = match config.http_listen {
            Some(addr) => {
                let key = crate::web::load_or_create_key(&config.data_dir)
                    .map_err(|source| ServeError::Bind { addr, source })?;
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?;
                Some((listener, key))
            }
            None => None,
        };
        Ok(Self {
            listener,
            retention: config.retention,
            http,
            web_options: crate::web::WebOptions {
                secure_cookies: config.http_secure_cookies,
                ..Default::default()
            },
            shared,
            feeds,
        })
    }

    /// The HTTP API's bound address, when enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The store this collector writes to.
    pub fn store(&self) -> Store {
        self.shared.store().clone()
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight calls finish.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServeError> {
        let shared = self.shared;
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(
                &shared.authority.server_cert_pem,
                &shared.authority.server_key_pem,
            ))
            .client_ca_root(Certificate::from_pem(shared.authority.ca_cert_pem()))
            .client_auth_optional(true)
            .timeout(Duration::from_secs(10));
        let enrollment = EnrollmentServer::new(EnrollmentService::new(shared.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let agent = AgentServer::new(AgentService::new(shared.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let admin = AdminServer::new(AdminService::new(shared.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let feed = FeedServer::new(FeedService::new(shared.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        // Standard health checking and reflection, so load balancers, grpc_health_probe and
        // grpcurl work without the .proto files. Both answer without a client certificate.
        let (health_reporter, health) = tonic_health::server::health_reporter();
        for name in SERVICES {
            health_reporter
                .set_service_status(name, tonic_health::ServingStatus::Serving)
                .await;
        }
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(firstline_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| ServeError::Reflection(e.to_string()))?;
        let addr = self
            .listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(addr = %addr, "collector serving gRPC");
        let duty = tokio::spawn(crate::duty::run(
            shared.clone(),
            self.retention,
            shutdown.clone(),
        ));
        let feed_tasks = self
            .feeds
            .start(shared.store(), shared.duty.subscribe(), &shutdown);
        let (limits, stop) = (shared.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = every.tick() => limits.limits.prune(),
                    () = stop.cancelled() => return,
                }
            }
        });
        let stopping = shutdown.clone();
        let health_on_stop = health_reporter.clone();
        let live = shared.live.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            // Live channels never end on their own: end them, so the graceful shutdown does
            // not wait for agents (they reconnect to whichever collector comes back).
            live.close_all();
            for name in SERVICES.iter().chain(std::iter::once(&"")) {
                health_on_stop
                    .set_service_status(name, tonic_health::ServingStatus::NotServing)
                    .await;
            }
        });
        let mut web_options = self.web_options;
        web_options.shutdown = shutdown.clone();
        let web = self.http.map(|(listener, key)| {
            let app = crate::web::router_with(shared.service.clone(), &key, web_options);
            let stop = shutdown.clone();
            let addr = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            tracing::info!(addr = %addr, "collector serving the HTTP API");
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                {
                    tracing::error!(%error, "HTTP API failed");
                }
            })
        });
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        Server::builder()
            .tls_config(tls)?
            .timeout(Duration::from_secs(30))
            .concurrency_limit_per_connection(32)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .layer(tower::util::MapResponseLayer::new(status_remap::remap))
            .add_service(enrollment)
            .add_service(agent)
            .add_service(admin)
            .add_service(feed)
            .add_service(health)
            .add_service(reflection)
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await?;
        let _ = duty.await;
        for task in feed_tasks {
            let _ = task.await;
        }
        // Reports already taken are committed and answered before the store closes.
        shared.writer.drain(Duration::from_secs(30)).await;
        if let Some(web) = web {
            let _ = web.await;
        }
        shared.store().close().await;
        tracing::info!("collector stopped");
        Ok(())
    }
}

/// Makes sure `operator.crt` in the data directory exists and is known to the store, so the
/// CLI on this machine can use the admin API.
async fn ensure_operator_certificate(
    store: &Store,
    authority: &Authority,
    config: &Config,
) -> Result<(), ServeError> {
    let path = config.data_dir.join(OPERATOR_CERT_FILE);
    if let Ok(der) = CertificateDer::from_pem_file(&path)
        && store.identity(&fingerprint(&der)).await?.is_some()
    {
        return Ok(());
    }
    let issued = authority.issue_operator(&config.data_dir, LOCAL_OPERATOR)?;
    let now = now_ms();
    let not_after_ms = to_ms(issued.not_after);
    store
        .register_certificate(&NewCertificate {
            fingerprint: issued.fingerprint,
            kind: CertKind::Operator,
            subject: LOCAL_OPERATOR.to_owned(),
            issued_at_ms: now,
            not_after_ms,
        })
        .await?;
    tracing::info!(path = %path.display(), "issued local operator certificate");
    Ok(())
}

/// Every connected agent holds a socket: the soft limit on open files (often 1024) is raised
/// to the hard one, as far as the service manager allows (the packaged unit sets it high).
fn raise_open_files_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let old = getrlimit(Resource::Nofile);
        if old.current < old.maximum {
            let new = Rlimit {
                current: old.maximum,
                maximum: old.maximum,
            };
            match setrlimit(Resource::Nofile, new) {
                Ok(()) => tracing::debug!(open_files = ?old.maximum, "raised the open files limit"),
                Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
            }
        }
    }
}
