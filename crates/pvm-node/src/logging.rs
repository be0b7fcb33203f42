//! Logging: to journald when systemd runs the node, to stdout otherwise.
//!
//! `RUST_LOG` picks what is logged (tracing's `EnvFilter` syntax); without it, the caller's
//! default filter applies. Entry point: [`init`].

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The socket journald reads structured log entries from.
pub const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogOutput {
    /// Structured entries to the systemd journal.
    Journald,
    /// Formatted lines on stdout.
    Stdout,
}

/// Why logging could not be set up.
#[derive(Debug, Error)]
pub enum LoggingError {
    /// The default filter given by the program does not parse.
    #[error("log filter `{filter}` is not valid: {reason}")]
    BadDefaultFilter { filter: String, reason: String },
    /// Another global subscriber was installed first.
    #[error("logging was already set up: {0}")]
    AlreadyInitialised(String),
}

/// Whether to log to journald: the node was started by systemd (`JOURNAL_STREAM` or
/// `INVOCATION_ID` set) and journald's socket exists.
pub fn choose_output(env: &dyn Fn(&str) -> Option<String>, journald_socket: &Path) -> LogOutput {
    let under_systemd = env("JOURNAL_STREAM").is_some() || env("INVOCATION_ID").is_some();
    if under_systemd && journald_socket.exists() {
        LogOutput::Journald
    } else {
        LogOutput::Stdout
    }
}

/// Installs the global subscriber and says where logs go. `default_filter` (e.g. `"info"`)
/// applies unless `RUST_LOG` is set; a `RUST_LOG` that does not parse is reported in the log
/// and the default used. If journald is wanted but cannot be reached, logs go to stdout and
/// the first line says why.
pub fn init(default_filter: &str) -> Result<LogOutput, LoggingError> {
    let default =
        EnvFilter::try_new(default_filter).map_err(|error| LoggingError::BadDefaultFilter {
            filter: default_filter.to_owned(),
            reason: error.to_string(),
        })?;
    let (filter, bad_rust_log) = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => match EnvFilter::try_new(&text) {
            Ok(filter) => (filter, None),
            Err(error) => (default, Some((text, error.to_string()))),
        },
        _ => (default, None),
    };

    let wanted = choose_output(&|name| std::env::var(name).ok(), Path::new(JOURNALD_SOCKET));
    let (journald, journald_failure) = match wanted {
        LogOutput::Journald => match tracing_journald::layer() {
            Ok(layer) => (Some(layer), None),
            Err(error) => (None, Some(error)),
        },
        LogOutput::Stdout => (None, None),
    };
    let output = if journald.is_some() {
        LogOutput::Journald
    } else {
        LogOutput::Stdout
    };
    let stdout = journald
        .is_none()
        .then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stdout));

    tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(stdout)
        .try_init()
        .map_err(|error| LoggingError::AlreadyInitialised(error.to_string()))?;

    if let Some(error) = journald_failure {
        tracing::warn!(%error, "cannot log to journald; logging to stdout instead");
    }
    if let Some((text, error)) = bad_rust_log {
        tracing::warn!(
            rust_log = %text,
            %error,
            default = default_filter,
            "RUST_LOG is not a valid filter; using the default"
        );
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(name: &'static str) -> impl Fn(&str) -> Option<String> {
        move |key| (key == name).then(|| "x".to_owned())
    }

    #[test]
    fn journald_is_chosen_under_systemd_when_its_socket_exists() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("socket");
        std::fs::write(&socket, b"").unwrap();
        assert_eq!(
            choose_output(&env_with("JOURNAL_STREAM"), &socket),
            LogOutput::Journald
        );
        assert_eq!(
            choose_output(&env_with("INVOCATION_ID"), &socket),
            LogOutput::Journald
        );
    }

    #[test]
    fn stdout_is_chosen_outside_systemd_or_without_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("socket");
        assert_eq!(
            choose_output(&env_with("JOURNAL_STREAM"), &socket),
            LogOutput::Stdout
        );
        std::fs::write(&socket, b"").unwrap();
        assert_eq!(choose_output(&|_| None, &socket), LogOutput::Stdout);
    }

    #[test]
    fn bad_default_filter_is_refused_before_anything_is_installed() {
        let error = init("pvm=loud").unwrap_err();
        assert!(matches!(error, LoggingError::BadDefaultFilter { .. }));
    }
}
