//! The signed description of a bundle: what it is for, and exactly what it carries.

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::error::{OtaError, Result};

/// The only manifest format this code reads; a newer format is refused, not guessed at.
pub const MANIFEST_FORMAT: u32 = 1;

/// What a payload is, which decides where the installer puts it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    /// FAT image for the boot partition of a slot.
    Boot,
    /// Read-only root filesystem image for the system partition of a slot.
    Rootfs,
    /// A plain application binary (for installs without A/B slots).
    App,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    pub kind: PayloadKind,
    /// File name inside the bundle: no directories, so it can never escape an extraction dir.
    pub file: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the whole payload.
    pub sha256: String,
}

/// Trust changes carried by a bundle; they take effect only once the bundle's
/// signature verified with a key the device already trusts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyChanges {
    /// Public keys to trust from now on, each as its minisign base64 line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announce: Vec<String>,
    /// Key ids (16 upper-case hex digits, as minisign prints them) never to trust again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoke: Vec<String>,
}

impl KeyChanges {
    pub fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.revoke.is_empty()
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    pub product: String,
    pub board: String,
    pub version: Version,
    /// Unix seconds.
    pub build_time: u64,
    /// The oldest running version this bundle may be installed over.
    pub min_version: Version,
    pub payloads: Vec<Payload>,
    #[serde(default, skip_serializing_if = "KeyChanges::is_empty")]
    pub keys: KeyChanges,
}

impl Manifest {
    /// The minisign trusted comment that must accompany this manifest. It is
    /// signed too, so `minisign -V` shows an operator what the bundle is for.
    pub fn trusted_comment(&self) -> String {
        format!(
            "pvm-bundle product={} board={} version={}",
            self.product, self.board, self.version
        )
    }

    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut v = serde_json::to_vec_pretty(self)
            .map_err(|e| OtaError::Malformed(format!("manifest: {e}")))?;
        v.push(b'\n');
        Ok(v)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| OtaError::Malformed(format!("manifest.json: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    /// Structural rules that hold for every bundle, whoever signed it.
    pub fn validate(&self) -> Result<()> {
        if self.format != MANIFEST_FORMAT {
            return Err(OtaError::Malformed(format!(
                "manifest format {} is not supported (expected {MANIFEST_FORMAT})",
                self.format
            )));
        }
        if self.payloads.is_empty() {
            return Err(OtaError::Malformed("manifest lists no payloads".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.payloads {
            if !valid_file_name(&p.file) {
                return Err(OtaError::Malformed(format!(
                    "payload file name {:?} is not a plain file name",
                    p.file
                )));
            }
            if !seen.insert(p.file.as_str()) {
                return Err(OtaError::Malformed(format!(
                    "payload {} listed twice",
                    p.file
                )));
            }
            if p.sha256.len() != 64 || !p.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(OtaError::Malformed(format!(
                    "payload {}: sha256 is not 64 hex digits",
                    p.file
                )));
            }
        }
        for kind in [PayloadKind::Boot, PayloadKind::Rootfs] {
            if self.payloads.iter().filter(|p| p.kind == kind).count() > 1 {
                return Err(OtaError::Malformed(format!(
                    "more than one {kind:?} payload"
                )));
            }
        }
        Ok(())
    }

    pub fn payload(&self, kind: PayloadKind) -> Option<&Payload> {
        self.payloads.iter().find(|p| p.kind == kind)
    }
}

/// Names reserved for the bundle's own entries.
pub(crate) fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && !name.starts_with("manifest.json")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

/// Checks that a signed trusted comment names the same board and version as the manifest.
pub(crate) fn check_trusted_comment(comment: &str, m: &Manifest) -> Result<()> {
    let field = |key: &str| {
        comment
            .split_whitespace()
            .find_map(|tok| tok.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    let version = m.version.to_string();
    for (key, want) in [("board", m.board.as_str()), ("version", version.as_str())] {
        match field(key) {
            Some(v) if v == want => {}
            Some(v) => {
                return Err(OtaError::CommentMismatch(format!(
                    "trusted comment says {key}={v}, manifest says {want}"
                )))
            }
            None => {
                return Err(OtaError::CommentMismatch(format!(
                    "trusted comment {comment:?} has no {key}= (expected {:?})",
                    m.trusted_comment()
                )))
            }
        }
    }
    if let Some(p) = field("product") {
        if p != m.product {
            return Err(OtaError::CommentMismatch(format!(
                "trusted comment says product={p}, manifest says {}",
                m.product
            )));
        }
    }
    Ok(())
}
