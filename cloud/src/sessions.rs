//! Sessions: short-lived access tokens plus opaque refresh tokens rotated on every use.
//!
//! A login starts a *family*. Each refresh marks the presented token used and issues its
//! successor in the same family. Presenting a token that was already used means two parties
//! hold it (the user and a thief, or a client replaying it), so the whole family is revoked
//! and both must sign in again. Only SHA-256 digests of refresh tokens are stored.

use crate::state::CloudState;
use crate::token::{AccessClaims, MembershipClaim, ISSUER};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Prefix of refresh tokens, so one pasted in the wrong place is recognisable.
const REFRESH_PREFIX: &str = "pvmr_";

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the refresh token is not valid")]
    Unknown,
    #[error("the refresh token was already used; every session of this login is now revoked")]
    Reused,
    #[error("the session was signed out")]
    Revoked,
    #[error("the refresh token has expired")]
    Expired,
    #[error("no randomness available: {0}")]
    Random(String),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// What login and refresh hand out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub user_id: Uuid,
    pub email: String,
    pub memberships: Vec<MembershipClaim>,
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

fn refresh_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_refresh_token() -> Result<String, SessionError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SessionError::Random(e.to_string()))?;
    Ok(format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The user's tenant memberships, for the token and for `GET /me`.
pub async fn memberships(
    db: &impl GenericClient,
    user_id: Uuid,
) -> Result<Vec<MembershipClaim>, tokio_postgres::Error> {
    Ok(db
        .query(
            "SELECT tenant_id, role FROM tenant_memberships WHERE user_id = $1
             ORDER BY created_at, tenant_id",
            &[&user_id],
        )
        .await?
        .iter()
        .map(|r| MembershipClaim {
            tenant_id: r.get(0),
            role: r.get(1),
        })
        .collect())
}

/// Issues an access token and stores a new refresh token in `family_id`.
async fn issue(
    db: &impl GenericClient,
    state: &CloudState,
    user_id: Uuid,
    email: String,
    family_id: Uuid,
) -> Result<Issued, SessionError> {
    let memberships = memberships(db, user_id).await?;
    let now = Utc::now();
    let access_expires_at = now + crate::config::duration_s(state.config.access_token_ttl_s);
    let claims = AccessClaims {
        iss: ISSUER.into(),
        sub: user_id,
        email: email.clone(),
        memberships: memberships.clone(),
        iat: now.timestamp(),
        exp: access_expires_at.timestamp(),
        jti: Uuid::now_v7(),
    };
    let access_token = state.tokens.sign(&claims);
    let refresh_token = new_refresh_token()?;
    let refresh_expires_at = now + crate::config::duration_s(state.config.refresh_token_ttl_s);
    db.execute(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &Uuid::now_v7(),
            &family_id,
            &user_id,
            &refresh_hash(&refresh_token),
            &refresh_expires_at,
        ],
    )
    .await?;
    Ok(Issued {
        user_id,
        email,
        memberships,
        access_token,
        access_expires_at,
        refresh_token,
        refresh_expires_at,
    })
}

/// A new session (a new family) for a user whose password was just checked.
pub async fn start(
    db: &impl GenericClient,
    state: &CloudState,
    user_id: Uuid,
    email: String,
) -> Result<Issued, SessionError> {
    issue(db, state, user_id, email, Uuid::now_v7()).await
}

/// Exchanges a refresh token for a new pair. A token already used revokes its family; that
/// revocation is committed even though the call fails.
pub async fn refresh(
    client: &mut deadpool_postgres::Client,
    state: &CloudState,
    token: &str,
) -> Result<Issued, SessionError> {
    let tx = client.transaction().await?;
    // FOR UPDATE: two refreshes of one token serialize; the second sees it used.
    let row = tx
        .query_opt(
            "SELECT r.id, r.family_id, r.user_id, r.expires_at < now(), r.used_at IS NOT NULL,
                    r.revoked_at IS NOT NULL, u.email
             FROM refresh_tokens r JOIN users u ON u.id = r.user_id
             WHERE r.token_hash = $1 FOR UPDATE OF r",
            &[&refresh_hash(token)],
        )
        .await?;
    let Some(row) = row else {
        return Err(SessionError::Unknown);
    };
    let (id, family_id, user_id): (Uuid, Uuid, Uuid) = (row.get(0), row.get(1), row.get(2));
    let (expired, used, revoked): (bool, bool, bool) = (row.get(3), row.get(4), row.get(5));
    if revoked {
        return Err(SessionError::Revoked);
    }
    if used {
        revoke_family(&tx, family_id).await?;
        tx.commit().await?;
        tracing::warn!(%user_id, %family_id, "refresh token reused: family revoked");
        return Err(SessionError::Reused);
    }
    if expired {
        return Err(SessionError::Expired);
    }
    tx.execute(
        "UPDATE refresh_tokens SET used_at = now() WHERE id = $1",
        &[&id],
    )
    .await?;
    let issued = issue(&tx, state, user_id, row.get(6), family_id).await?;
    tx.commit().await?;
    Ok(issued)
}

async fn revoke_family(
    db: &impl GenericClient,
    family_id: Uuid,
) -> Result<u64, tokio_postgres::Error> {
    db.execute(
        "UPDATE refresh_tokens SET revoked_at = now()
         WHERE family_id = $1 AND revoked_at IS NULL",
        &[&family_id],
    )
    .await
}

/// Signs out: revokes the family of `token`. Unknown tokens are ignored (signing out twice
/// is not an error).
pub async fn logout(db: &impl GenericClient, token: &str) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE refresh_tokens SET revoked_at = now()
         WHERE revoked_at IS NULL AND family_id =
           (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
        &[&refresh_hash(token)],
    )
    .await?;
    Ok(())
}
