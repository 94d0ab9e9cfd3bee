//! A webhook receiver on 127.0.0.1 for the feed tests: a small HTTP/1.1 server on a thread of
//! its own that records every request (headers, raw body, the status it answered) and can be
//! told to answer an error the next N times, or to be down (its listener closed, so
//! connections are refused) and come back on the same port. It answers `Connection: close`,
//! so every attempt of the collector is a connection of its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest body the receiver reads.
const MAX_BODY: usize = 4 << 20;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub status: u16,
    /// When the whole request had been read.
    pub at: std::time::Instant,
}

impl Received {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// Computes the answer to a request: status and body (JSON when it starts with `{` or `[`).
pub type Responder = Arc<dyn Fn(&Received) -> (u16, String) + Send + Sync>;

#[derive(Default)]
struct State {
    requests: Vec<Received>,
    responder: Option<Responder>,
    /// Answer `fail_status` to this many more requests.
    failures_left: u32,
    fail_status: u16,
}

/// A running receiver; stopped on drop.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Option<Server>,
}

struct Server {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Receiver {
    /// Starts on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let state = Arc::new(Mutex::new(State::default()));
        let server = Some(serve(listener, state.clone()));
        Self {
            addr,
            state,
            server,
        }
    }

    /// Starts on a free loopback port, answering each request with what `responder` says
    /// (a help desk's API as its documentation describes it).
    pub fn start_answering(
        responder: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        let me = Self::start();
        me.lock().responder = Some(Arc::new(responder));
        me
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `status` to the next `n` requests (then 200 again).
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut s = self.lock();
        s.failures_left = n;
        s.fail_status = status;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Received> {
        self.lock().requests.clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Closes the listener: connections are refused until [`Receiver::come_back`].
    pub fn go_down(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop.store(true, Ordering::SeqCst);
            // Wakes the accept so the thread sees the flag and drops the listener.
            let _ = TcpStream::connect(self.addr);
            let _ = server.thread.join();
        }
    }

    /// Listens again on the same port.
    pub fn come_back(&mut self) {
        if self.server.is_none() {
            let listener = TcpListener::bind(self.addr).expect("bind the receiver's port again");
            self.server = Some(serve(listener, self.state.clone()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.go_down();
    }
}

fn serve(listener: TcpListener, state: Arc<Mutex<State>>) -> Server {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        for stream in listener.incoming() {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            if let Ok(stream) = stream {
                // A connection that breaks is the client's business; nothing is recorded.
                let _ = handle(stream, &state);
            }
        }
    });
    Server { stop, thread }
}

fn handle(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    if method.is_empty() {
        return Ok(());
    }
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut received = Received {
        method,
        path,
        headers,
        body,
        status: 200,
        at: std::time::Instant::now(),
    };
    let (status, text) = {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        let (status, text) = if s.failures_left > 0 {
            s.failures_left -= 1;
            (s.fail_status, "receiver says no".to_owned())
        } else if let Some(responder) = s.responder.clone() {
            responder(&received)
        } else {
            (200, "ok".to_owned())
        };
        received.status = status;
        s.requests.push(received);
        (status, text)
    };
    let kind = if text.starts_with('{') || text.starts_with('[') {
        "application/json"
    } else {
        "text/plain"
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}
