//! Who is calling, and what they may do in a tenant.
//!
//! [`Caller`] comes from a verified access token. Tenant-scoped handlers then call
//! [`tenant_access`], which reads the caller's membership from PostgreSQL (not from the
//! token, so a removed member loses access at once) and answers 404 for a tenant the caller
//! is not a member of: another tenant's ids look exactly like ids that do not exist.

use crate::error::{ApiError, ApiResult};
use crate::state::CloudState;
use crate::token::AccessClaims;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use uuid::Uuid;

/// Roles within a tenant, weakest first: each role may do what the ones before it may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Player,
    Dealer,
    Floor,
    Manager,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Player => "player",
            Role::Dealer => "dealer",
            Role::Floor => "floor",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "player" => Role::Player,
            "dealer" => Role::Dealer,
            "floor" => Role::Floor,
            "manager" => Role::Manager,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

/// The authenticated caller, from `Authorization: Bearer <access token>`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub email: String,
    pub claims: AccessClaims,
}

impl FromRequestParts<CloudState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &CloudState) -> ApiResult<Self> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("sign in first: no access token was sent"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let claims = state
            .tokens
            .verify(token.trim(), chrono::Utc::now().timestamp())
            .map_err(|e| ApiError::unauthorized(format!("access token refused: {e}")))?;
        Ok(Caller {
            user_id: claims.sub,
            email: claims.email.clone(),
            claims,
        })
    }
}

/// The caller's standing in one tenant, checked against the database.
#[derive(Debug, Clone, Copy)]
pub struct TenantAccess {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
}

/// The caller's membership of `tenant_id`, requiring at least `min_role`.
/// Not a member: 404 (the tenant's existence is not revealed). Too weak a role: 403.
pub async fn tenant_access(
    db: &impl GenericClient,
    caller: &Caller,
    tenant_id: Uuid,
    min_role: Role,
) -> ApiResult<TenantAccess> {
    let row = db
        .query_opt(
            "SELECT role FROM tenant_memberships WHERE tenant_id = $1 AND user_id = $2",
            &[&tenant_id, &caller.user_id],
        )
        .await?;
    let role = row
        .and_then(|r| Role::parse(r.get::<_, &str>(0)))
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    if role < min_role {
        return Err(ApiError::forbidden(format!(
            "this needs the {} role or higher in the tenant; you are {}",
            min_role.as_str(),
            role.as_str()
        )));
    }
    Ok(TenantAccess {
        tenant_id,
        user_id: caller.user_id,
        role,
    })
}

/// The client's address for rate limits: the socket peer, or the first `X-Forwarded-For`
/// entry when the service is configured to sit behind a proxy that sets it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<CloudState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &CloudState) -> ApiResult<Self> {
        if state.config.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return Ok(ClientIp(forwarded));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(peer))
    }
}

impl ClientIp {
    /// The throttle key part for this address (`unknown` when served without one).
    pub fn key(&self) -> String {
        self.0
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}
