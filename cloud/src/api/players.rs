//! Players: universal accounts (one per person, across venues and tenants) and their
//! memberships of venues. A player signs up themselves (`POST /api/v1/players`) or floor
//! staff register them at a venue; the two meet by e-mail.

use super::extract::{ApiJson, ApiPath};
use super::venues::load_venue;
use crate::accounts::{self, check_name, normalize_email, AccountError};
use crate::auth::{tenant_access, Caller, ClientIp, Role};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::CloudState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<CloudState> {
    OpenApiRouter::new()
        .routes(routes!(player_signup))
        .routes(routes!(list_members, add_member))
        .routes(routes!(get_member, patch_member, remove_member))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayerSignup {
    pub email: String,
    pub password: String,
    pub display_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct PlayerAccount {
    pub player_id: Uuid,
    pub user_id: Uuid,
}

/// A player signs up for a universal account. If floor staff already registered them at a
/// venue with this e-mail, the account takes over that player (and its memberships).
#[utoipa::path(post, path = "/api/v1/players", tag = "players", request_body = PlayerSignup,
    responses((status = 201, body = PlayerAccount), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn player_signup(
    State(s): State<CloudState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<PlayerSignup>,
) -> ApiResult<(StatusCode, Json<PlayerAccount>)> {
    super::accounts::signup_allowed(&s, &ip).await?;
    let display_name = check_name(&req.display_name, "display name")?;
    let email = normalize_email(&req.email)?;
    let mut client = s.pool.get().await?;
    let tx = client.transaction().await?;
    let user_id =
        accounts::create_user(&tx, &s.passwords, &email, &req.password, &display_name).await?;
    let existing = tx
        .query_opt(
            "UPDATE players SET user_id = $2 WHERE email = $1 AND user_id IS NULL RETURNING id",
            &[&email, &user_id],
        )
        .await?;
    let player_id = match existing {
        Some(row) => row.get(0),
        None => {
            let id = Uuid::now_v7();
            tx.execute(
                "INSERT INTO players (id, user_id, display_name, email) VALUES ($1, $2, $3, $4)",
                &[&id, &user_id, &display_name, &email],
            )
            .await
            .map_err(|e| match e.code() {
                Some(c) if *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
                    ApiError::from(AccountError::EmailTaken)
                }
                _ => e.into(),
            })?;
            id
        }
    };
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(PlayerAccount { player_id, user_id }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct VenueMember {
    pub player_id: Uuid,
    pub venue_id: Uuid,
    pub display_name: String,
    pub email: Option<String>,
    /// Whether the player has signed up for their own login.
    pub has_account: bool,
    pub membership_number: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

const MEMBER_SELECT: &str = "SELECT p.id, m.venue_id, p.display_name, p.email,
            p.user_id IS NOT NULL, m.membership_number, m.active, m.created_at
     FROM venue_memberships m JOIN players p ON p.id = m.player_id";

fn member(row: &tokio_postgres::Row) -> VenueMember {
    VenueMember {
        player_id: row.get(0),
        venue_id: row.get(1),
        display_name: row.get(2),
        email: row.get(3),
        has_account: row.get(4),
        membership_number: row.get(5),
        active: row.get(6),
        created_at: row.get(7),
    }
}

async fn load_member(
    db: &impl GenericClient,
    tenant_id: Uuid,
    venue_id: Uuid,
    player_id: Uuid,
) -> ApiResult<VenueMember> {
    db.query_opt(
        &format!("{MEMBER_SELECT} WHERE m.tenant_id = $1 AND m.venue_id = $2 AND m.player_id = $3"),
        &[&tenant_id, &venue_id, &player_id],
    )
    .await?
    .as_ref()
    .map(member)
    .ok_or_else(|| ApiError::not_found("player"))
}

fn check_membership_number(number: Option<String>) -> ApiResult<Option<String>> {
    match number.map(|n| n.trim().to_string()) {
        Some(n) if n.is_empty() => Ok(None),
        Some(n) if n.chars().count() > 64 || n.chars().any(char::is_control) => Err(
            ApiError::invalid("a membership number has at most 64 characters"),
        ),
        other => Ok(other),
    }
}

fn unique_number(e: tokio_postgres::Error) -> ApiError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        ApiError::conflict("another player of this venue has that membership number")
    } else {
        e.into()
    }
}

/// The venue's players (floor or higher).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players", tag = "players",
    security(("bearer" = [])), params(("tenant_id" = Uuid, Path), ("venue_id" = Uuid, Path)),
    responses((status = 200, body = [VenueMember]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_members(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, venue_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<VenueMember>>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Floor).await?;
    load_venue(&db, access.tenant_id, venue_id).await?;
    let rows = db
        .query(
            &format!(
                "{MEMBER_SELECT} WHERE m.tenant_id = $1 AND m.venue_id = $2
                 ORDER BY p.display_name, p.id"
            ),
            &[&access.tenant_id, &venue_id],
        )
        .await?;
    Ok(Json(rows.iter().map(member).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub display_name: String,
    /// When given and a player account has this e-mail, that player joins the venue;
    /// otherwise a new player is created with it.
    pub email: Option<String>,
    pub membership_number: Option<String>,
}

/// Register a player at the venue (floor or higher).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players", tag = "players",
    security(("bearer" = [])), params(("tenant_id" = Uuid, Path), ("venue_id" = Uuid, Path)),
    request_body = NewMember,
    responses((status = 201, body = VenueMember), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_member(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, venue_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(req): ApiJson<NewMember>,
) -> ApiResult<(StatusCode, Json<VenueMember>)> {
    let mut client = s.pool.get().await?;
    let tx = client.transaction().await?;
    let access = tenant_access(&tx, &caller, tenant_id, Role::Floor).await?;
    load_venue(&tx, access.tenant_id, venue_id).await?;
    let display_name = check_name(&req.display_name, "display name")?;
    let email = req.email.as_deref().map(normalize_email).transpose()?;
    let number = check_membership_number(req.membership_number)?;
    let player_id: Uuid = match &email {
        // Upsert on e-mail: the existing universal account, or a new one.
        Some(email) => tx
            .query_one(
                "INSERT INTO players (id, display_name, email) VALUES ($1, $2, $3)
                 ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING id",
                &[&Uuid::now_v7(), &display_name, email],
            )
            .await?
            .get(0),
        None => {
            let id = Uuid::now_v7();
            tx.execute(
                "INSERT INTO players (id, display_name) VALUES ($1, $2)",
                &[&id, &display_name],
            )
            .await?;
            id
        }
    };
    let inserted = tx
        .execute(
            "INSERT INTO venue_memberships (venue_id, player_id, tenant_id, membership_number)
             VALUES ($1, $2, $3, $4) ON CONFLICT (venue_id, player_id) DO NOTHING",
            &[&venue_id, &player_id, &access.tenant_id, &number],
        )
        .await
        .map_err(unique_number)?;
    if inserted == 0 {
        return Err(ApiError::conflict(
            "this player is already a member of the venue",
        ));
    }
    let m = load_member(&tx, access.tenant_id, venue_id, player_id).await?;
    tx.commit().await?;
    crate::sync::notify_players_changed(&s, venue_id);
    Ok((StatusCode::CREATED, Json(m)))
}

/// One player's membership of the venue (floor or higher).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players/{player_id}", tag = "players",
    security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path), ("venue_id" = Uuid, Path), ("player_id" = Uuid, Path)),
    responses((status = 200, body = VenueMember), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_member(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, venue_id, player_id)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<Json<VenueMember>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Floor).await?;
    Ok(Json(
        load_member(&db, access.tenant_id, venue_id, player_id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    /// A new number; an empty string removes it.
    pub membership_number: Option<String>,
    pub active: Option<bool>,
}

/// Change a membership's number or suspend/reactivate it (floor or higher).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players/{player_id}", tag = "players",
    security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path), ("venue_id" = Uuid, Path), ("player_id" = Uuid, Path)),
    request_body = MemberPatch,
    responses((status = 200, body = VenueMember), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn patch_member(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, venue_id, player_id)): ApiPath<(Uuid, Uuid, Uuid)>,
    ApiJson(patch): ApiJson<MemberPatch>,
) -> ApiResult<Json<VenueMember>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Floor).await?;
    let current = load_member(&db, access.tenant_id, venue_id, player_id).await?;
    let number = match patch.membership_number {
        Some(n) => check_membership_number(Some(n))?,
        None => current.membership_number,
    };
    let active = patch.active.unwrap_or(current.active);
    let updated = db
        .execute(
            "UPDATE venue_memberships SET membership_number = $4, active = $5, updated_at = now()
             WHERE tenant_id = $1 AND venue_id = $2 AND player_id = $3",
            &[&access.tenant_id, &venue_id, &player_id, &number, &active],
        )
        .await
        .map_err(unique_number)?;
    if updated == 0 {
        return Err(ApiError::not_found("player"));
    }
    crate::sync::notify_players_changed(&s, venue_id);
    Ok(Json(
        load_member(&db, access.tenant_id, venue_id, player_id).await?,
    ))
}

/// Remove a player from the venue (manager or higher); their universal account remains.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players/{player_id}", tag = "players",
    security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path), ("venue_id" = Uuid, Path), ("player_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_member(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, venue_id, player_id)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Manager).await?;
    let deleted = db
        .execute(
            "DELETE FROM venue_memberships WHERE tenant_id = $1 AND venue_id = $2 AND player_id = $3",
            &[&access.tenant_id, &venue_id, &player_id],
        )
        .await?;
    if deleted == 0 {
        return Err(ApiError::not_found("player"));
    }
    crate::sync::notify_players_changed(&s, venue_id);
    Ok(super::no_content())
}
