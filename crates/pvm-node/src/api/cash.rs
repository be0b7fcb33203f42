//! Cash games, tables and waiting lists. Each route builds one `CashCommand`: the body's
//! fields are the command's fields, ids in the path are added to them, so serde's messages
//! name exactly the field that is wrong.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath};
use super::{execute, AppState, CommandResponse};
use crate::auth::{AuthUser, Role};
use crate::engine::wall_now;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pvm_core::cash::{self, CashCommand, CashState, GameBoard};
use pvm_core::Command;
use serde_json::{Map, Value};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_cash))
        .routes(routes!(get_board))
        .routes(routes!(create_game))
        .routes(routes!(rename_game))
        .routes(routes!(close_game))
        .routes(routes!(link_must_move, unlink_must_move))
        .routes(routes!(add_table))
        .routes(routes!(change_table_game))
        .routes(routes!(open_table))
        .routes(routes!(close_table))
        .routes(routes!(seat_walk_in))
        .routes(routes!(unseat))
        .routes(routes!(move_player))
        .routes(routes!(join_waitlist))
        .routes(routes!(call_player))
        .routes(routes!(undo_call))
        .routes(routes!(seat_from_waitlist))
        .routes(routes!(no_show))
        .routes(routes!(remove_from_waitlist))
        .routes(routes!(change_settings))
}

/// Builds the command tagged `tag` from the body's fields plus the ids from the path.
fn command(tag: &str, body: Option<Value>, path: &[(&str, Value)]) -> ApiResult<CashCommand> {
    let mut fields = match body {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ))
        }
    };
    for (k, v) in path {
        fields.insert((*k).to_string(), v.clone());
    }
    fields.insert("type".into(), Value::String(tag.into()));
    serde_json::from_value(Value::Object(fields)).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the request body does not fit: {e}"),
        )
    })
}

async fn run(
    s: &AppState,
    user: &AuthUser,
    tag: &str,
    body: Option<Value>,
    path: &[(&str, Value)],
) -> ApiResult<Json<CommandResponse>> {
    let command = command(tag, body, path)?;
    execute(s, user, Role::Floor, Command::Cash { command }).await
}

fn id(v: Uuid) -> Value {
    Value::String(v.to_string())
}

/// Every cash game, table, list and the list settings (floor).
#[utoipa::path(get, path = "/api/v1/cash", tag = "cash", responses((status = 200, body = Object)))]
async fn get_cash(State(s): State<AppState>, user: AuthUser) -> ApiResult<Json<CashState>> {
    user.require(Role::Dealer)?;
    Ok(Json(s.engine.state().cash.clone()))
}

/// The board: running games with their lists, then interest lists (public; no phone numbers).
#[utoipa::path(get, path = "/api/v1/cash/board", tag = "cash", responses((status = 200, body = [Object])))]
async fn get_board(State(s): State<AppState>) -> Json<Vec<GameBoard>> {
    Json(cash::board(&s.engine.state().cash, wall_now()))
}

/// Declares a floor route that turns its body (and path ids) into one cash command.
macro_rules! cash_route {
    ($name:ident, $method:ident, $path:literal, $tag:literal, body, [$($param:literal),*], $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path($method, path = $path, tag = "cash", request_body = Object,
            params($(($param = uuid::Uuid, Path)),*),
            responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
        async fn $name(
            State(s): State<AppState>,
            user: AuthUser,
            ApiPath(ids): ApiPath<Vec<(String, Uuid)>>,
            ApiJson(body): ApiJson<Value>,
        ) -> ApiResult<Json<CommandResponse>> {
            let path: Vec<(&str, Value)> = ids.iter().map(|(k, v)| (k.as_str(), id(*v))).collect();
            run(&s, &user, $tag, Some(body), &path).await
        }
    };
    ($name:ident, $method:ident, $path:literal, $tag:literal, body, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path($method, path = $path, tag = "cash", request_body = Object,
            responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
        async fn $name(
            State(s): State<AppState>,
            user: AuthUser,
            ApiJson(body): ApiJson<Value>,
        ) -> ApiResult<Json<CommandResponse>> {
            run(&s, &user, $tag, Some(body), &[]).await
        }
    };
    ($name:ident, $method:ident, $path:literal, $tag:literal, nobody, [$($param:literal),*], $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path($method, path = $path, tag = "cash",
            params($(($param = uuid::Uuid, Path)),*),
            responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
        async fn $name(
            State(s): State<AppState>,
            user: AuthUser,
            ApiPath(ids): ApiPath<Vec<(String, Uuid)>>,
        ) -> ApiResult<Json<CommandResponse>> {
            let path: Vec<(&str, Value)> = ids.iter().map(|(k, v)| (k.as_str(), id(*v))).collect();
            run(&s, &user, $tag, None, &path).await
        }
    };
}

cash_route!(
    create_game,
    post,
    "/api/v1/cash/games",
    "create_game",
    body,
    "Spread a game: `{game:\"NLH\", small_blind:100, big_blind:300}` (floor)."
);
cash_route!(
    rename_game,
    post,
    "/api/v1/cash/games/{game_id}/rename",
    "rename_game",
    body,
    ["game_id"],
    "Rename a game; `{name:null}` goes back to the stakes name (floor)."
);
cash_route!(
    close_game,
    post,
    "/api/v1/cash/games/{game_id}/close",
    "close_game",
    nobody,
    ["game_id"],
    "Stop spreading a game; its tables must be closed (floor)."
);
cash_route!(
    link_must_move,
    put,
    "/api/v1/cash/games/{must_move_game_id}/must-move",
    "link_must_move",
    body,
    ["must_move_game_id"],
    "Make this game a must-move feeding `main_game_id` (floor)."
);
cash_route!(
    unlink_must_move,
    delete,
    "/api/v1/cash/games/{must_move_game_id}/must-move",
    "unlink_must_move",
    nobody,
    ["must_move_game_id"],
    "Make a must-move game an ordinary game (floor)."
);
cash_route!(
    add_table,
    post,
    "/api/v1/cash/tables",
    "add_table",
    body,
    "Add a (closed) table: `{number, seat_count, game_id}` (floor)."
);
cash_route!(
    change_table_game,
    put,
    "/api/v1/cash/tables/{table_id}/game",
    "change_table_game",
    body,
    ["table_id"],
    "Change the game a closed table will deal: `{game_id}` (floor)."
);
cash_route!(
    open_table,
    post,
    "/api/v1/cash/tables/{table_id}/open",
    "open_table",
    nobody,
    ["table_id"],
    "Open a table: its game is running (floor)."
);
cash_route!(
    close_table,
    post,
    "/api/v1/cash/tables/{table_id}/close",
    "close_table",
    nobody,
    ["table_id"],
    "Close an empty table (floor)."
);
cash_route!(
    seat_walk_in,
    post,
    "/api/v1/cash/tables/{table_id}/seats",
    "seat_player",
    body,
    ["table_id"],
    "Seat a walk-in: `{name, seat?, player_id?}` (floor)."
);
cash_route!(
    move_player,
    post,
    "/api/v1/cash/moves",
    "move_player",
    body,
    "Move a player: `{from_table_id, from_seat, to_table_id, to_seat?}` (floor)."
);
cash_route!(
    join_waitlist,
    post,
    "/api/v1/cash/waitlist",
    "join_waitlist",
    body,
    "Put someone on a game's list: `{game_id, name, phone?, player_id?}` (floor)."
);
cash_route!(
    call_player,
    post,
    "/api/v1/cash/waitlist/{entry_id}/call",
    "call_player",
    nobody,
    ["entry_id"],
    "Call a player: their seat is ready (floor)."
);
cash_route!(
    undo_call,
    post,
    "/api/v1/cash/waitlist/{entry_id}/undo-call",
    "undo_call",
    nobody,
    ["entry_id"],
    "Take a call back (floor)."
);
cash_route!(
    seat_from_waitlist,
    post,
    "/api/v1/cash/waitlist/{entry_id}/seat",
    "seat_from_waitlist",
    body,
    ["entry_id"],
    "Seat someone from the list: `{table_id, seat?}` (floor)."
);
cash_route!(
    no_show,
    post,
    "/api/v1/cash/waitlist/{entry_id}/no-show",
    "mark_no_show",
    nobody,
    ["entry_id"],
    "A called player did not come (floor)."
);
cash_route!(
    remove_from_waitlist,
    delete,
    "/api/v1/cash/waitlist/{entry_id}",
    "remove_from_waitlist",
    nobody,
    ["entry_id"],
    "Take someone off a list (floor)."
);

/// A player leaves their seat (floor).
#[utoipa::path(delete, path = "/api/v1/cash/tables/{table_id}/seats/{seat}", tag = "cash",
    params(("table_id" = uuid::Uuid, Path), ("seat" = u8, Path)),
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn unseat(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((table_id, seat)): ApiPath<(Uuid, u8)>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        "unseat_player",
        None,
        &[("table_id", id(table_id)), ("seat", Value::from(seat))],
    )
    .await
}

/// Replace the waiting-list settings (call response time, missed-call policy, privacy) (admin).
#[utoipa::path(put, path = "/api/v1/cash/settings", tag = "cash", request_body = Object,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn change_settings(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(settings): ApiJson<Value>,
) -> ApiResult<Json<CommandResponse>> {
    user.require(Role::Admin)?;
    let mut body = Map::new();
    body.insert("settings".into(), settings);
    run(&s, &user, "change_settings", Some(Value::Object(body)), &[]).await
}
