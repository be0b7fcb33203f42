//! Minisign keys and the device's trust store.
//!
//! The trust store is a directory of minisign public key files (`*.pub`) plus a
//! `revoked` file listing key ids, one per line. On the device the shipped,
//! read-only store is `/etc/pvm/keys/`; keys announced or revoked by bundles are
//! recorded in a second, writable directory on the data partition.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use minisign::{KeyPair, PublicKey, PublicKeyBox, SecretKey, SecretKeyBox, SignatureBox};

use crate::error::{OtaError, Result};
use crate::fsutil::atomic_write;
use crate::manifest::KeyChanges;

const REVOKED_FILE: &str = "revoked";

/// A key id as minisign prints it: 16 upper-case hex digits.
pub fn key_id(keynum: &[u8]) -> String {
    let mut b = [0u8; 8];
    let n = keynum.len().min(8);
    b[..n].copy_from_slice(&keynum[..n]);
    format!("{:016X}", u64::from_le_bytes(b))
}

pub fn public_key_id(pk: &PublicKey) -> String {
    key_id(pk.keynum())
}

/// Parses a public key given either as a whole minisign `.pub` file or as its base64 line.
pub fn parse_public_key(text: &str) -> Result<PublicKey> {
    let trimmed = text.trim();
    let parsed = if trimmed.starts_with("untrusted comment:") {
        PublicKeyBox::from_string(trimmed).and_then(|b| b.into_public_key())
    } else {
        PublicKey::from_base64(trimmed)
    };
    parsed.map_err(|e| OtaError::Key(format!("not a minisign public key: {e}")))
}

/// The text of a minisign `.pub` file for `pk`.
pub fn public_key_file_text(pk: &PublicKey) -> Result<String> {
    pk.to_box()
        .map(|b| b.into_string())
        .map_err(|e| OtaError::Key(e.to_string()))
}

/// A new key pair as the texts of a `.pub` and a `.key` file. With a password the
/// secret key is encrypted the way the minisign CLI does it (scrypt), so either
/// tool can use it.
pub fn generate_keypair(password: Option<String>) -> Result<(String, String)> {
    let kp = match password {
        Some(pw) => KeyPair::generate_encrypted_keypair(Some(pw)),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| OtaError::Key(format!("key generation: {e}")))?;
    let pk = public_key_file_text(&kp.pk)?;
    let sk = kp
        .sk
        .to_box(Some(&format!(
            "pvm-release secret key {}",
            public_key_id(&kp.pk)
        )))
        .map_err(|e| OtaError::Key(e.to_string()))?
        .into_string();
    Ok((pk, sk))
}

/// Reads a minisign secret key file; `password` is needed when it is encrypted.
pub fn load_secret_key(path: &Path, password: Option<String>) -> Result<SecretKey> {
    let text =
        fs::read_to_string(path).map_err(OtaError::io(format!("read {}", path.display())))?;
    let sk_box = SecretKeyBox::from_string(&text)
        .map_err(|e| OtaError::Key(format!("{}: {e}", path.display())))?;
    let sk = match password {
        Some(pw) => SecretKey::from_box(sk_box, Some(pw)),
        None => SecretKey::from_unencrypted_box(sk_box),
    };
    sk.map_err(|e| OtaError::Key(format!("{}: {e}", path.display())))
}

/// Signs `data` and returns the text of a `.minisig` file (prehashed Ed25519,
/// the format `minisign -V` checks).
pub fn sign(sk: &SecretKey, data: &[u8], trusted_comment: &str) -> Result<String> {
    let pk = PublicKey::from_secret_key(sk).map_err(|e| OtaError::Key(e.to_string()))?;
    let sig = minisign::sign(
        Some(&pk),
        sk,
        Cursor::new(data),
        Some(trusted_comment),
        Some(&format!(
            "signature from pvm-release key {}",
            public_key_id(&pk)
        )),
    )
    .map_err(|e| OtaError::Key(format!("signing: {e}")))?;
    Ok(sig.into_string())
}

/// Who signed, and what the signed comment says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureCheck {
    pub key_id: String,
    pub trusted_comment: String,
}

#[derive(Clone, Debug)]
pub struct TrustStore {
    shipped: PathBuf,
    local: Option<PathBuf>,
    keys: BTreeMap<String, PublicKey>,
    revoked: BTreeSet<String>,
}

impl TrustStore {
    /// Loads the shipped store and, if given, the writable one on the data partition.
    /// A missing local directory is created; a missing shipped one is an error,
    /// because a device that trusts nobody can never update again.
    pub fn open(shipped: &Path, local: Option<&Path>) -> Result<TrustStore> {
        let mut store = TrustStore {
            shipped: shipped.to_path_buf(),
            local: local.map(Path::to_path_buf),
            keys: BTreeMap::new(),
            revoked: BTreeSet::new(),
        };
        store.load_dir(shipped)?;
        if let Some(local) = local {
            fs::create_dir_all(local)
                .map_err(OtaError::io(format!("create {}", local.display())))?;
            store.load_dir(local)?;
        }
        Ok(store)
    }

    fn load_dir(&mut self, dir: &Path) -> Result<()> {
        let entries = fs::read_dir(dir).map_err(OtaError::io(format!("read {}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(OtaError::io(format!("read {}", dir.display())))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pub") {
                let text = fs::read_to_string(&path)
                    .map_err(OtaError::io(format!("read {}", path.display())))?;
                let pk = parse_public_key(&text)
                    .map_err(|e| OtaError::Key(format!("{}: {e}", path.display())))?;
                self.keys.insert(public_key_id(&pk), pk);
            }
        }
        let revoked = dir.join(REVOKED_FILE);
        if revoked.exists() {
            let text = fs::read_to_string(&revoked)
                .map_err(OtaError::io(format!("read {}", revoked.display())))?;
            for line in text.lines() {
                let id = line.split('#').next().unwrap_or("").trim();
                if !id.is_empty() {
                    self.revoked.insert(id.to_ascii_uppercase());
                }
            }
        }
        Ok(())
    }

    /// Ids of keys that would verify a bundle now.
    pub fn trusted_ids(&self) -> Vec<String> {
        self.keys
            .keys()
            .filter(|id| !self.revoked.contains(*id))
            .cloned()
            .collect()
    }

    pub fn is_revoked(&self, id: &str) -> bool {
        self.revoked.contains(&id.to_ascii_uppercase())
    }

    fn key(&self, id: &str) -> Result<&PublicKey> {
        if self.is_revoked(id) {
            return Err(OtaError::RevokedKey(id.to_string()));
        }
        self.keys
            .get(id)
            .ok_or_else(|| OtaError::UnknownKey(id.to_string()))
    }

    /// Verifies a minisign signature over `data` with a trusted, unrevoked key.
    pub fn verify(&self, data: &[u8], signature: &str) -> Result<SignatureCheck> {
        let sig = SignatureBox::from_string(signature)
            .map_err(|e| OtaError::BadSignature(format!("unreadable signature: {e}")))?;
        let id = key_id(sig.keynum());
        let pk = self.key(&id)?;
        minisign::verify(pk, &sig, Cursor::new(data), true, false, false)
            .map_err(|e| OtaError::BadSignature(e.to_string()))?;
        let trusted_comment = sig
            .trusted_comment()
            .map_err(|e| OtaError::BadSignature(format!("trusted comment: {e}")))?;
        Ok(SignatureCheck {
            key_id: id,
            trusted_comment,
        })
    }

    /// Like [`TrustStore::verify`], streaming a file instead of holding it in memory.
    pub fn verify_file(&self, path: &Path, signature: &str) -> Result<SignatureCheck> {
        let sig = SignatureBox::from_string(signature)
            .map_err(|e| OtaError::BadSignature(format!("unreadable signature: {e}")))?;
        let id = key_id(sig.keynum());
        let pk = self.key(&id)?;
        let f = fs::File::open(path).map_err(OtaError::io(format!("open {}", path.display())))?;
        minisign::verify(pk, &sig, std::io::BufReader::new(f), true, false, false)
            .map_err(|e| OtaError::BadSignature(e.to_string()))?;
        let trusted_comment = sig
            .trusted_comment()
            .map_err(|e| OtaError::BadSignature(format!("trusted comment: {e}")))?;
        Ok(SignatureCheck {
            key_id: id,
            trusted_comment,
        })
    }

    fn writable_dir(&self) -> &Path {
        self.local.as_deref().unwrap_or(&self.shipped)
    }

    /// Trusts `pk` from now on (persisted). A revoked key stays revoked.
    pub fn add_key(&mut self, pk: PublicKey) -> Result<String> {
        let id = public_key_id(&pk);
        if self.is_revoked(&id) {
            return Err(OtaError::RevokedKey(id));
        }
        let path = self.writable_dir().join(format!("{id}.pub"));
        atomic_write(&path, public_key_file_text(&pk)?.as_bytes())?;
        self.keys.insert(id.clone(), pk);
        Ok(id)
    }

    /// Never trusts `id` again (persisted).
    pub fn revoke(&mut self, id: &str) -> Result<()> {
        let id = id.trim().to_ascii_uppercase();
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(OtaError::Key(format!("{id:?} is not a key id")));
        }
        self.revoked.insert(id);
        let mut text = String::from("# key ids never to trust again\n");
        for r in &self.revoked {
            text.push_str(r);
            text.push('\n');
        }
        atomic_write(&self.writable_dir().join(REVOKED_FILE), text.as_bytes())
    }

    /// Applies the key changes of a bundle verified with `signer`. A bundle may not
    /// revoke the key that signed it: that would leave the decision resting on a key
    /// the same bundle calls untrustworthy.
    pub fn apply(&mut self, changes: &KeyChanges, signer: &str) -> Result<()> {
        if changes
            .revoke
            .iter()
            .any(|r| r.eq_ignore_ascii_case(signer))
        {
            return Err(OtaError::Key(format!(
                "the bundle revokes its own signing key {signer}"
            )));
        }
        let announced = changes
            .announce
            .iter()
            .map(|a| parse_public_key(a))
            .collect::<Result<Vec<_>>>()?;
        for r in &changes.revoke {
            self.revoke(r)?;
        }
        for pk in announced {
            let id = public_key_id(&pk);
            if self.is_revoked(&id) {
                tracing::warn!(key = %id, "bundle announces a revoked key; ignored");
                continue;
            }
            if !self.keys.contains_key(&id) {
                tracing::info!(key = %id, by = %signer, "new update key trusted");
                self.add_key(pk)?;
            }
        }
        Ok(())
    }
}
