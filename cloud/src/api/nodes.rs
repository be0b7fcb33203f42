//! The fleet: a tenant's enrolled nodes with their last reported status.
//! The status columns are filled from heartbeats by the sync side.

use super::extract::ApiPath;
use super::venues::load_venue;
use crate::auth::{tenant_access, Caller, Role};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::CloudState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<CloudState> {
    OpenApiRouter::new()
        .routes(routes!(list_nodes))
        .routes(routes!(list_venue_nodes))
        .routes(routes!(get_node))
}

#[derive(Serialize, ToSchema)]
pub struct Node {
    pub id: Uuid,
    pub venue_id: Uuid,
    pub venue_name: String,
    pub hostname: String,
    pub version: String,
    pub enrolled_at: DateTime<Utc>,
    /// A heartbeat arrived within three heartbeat intervals.
    pub online: bool,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub uptime_s: Option<i64>,
    pub temperature_c: Option<f64>,
    pub disk_free_bytes: Option<i64>,
    pub disk_total_bytes: Option<i64>,
    /// Highest event sequence the cloud has acknowledged.
    pub last_synced_seq: Option<i64>,
    /// Highest event sequence in the node's log.
    pub last_event_seq: Option<i64>,
    /// Events not yet synced (`last_event_seq - last_synced_seq`).
    pub sync_lag: Option<i64>,
    pub clock_offset_ms: Option<i64>,
    /// The node's system update, as its last heartbeat reported it; absent from nodes
    /// that report none (older versions, or machines whose updates are not managed).
    pub update: Option<NodeUpdate>,
}

/// Where a node's system update stands.
#[derive(Serialize, ToSchema)]
pub struct NodeUpdate {
    /// `idle`, `downloading`, `verifying`, `installing`, `ready`, `trying`, `committed`,
    /// `rolled_back` or `failed`.
    pub state: String,
    /// 0–100 while a download, verification or install moves bytes.
    pub progress_pct: Option<i16>,
    /// The version being (or last) installed.
    pub target_version: Option<String>,
    /// Why the last attempt failed or was rolled back.
    pub last_error: Option<String>,
}

/// `$1` is the tenant, `$2` the online window in seconds; callers add their own filters.
const NODE_SELECT: &str = "SELECT n.id, n.venue_id, v.name, n.hostname, n.version, n.enrolled_at,
        coalesce(n.last_heartbeat_at > now() - make_interval(secs => $2), false),
        n.last_heartbeat_at, n.uptime_s, n.temperature_c, n.disk_free_bytes,
        n.disk_total_bytes, n.last_synced_seq, n.last_event_seq, n.clock_offset_ms,
        n.update_state, n.update_progress_pct, n.update_target_version, n.update_error
     FROM nodes n JOIN venues v ON v.id = n.venue_id AND v.tenant_id = n.tenant_id
     WHERE n.tenant_id = $1";

fn node(r: &tokio_postgres::Row) -> Node {
    let synced: Option<i64> = r.get(12);
    let last: Option<i64> = r.get(13);
    Node {
        id: r.get(0),
        venue_id: r.get(1),
        venue_name: r.get(2),
        hostname: r.get(3),
        version: r.get(4),
        enrolled_at: r.get(5),
        online: r.get(6),
        last_heartbeat_at: r.get(7),
        uptime_s: r.get(8),
        temperature_c: r.get(9),
        disk_free_bytes: r.get(10),
        disk_total_bytes: r.get(11),
        last_synced_seq: synced,
        last_event_seq: last,
        sync_lag: last.map(|l| (l - synced.unwrap_or(0)).max(0)),
        clock_offset_ms: r.get(14),
        update: r.get::<_, Option<String>>(15).map(|state| NodeUpdate {
            state,
            progress_pct: r.get(16),
            target_version: r.get(17),
            last_error: r.get(18),
        }),
    }
}

fn online_window_s(s: &CloudState) -> f64 {
    s.config.heartbeat_interval_s.saturating_mul(3) as f64
}

/// Every node of the tenant (floor or higher).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/nodes", tag = "fleet", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path)),
    responses((status = 200, body = [Node]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_nodes(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath(tenant_id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<Node>>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Floor).await?;
    let rows = db
        .query(
            &format!("{NODE_SELECT} ORDER BY v.name, n.hostname, n.id"),
            &[&access.tenant_id, &online_window_s(&s)],
        )
        .await?;
    Ok(Json(rows.iter().map(node).collect()))
}

/// The nodes of one venue (floor or higher).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/venues/{venue_id}/nodes", tag = "fleet",
    security(("bearer" = [])), params(("tenant_id" = Uuid, Path), ("venue_id" = Uuid, Path)),
    responses((status = 200, body = [Node]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_venue_nodes(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, venue_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<Node>>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Floor).await?;
    load_venue(&db, access.tenant_id, venue_id).await?;
    let rows = db
        .query(
            &format!("{NODE_SELECT} AND n.venue_id = $3 ORDER BY n.hostname, n.id"),
            &[&access.tenant_id, &online_window_s(&s), &venue_id],
        )
        .await?;
    Ok(Json(rows.iter().map(node).collect()))
}

/// One node (floor or higher).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/nodes/{node_id}", tag = "fleet",
    security(("bearer" = [])), params(("tenant_id" = Uuid, Path), ("node_id" = Uuid, Path)),
    responses((status = 200, body = Node), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_node(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, node_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Node>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Floor).await?;
    let row = db
        .query_opt(
            &format!("{NODE_SELECT} AND n.id = $3"),
            &[&access.tenant_id, &online_window_s(&s), &node_id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("node"))?;
    Ok(Json(node(&row)))
}
