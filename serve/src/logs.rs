//! How every hitl-lab service writes its log, chosen by `LOG_FORMAT`
//! ([`hitl_wire::env::shared::LOG_FORMAT`]): `text` (the default, one human-readable line per
//! event, colours only when stdout is a terminal so files and container logs carry no ANSI
//! codes) or `json` (one JSON object per line). `RUST_LOG` filters either way.

use std::io::IsTerminal as _;

use hitl_wire::env::shared::{LOG_FORMAT, LOG_FORMAT_JSON, LOG_FORMAT_TEXT};
use tracing_subscriber::EnvFilter;

/// The log formats a service can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `LOG_FORMAT` names no format we write, or logging was already set up.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("{LOG_FORMAT}={0:?} is not a log format: use {LOG_FORMAT_TEXT} or {LOG_FORMAT_JSON}")]
    UnknownFormat(String),
    #[error("{LOG_FORMAT}: the value is not UTF-8: use {LOG_FORMAT_TEXT} or {LOG_FORMAT_JSON}")]
    NotUnicode,
    #[error("setting up logging: {0}")]
    Init(String),
}

impl LogFormat {
    /// The format a `LOG_FORMAT` value names; unset or empty is [`LogFormat::Text`].
    pub fn parse(value: Option<&str>) -> Result<Self, LogsError> {
        match value.map(str::trim) {
            None | Some("") => Ok(Self::Text),
            Some(v) if v.eq_ignore_ascii_case(LOG_FORMAT_TEXT) => Ok(Self::Text),
            Some(v) if v.eq_ignore_ascii_case(LOG_FORMAT_JSON) => Ok(Self::Json),
            Some(other) => Err(LogsError::UnknownFormat(other.to_owned())),
        }
    }

    /// The format this process's `LOG_FORMAT` names.
    pub fn from_env() -> Result<Self, LogsError> {
        match std::env::var(LOG_FORMAT) {
            Ok(value) => Self::parse(Some(&value)),
            Err(std::env::VarError::NotPresent) => Ok(Self::Text),
            Err(std::env::VarError::NotUnicode(_)) => Err(LogsError::NotUnicode),
        }
    }
}

/// Set up this process's log: the format from `LOG_FORMAT`, the filter from `RUST_LOG` (else
/// `default_filter`, e.g. `info`). Call once, first thing in `main`; an unknown format is an
/// error the service refuses to start on.
pub fn init(default_filter: &str) -> Result<LogFormat, LogsError> {
    let format = LogFormat::from_env()?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
    };
    result.map_err(|e| LogsError::Init(e.to_string()))?;
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_empty_is_text_and_both_names_parse() {
        assert_eq!(LogFormat::parse(None).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("")).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("text")).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("JSON")).unwrap(), LogFormat::Json);
    }

    #[test]
    fn an_unknown_format_is_refused_naming_the_allowed_ones() {
        let message = LogFormat::parse(Some("yaml")).unwrap_err().to_string();
        assert!(
            message.contains("text") && message.contains("json"),
            "{message}"
        );
        assert!(message.contains(LOG_FORMAT), "{message}");
    }
}
