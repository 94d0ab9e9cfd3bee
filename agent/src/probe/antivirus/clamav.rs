//! ClamAV: clamd's socket protocol (`zPING`, `zVERSION`), its reply
//! `ClamAV 1.4.6/27462/Mon Nov 18 08:34:28 2024`, the 512-byte `ClamAV-VDB:` header of the
//! database files (version and publication time, readable with clamd stopped), and the parts
//! of clamd.conf that say where the socket and the databases are.

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
    pub database_directory: Option<PathBuf>,
    pub on_access: bool,
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
pub fn definitions_ms(header: Option<&DbHeader>, version: Option<&ClamdVersion>) -> i64 {
    if let Some(h) = header.filter(|h| h.stime > 0) {
        return h.stime * 1000;
    }
    version
        .and_then(|v| v.db_date)
        .and_then(local_to_epoch_ms)
        .unwrap_or(0)
}

/// Sends one command (`zPING`, `zVERSION`) to clamd's unix socket and returns the reply.
#[cfg(unix)]
pub async fn query(
    socket: &Path,
    command: &str,
    timeout: std::time::Duration,
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await?;
        stream.write_all(format!("z{command}\0").as_bytes()).await?;
        let mut reply = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut reply).await?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "clamd did not answer",
            ))
        })
}

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
}
