//! Two network namespaces joined by a veth pair, made and removed by the test: a client (where
//! the agent runs) and a server (the default gateway, a DNS responder and a TCP listener).
//! Nothing leaves the namespaces the test created.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The pair of namespaces, deleted on drop.
pub struct NetLab {
    pub client: String,
    pub server: String,
    pub server_ip: Ipv4Addr,
    pub client_ip: Ipv4Addr,
    server_if: String,
}

/// A server thread running inside the server namespace; stopped on drop.
pub struct Service {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetLab {
    /// Creates the namespaces, the veth pair, addresses and the client's default route.
    pub fn create() -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "network namespace tests must run as root (scripts/test.sh does)"
        );
        // Unique per lab, also between labs of one test process that run in parallel.
        static LABS: AtomicU32 = AtomicU32::new(0);
        let tag = (std::process::id() % 100_000) * 100 + LABS.fetch_add(1, Ordering::Relaxed) % 100;
        let n = u8::try_from(tag % 200 + 20).unwrap_or(20);
        let lab = Self {
            client: format!("flc{tag}"),
            server: format!("fls{tag}"),
            server_ip: Ipv4Addr::new(10, 213, n, 1),
            client_ip: Ipv4Addr::new(10, 213, n, 2),
            server_if: format!("fvs{tag}"),
        };
        let client_if = format!("fvc{tag}");
        ip(&["netns", "add", &lab.client]);
        ip(&["netns", "add", &lab.server]);
        ip(&[
            "link",
            "add",
            &client_if,
            "netns",
            &lab.client,
            "type",
            "veth",
            "peer",
            "name",
            &lab.server_if,
            "netns",
            &lab.server,
        ]);
        let (c, s) = (
            format!("{}/24", lab.client_ip),
            format!("{}/24", lab.server_ip),
        );
        ip(&["-n", &lab.client, "addr", "add", &c, "dev", &client_if]);
        ip(&["-n", &lab.server, "addr", "add", &s, "dev", &lab.server_if]);
        for (ns, dev) in [(&lab.client, &client_if), (&lab.server, &lab.server_if)] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "-n",
            &lab.client,
            "route",
            "add",
            "default",
            "via",
            &lab.server_ip.to_string(),
        ]);
        lab
    }

    /// Removes the client's default route: only the server's subnet stays reachable.
    pub fn remove_default_route(&self) {
        ip(&["-n", &self.client, "route", "del", "default"]);
    }

    /// Cuts the link (the server's end goes down).
    pub fn cut(&self) {
        ip(&["-n", &self.server, "link", "set", &self.server_if, "down"]);
    }

    /// Runs `serve` in a thread that has entered the server namespace; `serve` is called
    /// repeatedly until the service is dropped.
    pub fn serve<S: Send + 'static>(
        &self,
        setup: impl FnOnce() -> S + Send + 'static,
        serve: impl Fn(&S) + Send + 'static,
    ) -> Service {
        let path = format!("/run/netns/{}", self.server);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("open namespace");
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("enter the server namespace");
            let state = setup();
            let _ = ready_tx.send(());
            while !flag.load(Ordering::Acquire) {
                serve(&state);
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("service ready");
        Service {
            stop,
            thread: Some(thread),
        }
    }

    /// A TCP listener on the server address that accepts and closes connections.
    pub fn tcp_listener(&self, port: u16) -> Service {
        let addr = (self.server_ip, port);
        self.serve(
            move || {
                let l = TcpListener::bind(addr).expect("bind listener");
                l.set_nonblocking(true).expect("nonblocking");
                l
            },
            |l| {
                let _ = l.accept();
                std::thread::sleep(Duration::from_millis(10));
            },
        )
    }

    /// A DNS responder on the server address: `names` get an A record, anything else NXDOMAIN.
    pub fn dns_responder(&self, names: &'static [(&'static str, Ipv4Addr)]) -> Service {
        let addr = (self.server_ip, 53);
        self.serve(
            move || {
                let s = UdpSocket::bind(addr).expect("bind DNS");
                s.set_read_timeout(Some(Duration::from_millis(50)))
                    .expect("timeout");
                s
            },
            move |s| {
                let mut buf = [0u8; 512];
                if let Ok((n, from)) = s.recv_from(&mut buf)
                    && let Some(reply) = dns_reply(&buf[..n], names)
                {
                    let _ = s.send_to(&reply, from);
                }
            },
        )
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one DNS query (RFC 1035): an A record for a known name, NXDOMAIN otherwise.
pub fn dns_reply(query: &[u8], names: &[(&str, Ipv4Addr)]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // Read the question name.
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question_end = i + 4;
    let name = labels.join(".");
    let answer = names.iter().find(|(n, _)| *n == name).map(|(_, ip)| *ip);
    let mut reply = query[..question_end].to_vec();
    reply[2] = 0x81 | (query[2] & 0x01); // response, recursion desired copied
    let rcode = if answer.is_some() { 0 } else { 3 };
    reply[3] = 0x80 | rcode; // recursion available
    let answers: u16 = if answer.is_some() && qtype == 1 { 1 } else { 0 };
    reply[6..8].copy_from_slice(&answers.to_be_bytes());
    reply[8..12].copy_from_slice(&[0, 0, 0, 0]);
    if let (Some(ip), 1) = (answer, answers) {
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        reply.extend_from_slice(&ip.octets());
    }
    Some(reply)
}
