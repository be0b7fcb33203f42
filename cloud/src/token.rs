//! Access tokens: compact JWTs signed with Ed25519 (`alg: EdDSA`).
//!
//! Every instance holds the same signing key (`--token-key-file`), so a token issued by one
//! is accepted by all. Old public keys can be kept for verification while their tokens live
//! out (`--token-verify-key-files`); the header's `kid` picks the key.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use uuid::Uuid;

/// Issuer written into and required from every token.
pub const ISSUER: &str = "pvm-cloud";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read key file {path}: {source}")]
    ReadKey {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {0} does not hold base64 of 32 bytes")]
    BadKey(String),
    #[error("no randomness available: {0}")]
    Random(String),
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is signed by an unknown key")]
    UnknownKey,
    #[error("the token's signature is wrong")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

/// One membership as carried in a token: informative for clients; the service itself
/// checks the membership in PostgreSQL on every tenant-scoped request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MembershipClaim {
    pub tenant_id: Uuid,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user id.
    pub sub: Uuid,
    pub email: String,
    pub memberships: Vec<MembershipClaim>,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// The signing key and every key accepted for verification.
pub struct TokenKeys {
    signing: SigningKey,
    kid: String,
    verifying: HashMap<String, VerifyingKey>,
}

fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

fn decode_32(text: &str, what: &str) -> Result<[u8; 32], TokenError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| TokenError::BadKey(what.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| TokenError::BadKey(what.to_string()))
}

fn read(path: &Path) -> Result<String, TokenError> {
    std::fs::read_to_string(path).map_err(|source| TokenError::ReadKey {
        path: path.display().to_string(),
        source,
    })
}

impl TokenKeys {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let public = signing.verifying_key();
        let kid = key_id(&public);
        let verifying = HashMap::from([(kid.clone(), public)]);
        TokenKeys {
            signing,
            kid,
            verifying,
        }
    }

    /// A fresh random seed.
    pub fn generate_seed() -> Result<[u8; 32], TokenError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| TokenError::Random(e.to_string()))?;
        Ok(seed)
    }

    /// The text a key file holds for `seed`.
    pub fn seed_text(seed: &[u8; 32]) -> String {
        format!("{}\n", STANDARD.encode(seed))
    }

    /// Loads the signing key and any extra public keys accepted for verification.
    pub fn load(
        key_file: &Path,
        verify_key_files: &[impl AsRef<Path>],
    ) -> Result<Self, TokenError> {
        let seed = decode_32(&read(key_file)?, &key_file.display().to_string())?;
        let mut keys = TokenKeys::from_seed(seed);
        for path in verify_key_files {
            let path = path.as_ref();
            let name = path.display().to_string();
            let bytes = decode_32(&read(path)?, &name)?;
            let public = VerifyingKey::from_bytes(&bytes).map_err(|_| TokenError::BadKey(name))?;
            keys.accept(public);
        }
        Ok(keys)
    }

    /// Also accept tokens signed by `public` (a previous key, during rotation).
    pub fn accept(&mut self, public: VerifyingKey) {
        self.verifying.insert(key_id(&public), public);
    }

    /// Base64 of the signing key's public half (what `--token-verify-key-files` holds).
    pub fn public_key_text(&self) -> String {
        STANDARD.encode(self.signing.verifying_key().as_bytes())
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        let header = Header {
            alg: "EdDSA".into(),
            typ: "JWT".into(),
            kid: self.kid.clone(),
        };
        // Serializing these plain structs cannot fail: no maps with non-string keys.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let claims = serde_json::to_vec(claims).unwrap_or_default();
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = self.signing.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// Checks signature, issuer and expiry (`now_s`: seconds since the epoch).
    pub fn verify(&self, token: &str, now_s: i64) -> Result<AccessClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::Malformed);
        }
        let key = self
            .verifying
            .get(&header.kid)
            .ok_or(TokenError::UnknownKey)?;
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(TokenError::Malformed)?;
        let signed_len = h.len() + 1 + p.len();
        key.verify(
            &token.as_bytes()[..signed_len],
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| TokenError::BadSignature)?;
        let claims: AccessClaims = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.iss != ISSUER {
            return Err(TokenError::Malformed);
        }
        if claims.exp <= now_s {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: ISSUER.into(),
            sub: Uuid::from_u128(1),
            email: "a@b.c".into(),
            memberships: vec![MembershipClaim {
                tenant_id: Uuid::from_u128(2),
                role: "admin".into(),
            }],
            iat: 100,
            exp,
            jti: Uuid::from_u128(3),
        }
    }

    #[test]
    fn a_signed_token_verifies_with_the_same_key_and_carries_its_claims() {
        let keys = TokenKeys::from_seed([7; 32]);
        let token = keys.sign(&claims(1000));
        assert_eq!(keys.verify(&token, 500).unwrap(), claims(1000));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = TokenKeys::from_seed([7; 32]);
        let token = keys.sign(&claims(1000));
        assert!(matches!(
            keys.verify(&token, 1000),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn a_token_from_another_key_is_refused_unless_that_key_is_accepted() {
        let ours = TokenKeys::from_seed([7; 32]);
        let theirs = TokenKeys::from_seed([8; 32]);
        let token = theirs.sign(&claims(1000));
        assert!(matches!(
            ours.verify(&token, 1),
            Err(TokenError::UnknownKey)
        ));
        let mut rotating = TokenKeys::from_seed([7; 32]);
        rotating.accept(theirs.signing.verifying_key());
        assert!(rotating.verify(&token, 1).is_ok());
    }

    #[test]
    fn a_token_with_altered_claims_fails_its_signature() {
        let keys = TokenKeys::from_seed([7; 32]);
        let token = keys.sign(&claims(1000));
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims(1000);
        forged.memberships[0].role = "admin".into();
        forged.sub = Uuid::from_u128(99);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert!(matches!(
            keys.verify(&tampered, 1),
            Err(TokenError::BadSignature)
        ));
        assert!(matches!(keys.verify("a.b", 1), Err(TokenError::Malformed)));
    }
}
