//! The venue's players.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{execute, AppState, CommandResponse};
use crate::auth::{AuthUser, Role};
use axum::extract::State;
use axum::Json;
use pvm_core::ids::PlayerId;
use pvm_core::players::{self, Player, PlayerDetails};
use pvm_core::Command;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_players, add_player))
        .routes(routes!(get_player, update_player))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct Search {
    /// Part of a name, nickname or phone number.
    q: Option<String>,
    /// At most this many (default 50).
    limit: Option<usize>,
}

/// Players, searched by name, nickname or phone (floor staff).
#[utoipa::path(get, path = "/api/v1/players", tag = "venue", params(Search),
    responses((status = 200, body = [Object])))]
async fn list_players(
    State(s): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<Search>,
) -> ApiResult<Json<Vec<Player>>> {
    user.require(Role::Dealer)?;
    let state = s.engine.state();
    let query = q.q.unwrap_or_default();
    let mut found: Vec<Player> = state
        .players
        .values()
        .filter(|p| players::matches(p, &query))
        .map(|p| Player::clone(p))
        .collect();
    found.sort_by_key(|p| p.name.to_lowercase());
    found.truncate(q.limit.unwrap_or(50).min(1000));
    Ok(Json(found))
}

/// Add a player (floor).
#[utoipa::path(post, path = "/api/v1/players", tag = "venue", request_body = Object,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn add_player(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(details): ApiJson<PlayerDetails>,
) -> ApiResult<Json<CommandResponse>> {
    execute(&s, &user, Role::Floor, Command::AddPlayer { details }).await
}

/// One player (floor staff).
#[utoipa::path(get, path = "/api/v1/players/{player_id}", tag = "venue",
    params(("player_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
async fn get_player(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(player_id): ApiPath<PlayerId>,
) -> ApiResult<Json<Player>> {
    user.require(Role::Dealer)?;
    s.engine
        .state()
        .players
        .get(&player_id)
        .map(|p| Json(Player::clone(p)))
        .ok_or_else(|| ApiError::not_found("player"))
}

/// Change a player's details (floor).
#[utoipa::path(put, path = "/api/v1/players/{player_id}", tag = "venue", request_body = Object,
    params(("player_id" = uuid::Uuid, Path)),
    responses((status = 200, body = CommandResponse), (status = 404, body = super::error::ErrorBody)))]
async fn update_player(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(player_id): ApiPath<PlayerId>,
    ApiJson(details): ApiJson<PlayerDetails>,
) -> ApiResult<Json<CommandResponse>> {
    execute(
        &s,
        &user,
        Role::Floor,
        Command::UpdatePlayer { player_id, details },
    )
    .await
}
