//! Signup, login, token refresh, logout, and who the caller is.

use super::extract::ApiJson;
use crate::accounts::{self, normalize_email};
use crate::auth::{Caller, ClientIp};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::password::MAX_PASSWORD_LEN;
use crate::sessions::{self, Issued};
use crate::state::CloudState;
use crate::throttle;
use crate::token::MembershipClaim;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<CloudState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub tenant_name: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub display_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
}

/// Counts a signup from this address; refuses past the hourly limit.
pub(crate) async fn signup_allowed(state: &CloudState, ip: &ClientIp) -> ApiResult<()> {
    let db = state.pool.get().await?;
    let key = format!("signup-ip:{}", ip.key());
    let count = throttle::hit(&db, &key, 3600).await?;
    if count > state.config.signup_max_per_ip_per_hour as i32 {
        let retry = throttle::window_left_s(&db, &key, 3600).await?;
        return Err(ApiError::too_many(
            "rate_limited",
            "too many signups from this address; try again later",
            retry,
        ));
    }
    Ok(())
}

/// Create a tenant (an operator's organisation) with its first admin. An existing account
/// may create another tenant by giving its own password; it becomes that tenant's admin.
#[utoipa::path(post, path = "/api/v1/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = SignupResponse), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn signup(
    State(s): State<CloudState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<SignupRequest>,
) -> ApiResult<(StatusCode, Json<SignupResponse>)> {
    signup_allowed(&s, &ip).await?;
    accounts::check_name(&req.tenant_name, "tenant name")?;
    let email = normalize_email(&req.email)?;
    let mut client = s.pool.get().await?;
    let tx = client.transaction().await?;
    let user_id = match accounts::find_user(&tx, &email).await? {
        Some((id, hash)) => {
            if req.password.len() > MAX_PASSWORD_LEN
                || !s.passwords.verify(&req.password, Some(&hash)).await
            {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "email_taken",
                    "an account with this e-mail already exists; give its password to add a tenant to it",
                ));
            }
            id
        }
        None => {
            accounts::create_user(&tx, &s.passwords, &email, &req.password, &req.display_name)
                .await?
        }
    };
    let tenant_id = accounts::create_tenant(&tx, &req.tenant_name, user_id).await?;
    tx.commit().await?;
    tracing::info!(%tenant_id, %user_id, "tenant signed up");
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse { tenant_id, user_id }),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserRef {
    pub id: Uuid,
    pub email: String,
}

/// A session's tokens. Send `access_token` as `Authorization: Bearer …`; before it expires,
/// exchange `refresh_token` at `/api/v1/auth/refresh` (each refresh token works once).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub user: UserRef,
    pub memberships: Vec<MembershipClaim>,
}

impl From<Issued> for TokenResponse {
    fn from(i: Issued) -> Self {
        TokenResponse {
            access_token: i.access_token,
            token_type: "Bearer",
            expires_in: (i.access_expires_at - Utc::now()).num_seconds().max(0),
            expires_at: i.access_expires_at,
            refresh_token: i.refresh_token,
            refresh_expires_at: i.refresh_expires_at,
            user: UserRef {
                id: i.user_id,
                email: i.email,
            },
            memberships: i.memberships,
        }
    }
}

/// Sign in with e-mail and password. After too many failures an account is locked for a
/// while (429 `locked`), and an address with too many failures is refused (429
/// `rate_limited`); both hold across every instance.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
async fn login(
    State(s): State<CloudState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let cfg = &s.config;
    let email = req.email.trim().to_lowercase();
    let account_key = format!("login-account:{email}");
    let ip_key = format!("login-ip:{}", ip.key());
    let db = s.pool.get().await?;
    if let Some(left) = throttle::locked_for_s(&db, &account_key).await? {
        return Err(ApiError::too_many(
            "locked",
            "this account is locked after too many failed sign-ins; try again later",
            left,
        ));
    }
    if throttle::count(&db, &ip_key, cfg.login_ip_window_s).await?
        >= cfg.login_max_failures_per_ip as i32
    {
        let left = throttle::window_left_s(&db, &ip_key, cfg.login_ip_window_s).await?;
        return Err(ApiError::too_many(
            "rate_limited",
            "too many failed sign-ins from this address; try again later",
            left,
        ));
    }
    let user = accounts::find_user(&db, &email).await?;
    let ok = req.password.len() <= MAX_PASSWORD_LEN
        && s.passwords
            .verify(&req.password, user.as_ref().map(|(_, h)| h.as_str()))
            .await
        && user.is_some();
    let Some((user_id, _)) = user.filter(|_| ok) else {
        let failures = throttle::hit(&db, &account_key, cfg.login_lockout_s).await?;
        throttle::hit(&db, &ip_key, cfg.login_ip_window_s).await?;
        if failures >= cfg.login_max_failures as i32 {
            throttle::lock(&db, &account_key, cfg.login_lockout_s).await?;
            tracing::warn!(%email, "account locked after failed sign-ins");
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong e-mail or password",
        ));
    };
    throttle::clear(&db, &account_key).await?;
    let issued = sessions::start(&db, &s, user_id, email).await?;
    Ok(Json(issued.into()))
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchange a refresh token for a new access token and a new refresh token. Presenting a
/// refresh token a second time revokes every token of that login (401 `refresh_reused`).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
async fn refresh(
    State(s): State<CloudState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let mut client = s.pool.get().await?;
    let issued = sessions::refresh(&mut client, &s, req.refresh_token.trim()).await?;
    Ok(Json(issued.into()))
}

/// Sign out: revokes the refresh token and every token of the same login. Access tokens
/// already issued stay valid until they expire (minutes).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204)))]
async fn logout(
    State(s): State<CloudState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    let db = s.pool.get().await?;
    sessions::logout(&db, req.refresh_token.trim()).await?;
    Ok(super::no_content())
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub memberships: Vec<MembershipClaim>,
    /// The caller's universal player account, if they have one.
    pub player_id: Option<Uuid>,
    /// Whether the caller may publish releases.
    pub operator: bool,
}

/// The signed-in user, their tenant memberships as of now, and their player account.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(State(s): State<CloudState>, caller: Caller) -> ApiResult<Json<Me>> {
    let db = s.pool.get().await?;
    let row = db
        .query_opt(
            "SELECT u.email, u.display_name, p.id FROM users u
             LEFT JOIN players p ON p.user_id = u.id WHERE u.id = $1",
            &[&caller.user_id],
        )
        .await?
        .ok_or_else(|| ApiError::unauthorized("this account no longer exists"))?;
    let email: String = row.get(0);
    Ok(Json(Me {
        id: caller.user_id,
        operator: s.config.is_operator(&email),
        email,
        display_name: row.get(1),
        memberships: sessions::memberships(&db, caller.user_id).await?,
        player_id: row.get(2),
    }))
}
