//! Reading a TOML config file into a raw serde shape, and the error type that names the file
//! and the key. Validation of values is each binary's own; these helpers collect problems so
//! that every error is reported at once.

use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;

/// A configuration error, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {}", problems.join("; "))]
    Invalid { file: String, problems: Vec<String> },
}

/// Parses `file` into `T` (a raw shape with `deny_unknown_fields`); without a file, `T::default()`.
/// Returns the name to use in later errors.
pub fn read_toml<T: DeserializeOwned + Default>(
    file: Option<&Path>,
) -> Result<(String, T), ConfigError> {
    let Some(path) = file else {
        return Ok(("(defaults)".to_owned(), T::default()));
    };
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: name.clone(),
        source,
    })?;
    let raw = parse_toml(&name, &text)?;
    Ok((name, raw))
}

/// Parses `text`, the contents of the file called `name` in errors, into `T` (a raw shape).
pub fn parse_toml<T: DeserializeOwned>(name: &str, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        file: name.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

/// Turns collected problems into the result.
pub fn finish<T>(file: String, value: T, problems: Vec<String>) -> Result<T, ConfigError> {
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(ConfigError::Invalid { file, problems })
    }
}

/// Parses a human duration ("500ms", "1m", "7d") for `key` into `slot` when it lies within
/// `min..=max`; otherwise records a problem naming the key.
pub fn set_duration(
    slot: &mut Duration,
    key: &str,
    value: &str,
    (min, max): (Duration, Duration),
    problems: &mut Vec<String>,
) {
    match humantime::parse_duration(value) {
        Ok(d) if (min..=max).contains(&d) => *slot = d,
        Ok(_) => problems.push(format!(
            "{key}: {value:?} is not between {} and {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        )),
        Err(e) => problems.push(format!("{key}: {value:?} is not a duration ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_out_of_range_or_malformed_name_the_key() {
        let mut slot = Duration::from_secs(1);
        let mut problems = Vec::new();
        let range = (Duration::from_secs(1), Duration::from_secs(60));
        set_duration(&mut slot, "a.b", "2s", range, &mut problems);
        assert_eq!(slot, Duration::from_secs(2));
        set_duration(&mut slot, "a.c", "2h", range, &mut problems);
        set_duration(&mut slot, "a.d", "soon", range, &mut problems);
        assert_eq!(slot, Duration::from_secs(2));
        assert!(
            problems[0].starts_with("a.c: \"2h\" is not between 1s and 1m"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("a.d: \"soon\" is not a duration"),
            "{problems:?}"
        );
    }
}
