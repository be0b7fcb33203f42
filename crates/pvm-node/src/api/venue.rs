//! Venue settings.

use super::error::ApiResult;
use super::extract::ApiJson;
use super::{execute, AppState, CommandResponse};
use crate::auth::{AuthUser, Role};
use axum::extract::State;
use axum::Json;
use pvm_core::venue::VenueSettings;
use pvm_core::Command;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings))
}

/// The venue's name, time zone, currency, payout rounding and theme.
#[utoipa::path(get, path = "/api/v1/venue", tag = "venue",
    responses((status = 200, body = Object)))]
async fn get_settings(State(s): State<AppState>) -> Json<VenueSettings> {
    Json(s.engine.state().settings.clone())
}

/// Change the venue settings (admin).
#[utoipa::path(put, path = "/api/v1/venue", tag = "venue", request_body = Object,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn put_settings(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(settings): ApiJson<VenueSettings>,
) -> ApiResult<Json<CommandResponse>> {
    execute(&s, &user, Role::Admin, Command::UpdateSettings { settings }).await
}
