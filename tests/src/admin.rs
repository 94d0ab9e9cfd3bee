//! The collector's admin API as the CLI reaches it: gRPC with the operator certificate from the
//! collector's data directory, trusting only its CA. Tests read hosts and tickets here as typed
//! wire messages (the contract), not through the CLI's JSON, whose shape is for people's scripts.

use std::path::Path;
use std::time::Duration;

use firstline_proto::v1::admin_client::AdminClient;
use firstline_proto::v1::{Host, ListHostsRequest, ListTicketsRequest, Ticket};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A blocking admin client with its own small runtime, for the synchronous tests.
pub struct Admin {
    runtime: tokio::runtime::Runtime,
    client: AdminClient<Channel>,
}

/// Connects to the admin API at `url` with the operator credentials in `data_dir`.
pub async fn connect(url: &str, data_dir: &Path) -> AdminClient<Channel> {
    let read = |name: &str| {
        let path = data_dir.join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.crt")))
        .identity(Identity::from_pem(
            read("operator.crt"),
            read("operator.key"),
        ))
        // The collector's server certificate always names localhost (see the CLI's client).
        .domain_name("localhost");
    let channel = Endpoint::from_shared(url.to_owned())
        .expect("collector URL")
        .tls_config(tls)
        .expect("TLS config")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot reach the admin API at {url}: {e}"));
    AdminClient::new(channel)
}

/// Every ticket of `agent_id` (all states), through `ListTickets`.
pub async fn list_tickets(client: &mut AdminClient<Channel>, agent_id: &str) -> Vec<Ticket> {
    client
        .list_tickets(ListTicketsRequest {
            agent_id: agent_id.to_owned(),
            ..ListTicketsRequest::default()
        })
        .await
        .expect("ListTickets")
        .into_inner()
        .tickets
}

impl Admin {
    pub fn connect(url: &str, data_dir: &Path) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime.block_on(connect(url, data_dir));
        Self { runtime, client }
    }

    /// Every host the collector knows.
    pub fn hosts(&mut self) -> Vec<Host> {
        self.runtime
            .block_on(self.client.list_hosts(ListHostsRequest {}))
            .expect("ListHosts")
            .into_inner()
            .hosts
    }

    /// The host of `agent_id`, once it has reported.
    pub fn host(&mut self, agent_id: &str) -> Option<Host> {
        self.hosts().into_iter().find(|h| h.agent_id == agent_id)
    }

    /// The host of `agent_id` as JSON in the wire contract's field names (for facts that tests
    /// compare as a whole, e.g. one probe's section).
    pub fn host_json(&mut self, agent_id: &str) -> Option<serde_json::Value> {
        self.host(agent_id)
            .map(|h| serde_json::to_value(h).expect("host as JSON"))
    }

    /// Every ticket of `agent_id`.
    pub fn tickets(&mut self, agent_id: &str) -> Vec<Ticket> {
        self.runtime
            .block_on(list_tickets(&mut self.client, agent_id))
    }

    /// The tickets of `agent_id` for one rule and subject (e.g. `disk.usage` on a mount point).
    pub fn tickets_about(&mut self, agent_id: &str, rule_id: &str, subject: &str) -> Vec<Ticket> {
        let mut tickets = self.tickets(agent_id);
        tickets.retain(|t| t.rule_id == rule_id && t.subject == subject);
        tickets
    }

    /// The used percentage of `mount` in the host's latest report, as the collector computes it
    /// (used / (used + available): what users can still write).
    pub fn used_percent(&mut self, agent_id: &str, mount: &str) -> Option<f64> {
        let host = self.host(agent_id)?;
        let fs = host.filesystems.iter().find(|f| f.mount_point == mount)?;
        let usable = fs.used_bytes + fs.available_bytes;
        (usable > 0).then(|| fs.used_bytes as f64 * 100.0 / usable as f64)
    }
}
