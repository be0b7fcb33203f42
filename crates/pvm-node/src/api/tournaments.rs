//! Tournaments: setup, structure, clock, entries, busts, payouts, deals, tables and seating.

use super::error::{domain, ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{execute, AppState, CommandResponse};
use crate::auth::{AuthUser, Role};
use crate::engine::wall_now;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use pvm_core::clock::ClockView;
use pvm_core::deals::{self, DealMethod};
use pvm_core::ids::{EntryId, PlayerId, TableId, TournamentId};
use pvm_core::players::PlayerDetails;
use pvm_core::seating::{BalancePlan, BalancePolicy, SeatRef};
use pvm_core::structure::{Structure, Template};
use pvm_core::tournament::{
    BustInput, DealStack, Entry, PrizePoolView, ResultLine, Stats, Tournament, TournamentCommand,
    TournamentConfig, TournamentStatus,
};
use pvm_core::{Chips, Command, Money, VenueState};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(list_tournaments, create_tournament))
        .routes(routes!(get_tournament))
        .routes(routes!(update_config))
        .routes(routes!(export_structure, set_structure))
        .routes(routes!(import_structure))
        .routes(routes!(clock_start))
        .routes(routes!(clock_pause))
        .routes(routes!(clock_resume))
        .routes(routes!(clock_next))
        .routes(routes!(clock_previous))
        .routes(routes!(clock_add_time))
        .routes(routes!(clock_set_time))
        .routes(routes!(list_entries, register))
        .routes(routes!(rebuy))
        .routes(routes!(addon))
        .routes(routes!(report_chips))
        .routes(routes!(bust))
        .routes(routes!(undo_bust))
        .routes(routes!(redo_bust))
        .routes(routes!(payouts))
        .routes(routes!(preview_deal))
        .routes(routes!(make_deal, cancel_deal))
        .routes(routes!(add_table))
        .routes(routes!(remove_table))
        .routes(routes!(lock_seat, unlock_seat))
        .routes(routes!(set_button))
        .routes(routes!(hand_completed))
        .routes(routes!(break_table))
        .routes(routes!(final_table))
        .routes(routes!(seating_plan))
        .routes(routes!(balance))
        .routes(routes!(draw_seat))
        .routes(routes!(move_entry))
        .routes(routes!(undo_seating))
        .routes(routes!(redo_seating))
        .routes(routes!(set_policy))
        .routes(routes!(set_break_order))
        .routes(routes!(hand_for_hand))
        .routes(routes!(finish))
        .routes(routes!(cancel))
}

async fn run(
    s: &AppState,
    user: &AuthUser,
    role: Role,
    tournament_id: TournamentId,
    command: TournamentCommand,
) -> ApiResult<Json<CommandResponse>> {
    execute(
        s,
        user,
        role,
        Command::Tournament {
            tournament_id,
            command,
        },
    )
    .await
}

fn find(state: &VenueState, id: TournamentId) -> ApiResult<&Tournament> {
    state
        .tournaments
        .get(&id)
        .map(|t| &**t)
        .ok_or_else(|| ApiError::not_found("tournament"))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TemplateInfo {
    pub id: &'static str,
    #[schema(value_type = Object)]
    pub structure: Structure,
    pub starting_stack: Chips,
}

/// The built-in blind structures: turbo, standard, deep stack.
#[utoipa::path(get, path = "/api/v1/structures/templates", tag = "tournaments",
    responses((status = 200, body = [TemplateInfo])))]
async fn list_templates() -> Json<Vec<TemplateInfo>> {
    Json(
        [
            ("turbo", Template::Turbo),
            ("standard", Template::Standard),
            ("deep_stack", Template::DeepStack),
        ]
        .into_iter()
        .map(|(id, t)| TemplateInfo {
            id,
            structure: Structure::template(t),
            starting_stack: t.starting_stack(),
        })
        .collect(),
    )
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TournamentSummary {
    #[schema(value_type = uuid::Uuid)]
    pub id: TournamentId,
    pub name: String,
    #[schema(value_type = String)]
    pub status: TournamentStatus,
    pub entries: u32,
    pub players_left: u32,
    #[schema(value_type = Object)]
    pub clock: ClockView,
    #[schema(value_type = i64)]
    pub prize_pool: Money,
}

/// All tournaments, newest first (public: the lobby screen reads it).
#[utoipa::path(get, path = "/api/v1/tournaments", tag = "tournaments",
    responses((status = 200, body = [TournamentSummary])))]
async fn list_tournaments(State(s): State<AppState>) -> Json<Vec<TournamentSummary>> {
    let state = s.engine.state();
    let now = wall_now();
    let mut list: Vec<TournamentSummary> = state
        .tournaments
        .values()
        .map(|t| TournamentSummary {
            id: t.id,
            name: t.config.name.clone(),
            status: t.status,
            entries: t.entries.len() as u32,
            players_left: t.active_count(),
            clock: t.clock.view(&t.structure, now),
            prize_pool: t.prize_pool().total,
        })
        .collect();
    list.reverse();
    Json(list)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateTournament {
    #[schema(value_type = Object)]
    pub config: TournamentConfig,
    /// A full structure, or leave it out and name a template.
    #[schema(value_type = Object)]
    pub structure: Option<Structure>,
    /// `turbo`, `standard` or `deep_stack`.
    pub template: Option<String>,
}

/// Create a tournament from a template or a full structure (floor).
#[utoipa::path(post, path = "/api/v1/tournaments", tag = "tournaments", request_body = CreateTournament,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn create_tournament(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateTournament>,
) -> ApiResult<Json<CommandResponse>> {
    let structure = match (req.structure, req.template.as_deref()) {
        (Some(st), None) => st,
        (None, Some(name)) => Structure::template(template_named(name)?),
        (None, None) => Structure::template(Template::Standard),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either a structure or a template, not both",
            ))
        }
    };
    execute(
        &s,
        &user,
        Role::Floor,
        Command::CreateTournament {
            config: req.config,
            structure,
        },
    )
    .await
}

fn template_named(name: &str) -> ApiResult<Template> {
    match name {
        "turbo" => Ok(Template::Turbo),
        "standard" => Ok(Template::Standard),
        "deep_stack" | "deepstack" | "deep-stack" => Ok(Template::DeepStack),
        other => Err(ApiError::bad_request(format!(
            "unknown template {other:?}: use turbo, standard or deep_stack"
        ))),
    }
}

/// A tournament with everything computed for `now`: clock, stats, prize pool, payouts, results.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TournamentDetail {
    #[schema(value_type = Object)]
    pub tournament: Tournament,
    #[schema(value_type = Object)]
    pub clock: ClockView,
    pub server_time_ms: i64,
    /// `null` when late registration is open, else why it is closed.
    pub late_registration_closed: Option<String>,
    #[schema(value_type = Object)]
    pub stats: Stats,
    #[schema(value_type = Object)]
    pub prize_pool: PrizePoolView,
    #[schema(value_type = [i64])]
    pub payouts: Vec<Money>,
    #[schema(value_type = [Object])]
    pub results: Vec<ResultLine>,
}

pub fn detail(state: &VenueState, t: &Tournament) -> TournamentDetail {
    let now = wall_now();
    let unit = state.settings.rounding_unit;
    TournamentDetail {
        tournament: t.clone(),
        clock: t.clock.view(&t.structure, now),
        server_time_ms: now.as_millis(),
        late_registration_closed: t.late_registration_open(now).err(),
        stats: t.stats(now),
        prize_pool: t.prize_pool(),
        payouts: t.payouts(unit),
        results: t.results(unit),
    }
}

/// One tournament in full (public: display pages read it).
#[utoipa::path(get, path = "/api/v1/tournaments/{tournament_id}", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)),
    responses((status = 200, body = TournamentDetail), (status = 404, body = super::error::ErrorBody)))]
async fn get_tournament(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<TournamentId>,
) -> ApiResult<Json<TournamentDetail>> {
    let state = s.engine.state();
    let t = find(&state, id)?;
    Ok(Json(detail(&state, t)))
}

/// Change buy-in, late registration, re-entry, rebuys, add-on, guarantee, payouts (floor).
#[utoipa::path(put, path = "/api/v1/tournaments/{tournament_id}/config", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = Object,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn update_config(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(config): ApiJson<TournamentConfig>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::UpdateConfig { config },
    )
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
struct FormatQuery {
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// Export the blind structure as JSON or CSV.
#[utoipa::path(get, path = "/api/v1/tournaments/{tournament_id}/structure", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path), FormatQuery),
    responses((status = 200, body = Object)))]
async fn export_structure(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<TournamentId>,
    ApiQuery(q): ApiQuery<FormatQuery>,
) -> ApiResult<axum::response::Response> {
    let state = s.engine.state();
    let t = find(&state, id)?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            t.structure.to_json().map_err(domain)?,
        )
            .into_response()),
        "csv" => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            t.structure.to_csv(),
        )
            .into_response()),
        other => Err(ApiError::bad_request(format!(
            "unknown format {other:?}: use json or csv"
        ))),
    }
}

/// Replace the blind structure (floor). The clock keeps its place.
#[utoipa::path(put, path = "/api/v1/tournaments/{tournament_id}/structure", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = Object,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn set_structure(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(structure): ApiJson<Structure>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::SetStructure { structure },
    )
    .await
}

/// Import a blind structure from JSON or CSV text (floor). `format` defaults to json.
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/structure/import", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path), FormatQuery), request_body(content = String, content_type = "text/plain"),
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn import_structure(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiQuery(q): ApiQuery<FormatQuery>,
    body: String,
) -> ApiResult<Json<CommandResponse>> {
    user.require(Role::Floor)?;
    let structure = match q.format.as_deref().unwrap_or("json") {
        "json" => Structure::from_json(&body).map_err(domain)?,
        "csv" => Structure::from_csv(&t_name(&s, id)?, &body).map_err(domain)?,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown format {other:?}: use json or csv"
            )))
        }
    };
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::SetStructure { structure },
    )
    .await
}

fn t_name(s: &AppState, id: TournamentId) -> ApiResult<String> {
    Ok(find(&s.engine.state(), id)?.config.name.clone())
}

/// Declares a body-less POST action on one tournament.
macro_rules! tournament_action {
    ($name:ident, $path:literal, $role:expr, $command:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "tournaments",
            params(("tournament_id" = uuid::Uuid, Path)),
            responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
        async fn $name(
            State(s): State<AppState>,
            user: AuthUser,
            ApiPath(id): ApiPath<TournamentId>,
        ) -> ApiResult<Json<CommandResponse>> {
            run(&s, &user, $role, id, $command).await
        }
    };
}

tournament_action!(
    clock_start,
    "/api/v1/tournaments/{tournament_id}/clock/start",
    Role::Floor,
    TournamentCommand::StartClock,
    "Start the clock (floor)."
);
tournament_action!(
    clock_pause,
    "/api/v1/tournaments/{tournament_id}/clock/pause",
    Role::Dealer,
    TournamentCommand::PauseClock,
    "Pause the clock (dealer)."
);
tournament_action!(
    clock_resume,
    "/api/v1/tournaments/{tournament_id}/clock/resume",
    Role::Dealer,
    TournamentCommand::ResumeClock,
    "Resume the clock (dealer)."
);
tournament_action!(
    clock_next,
    "/api/v1/tournaments/{tournament_id}/clock/next",
    Role::Floor,
    TournamentCommand::NextLevel,
    "Skip to the next level or break (floor)."
);
tournament_action!(
    clock_previous,
    "/api/v1/tournaments/{tournament_id}/clock/previous",
    Role::Floor,
    TournamentCommand::PreviousLevel,
    "Back to the previous level or break (floor)."
);
tournament_action!(
    undo_bust,
    "/api/v1/tournaments/{tournament_id}/busts/undo",
    Role::Floor,
    TournamentCommand::UndoBust,
    "Undo the last bust (floor)."
);
tournament_action!(
    redo_bust,
    "/api/v1/tournaments/{tournament_id}/busts/redo",
    Role::Floor,
    TournamentCommand::RedoBust,
    "Redo the last undone bust (floor)."
);
tournament_action!(
    balance,
    "/api/v1/tournaments/{tournament_id}/seating/balance",
    Role::Floor,
    TournamentCommand::BalanceTables,
    "Apply the balancing moves (TDA 2024 Rule 11) (floor)."
);
tournament_action!(
    undo_seating,
    "/api/v1/tournaments/{tournament_id}/seating/undo",
    Role::Floor,
    TournamentCommand::UndoSeating,
    "Undo the last seating change (floor)."
);
tournament_action!(
    redo_seating,
    "/api/v1/tournaments/{tournament_id}/seating/redo",
    Role::Floor,
    TournamentCommand::RedoSeating,
    "Redo the last undone seating change (floor)."
);
tournament_action!(
    finish,
    "/api/v1/tournaments/{tournament_id}/finish",
    Role::Floor,
    TournamentCommand::Finish,
    "Mark the tournament finished (floor)."
);
tournament_action!(
    cancel,
    "/api/v1/tournaments/{tournament_id}/cancel",
    Role::Admin,
    TournamentCommand::Cancel,
    "Cancel the tournament (admin)."
);

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Seconds {
    pub seconds: i64,
}

/// Add (positive) or remove (negative) time on the current level or break (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/clock/add-time", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = Seconds,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn clock_add_time(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(b): ApiJson<Seconds>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::AddTime { seconds: b.seconds },
    )
    .await
}

/// Set the time left in the current level or break (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/clock/set-time", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = Seconds,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn clock_set_time(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(b): ApiJson<Seconds>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::SetTimeLeft { seconds: b.seconds },
    )
    .await
}

/// Entries in registration order (public: the seating screen reads it).
#[utoipa::path(get, path = "/api/v1/tournaments/{tournament_id}/entries", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)),
    responses((status = 200, body = [Object])))]
async fn list_entries(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<TournamentId>,
) -> ApiResult<Json<Vec<Entry>>> {
    let state = s.engine.state();
    let t = find(&state, id)?;
    let mut entries: Vec<Entry> = t.entries.values().cloned().collect();
    entries.sort_by_key(|e| e.number);
    Ok(Json(entries))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// An existing player…
    #[schema(value_type = Option<uuid::Uuid>)]
    pub player_id: Option<PlayerId>,
    /// …or a new one, added to the venue's players in the same step.
    #[schema(value_type = Option<Object>)]
    pub new_player: Option<PlayerDetails>,
}

/// Register a player (a re-entry if they have busted before) (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/entries", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = RegisterRequest,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn register(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Json<CommandResponse>> {
    let command = match (req.player_id, req.new_player) {
        (Some(player_id), None) => Command::Tournament {
            tournament_id: id,
            command: TournamentCommand::Register { player_id },
        },
        (None, Some(details)) => Command::RegisterNewPlayer {
            tournament_id: id,
            details,
        },
        _ => return Err(ApiError::bad_request("give either player_id or new_player")),
    };
    execute(&s, &user, Role::Floor, command).await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RebuyRequest {
    /// The player's stack before the rebuy (needed when rebuys have a stack limit).
    pub stack: Option<Chips>,
}

/// Record a rebuy (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/entries/{entry_id}/rebuy", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path), ("entry_id" = uuid::Uuid, Path)), request_body = RebuyRequest,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn rebuy(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, entry_id)): ApiPath<(TournamentId, EntryId)>,
    ApiJson(b): ApiJson<RebuyRequest>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::Rebuy {
            entry_id,
            stack: b.stack,
        },
    )
    .await
}

/// Record the add-on (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/entries/{entry_id}/addon", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path), ("entry_id" = uuid::Uuid, Path)),
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn addon(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, entry_id)): ApiPath<(TournamentId, EntryId)>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::Addon { entry_id },
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChipsRequest {
    pub chips: Chips,
}

/// Report a player's chip count (dealer).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/entries/{entry_id}/chips", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path), ("entry_id" = uuid::Uuid, Path)), request_body = ChipsRequest,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn report_chips(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, entry_id)): ApiPath<(TournamentId, EntryId)>,
    ApiJson(b): ApiJson<ChipsRequest>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Dealer,
        id,
        TournamentCommand::ReportChips {
            entry_id,
            chips: b.chips,
        },
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct BustRequest {
    /// Everyone who busted on this hand, with their stacks at the start of it when several did.
    #[schema(value_type = [Object])]
    pub busts: Vec<BustInput>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub eliminated_by: Option<EntryId>,
}

/// Record the players who busted on one hand; places are assigned (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/busts", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = BustRequest,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn bust(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(b): ApiJson<BustRequest>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::Bust {
            busts: b.busts,
            eliminated_by: b.eliminated_by,
        },
    )
    .await
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PayoutsView {
    #[schema(value_type = Object)]
    pub prize_pool: PrizePoolView,
    #[schema(value_type = [i64])]
    pub payouts: Vec<Money>,
    #[schema(value_type = [Object])]
    pub results: Vec<ResultLine>,
}

/// Prize pool with its sources, the payout table and the results so far (public).
#[utoipa::path(get, path = "/api/v1/tournaments/{tournament_id}/payouts", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)),
    responses((status = 200, body = PayoutsView)))]
async fn payouts(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<TournamentId>,
) -> ApiResult<Json<PayoutsView>> {
    let state = s.engine.state();
    let t = find(&state, id)?;
    let unit = state.settings.rounding_unit;
    Ok(Json(PayoutsView {
        prize_pool: t.prize_pool(),
        payouts: t.payouts(unit),
        results: t.results(unit),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DealRequest {
    #[schema(value_type = Object)]
    pub method: DealMethod,
    #[schema(value_type = [Object])]
    pub stacks: Vec<DealStack>,
    #[serde(default)]
    #[schema(value_type = i64)]
    pub hold_back: Money,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DealPreview {
    #[schema(value_type = [Object])]
    pub amounts: Vec<DealAmount>,
    #[schema(value_type = i64)]
    pub held_back: Money,
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
pub struct DealAmount {
    pub entry_id: EntryId,
    pub player_name: String,
    pub chips: Chips,
    pub amount: Money,
}

/// Compute a deal for the remaining players without recording it (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/deal/preview", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = DealRequest,
    responses((status = 200, body = DealPreview), (status = 422, body = super::error::ErrorBody)))]
async fn preview_deal(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(req): ApiJson<DealRequest>,
) -> ApiResult<Json<DealPreview>> {
    user.require(Role::Floor)?;
    let state = s.engine.state();
    let t = find(&state, id)?;
    let left = t.active_count() as usize;
    if req.stacks.len() != left {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{left} players are left; give a stack for each of them"),
        ));
    }
    let payouts = t.payouts(state.settings.rounding_unit);
    let prizes = (0..left)
        .map(|i| payouts.get(i).copied().unwrap_or(Money::ZERO))
        .collect();
    let deal = deals::propose(&deals::DealRequest {
        prizes,
        stacks: req.stacks.iter().map(|s| s.chips).collect(),
        hold_back: req.hold_back,
        method: req.method,
        rounding_unit: Money::cents(1),
    })
    .map_err(domain)?;
    let mut amounts = Vec::with_capacity(left);
    for (st, amount) in req.stacks.iter().zip(deal.payouts.iter()) {
        let e = t
            .entries
            .get(&st.entry_id)
            .ok_or_else(|| ApiError::not_found("entry"))?;
        amounts.push(DealAmount {
            entry_id: st.entry_id,
            player_name: e.player_name.clone(),
            chips: st.chips,
            amount: *amount,
        });
    }
    Ok(Json(DealPreview {
        amounts,
        held_back: deal.held_back,
        warnings: deal.warnings,
    }))
}

/// Record a deal among the remaining players (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/deal", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = DealRequest,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn make_deal(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(req): ApiJson<DealRequest>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::MakeDeal {
            method: req.method,
            stacks: req.stacks,
            hold_back: req.hold_back,
        },
    )
    .await
}

/// Cancel the recorded deal (floor).
#[utoipa::path(delete, path = "/api/v1/tournaments/{tournament_id}/deal", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)),
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn cancel_deal(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
) -> ApiResult<Json<CommandResponse>> {
    run(&s, &user, Role::Floor, id, TournamentCommand::CancelDeal).await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AddTableRequest {
    pub number: u32,
    pub seats: u8,
}

/// Add a table (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/tables", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = AddTableRequest,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn add_table(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(b): ApiJson<AddTableRequest>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::AddTable {
            number: b.number,
            seats: b.seats,
        },
    )
    .await
}

/// Remove an empty table (floor).
#[utoipa::path(delete, path = "/api/v1/tournaments/{tournament_id}/tables/{table_id}", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path), ("table_id" = uuid::Uuid, Path)),
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn remove_table(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, table_id)): ApiPath<(TournamentId, TableId)>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::RemoveTable { table_id },
    )
    .await
}

/// Lock a seat so nobody is drawn into it (TDA 2024 Rule 9) (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/tables/{table_id}/seats/{seat}/lock", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path), ("table_id" = uuid::Uuid, Path), ("seat" = u8, Path)),
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn lock_seat(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, table_id, seat)): ApiPath<(TournamentId, TableId, u8)>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::LockSeat { table_id, seat },
    )
    .await
}

/// Unlock a seat (floor).
#[utoipa::path(delete, path = "/api/v1/tournaments/{tournament_id}/tables/{table_id}/seats/{seat}/lock", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path), ("table_id" = uuid::Uuid, Path), ("seat" = u8, Path)),
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn unlock_seat(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, table_id, seat)): ApiPath<(TournamentId, TableId, u8)>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::UnlockSeat { table_id, seat },
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SeatNumber {
    pub seat: u8,
}

/// Set the dealer button at a table (dealer).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/tables/{table_id}/button", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path), ("table_id" = uuid::Uuid, Path)), request_body = SeatNumber,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn set_button(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, table_id)): ApiPath<(TournamentId, TableId)>,
    ApiJson(b): ApiJson<SeatNumber>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Dealer,
        id,
        TournamentCommand::SetButton {
            table_id,
            seat: b.seat,
        },
    )
    .await
}

/// A hand finished at this table: the button moves on (dealer).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/tables/{table_id}/hand-completed", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path), ("table_id" = uuid::Uuid, Path)),
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn hand_completed(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, table_id)): ApiPath<(TournamentId, TableId)>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Dealer,
        id,
        TournamentCommand::HandCompleted { table_id },
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct BreakTableRequest {
    /// The table to break; leave out for the next one in the posted break order.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub table_id: Option<TableId>,
}

/// Break a table and redraw its players into open seats (TDA 2024 Rule 10) (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/seating/break-table", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = BreakTableRequest,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn break_table(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(b): ApiJson<BreakTableRequest>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::BreakTable {
            table_id: b.table_id,
        },
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TableRef {
    #[schema(value_type = uuid::Uuid)]
    pub table_id: TableId,
}

/// Redraw every remaining player for seats at the final table (RP-9) (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/seating/final-table", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = TableRef,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn final_table(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(b): ApiJson<TableRef>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::FinalTable {
            table_id: b.table_id,
        },
    )
    .await
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SeatingPlan {
    /// The moves balancing would make now, and tables to halt (TDA 2024 Rule 11).
    #[schema(value_type = Object)]
    pub balance: BalancePlan,
    /// The table that should break now, if the players fit at one fewer.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub table_to_break: Option<TableId>,
}

/// What balancing and table breaking would do now, without doing it (public).
#[utoipa::path(get, path = "/api/v1/tournaments/{tournament_id}/seating/plan", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)),
    responses((status = 200, body = SeatingPlan)))]
async fn seating_plan(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<TournamentId>,
) -> ApiResult<Json<SeatingPlan>> {
    let state = s.engine.state();
    let t = find(&state, id)?;
    Ok(Json(SeatingPlan {
        balance: pvm_core::seating::balance_plan(&t.floor),
        table_to_break: pvm_core::seating::table_to_break(&t.floor),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EntryRef {
    #[schema(value_type = uuid::Uuid)]
    pub entry_id: EntryId,
}

/// Seat an entry by random draw (TDA 2024 Rules 7, 8-A) (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/seating/draw", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = EntryRef,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn draw_seat(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(b): ApiJson<EntryRef>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::DrawSeat {
            entry_id: b.entry_id,
        },
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct MoveRequest {
    #[schema(value_type = uuid::Uuid)]
    pub entry_id: EntryId,
    #[schema(value_type = Object)]
    pub to: SeatRef,
}

/// Move an entry to a chosen open seat (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/seating/move", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = MoveRequest,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn move_entry(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(b): ApiJson<MoveRequest>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::MoveEntry {
            entry_id: b.entry_id,
            to: b.to,
        },
    )
    .await
}

/// Set the balancing policy shown to everyone (TDA 2024 Rule 11-C) (floor).
#[utoipa::path(put, path = "/api/v1/tournaments/{tournament_id}/seating/policy", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = Object,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn set_policy(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(policy): ApiJson<BalancePolicy>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::SetBalancePolicy { policy },
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct BreakOrder {
    #[schema(value_type = [uuid::Uuid])]
    pub tables: Vec<TableId>,
}

/// Post the order in which tables break (TDA 2024 Rule 10) (floor).
#[utoipa::path(put, path = "/api/v1/tournaments/{tournament_id}/seating/break-order", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = BreakOrder,
    responses((status = 200, body = CommandResponse), (status = 422, body = super::error::ErrorBody)))]
async fn set_break_order(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(b): ApiJson<BreakOrder>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::SetBreakOrder { tables: b.tables },
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OnOff {
    pub on: bool,
}

/// Turn hand-for-hand play on or off (RP-8) (floor).
#[utoipa::path(post, path = "/api/v1/tournaments/{tournament_id}/hand-for-hand", tag = "tournaments",
    params(("tournament_id" = uuid::Uuid, Path)), request_body = OnOff,
    responses((status = 200, body = CommandResponse), (status = 409, body = super::error::ErrorBody)))]
async fn hand_for_hand(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TournamentId>,
    ApiJson(b): ApiJson<OnOff>,
) -> ApiResult<Json<CommandResponse>> {
    run(
        &s,
        &user,
        Role::Floor,
        id,
        TournamentCommand::SetHandForHand { on: b.on },
    )
    .await
}
