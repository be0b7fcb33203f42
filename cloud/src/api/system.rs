//! Health.

use crate::state::CloudState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<CloudState> {
    OpenApiRouter::new().routes(routes!(healthz))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the database does not answer.
    pub status: &'static str,
    pub version: &'static str,
    pub database: bool,
    /// Whether this instance has a NATS connection configured and currently connected.
    pub nats: Option<bool>,
}

/// Liveness for load balancers: 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn healthz(State(s): State<CloudState>) -> (StatusCode, Json<Health>) {
    let database = match s.pool.get().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    let nats = s.nats.as_ref().map(|c| {
        matches!(
            c.connection_state(),
            async_nats::connection::State::Connected
        )
    });
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let health = Health {
        status: if database { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database,
        nats,
    };
    (status, Json(health))
}
