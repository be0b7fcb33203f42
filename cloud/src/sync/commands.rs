//! `POST /api/v1/tenants/{tenant_id}/nodes/{node_id}/commands`: remote commands to one node
//! (resync from a sequence, reboot), for the tenant's admins and managers. Answered once
//! JetStream has stored the message for the node: 202 with the message id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::down;
use crate::api::extract::{ApiJson, ApiPath};
use crate::auth::{tenant_access, Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::CloudState;

pub fn routes() -> OpenApiRouter<CloudState> {
    OpenApiRouter::new().routes(routes!(send_command))
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeCommand {
    /// Publish again every event from `from_seq` (inclusive).
    Resync { from_seq: u64 },
    /// Reboot when no tournament clock runs (or now, with `force`).
    Reboot {
        #[serde(default)]
        force: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandSent {
    /// The down message's id (the node applies each id once).
    pub id: Uuid,
    pub issued_at_ms: i64,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

/// Send a remote command to one of the tenant's nodes.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant_id}/nodes/{node_id}/commands",
    tag = "fleet",
    params(("tenant_id" = Uuid, Path), ("node_id" = Uuid, Path)),
    request_body = NodeCommand,
    responses(
        (status = 202, description = "Stored for the node", body = CommandSent),
        (status = 403, description = "Needs manager or admin", body = crate::error::ErrorBody),
        (status = 404, description = "No such node in this tenant", body = crate::error::ErrorBody),
        (status = 503, description = "NATS unavailable", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn send_command(
    State(state): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, node_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(command): ApiJson<NodeCommand>,
) -> ApiResult<(StatusCode, Json<CommandSent>)> {
    let client = state.pool.get().await.map_err(internal)?;
    tenant_access(&client, &caller, tenant_id, Role::Manager).await?;
    let known = client
        .query_opt(
            "SELECT 1 FROM nodes WHERE id = $1 AND tenant_id = $2",
            &[&node_id, &tenant_id],
        )
        .await
        .map_err(internal)?;
    if known.is_none() {
        return Err(ApiError::not_found("node"));
    }
    let Some(nats) = state.nats.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sync_unavailable",
            "this cloud instance has no NATS connection",
        ));
    };
    let body = match command {
        NodeCommand::Resync { from_seq } => pvm_sync::DownBody::Resync { from_seq },
        NodeCommand::Reboot { force } => pvm_sync::DownBody::Reboot { force },
    };
    let js = async_nats::jetstream::new(nats);
    let sent = down::publish(&js, node_id, body).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sync_unavailable",
            e.to_string(),
        )
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CommandSent {
            id: sent.id,
            issued_at_ms: sent.issued_at_ms,
        }),
    ))
}
