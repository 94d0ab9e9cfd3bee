//! A collector running inside the test process on 127.0.0.1:0 (the same library the binary
//! runs), for the gRPC tests that need to look at status codes and the store directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use firstline_agent::enroll::{EnrollError, EnrollParams, enroll};
use firstline_agent::identity::Identity;
use firstline_collector::config::{Config, Overrides};
use firstline_collector::server::Collector;
use firstline_collector::store::Store;
use firstline_collector::tokens::create_token;
use tokio_util::sync::CancellationToken;

/// A running in-process collector, shut down on drop.
pub struct InProcess {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub store: Store,
    pub data_dir: PathBuf,
    shutdown: CancellationToken,
}

impl InProcess {
    /// Starts a collector with the default config on a SQLite file in a temporary directory.
    pub async fn start() -> Self {
        Self::start_with(false).await.0
    }

    /// Starts a collector with the HTTP API on a free loopback port; returns its address.
    pub async fn start_with_http() -> (Self, SocketAddr) {
        let (me, http) = Self::start_with(true).await;
        (me, http.expect("http address"))
    }

    /// Starts a collector with the HTTP API on a free loopback port and the default config
    /// changed by `adjust`; returns its address.
    pub async fn start_with_http_configured(
        adjust: impl FnOnce(&mut Config),
    ) -> (Self, SocketAddr) {
        let (me, http) = Self::start_inner(true, adjust).await;
        (me, http.expect("http address"))
    }

    /// Starts a collector with the default config changed by `adjust`.
    pub async fn start_configured(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_inner(false, adjust).await.0
    }

    async fn start_with(http: bool) -> (Self, Option<SocketAddr>) {
        Self::start_inner(http, |_| {}).await
    }

    async fn start_inner(
        http: bool,
        adjust: impl FnOnce(&mut Config),
    ) -> (Self, Option<SocketAddr>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("collector");
        let overrides = Overrides {
            data_dir: Some(data_dir.clone()),
            grpc_listen: Some("127.0.0.1:0".into()),
            store_url: None,
        };
        let mut config = Config::load(None, &overrides).expect("default config");
        if http {
            config.http_listen = Some("127.0.0.1:0".parse().expect("addr"));
        }
        adjust(&mut config);
        let collector = Collector::start(&config).await.expect("collector starts");
        let addr = collector.local_addr().expect("bound address");
        let http_addr = collector.http_addr();
        let store = collector.store();
        let shutdown = CancellationToken::new();
        tokio::spawn(collector.run(shutdown.clone()));
        let me = Self {
            dir,
            addr,
            store,
            data_dir,
            shutdown,
        };
        (me, http_addr)
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("ca.crt")).expect("ca.crt")
    }

    /// Enrolls a fresh agent identity (state in its own directory) with `token`.
    pub async fn enroll_with(&self, token: &str, name: &str) -> Result<Identity, EnrollError> {
        let state = self.dir.path().join(name);
        let ca = self.ca_pem();
        enroll(
            &state,
            &EnrollParams {
                collector_url: &self.url(),
                token,
                ca_pem: &ca,
                hostname: name,
                force: false,
            },
        )
        .await
    }

    /// Enrolls `host` as a fresh agent and reports its root filesystem `used` percent full:
    /// 93 opens a P2 disk ticket, 97 a P1. The report is acknowledged after the commit, so its
    /// ticket and events are in the store when this returns.
    pub async fn report_disk(&self, host: &str, used: u64) {
        let identity = self.enroll(host).await;
        report_disk_as(&identity, host, used).await;
    }

    /// Enrolls a fresh agent with a new token that gives its hosts `labels`.
    pub async fn enroll_labelled(&self, name: &str, labels: &[&str]) -> Identity {
        let labels: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
        let token = firstline_collector::tokens::create_token_with_labels(
            &self.store,
            "test",
            &labels,
            Duration::from_secs(3600),
            1,
        )
        .await
        .expect("token");
        self.enroll_with(&token.secret, name)
            .await
            .expect("enrollment")
    }

    /// Enrolls a fresh agent with a new token.
    pub async fn enroll(&self, name: &str) -> Identity {
        let token = create_token(&self.store, "test", Duration::from_secs(3600), 1)
            .await
            .expect("token");
        self.enroll_with(&token.secret, name)
            .await
            .expect("enrollment")
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Reports `host`'s root filesystem `used` percent full with `identity`, as in
/// [`InProcess::report_disk`].
pub async fn report_disk_as(identity: &Identity, host: &str, used: u64) {
    use firstline_collector::clock::now_ms;
    use firstline_proto::v1::agent_client::AgentClient;
    use firstline_proto::v1::{Filesystem, ReportRequest, Snapshot};
    let snapshot = Snapshot {
        seq: 1,
        taken_at_ms: now_ms(),
        hostname: host.into(),
        filesystems: vec![Filesystem {
            mount_point: "/".into(),
            total_bytes: 100,
            used_bytes: used,
            available_bytes: 100 - used,
            ..Default::default()
        }],
        ..Default::default()
    };
    AgentClient::new(firstline_agent::uplink::channel(identity).expect("channel"))
        .report(ReportRequest {
            snapshots: vec![snapshot],
            sent_at_ms: now_ms(),
        })
        .await
        .expect("report");
}

/// Sends one snapshot numbered `seq` from `hostname` with `identity`'s certificate.
pub async fn report_one(
    identity: &Identity,
    seq: u64,
    hostname: &str,
) -> Result<firstline_proto::v1::ReportAck, tonic::Status> {
    use firstline_collector::clock::now_ms;
    use firstline_proto::v1::agent_client::AgentClient;
    use firstline_proto::v1::{ReportRequest, Snapshot};
    let snapshot = Snapshot {
        seq,
        taken_at_ms: now_ms(),
        hostname: hostname.into(),
        ..Default::default()
    };
    AgentClient::new(firstline_agent::uplink::channel(identity).expect("channel"))
        .report(ReportRequest {
            snapshots: vec![snapshot],
            sent_at_ms: now_ms(),
        })
        .await
        .map(tonic::Response::into_inner)
}
