//! ClamAV: clamd's socket protocol (`zPING`, `zVERSION`), its reply
//! `ClamAV 1.4.6/27462/Mon Nov 18 08:34:28 2024`, the 512-byte `ClamAV-VDB:` header of the
//! database files (version and publication time, readable with clamd stopped), and the parts
//! of clamd.conf that say where the socket (unix or TCP) and the databases are. A socket that
//! refuses is told apart from one that accepts and never answers (a hung clamd).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::clock::{local_to_epoch_ms, month_number};

/// What `VERSION` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClamdVersion {
    pub engine: String,
    pub db_version: Option<u32>,
    /// The database date as printed (clamd's local time).
    pub db_date: Option<(i32, u8, u8, u8, u8, u8)>,
}

/// A database file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbHeader {
    pub version: u32,
    /// Publication time, seconds since the epoch.
    pub stime: i64,
}

/// The clamd.conf settings the probe needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClamdConf {
    pub local_socket: Option<PathBuf>,
    pub tcp_socket: Option<u16>,
    /// The first `TCPAddr` (clamd listens on every one named).
    pub tcp_addr: Option<String>,
    pub database_directory: Option<PathBuf>,
    /// `OnAccessIncludePath`/`OnAccessMountPath`: clamonacc is configured (it may not run).
    pub on_access: bool,
}

/// Where clamd listens, as its clamd.conf says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdSocket {
    Unix(PathBuf),
    Tcp(String, u16),
}

/// Why clamd gave no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// Nothing accepts on the socket (refused, no such socket): clamd is not running.
    NotRunning(String),
    /// The socket accepted (or never refused) but no reply came in time: clamd is hung.
    NotAnswering(String),
}

impl ClamdConf {
    /// The socket the agent speaks to: `LocalSocket`, else `TCPSocket` on `TCPAddr` (clamd's
    /// default, every address, is reached on the loopback address).
    pub fn socket(&self) -> Option<ClamdSocket> {
        if let Some(path) = &self.local_socket {
            return Some(ClamdSocket::Unix(path.clone()));
        }
        let port = self.tcp_socket?;
        let host = match self.tcp_addr.as_deref() {
            None | Some("0.0.0.0") | Some("any") => "127.0.0.1",
            Some("::") => "::1",
            Some(addr) => addr,
        };
        Some(ClamdSocket::Tcp(host.to_owned(), port))
    }
}

impl fmt::Display for ClamdSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "{}", path.display()),
            Self::Tcp(host, port) if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Tcp(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRunning(why) => write!(f, "clamd not running: {why}"),
            Self::NotAnswering(why) => write!(f, "clamd not answering: {why}"),
        }
    }
}

/// Parses a `VERSION` reply (NUL or newline terminated).
pub fn parse_version(reply: &str) -> Option<ClamdVersion> {
    let reply = reply.trim_end_matches(['\0', '\n', '\r']);
    let rest = reply.strip_prefix("ClamAV ")?;
    let mut parts = rest.splitn(3, '/');
    let engine = parts.next()?.trim().to_owned();
    let db_version = parts.next().and_then(|v| v.trim().parse().ok());
    let db_date = parts.next().and_then(parse_ctime);
    Some(ClamdVersion {
        engine,
        db_version,
        db_date,
    })
}

/// `Mon Nov 18 08:34:28 2024` (ctime format) into its parts.
pub fn parse_ctime(s: &str) -> Option<(i32, u8, u8, u8, u8, u8)> {
    let f: Vec<&str> = s.split_whitespace().collect();
    let [_, month, day, time, year] = f.as_slice() else {
        return None;
    };
    let hms: Vec<u8> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    let [h, mi, sec] = hms.as_slice() else {
        return None;
    };
    Some((
        year.parse().ok()?,
        month_number(month)?,
        day.parse().ok()?,
        *h,
        *mi,
        *sec,
    ))
}

/// Parses the header of a .cvd/.cld/.cud file:
/// `ClamAV-VDB:<time>:<version>:<sigs>:<flevel>:<md5>:<dsig>:<builder>:<stime>`.
pub fn parse_db_header(bytes: &[u8]) -> Option<DbHeader> {
    let head = &bytes[..bytes.len().min(512)];
    let text = std::str::from_utf8(head).ok()?;
    let line = text.lines().next()?.trim_end();
    let fields: Vec<&str> = line.strip_prefix("ClamAV-VDB:")?.split(':').collect();
    Some(DbHeader {
        version: fields.get(1)?.trim().parse().ok()?,
        stime: fields
            .get(7)
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0),
    })
}

/// Parses clamd.conf (`Key value` lines, `#` comments).
pub fn parse_clamd_conf(text: &str) -> ClamdConf {
    let mut conf = ClamdConf::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let value = value.trim();
        match key {
            "LocalSocket" => conf.local_socket = Some(value.into()),
            "TCPSocket" => conf.tcp_socket = value.parse().ok(),
            "TCPAddr" if conf.tcp_addr.is_none() => conf.tcp_addr = Some(value.to_owned()),
            "DatabaseDirectory" => conf.database_directory = Some(value.into()),
            "OnAccessIncludePath" | "OnAccessMountPath" => conf.on_access = true,
            _ => {}
        }
    }
    conf
}

/// The newest `daily` database header in a directory (daily.cld, daily.cvd or daily.cud),
/// falling back to `main`. Blocks (reads files).
pub fn newest_db_header(dir: &Path) -> Option<DbHeader> {
    let read = |name: &str| -> Option<DbHeader> {
        let mut buf = vec![0u8; 512];
        let mut file = std::fs::File::open(dir.join(name)).ok()?;
        let n = std::io::Read::read(&mut file, &mut buf).ok()?;
        parse_db_header(&buf[..n])
    };
    let pick = |base: &str| {
        ["cld", "cvd", "cud"]
            .iter()
            .filter_map(|ext| read(&format!("{base}.{ext}")))
            .max_by_key(|h| h.version)
    };
    pick("daily").or_else(|| pick("main"))
}

/// The definitions date in ms: the header's exact time when known, else VERSION's local time.
/// A header time too large to be one (a damaged file) counts as unknown.
pub fn definitions_ms(header: Option<&DbHeader>, version: Option<&ClamdVersion>) -> i64 {
    if let Some(ms) = header
        .filter(|h| h.stime > 0)
        .and_then(|h| h.stime.checked_mul(1000))
    {
        return ms;
    }
    version
        .and_then(|v| v.db_date)
        .and_then(local_to_epoch_ms)
        .unwrap_or(0)
}

/// Sends one command (`zPING`, `zVERSION`) to clamd and returns the reply, waiting until
/// `deadline` at most. A refused connection means clamd is not running; a connection that
/// hangs, or closes without a reply, means it is not answering.
#[cfg(unix)]
pub async fn query(
    socket: &ClamdSocket,
    command: &str,
    deadline: tokio::time::Instant,
) -> Result<String, QueryError> {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        mut stream: S,
        command: &str,
    ) -> std::io::Result<Vec<u8>> {
        stream.write_all(format!("z{command}\0").as_bytes()).await?;
        let mut reply = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut reply).await?;
        Ok(reply)
    }
    let waited = |start: tokio::time::Instant| {
        let secs = start.elapsed().as_secs_f64();
        format!("{socket}: no reply within {secs:.1}s")
    };
    let start = tokio::time::Instant::now();
    let work = async {
        let connected = match socket {
            ClamdSocket::Unix(path) => tokio::net::UnixStream::connect(path)
                .await
                .map(|s| Box::new(s) as Box<dyn Stream>),
            ClamdSocket::Tcp(host, port) => tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map(|s| Box::new(s) as Box<dyn Stream>),
        };
        let stream = connected.map_err(|e| QueryError::NotRunning(format!("{socket}: {e}")))?;
        match exchange(stream, command).await {
            Ok(reply) if !reply.is_empty() => Ok(String::from_utf8_lossy(&reply).into_owned()),
            Ok(_) => Err(QueryError::NotAnswering(format!(
                "{socket}: closed without a reply"
            ))),
            Err(e) => Err(QueryError::NotAnswering(format!("{socket}: {e}"))),
        }
    };
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| Err(QueryError::NotAnswering(waited(start))))
}

/// A connected unix or TCP stream.
#[cfg(unix)]
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
#[cfg(unix)]
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_replies() {
        let v = parse_version("ClamAV 1.4.6/27462/Mon Nov 18 08:34:28 2024\0").expect("parses");
        assert_eq!(v.engine, "1.4.6");
        assert_eq!(v.db_version, Some(27462));
        assert_eq!(v.db_date, Some((2024, 11, 18, 8, 34, 28)));
        let bare = parse_version("ClamAV 1.4.6\0").expect("parses");
        assert_eq!((bare.db_version, bare.db_date), (None, None));
        assert_eq!(parse_version("UNKNOWN COMMAND\0"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn database_headers() {
        let mut official = b"ClamAV-VDB:16 Apr 2020 07-58 -0400:25784:2267600:63:92baacd59fd26e6bcf03077add78d209:4Jp9JtGJY6nUk8JHDQQpQeBw:raynman:1587038339".to_vec();
        official.resize(512, b' ');
        official.extend_from_slice(b"COPYING\0\0\0");
        assert_eq!(
            parse_db_header(&official),
            Some(DbHeader {
                version: 25784,
                stime: 1_587_038_339
            })
        );
        let cud = b"ClamAV-VDB:18 Nov 2024 08-34 +0000:27462:2:1:5f8de09b758098f74aa9702d3aa3c8ee:X:firstline:1731918868";
        assert_eq!(
            parse_db_header(cud),
            Some(DbHeader {
                version: 27462,
                stime: 1_731_918_868
            })
        );
        assert_eq!(parse_db_header(b"\x1f\x8b garbage"), None);
        // A damaged header's time beyond i64 milliseconds falls back to VERSION's date.
        let huge = parse_db_header(b"ClamAV-VDB:x:1:x:x:x:x:x:99999999999999999");
        assert_eq!(huge.as_ref().map(|h| h.stime), Some(99_999_999_999_999_999));
        assert_eq!(definitions_ms(huge.as_ref(), None), 0);
        let version = parse_version("ClamAV 1.4.6/27462/Mon Nov 18 08:34:28 2024\0");
        assert_eq!(
            definitions_ms(huge.as_ref(), version.as_ref()),
            definitions_ms(None, version.as_ref())
        );
        assert_ne!(definitions_ms(None, version.as_ref()), 0);
        assert_eq!(
            definitions_ms(parse_db_header(cud).as_ref(), None),
            1_731_918_868_000
        );
    }

    #[test]
    fn clamd_conf_socket_and_database() {
        let conf = parse_clamd_conf(
            "# comment\nLocalSocket /run/clamav/clamd.ctl\nFixStaleSocket true\nDatabaseDirectory /var/lib/clamav\n#OnAccessIncludePath /home\n",
        );
        assert_eq!(conf.local_socket, Some("/run/clamav/clamd.ctl".into()));
        assert_eq!(conf.database_directory, Some("/var/lib/clamav".into()));
        assert!(!conf.on_access);
        assert!(parse_clamd_conf("OnAccessIncludePath /home\n").on_access);
    }

    #[test]
    fn clamd_conf_names_the_socket_to_speak_to() {
        let socket = |text: &str| parse_clamd_conf(text).socket();
        let tcp = |host: &str, port| Some(ClamdSocket::Tcp(host.into(), port));
        let cases = [
            (
                "LocalSocket /run/c.ctl\nTCPSocket 3310\n",
                Some(ClamdSocket::Unix("/run/c.ctl".into())),
            ),
            ("TCPSocket 3310\n", tcp("127.0.0.1", 3310)),
            (
                "TCPSocket 3310\nTCPAddr 10.0.0.5\nTCPAddr 127.0.0.1\n",
                tcp("10.0.0.5", 3310),
            ),
            ("TCPAddr ::\nTCPSocket 3311\n", tcp("::1", 3311)),
            ("TCPSocket none\n", None),
            ("#LocalSocket /run/c.ctl\n", None),
        ];
        for (text, expected) in cases {
            assert_eq!(socket(text), expected, "{text:?}");
        }
        assert_eq!(
            tcp("::1", 3310).map(|s| s.to_string()),
            Some("[::1]:3310".into())
        );
    }
}
