//! Enrollment values: the collector URL, the one-time token and the collector's CA file that
//! let `run` enroll this machine by itself, the same way on every OS. They come from the
//! `[enrollment]` section of agent.toml, overridden by `FIRSTLINE_COLLECTOR_URL`,
//! `FIRSTLINE_ENROLL_TOKEN` and `FIRSTLINE_CA_FILE` (what the MSI puts in the service's
//! environment), and `enroll`'s flags override both. Installers only place values; the agent
//! does the enrolling, so a refused token leaves a running, retrying agent rather than a
//! failed install. Once an identity exists the values are ignored.
//!
//! Files named here (`token_file`, `ca_file`) are read at each attempt, not when the config
//! loads: an installer or an administrator may put them in place after the agent started.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variable that overrides `enrollment.collector_url`.
pub const ENV_COLLECTOR_URL: &str = "FIRSTLINE_COLLECTOR_URL";
/// The environment variable that overrides `enrollment.token` and `enrollment.token_file`.
pub const ENV_TOKEN: &str = "FIRSTLINE_ENROLL_TOKEN";
/// The environment variable that overrides `enrollment.ca_file`.
pub const ENV_CA_FILE: &str = "FIRSTLINE_CA_FILE";

/// The `[enrollment]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnrollment {
    collector_url: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

/// The effective enrollment values, each with where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrollment {
    pub collector_url: Option<Sourced<String>>,
    pub token: Option<Sourced<TokenSource>>,
    pub ca_file: Option<Sourced<PathBuf>>,
}

/// A value and its origin, so messages can say where to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

/// Where an enrollment value was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `[enrollment]` key of this name in the config file.
    File(&'static str),
    /// The environment variable of this name.
    Env(&'static str),
}

/// The token itself, or a file holding it.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    Inline(String),
    File(PathBuf),
}

/// Everything an attempt needs, once every value is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready<'a> {
    pub collector_url: &'a str,
    pub token: &'a Sourced<TokenSource>,
    pub ca_file: &'a Sourced<PathBuf>,
}

/// Why the token or the CA could not be read for an attempt.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("{origin}: cannot read {path}")]
    Read {
        origin: Origin,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {path} holds no token")]
    EmptyToken { origin: Origin, path: PathBuf },
    #[error(
        "{origin}: {path} is not a PEM certificate (copy ca.crt from the collector's data directory)"
    )]
    NotPem { origin: Origin, path: PathBuf },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(key) => write!(f, "enrollment.{key}"),
            Self::Env(name) => write!(f, "{name} (environment)"),
        }
    }
}

impl std::fmt::Debug for TokenSource {
    /// Never the token itself: configs are debug-printed in logs and test failures.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline(<redacted>)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl Enrollment {
    /// The section from the file, then the environment (`env` looks a variable up; an empty
    /// value counts as unset, as an installer leaves a property nobody gave). Problems name
    /// the key or the variable.
    pub fn resolve(
        raw: Option<RawEnrollment>,
        env: &dyn Fn(&str) -> Option<String>,
        problems: &mut Vec<String>,
    ) -> Self {
        let raw = raw.unwrap_or_default();
        let mut out = Self::default();
        let file = |key| Origin::File(key);
        if let Some(url) = raw.collector_url {
            out.collector_url = Some(Sourced::new(url, file("collector_url")));
        }
        match (raw.token, raw.token_file) {
            (Some(_), Some(_)) => {
                problems.push("enrollment: set token or token_file, not both".into());
            }
            (Some(token), None) => {
                out.token = Some(Sourced::new(TokenSource::Inline(token), file("token")));
            }
            (None, Some(path)) => {
                out.token = Some(Sourced::new(TokenSource::File(path), file("token_file")));
            }
            (None, None) => {}
        }
        if let Some(path) = raw.ca_file {
            out.ca_file = Some(Sourced::new(path, file("ca_file")));
        }
        let set = |name| env(name).filter(|v| !v.trim().is_empty());
        if let Some(url) = set(ENV_COLLECTOR_URL) {
            out.collector_url = Some(Sourced::new(
                url.trim().to_owned(),
                Origin::Env(ENV_COLLECTOR_URL),
            ));
        }
        if let Some(token) = set(ENV_TOKEN) {
            out.token = Some(Sourced::new(
                TokenSource::Inline(token),
                Origin::Env(ENV_TOKEN),
            ));
        }
        if let Some(path) = set(ENV_CA_FILE) {
            out.ca_file = Some(Sourced::new(
                PathBuf::from(path.trim()),
                Origin::Env(ENV_CA_FILE),
            ));
        }
        out.check(problems);
        out
    }

    /// Values that are wrong whatever the file system holds.
    fn check(&self, problems: &mut Vec<String>) {
        if let Some(url) = &self.collector_url
            && let Err(why) = check_url(&url.value)
        {
            problems.push(format!("{}: {:?} {why}", url.origin, url.value));
        }
        if let Some(Sourced {
            value: TokenSource::Inline(token),
            origin,
        }) = &self.token
            && token.trim().is_empty()
        {
            problems.push(format!("{origin}: the token is empty"));
        }
    }

    /// Whether any value is set: the operator means the agent to enroll itself.
    pub fn any(&self) -> bool {
        self.collector_url.is_some() || self.token.is_some() || self.ca_file.is_some()
    }

    /// The values, when all three are present.
    pub fn ready(&self) -> Option<Ready<'_>> {
        Some(Ready {
            collector_url: &self.collector_url.as_ref()?.value,
            token: self.token.as_ref()?,
            ca_file: self.ca_file.as_ref()?,
        })
    }

    /// The keys still missing, as the config file names them.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.collector_url.is_none() {
            out.push("collector_url");
        }
        if self.token.is_none() {
            out.push("token");
        }
        if self.ca_file.is_none() {
            out.push("ca_file");
        }
        out
    }

    /// Lines for `check-config`: each value (never the token itself), its origin, and whether
    /// the files it names can be read now. Reads the files.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.collector_url {
            Some(url) => lines.push(format!(
                "enrollment.collector_url = {} (from {})",
                url.value, url.origin
            )),
            None => lines.push("enrollment.collector_url: not set".into()),
        }
        match &self.token {
            Some(Sourced {
                value: TokenSource::Inline(_),
                origin,
            }) => lines.push(format!("enrollment.token: set (from {origin}; not shown)")),
            Some(Sourced {
                value: TokenSource::File(path),
                origin,
            }) => lines.push(format!(
                "enrollment.token_file = {} (from {origin}; {})",
                path.display(),
                file_state(path)
            )),
            None => lines.push("enrollment.token: not set".into()),
        }
        match &self.ca_file {
            Some(ca) => lines.push(format!(
                "enrollment.ca_file = {} (from {}; {})",
                ca.value.display(),
                ca.origin,
                file_state(&ca.value)
            )),
            None => lines.push("enrollment.ca_file: not set".into()),
        }
        lines
    }
}

impl<T> Sourced<T> {
    pub fn new(value: T, origin: Origin) -> Self {
        Self { value, origin }
    }
}

impl Sourced<TokenSource> {
    /// The token, read from its file when it is one. Blocks.
    pub fn read(&self) -> Result<String, ValueError> {
        match &self.value {
            TokenSource::Inline(token) => Ok(token.trim().to_owned()),
            TokenSource::File(path) => {
                let text = read(self.origin, path)?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(ValueError::EmptyToken {
                        origin: self.origin,
                        path: path.clone(),
                    });
                }
                Ok(token.to_owned())
            }
        }
    }
}

impl Sourced<PathBuf> {
    /// The CA certificate (PEM) the file holds. Blocks.
    pub fn read_ca(&self) -> Result<String, ValueError> {
        let text = read(self.origin, &self.value)?;
        if !text.contains("-----BEGIN CERTIFICATE-----") {
            return Err(ValueError::NotPem {
                origin: self.origin,
                path: self.value.clone(),
            });
        }
        Ok(text)
    }
}

/// Looks a variable up in the process environment (not Unicode: unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Why `url` cannot be a collector URL, if it cannot.
fn check_url(url: &str) -> Result<(), &'static str> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err("is not an https:// URL");
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err("names no host");
    }
    Ok(())
}

fn read(origin: Origin, path: &Path) -> Result<String, ValueError> {
    std::fs::read_to_string(path).map_err(|source| ValueError::Read {
        origin,
        path: path.to_owned(),
        source,
    })
}

/// "readable" or why not, for `check-config`.
fn file_state(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => "readable".into(),
        Ok(_) => "not a file".into(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "missing".into(),
        Err(e) => format!("cannot be read: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves `toml` (the section's body) with `vars` as the environment.
    fn resolve(toml_text: &str, vars: &[(&str, &str)]) -> (Enrollment, Vec<String>) {
        let raw: RawEnrollment = toml::from_str(toml_text).expect("section parses");
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let mut problems = Vec::new();
        let e = Enrollment::resolve(Some(raw), &env, &mut problems);
        (e, problems)
    }

    const FILE: &str = "collector_url = \"https://file.example:7443\"\n\
                        token = \"flt_file\"\nca_file = \"/etc/firstline/ca.crt\"\n";

    #[test]
    fn the_environment_overrides_the_file_value_by_value() {
        type Case = (
            &'static [(&'static str, &'static str)],
            &'static str,
            Origin,
            &'static str,
        );
        let cases: [Case; 4] = [
            (
                &[],
                "https://file.example:7443",
                Origin::File("token"),
                "/etc/firstline/ca.crt",
            ),
            (
                &[(ENV_COLLECTOR_URL, "https://env.example:7443")],
                "https://env.example:7443",
                Origin::File("token"),
                "/etc/firstline/ca.crt",
            ),
            (
                &[
                    (ENV_TOKEN, "flt_env"),
                    (ENV_CA_FILE, "C:\\ProgramData\\ca.crt"),
                ],
                "https://file.example:7443",
                Origin::Env(ENV_TOKEN),
                "C:\\ProgramData\\ca.crt",
            ),
            // An installer property nobody gave arrives empty: the file's value stays.
            (
                &[
                    (ENV_COLLECTOR_URL, ""),
                    (ENV_TOKEN, "  "),
                    (ENV_CA_FILE, ""),
                ],
                "https://file.example:7443",
                Origin::File("token"),
                "/etc/firstline/ca.crt",
            ),
        ];
        for (vars, url, token_origin, ca) in cases {
            let (e, problems) = resolve(FILE, vars);
            assert_eq!(problems, Vec::<String>::new(), "{vars:?}");
            let ready = e.ready().expect("all values");
            assert_eq!(ready.collector_url, url, "{vars:?}");
            assert_eq!(ready.token.origin, token_origin, "{vars:?}");
            assert_eq!(ready.ca_file.value, PathBuf::from(ca), "{vars:?}");
        }
        let (e, _) = resolve(FILE, &[(ENV_TOKEN, "flt_env")]);
        assert_eq!(e.token.expect("token").read().expect("inline"), "flt_env");
    }

    #[test]
    fn the_environment_alone_is_enough() {
        let (e, problems) = resolve(
            "",
            &[
                (ENV_COLLECTOR_URL, "https://c.example:7443"),
                (ENV_TOKEN, "flt_x"),
                (ENV_CA_FILE, "/tmp/ca.crt"),
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert!(e.ready().is_some());
        assert_eq!(
            e.collector_url.expect("url").origin,
            Origin::Env(ENV_COLLECTOR_URL)
        );
    }

    #[test]
    fn bad_values_name_the_key_or_the_variable() {
        type Vars = &'static [(&'static str, &'static str)];
        let cases: [(&str, Vars, &str); 5] = [
            (
                "collector_url = \"http://c:7443\"",
                &[],
                "enrollment.collector_url: \"http://c:7443\" is not an https:// URL",
            ),
            (
                "collector_url = \"https://\"",
                &[],
                "enrollment.collector_url: \"https://\" names no host",
            ),
            (
                "",
                &[(ENV_COLLECTOR_URL, "c.example:7443")],
                "FIRSTLINE_COLLECTOR_URL (environment): \"c.example:7443\" is not an https:// URL",
            ),
            (
                "token = \"x\"\ntoken_file = \"/t\"",
                &[],
                "enrollment: set token or token_file, not both",
            ),
            ("token = \"\"", &[], "enrollment.token: the token is empty"),
        ];
        for (text, vars, expected) in cases {
            let (_, problems) = resolve(text, vars);
            assert_eq!(problems, [expected.to_owned()], "{text}");
        }
        let unknown =
            toml::from_str::<RawEnrollment>("tokenfile = \"/t\"").expect_err("unknown key");
        assert!(
            unknown.to_string().contains("unknown field `tokenfile`"),
            "{unknown}"
        );
    }

    #[test]
    fn missing_values_are_listed_and_the_token_is_never_shown() {
        let (e, _) = resolve("token = \"flt_secret\"", &[]);
        assert!(e.any() && e.ready().is_none());
        assert_eq!(e.missing(), ["collector_url", "ca_file"]);
        let shown = format!("{e:?}\n{}", e.describe().join("\n"));
        assert!(!shown.contains("flt_secret"), "{shown}");
        assert!(
            shown.contains("enrollment.token: set (from enrollment.token; not shown)"),
            "{shown}"
        );
        assert!(!Enrollment::default().any());
    }

    #[test]
    fn files_are_read_at_each_attempt_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_path = dir.path().join("token");
        let token = Sourced::new(
            TokenSource::File(token_path.clone()),
            Origin::File("token_file"),
        );
        let error = token.read().expect_err("missing file").to_string();
        assert!(
            error.starts_with("enrollment.token_file: cannot read "),
            "{error}"
        );
        std::fs::write(&token_path, "\n").expect("write");
        let error = token.read().expect_err("empty file").to_string();
        assert!(error.ends_with("holds no token"), "{error}");
        std::fs::write(&token_path, "flt_from_file\n").expect("write");
        assert_eq!(token.read().expect("token"), "flt_from_file");
        let ca = Sourced::new(token_path, Origin::Env(ENV_CA_FILE));
        let error = ca.read_ca().expect_err("not PEM").to_string();
        assert!(
            error.starts_with("FIRSTLINE_CA_FILE (environment): "),
            "{error}"
        );
        assert!(error.contains("is not a PEM certificate"), "{error}");
    }
}
