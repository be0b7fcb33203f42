//! Version, health and time: what the console's System page and the monitoring read.

use super::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(version))
        .routes(routes!(health))
        .routes(routes!(time))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub product: &'static str,
    pub version: &'static str,
}

/// The running node's version.
#[utoipa::path(get, path = "/api/v1/system/version", tag = "system",
    responses((status = 200, body = VersionInfo)))]
async fn version(State(s): State<AppState>) -> Json<VersionInfo> {
    Json(VersionInfo {
        product: "pvm-node",
        version: s.node.version,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub uptime_secs: u64,
    /// Sequence of the last event in the log.
    pub seq: u64,
    /// Commands waiting for the writer.
    pub queue: usize,
    pub time_trusted: bool,
}

/// Whether the node is serving, with a few vital signs.
#[utoipa::path(get, path = "/api/v1/system/health", tag = "system",
    responses((status = 200, body = Health)))]
async fn health(State(s): State<AppState>) -> Json<Health> {
    Json(health_of(&s))
}

pub fn health_of(s: &AppState) -> Health {
    Health {
        status: "ok",
        uptime_secs: s.node.started_at.elapsed().as_secs(),
        seq: s.engine.last_seq(),
        queue: s.engine.queue_len(),
        time_trusted: s.node.time.borrow().trusted,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TimeInfo {
    /// The node's wall clock, ms since the Unix epoch. Displays use it to correct their own clock.
    pub server_time_ms: i64,
    #[schema(value_type = Object)]
    pub sntp: crate::timesync::TimeStatus,
}

/// The node's time and the SNTP status (offset, stratum, last sync, "not trusted yet").
#[utoipa::path(get, path = "/api/v1/system/time", tag = "system",
    responses((status = 200, body = TimeInfo)))]
async fn time(State(s): State<AppState>) -> Json<TimeInfo> {
    Json(TimeInfo {
        server_time_ms: crate::engine::wall_now().as_millis(),
        sntp: s.node.time.borrow().clone(),
    })
}
