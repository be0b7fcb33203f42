//! Enrolment codes: one-time, expiring secrets an admin hands to a node (typed on its
//! console) so it can bind itself to a venue.
//!
//! A code is 12 Crockford base32 characters (60 random bits) shown in groups of four,
//! `7KQ2-M9XD-4TBE`. Only its SHA-256 is stored. Reading is forgiving the Crockford way:
//! case, spaces and dashes are ignored, `I`/`L` read as `1` and `O` as `0`.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Crockford's base32 alphabet: no I, L, O or U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code (5 bits each: 60 bits).
pub const CODE_LEN: usize = 12;

/// What redeeming a code grants: the venue the node is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentGrant {
    /// The code's own id (to record which node used it: `enrolment_codes.node_id`).
    pub code_id: Uuid,
    pub venue_id: Uuid,
    pub tenant_id: Uuid,
    pub venue_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrolmentError {
    #[error("the enrolment code is not valid")]
    Unknown,
    #[error("the enrolment code has already been used")]
    AlreadyUsed,
    #[error("the enrolment code expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("no randomness available: {0}")]
    Random(String),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// A fresh random code in its display form (`XXXX-XXXX-XXXX`).
pub fn new_code() -> Result<String, EnrolmentError> {
    let mut bytes = [0u8; CODE_LEN];
    getrandom::fill(&mut bytes).map_err(|e| EnrolmentError::Random(e.to_string()))?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect();
    Ok(chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// The canonical form of what someone typed, or `None` when it cannot be a code.
pub fn normalize(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_LEN);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' | '\t' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
}

/// The stored digest of a code (of its canonical form).
pub fn code_hash(canonical: &str) -> Vec<u8> {
    Sha256::digest(canonical.as_bytes()).to_vec()
}

/// Stores a new code for `venue_id` (which the caller has checked belongs to `tenant_id`)
/// and returns the code to show once, with its expiry.
pub async fn create_code(
    db: &impl GenericClient,
    tenant_id: Uuid,
    venue_id: Uuid,
    created_by: Uuid,
    ttl: chrono::Duration,
) -> Result<(String, DateTime<Utc>), EnrolmentError> {
    let code = new_code()?;
    let canonical = normalize(&code).ok_or(EnrolmentError::Unknown)?;
    let expires_at = Utc::now() + ttl;
    db.execute(
        "INSERT INTO enrolment_codes (id, venue_id, tenant_id, code_hash, expires_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &Uuid::now_v7(),
            &venue_id,
            &tenant_id,
            &code_hash(&canonical),
            &expires_at,
            &created_by,
        ],
    )
    .await?;
    Ok((code, expires_at))
}

/// Redeems `code`: marks it used and returns the venue it grants, in one statement, so two
/// nodes racing with the same code cannot both get it. Call it inside the transaction that
/// also creates the node, so a failure after it leaves the code unused.
pub async fn redeem_enrolment_code(
    tx: &impl GenericClient,
    code: &str,
) -> Result<EnrolmentGrant, EnrolmentError> {
    let canonical = normalize(code).ok_or(EnrolmentError::Unknown)?;
    let hash = code_hash(&canonical);
    let row = tx
        .query_opt(
            "UPDATE enrolment_codes e SET used_at = now()
             FROM venues v
             WHERE e.code_hash = $1 AND e.used_at IS NULL AND e.expires_at > now()
               AND v.id = e.venue_id AND v.tenant_id = e.tenant_id
             RETURNING e.id, v.id, v.tenant_id, v.name",
            &[&hash],
        )
        .await?;
    if let Some(row) = row {
        return Ok(EnrolmentGrant {
            code_id: row.get(0),
            venue_id: row.get(1),
            tenant_id: row.get(2),
            venue_name: row.get(3),
        });
    }
    // Say why, so the person at the console knows whether to ask for a new code.
    let row = tx
        .query_opt(
            "SELECT used_at, expires_at FROM enrolment_codes WHERE code_hash = $1",
            &[&hash],
        )
        .await?;
    Err(match row {
        None => EnrolmentError::Unknown,
        Some(r) if r.get::<_, Option<DateTime<Utc>>>(0).is_some() => EnrolmentError::AlreadyUsed,
        Some(r) => EnrolmentError::Expired(r.get(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_codes_are_twelve_crockford_characters_in_groups_of_four() {
        let code = new_code().unwrap();
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups.len(), 3);
        assert!(groups.iter().all(|g| g.len() == 4));
        assert_eq!(normalize(&code).unwrap(), code.replace('-', ""));
        assert_ne!(new_code().unwrap(), code);
    }

    #[test]
    fn typing_is_forgiving_about_case_separators_and_lookalike_letters() {
        assert_eq!(normalize("abcd efgh-ilo0").as_deref(), Some("ABCDEFGH1100"));
        assert_eq!(normalize("ABCD-EFGH-JKM"), None, "too short");
        assert_eq!(
            normalize("ABCD-EFGH-JKMU"),
            None,
            "U is not in the alphabet"
        );
        assert_eq!(normalize("ABCD-EFGH-JKMÉ"), None);
    }
}
