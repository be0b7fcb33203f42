//! `/api/v1/system/update…`: status, upload, fetch, install, trial reboot, postpone.
//! Admins only. Long actions answer 202 at once; their progress is in the status and on
//! the live `system` topic.

use super::{UpdateError, UpdateView};
use crate::api::error::{ApiError, ApiResult, ErrorBody};
use crate::api::extract::ApiJson;
use crate::api::AppState;
use crate::auth::{AuthUser, Role};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use pvm_ota::OtaError;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(fetch))
        .routes(routes!(install))
        .routes(routes!(reboot))
        .routes(routes!(postpone))
        .merge(
            // A bundle is hundreds of megabytes: streamed to disk, never held in memory,
            // so the API's small body limit does not apply here.
            OpenApiRouter::new()
                .routes(routes!(upload))
                .layer(DefaultBodyLimit::disable()),
        )
}

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        let (status, code) = match &e {
            UpdateError::NotManaged(_) => (StatusCode::CONFLICT, "not_managed"),
            UpdateError::Busy => (StatusCode::CONFLICT, "busy"),
            UpdateError::NoBundle => (StatusCode::CONFLICT, "no_bundle"),
            UpdateError::Worker(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            UpdateError::Ota(o) => match o {
                OtaError::Deferred(_) => (StatusCode::CONFLICT, "deferred"),
                OtaError::WrongState { .. } => (StatusCode::CONFLICT, "wrong_state"),
                OtaError::Truncated(_) => (StatusCode::BAD_REQUEST, "truncated"),
                OtaError::Download(_) => (StatusCode::BAD_GATEWAY, "download_failed"),
                OtaError::Io { .. } | OtaError::Slot { .. } | OtaError::Bootloader(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "update_failed")
                }
                _ => (StatusCode::UNPROCESSABLE_ENTITY, "bundle_refused"),
            },
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// The update status of this machine: versions, slots, state, progress, last trial boot.
#[utoipa::path(get, path = "/api/v1/system/update", tag = "system",
    responses((status = 200, body = UpdateView), (status = 403, body = ErrorBody)))]
async fn status(State(s): State<AppState>, user: AuthUser) -> ApiResult<Json<UpdateView>> {
    user.require(Role::Admin)?;
    Ok(Json(s.node.update.view(&s.engine)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    /// Bytes received and staged.
    pub bytes: u64,
    pub update: UpdateView,
}

/// Upload a bundle (`.pvmb`) as the raw request body; it is written to the data
/// partition as it arrives and replaces any bundle staged before. Nothing is trusted
/// or installed yet.
#[utoipa::path(post, path = "/api/v1/system/update/bundle", tag = "system",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = Uploaded), (status = 409, body = ErrorBody),
        (status = 400, body = ErrorBody)))]
async fn upload(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Uploaded>> {
    user.require(Role::Admin)?;
    let total = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bytes = s
        .node
        .update
        .receive(body.into_data_stream(), total)
        .await?;
    Ok(Json(Uploaded {
        bytes,
        update: s.node.update.view(&s.engine),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    /// Where the bundle is (`http://`).
    pub url: String,
}

/// Download a bundle from a URL (e.g. named by a release notice), in the background.
#[utoipa::path(post, path = "/api/v1/system/update/fetch", tag = "system",
    request_body = FetchRequest,
    responses((status = 202, body = UpdateView), (status = 409, body = ErrorBody)))]
async fn fetch(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<FetchRequest>,
) -> ApiResult<(StatusCode, Json<UpdateView>)> {
    user.require(Role::Admin)?;
    s.node.update.fetch(&req.url).await?;
    Ok((StatusCode::ACCEPTED, Json(s.node.update.view(&s.engine))))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ActionRequest {
    /// Go ahead even while a tournament clock runs or the update is postponed (logged).
    pub force: bool,
}

/// Verify the staged bundle and write it into the other slot, in the background.
/// Refused (409 `deferred`) while a tournament clock runs, unless forced.
#[utoipa::path(post, path = "/api/v1/system/update/install", tag = "system",
    request_body = ActionRequest,
    responses((status = 202, body = UpdateView), (status = 409, body = ErrorBody)))]
async fn install(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<ActionRequest>,
) -> ApiResult<(StatusCode, Json<UpdateView>)> {
    user.require(Role::Admin)?;
    s.node.update.install(&s.engine, req.force).await?;
    Ok((StatusCode::ACCEPTED, Json(s.node.update.view(&s.engine))))
}

/// Reboot once into the new version (trial boot). Refused (409 `deferred`) while a
/// tournament clock runs, unless forced. If the new version is not healthy the machine
/// comes back to this one by itself.
#[utoipa::path(post, path = "/api/v1/system/update/reboot", tag = "system",
    request_body = ActionRequest,
    responses((status = 202, body = UpdateView), (status = 409, body = ErrorBody)))]
async fn reboot(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<ActionRequest>,
) -> ApiResult<(StatusCode, Json<UpdateView>)> {
    user.require(Role::Admin)?;
    s.node.update.reboot(&s.engine, req.force).await?;
    Ok((StatusCode::ACCEPTED, Json(s.node.update.view(&s.engine))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostponeRequest {
    /// No installs or reboots (unless forced) for this many minutes.
    pub minutes: u64,
}

/// Postpone installs and reboots.
#[utoipa::path(post, path = "/api/v1/system/update/postpone", tag = "system",
    request_body = PostponeRequest,
    responses((status = 200, body = UpdateView), (status = 409, body = ErrorBody)))]
async fn postpone(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<PostponeRequest>,
) -> ApiResult<Json<UpdateView>> {
    user.require(Role::Admin)?;
    if req.minutes == 0 || req.minutes > 7 * 24 * 60 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "postpone by 1 minute to 7 days",
        ));
    }
    s.node.update.postpone(req.minutes).await?;
    Ok(Json(s.node.update.view(&s.engine)))
}
