use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Tool {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("{0} is not on PATH (make setup installs it)")]
    Missing(String),
    #[error("disk {path}: {reason}")]
    Disk { path: PathBuf, reason: String },
    #[error("boot: {0}")]
    Boot(String),
    #[error("QMP: {0}")]
    Qmp(String),
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout { what: String, secs: u64 },
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the node's API: {0}")]
    Api(String),
    #[error("screendump: {0}")]
    Screen(String),
    #[error("the VM is stopped: {0}")]
    Stopped(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
