//! The pairing file: `<data-dir>/cloud.json`, the cloud's enrolment answer plus where the
//! cloud is. It holds the node's NATS seed, so it is private to the node's user (0600) and
//! replaced atomically: a power cut leaves the old pairing or the new one, never half.

use pvm_sync::EnrolResponse;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name inside the data directory.
pub const PAIRING_FILE: &str = "cloud.json";

/// What the node keeps after a successful enrolment.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Pairing {
    /// The cloud's web address (its API lives under `/api/v1`).
    pub cloud_url: String,
    /// When the node was paired, ms since the Unix epoch.
    pub paired_at_ms: i64,
    /// The cloud's answer, exactly as received.
    #[serde(flatten)]
    pub enrolment: EnrolResponse,
}

// The seed is the node's NATS identity: it must never reach a log line.
impl std::fmt::Debug for Pairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pairing")
            .field("cloud_url", &self.cloud_url)
            .field("node_id", &self.enrolment.node_id)
            .field("venue_id", &self.enrolment.venue_id)
            .field("venue_name", &self.enrolment.venue_name)
            .field("nats_urls", &self.enrolment.nats_urls)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error("cannot {doing} {}: {source}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the pairing file {} is not readable ({detail}); unpair and pair the node again", path.display())]
    Malformed { path: PathBuf, detail: String },
}

pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(PAIRING_FILE)
}

/// The node's pairing, or `None` when it has never been paired (or was unpaired).
pub fn load(data_dir: &Path) -> Result<Option<Pairing>, PairingError> {
    let path = path_in(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PairingError::Io {
                doing: "read",
                path,
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| PairingError::Malformed {
            path,
            detail: e.to_string(),
        })
}

/// Writes the pairing atomically with mode 0600: a temporary file in the same directory,
/// fsynced, renamed over the old one, and the directory fsynced so the rename survives.
pub fn save(data_dir: &Path, pairing: &Pairing) -> Result<(), PairingError> {
    let path = path_in(data_dir);
    let tmp = data_dir.join(format!("{PAIRING_FILE}.tmp"));
    let io = |doing: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| PairingError::Io {
            doing,
            path,
            source,
        }
    };
    let json = serde_json::to_vec_pretty(pairing).map_err(|e| PairingError::Malformed {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io("create", &tmp))?;
    // A leftover temporary file from an older, looser umask keeps its mode: set it again.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io("restrict", &tmp))?;
    }
    file.write_all(&json).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("flush", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io("replace", &path))?;
    sync_dir(data_dir)
}

/// Forgets the pairing (the file is removed; a missing file is already unpaired).
pub fn remove(data_dir: &Path) -> Result<(), PairingError> {
    let path = path_in(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(data_dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(PairingError::Io {
            doing: "remove",
            path,
            source,
        }),
    }
}

fn sync_dir(dir: &Path) -> Result<(), PairingError> {
    let io = |source| PairingError::Io {
        doing: "flush the directory",
        path: dir.to_path_buf(),
        source,
    };
    std::fs::File::open(dir).map_err(io)?.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    pub(crate) fn sample() -> Pairing {
        Pairing {
            cloud_url: "http://127.0.0.1:1".into(),
            paired_at_ms: 7,
            enrolment: EnrolResponse {
                node_id: Uuid::from_u128(1),
                venue_id: Uuid::from_u128(2),
                tenant_id: Uuid::from_u128(3),
                venue_name: "Main room".into(),
                nats_urls: vec!["nats://127.0.0.1:4222".into()],
                nats_user_jwt: "jwt".into(),
                nats_user_seed: "SUSECRET".into(),
                inbox_prefix: "_INBOX_x".into(),
            },
        }
    }

    #[test]
    fn a_saved_pairing_reads_back_and_is_private_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        save(dir.path(), &sample()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path_in(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!dir.path().join("cloud.json.tmp").exists());
        // The file is the contract's EnrolResponse plus the cloud URL, flat.
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path_in(dir.path())).unwrap()).unwrap();
        assert_eq!(json["nats_user_seed"], "SUSECRET");
        assert_eq!(json["cloud_url"], "http://127.0.0.1:1");
        remove(dir.path()).unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        remove(dir.path()).unwrap();
    }

    #[test]
    fn the_debug_form_never_shows_the_seed_or_the_jwt() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("SUSECRET"));
        assert!(!text.contains("jwt"));
        assert!(text.contains("Main room"));
    }

    #[test]
    fn a_damaged_pairing_file_is_reported_not_guessed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path_in(dir.path()), "{not json").unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("unpair"), "{err}");
    }
}
