//! Screens, displays (the HDMI TV and Chromecasts), announcements, and the view model each
//! display draws.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath};
use super::{execute, AppState, CommandResponse};
use crate::auth::{AuthUser, ClientIp, Role};
use crate::engine::wall_now;
use axum::extract::State;
use axum::Json;
use pvm_core::displays::{Announcement, AnnouncementStyle, Display, Screen, ScreenKind};
use pvm_core::ids::{AnnouncementId, DisplayId, ScreenId};
use pvm_core::views::{self, DisplayView};
use pvm_core::Command;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_screens, create_screen))
        .routes(routes!(update_screen, delete_screen))
        .routes(routes!(list_displays))
        .routes(routes!(chromecast_status))
        .routes(routes!(add_chromecast))
        .routes(routes!(remove_display))
        .routes(routes!(assign_screen))
        .routes(routes!(set_layout))
        .routes(routes!(display_view))
        .routes(routes!(screen_view))
        .routes(routes!(list_announcements, announce))
        .routes(routes!(clear_announcement))
}

/// Every screen spec (public).
#[utoipa::path(get, path = "/api/v1/screens", tag = "displays",
    responses((status = 200, body = [Object])))]
async fn list_screens(State(s): State<AppState>) -> Json<Vec<Screen>> {
    Json(
        s.engine
            .state()
            .displays
            .screens
            .values()
            .cloned()
            .collect(),
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ScreenRequest {
    pub name: String,
    /// `{"type":"tournament_clock","tournament_id":…}`, `{"type":"waiting_list"}`, `{"type":"rotation","screens":[…],"interval_secs":20}`…
    #[schema(value_type = Object)]
    pub kind: ScreenKind,
}

/// Create a screen (floor).
#[utoipa::path(post, path = "/api/v1/screens", tag = "displays", request_body = ScreenRequest,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn create_screen(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(b): ApiJson<ScreenRequest>,
) -> ApiResult<Json<CommandResponse>> {
    execute(
        &s,
        &user,
        Role::Floor,
        Command::CreateScreen {
            name: b.name,
            kind: b.kind,
        },
    )
    .await
}

/// Change a screen (floor).
#[utoipa::path(put, path = "/api/v1/screens/{screen_id}", tag = "displays", request_body = ScreenRequest,
    params(("screen_id" = uuid::Uuid, Path)),
    responses((status = 200, body = CommandResponse), (status = 404, body = super::error::ErrorBody)))]
async fn update_screen(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(screen_id): ApiPath<ScreenId>,
    ApiJson(b): ApiJson<ScreenRequest>,
) -> ApiResult<Json<CommandResponse>> {
    execute(
        &s,
        &user,
        Role::Floor,
        Command::UpdateScreen {
            screen_id,
            name: b.name,
            kind: b.kind,
        },
    )
    .await
}

/// Delete a screen that no display shows (floor).
#[utoipa::path(delete, path = "/api/v1/screens/{screen_id}", tag = "displays",
    params(("screen_id" = uuid::Uuid, Path)),
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn delete_screen(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(screen_id): ApiPath<ScreenId>,
) -> ApiResult<Json<CommandResponse>> {
    execute(&s, &user, Role::Floor, Command::DeleteScreen { screen_id }).await
}

/// The HDMI output and every Chromecast, with their screens (public).
#[utoipa::path(get, path = "/api/v1/displays", tag = "displays",
    responses((status = 200, body = [Object])))]
async fn list_displays(State(s): State<AppState>) -> Json<Vec<Display>> {
    Json(
        s.engine
            .state()
            .displays
            .displays
            .values()
            .cloned()
            .collect(),
    )
}

/// What each Chromecast is doing: discovered, connecting, casting since…, lost, error (public).
#[utoipa::path(get, path = "/api/v1/displays/chromecasts", tag = "displays",
    responses((status = 200, body = Object)))]
async fn chromecast_status(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(match &s.node.cast {
        Some(rx) => serde_json::json!({ "enabled": true, "devices": *rx.borrow() }),
        None => serde_json::json!({ "enabled": false, "devices": {} }),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChromecastRequest {
    /// The stable `id` from the device's mDNS TXT record.
    pub device_id: String,
    pub name: String,
}

/// Add a Chromecast as a display (floor).
#[utoipa::path(post, path = "/api/v1/displays", tag = "displays", request_body = ChromecastRequest,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn add_chromecast(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(b): ApiJson<ChromecastRequest>,
) -> ApiResult<Json<CommandResponse>> {
    execute(
        &s,
        &user,
        Role::Floor,
        Command::AddChromecast {
            device_id: b.device_id,
            name: b.name,
        },
    )
    .await
}

/// Remove a Chromecast display (floor).
#[utoipa::path(delete, path = "/api/v1/displays/{display_id}", tag = "displays",
    params(("display_id" = uuid::Uuid, Path)),
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn remove_display(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(display_id): ApiPath<DisplayId>,
) -> ApiResult<Json<CommandResponse>> {
    execute(
        &s,
        &user,
        Role::Floor,
        Command::RemoveDisplay { display_id },
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AssignRequest {
    #[schema(value_type = Option<uuid::Uuid>)]
    pub screen_id: Option<ScreenId>,
    /// Take a Chromecast over even when someone else is casting to it.
    #[serde(default)]
    pub always: bool,
}

/// Choose what a display shows (floor).
#[utoipa::path(put, path = "/api/v1/displays/{display_id}/screen", tag = "displays",
    params(("display_id" = uuid::Uuid, Path)), request_body = AssignRequest,
    responses((status = 200, body = CommandResponse), (status = 404, body = super::error::ErrorBody)))]
async fn assign_screen(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(display_id): ApiPath<DisplayId>,
    ApiJson(b): ApiJson<AssignRequest>,
) -> ApiResult<Json<CommandResponse>> {
    execute(
        &s,
        &user,
        Role::Floor,
        Command::AssignScreen {
            display_id,
            screen_id: b.screen_id,
            always: b.always,
        },
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LayoutRequest {
    /// 0, 90, 180 or 270.
    pub rotation: u16,
    /// 0 to 10 (% kept clear on each side).
    pub overscan_percent: u8,
}

/// Rotation and overscan margin of a display (floor).
#[utoipa::path(put, path = "/api/v1/displays/{display_id}/layout", tag = "displays",
    params(("display_id" = uuid::Uuid, Path)), request_body = LayoutRequest,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn set_layout(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(display_id): ApiPath<DisplayId>,
    ApiJson(b): ApiJson<LayoutRequest>,
) -> ApiResult<Json<CommandResponse>> {
    execute(
        &s,
        &user,
        Role::Floor,
        Command::SetDisplayLayout {
            display_id,
            rotation: b.rotation,
            overscan_percent: b.overscan_percent,
        },
    )
    .await
}

/// What a display shows right now, as the view model every renderer draws (public).
#[utoipa::path(get, path = "/api/v1/displays/{display_id}/view", tag = "displays",
    params(("display_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
async fn display_view(
    State(s): State<AppState>,
    client: ClientIp,
    ApiPath(display_id): ApiPath<DisplayId>,
) -> ApiResult<Json<DisplayView>> {
    let local = client.ip.is_some_and(|ip| ip.is_loopback());
    let state = s.engine.state();
    if !state.displays.displays.contains_key(&display_id) {
        return Err(ApiError::not_found("display"));
    }
    Ok(Json(views::display_view(
        &state,
        display_id,
        wall_now(),
        &s.setup_info(local),
    )))
}

/// The view model of one screen, whatever shows it (public; the web display page reads it).
#[utoipa::path(get, path = "/api/v1/screens/{screen_id}/view", tag = "displays",
    params(("screen_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
async fn screen_view(
    State(s): State<AppState>,
    client: ClientIp,
    ApiPath(screen_id): ApiPath<ScreenId>,
) -> ApiResult<Json<DisplayView>> {
    let local = client.ip.is_some_and(|ip| ip.is_loopback());
    let state = s.engine.state();
    if !state.displays.screens.contains_key(&screen_id) {
        return Err(ApiError::not_found("screen"));
    }
    Ok(Json(views::screen_view(
        &state,
        screen_id,
        wall_now(),
        &s.setup_info(local),
    )))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AnnouncementList {
    #[schema(value_type = [Object])]
    pub active: Vec<Announcement>,
}

/// Announcements showing now (public).
#[utoipa::path(get, path = "/api/v1/announcements", tag = "displays",
    responses((status = 200, body = AnnouncementList)))]
async fn list_announcements(State(s): State<AppState>) -> Json<AnnouncementList> {
    let state = s.engine.state();
    Json(AnnouncementList {
        active: state
            .displays
            .active_announcements(wall_now())
            .into_iter()
            .cloned()
            .collect(),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AnnounceRequest {
    pub text: String,
    /// `overlay` or `ticker`.
    #[schema(value_type = String)]
    pub style: AnnouncementStyle,
    pub duration_secs: Option<u32>,
}

/// Show an announcement on every screen (floor).
#[utoipa::path(post, path = "/api/v1/announcements", tag = "displays", request_body = AnnounceRequest,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn announce(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(b): ApiJson<AnnounceRequest>,
) -> ApiResult<Json<CommandResponse>> {
    execute(
        &s,
        &user,
        Role::Floor,
        Command::Announce {
            text: b.text,
            style: b.style,
            duration_secs: b.duration_secs,
        },
    )
    .await
}

/// Take an announcement down (floor).
#[utoipa::path(delete, path = "/api/v1/announcements/{announcement_id}", tag = "displays",
    params(("announcement_id" = uuid::Uuid, Path)),
    responses((status = 200, body = CommandResponse), (status = 404, body = super::error::ErrorBody)))]
async fn clear_announcement(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(announcement_id): ApiPath<AnnouncementId>,
) -> ApiResult<Json<CommandResponse>> {
    execute(
        &s,
        &user,
        Role::Floor,
        Command::ClearAnnouncement { announcement_id },
    )
    .await
}
