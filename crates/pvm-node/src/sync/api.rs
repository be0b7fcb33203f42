//! `/api/v1/system/cloud`: pairing with the cloud and the sync status (admins only).

use super::{CloudStatus, EnrolError, SyncError};
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::ApiJson;
use crate::api::AppState;
use crate::auth::{AuthUser, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cloud_status, unpair))
        .routes(routes!(enrol))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EnrolBody {
    /// The cloud's web address, e.g. `https://cloud.example`.
    pub cloud_url: String,
    /// The one-time enrolment code an admin created for this venue in the cloud.
    pub code: String,
}

/// Whether the node is paired, and how far its events have reached the cloud.
#[utoipa::path(get, path = "/api/v1/system/cloud", tag = "system",
    responses((status = 200, body = CloudStatus), (status = 403, body = crate::api::error::ErrorBody)))]
async fn cloud_status(State(s): State<AppState>, user: AuthUser) -> ApiResult<Json<CloudStatus>> {
    user.require(Role::Admin)?;
    Ok(Json(s.node.cloud.status()))
}

/// Pair the node with a cloud by redeeming an enrolment code; syncing starts at once.
#[utoipa::path(post, path = "/api/v1/system/cloud/enrol", tag = "system", request_body = EnrolBody,
    responses((status = 200, body = CloudStatus),
        (status = 409, body = crate::api::error::ErrorBody, description = "already paired"),
        (status = 422, body = crate::api::error::ErrorBody, description = "the cloud refused the code"),
        (status = 502, body = crate::api::error::ErrorBody, description = "the cloud cannot be reached")))]
async fn enrol(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<EnrolBody>,
) -> ApiResult<Json<CloudStatus>> {
    user.require(Role::Admin)?;
    let hostname = super::hostname("pvm");
    let status = s
        .node
        .cloud
        .enrol(&body.cloud_url, &body.code, &hostname)
        .await?;
    Ok(Json(status))
}

/// Forget the pairing and stop syncing. The event log is kept.
#[utoipa::path(delete, path = "/api/v1/system/cloud", tag = "system",
    responses((status = 200, body = CloudStatus), (status = 403, body = crate::api::error::ErrorBody)))]
async fn unpair(State(s): State<AppState>, user: AuthUser) -> ApiResult<Json<CloudStatus>> {
    user.require(Role::Admin)?;
    s.node.cloud.unpair().await?;
    Ok(Json(s.node.cloud.status()))
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        let message = e.to_string();
        match e {
            SyncError::AlreadyPaired { .. } => {
                ApiError::new(StatusCode::CONFLICT, "already_paired", message)
            }
            SyncError::Enrol(EnrolError::BadUrl(_)) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            }
            SyncError::Enrol(EnrolError::Refused { .. }) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "enrolment_refused",
                message,
            ),
            SyncError::Enrol(EnrolError::Unreachable { .. }) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "cloud_unreachable", message)
            }
            SyncError::Enrol(EnrolError::Cloud { .. }) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "cloud_error", message)
            }
            SyncError::Pairing(_) | SyncError::Store(_) => {
                tracing::error!(error = %message, "cloud pairing");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}
