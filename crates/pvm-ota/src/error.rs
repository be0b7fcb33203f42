//! One error type for the crate: every refusal is its own variant so the
//! console and the fleet view can say exactly why an update was not taken.

use std::path::PathBuf;

/// Everything that can stop a bundle from being trusted or installed.
#[derive(Debug, thiserror::Error)]
pub enum OtaError {
    #[error("the bundle is not signed (no manifest.json.minisig)")]
    Unsigned,
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("the bundle is signed by key {0}, which this device does not trust")]
    UnknownKey(String),
    #[error("the bundle is signed by key {0}, which has been revoked")]
    RevokedKey(String),
    #[error("the signed comment does not match the manifest: {0}")]
    CommentMismatch(String),
    #[error("the bundle is for product {found}, this device runs {expected}")]
    WrongProduct { expected: String, found: String },
    #[error("the bundle is for board {found}, this device is {expected}")]
    WrongBoard { expected: String, found: String },
    #[error("version {offered} is not newer than the running {running} (downgrade refused)")]
    NotNewer { running: String, offered: String },
    #[error("version {offered} may only be installed over {minimum} or later; running {running}")]
    RunningTooOld {
        running: String,
        offered: String,
        minimum: String,
    },
    #[error("payload {name}: size {actual} does not match the manifest's {expected}")]
    PayloadSize {
        name: String,
        expected: u64,
        actual: u64,
    },
    #[error("payload {name}: SHA-256 does not match the manifest")]
    PayloadHash { name: String },
    #[error("the bundle is truncated: {0}")]
    Truncated(String),
    #[error("malformed bundle: {0}")]
    Malformed(String),
    #[error("key error: {0}")]
    Key(String),
    #[error("slot {path}: {reason}")]
    Slot { path: PathBuf, reason: String },
    #[error("invalid autoboot.txt: {0}")]
    Autoboot(String),
    #[error("bootloader: {0}")]
    Bootloader(String),
    #[error("not now: {0}")]
    Deferred(String),
    #[error("not allowed in state {state}: {action}")]
    WrongState { state: String, action: String },
    #[error("download: {0}")]
    Download(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl OtaError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> OtaError {
        let context = context.into();
        move |source| OtaError::Io { context, source }
    }
}

pub type Result<T> = std::result::Result<T, OtaError>;
