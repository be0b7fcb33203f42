//! Password hashing, session tokens and setup codes. All randomness comes from the OS.

use super::error::AuthError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use pvm_store::accounts::TokenDigest;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The cost of argon2id password hashing.
///
/// [`HashCost::OWASP_MINIMUM`] (19 MiB, 2 passes, 1 lane) is the production setting: it is
/// the OWASP Password Storage Cheat Sheet's first recommended argon2id configuration and the
/// argon2 crate's default. It costs 19 MiB and a fraction of a second per login on a
/// Raspberry Pi 5 (logins are rare and run on the blocking pool), so it is not tuned down;
/// raising it is safe because stored hashes carry their own parameters and still verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashCost {
    /// OWASP's minimum for argon2id: m = 19 MiB, t = 2, p = 1.
    pub const OWASP_MINIMUM: HashCost = HashCost {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    fn hasher(self) -> Result<Argon2<'static>, AuthError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| AuthError::Internal(format!("argon2 parameters rejected: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for HashCost {
    fn default() -> Self {
        HashCost::OWASP_MINIMUM
    }
}

/// Hashes `password` with argon2id and a fresh 128-bit salt; returns the PHC string.
pub(crate) fn hash_password(password: &str, cost: HashCost) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    fill_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| AuthError::Internal(format!("salt encoding failed: {e}")))?;
    let hash = cost
        .hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| AuthError::Internal(format!("password hashing failed: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string. A malformed stored hash never matches.
pub(crate) fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        // The parameters come from the stored string, not from the current cost.
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A session token as handed to the client: 256 bits from the OS RNG, hex encoded.
/// Its `Debug` is redacted so that it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    pub(crate) fn generate() -> Result<SessionToken, AuthError> {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes)?;
        Ok(SessionToken(hex(&bytes)))
    }

    /// The token text, for the cookie or the `Authorization` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SHA-256 under which the session is stored.
    pub fn digest(&self) -> TokenDigest {
        token_digest(&self.0)
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// SHA-256 of a presented token. A fast hash is enough: the token has 256 bits of entropy,
/// so unlike a password it cannot be guessed from its digest.
pub(crate) fn token_digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// Setup codes avoid look-alikes (no I, O, 0, 1) because someone reads them off a TV.
/// 32 symbols: a random byte masked to 5 bits picks one without bias.
const SETUP_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub(crate) const SETUP_CODE_LEN: usize = 8;

/// A fresh 8-character setup code (40 bits); the rate limit makes guessing it hopeless.
pub(crate) fn generate_setup_code() -> Result<String, AuthError> {
    let mut bytes = [0u8; SETUP_CODE_LEN];
    fill_random(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(SETUP_ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// The code as typed, made comparable: case, spaces and dashes ("abcd-efgh") don't matter.
pub(crate) fn normalize_setup_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Compares digests of the two strings so the time taken does not reveal how many leading
/// characters of a guess were right.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (da, db) = (token_digest(a), token_digest(b));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn fill_random(out: &mut [u8]) -> Result<(), AuthError> {
    getrandom::fill(out)
        .map_err(|e| AuthError::Internal(format!("the OS random generator failed: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn password_hash_is_argon2id_and_verifies_only_the_right_password() {
        let hash = hash_password("correct horse", CHEAP).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsE", &hash));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn same_password_gets_a_different_salt_each_time() {
        let a = hash_password("same password", CHEAP).unwrap();
        let b = hash_password("same password", CHEAP).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn production_cost_is_at_least_the_owasp_minimum() {
        let cost = HashCost::default();
        assert!(cost.memory_kib >= 19 * 1024);
        assert!(cost.iterations >= 2);
        assert!(cost.parallelism >= 1);
        assert_eq!(cost.memory_kib, Params::DEFAULT_M_COST);
    }

    #[test]
    fn session_tokens_carry_256_random_bits_and_hide_in_debug() {
        let a = SessionToken::generate().unwrap();
        let b = SessionToken::generate().unwrap();
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(a.digest(), token_digest(a.as_str()));
        assert_ne!(a.digest(), b.digest());
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn token_digest_is_sha256() {
        // SHA-256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(
            hex(&token_digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn setup_codes_use_only_unambiguous_characters() {
        for _ in 0..50 {
            let code = generate_setup_code().unwrap();
            assert_eq!(code.len(), SETUP_CODE_LEN);
            assert!(code.bytes().all(|c| SETUP_ALPHABET.contains(&c)), "{code}");
            assert!(!code.contains(['I', 'O', '0', '1']));
        }
    }

    #[test]
    fn typed_setup_code_ignores_case_spaces_and_dashes() {
        assert_eq!(normalize_setup_code(" abcd-ef 23 "), "ABCDEF23");
        assert!(same_secret("ABCDEF23", &normalize_setup_code("abcd-ef23")));
        assert!(!same_secret("ABCDEF23", "ABCDEF24"));
    }
}
