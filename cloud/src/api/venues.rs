//! Venues (a tenant's poker rooms) and the enrolment codes that bind a node to one.

use super::extract::{ApiJson, ApiPath};
use crate::accounts;
use crate::auth::{tenant_access, Caller, Role};
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
        .routes(routes!(list_venues, create_venue))
        .routes(routes!(get_venue, patch_venue, delete_venue))
        .routes(routes!(create_enrolment_code))
}

#[derive(Serialize, ToSchema)]
pub struct Venue {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// IANA time zone, e.g. `Europe/Vienna`.
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

fn venue(row: &tokio_postgres::Row) -> Venue {
    Venue {
        id: row.get(0),
        tenant_id: row.get(1),
        name: row.get(2),
        time_zone: row.get(3),
        created_at: row.get(4),
    }
}

const VENUE_SELECT: &str = "SELECT id, tenant_id, name, time_zone, created_at FROM venues";

/// The venue `venue_id` of `tenant_id`; 404 when it does not exist *in that tenant*.
pub(crate) async fn load_venue(
    db: &impl GenericClient,
    tenant_id: Uuid,
    venue_id: Uuid,
) -> ApiResult<Venue> {
    db.query_opt(
        &format!("{VENUE_SELECT} WHERE tenant_id = $1 AND id = $2"),
        &[&tenant_id, &venue_id],
    )
    .await?
    .as_ref()
    .map(venue)
    .ok_or_else(|| ApiError::not_found("venue"))
}

/// A time zone PostgreSQL knows (its IANA database), so venue times convert correctly.
async fn check_time_zone(db: &impl GenericClient, tz: &str) -> ApiResult<String> {
    let tz = tz.trim();
    let known = tz.len() <= 64
        && db
            .query_opt("SELECT 1 FROM pg_timezone_names WHERE name = $1", &[&tz])
            .await?
            .is_some();
    if !known {
        return Err(ApiError::invalid(format!(
            "{tz:?} is not a known time zone (use an IANA name such as Europe/Vienna)"
        )));
    }
    Ok(tz.to_string())
}

/// The tenant's venues (dealer or higher).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/venues", tag = "venues", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path)),
    responses((status = 200, body = [Venue]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_venues(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath(tenant_id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<Venue>>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Dealer).await?;
    let rows = db
        .query(
            &format!("{VENUE_SELECT} WHERE tenant_id = $1 ORDER BY name, id"),
            &[&access.tenant_id],
        )
        .await?;
    Ok(Json(rows.iter().map(venue).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVenue {
    pub name: String,
    /// IANA time zone; `UTC` when absent.
    pub time_zone: Option<String>,
}

/// Create a venue (manager or higher).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/venues", tag = "venues", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path)), request_body = NewVenue,
    responses((status = 201, body = Venue), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn create_venue(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath(tenant_id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewVenue>,
) -> ApiResult<(StatusCode, Json<Venue>)> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Manager).await?;
    let name = accounts::check_name(&req.name, "venue name")?;
    let tz = check_time_zone(&db, req.time_zone.as_deref().unwrap_or("UTC")).await?;
    let row = db
        .query_one(
            "INSERT INTO venues (id, tenant_id, name, time_zone) VALUES ($1, $2, $3, $4)
             RETURNING id, tenant_id, name, time_zone, created_at",
            &[&Uuid::now_v7(), &access.tenant_id, &name, &tz],
        )
        .await?;
    Ok((StatusCode::CREATED, Json(venue(&row))))
}

/// One venue (dealer or higher).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/venues/{venue_id}", tag = "venues", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path), ("venue_id" = Uuid, Path)),
    responses((status = 200, body = Venue), (status = 404, body = ErrorBody)))]
async fn get_venue(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, venue_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Venue>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Dealer).await?;
    Ok(Json(load_venue(&db, access.tenant_id, venue_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VenuePatch {
    pub name: Option<String>,
    pub time_zone: Option<String>,
}

/// Rename a venue or change its time zone (manager or higher).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant_id}/venues/{venue_id}", tag = "venues", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path), ("venue_id" = Uuid, Path)), request_body = VenuePatch,
    responses((status = 200, body = Venue), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn patch_venue(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, venue_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(patch): ApiJson<VenuePatch>,
) -> ApiResult<Json<Venue>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Manager).await?;
    let current = load_venue(&db, access.tenant_id, venue_id).await?;
    let name = match patch.name {
        Some(n) => accounts::check_name(&n, "venue name")?,
        None => current.name,
    };
    let tz = match patch.time_zone {
        Some(tz) => check_time_zone(&db, &tz).await?,
        None => current.time_zone,
    };
    let row = db
        .query_opt(
            "UPDATE venues SET name = $3, time_zone = $4 WHERE tenant_id = $1 AND id = $2
             RETURNING id, tenant_id, name, time_zone, created_at",
            &[&access.tenant_id, &venue_id, &name, &tz],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("venue"))?;
    Ok(Json(venue(&row)))
}

/// Delete a venue (manager or higher). Refused while nodes are enrolled for it.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/venues/{venue_id}", tag = "venues", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path), ("venue_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn delete_venue(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, venue_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Manager).await?;
    let deleted = db
        .execute(
            "DELETE FROM venues WHERE tenant_id = $1 AND id = $2",
            &[&access.tenant_id, &venue_id],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                ApiError::conflict("nodes are still enrolled for this venue")
            } else {
                e.into()
            }
        })?;
    if deleted == 0 {
        return Err(ApiError::not_found("venue"));
    }
    Ok(super::no_content())
}

#[derive(Serialize, ToSchema)]
pub struct EnrolmentCode {
    /// Type this on the node's console (System → Cloud). Shown only now.
    pub code: String,
    pub venue_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Create a one-time enrolment code for the venue (manager or higher).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/venues/{venue_id}/enrolment-codes", tag = "venues",
    security(("bearer" = [])), params(("tenant_id" = Uuid, Path), ("venue_id" = Uuid, Path)),
    responses((status = 201, body = EnrolmentCode), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_enrolment_code(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, venue_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<(StatusCode, Json<EnrolmentCode>)> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Manager).await?;
    let venue = load_venue(&db, access.tenant_id, venue_id).await?;
    let ttl = crate::config::duration_s(s.config.enrolment_code_ttl_s);
    let (code, expires_at) =
        crate::enrolment::create_code(&db, access.tenant_id, venue.id, caller.user_id, ttl).await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrolmentCode {
            code,
            venue_id: venue.id,
            expires_at,
        }),
    ))
}
