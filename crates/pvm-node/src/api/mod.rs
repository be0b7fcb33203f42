//! The HTTP API: one place that knows every route. REST JSON under `/api/v1`, the live feeds
//! (WebSocket and SSE), `/healthz` and `/metrics`. Handlers stay small: they turn a request
//! into a core `Command` or a query on the published state.

mod cash;
mod displays;
pub mod error;
pub mod extract;
pub mod live;
mod players;
pub(crate) mod system;
mod tournaments;
mod venue;

pub use system::health_of as system_health;

use crate::auth::{AuthUser, Role};
use crate::engine::{Committed, EngineHandle};
use axum::Router;
use error::{ApiError, ApiResult};
use pvm_core::{Command, EventBody};
use serde::Serialize;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// Largest request body accepted (the 413 message names it, so it is the shared one).
pub const MAX_BODY_BYTES: usize = pvm_apierror::MAX_BODY_BYTES;

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub engine: EngineHandle,
    pub auth: Arc<crate::auth::AuthService>,
    pub node: Arc<NodeInfo>,
}

/// Facts about this node that handlers report.
pub struct NodeInfo {
    pub version: &'static str,
    pub started_at: std::time::Instant,
    pub time: tokio::sync::watch::Receiver<crate::timesync::TimeStatus>,
    pub live_clients: std::sync::atomic::AtomicU64,
    /// Update messages shared by every live connection (see [`live::RenderCache`]).
    pub live_cache: live::RenderCache,
    /// The live WebSocket connections and their delivery tasks (see [`live::Hub`]).
    pub live_hub: live::Hub,
    /// `http://pvm.local`, then the node's own addresses.
    pub console_urls: Vec<String>,
    /// `<hostname>.local` while the node announces itself over mDNS.
    pub mdns_name: Option<String>,
    /// The address the HTTP server is bound to.
    pub listen: std::net::SocketAddr,
    /// Messages queued for one live client before it is dropped as too slow.
    pub live_client_queue: usize,
    /// Each Chromecast's state, while the bridge runs.
    pub cast: Option<tokio::sync::watch::Receiver<pvm_cast::Statuses>>,
    /// Turns true when the node stops: upgraded live connections are no longer the HTTP
    /// server's to close, so they watch this and end themselves.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Cloud pairing and sync.
    pub cloud: Arc<crate::sync::CloudService>,
    /// System updates (A/B slots), or why this machine has none.
    pub update: Arc<crate::update::UpdateService>,
    /// Where pvm-firstboot leaves its report (`/run/pvm/firstboot.json` on the appliance).
    pub firstboot_report: std::path::PathBuf,
    /// The report's mistakes, read at start, for the setup screen.
    pub firstboot_notices: Vec<pvm_core::views::SetupNotice>,
    /// The configured venue name, which the setup screen welcomes (see `NodeConfig::venue_name`).
    pub venue_name: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "PVM node API", description = "Run a poker room: tournaments, clock, seating, payouts, cash games, displays."),
    tags(
        (name = "system", description = "Version, health, time, network"),
        (name = "venue", description = "Venue settings and players"),
        (name = "tournaments", description = "Tournaments, clock, entries, busts, payouts, seating"),
        (name = "cash", description = "Cash games, tables and waiting lists"),
        (name = "displays", description = "Screens, displays and announcements"),
    )
)]
struct ApiDoc;

/// Builds the whole API router and its OpenAPI document from the same handler list.
pub fn router() -> Router<AppState> {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(system::routes())
        .merge(venue::routes())
        .merge(players::routes())
        .merge(tournaments::routes())
        .merge(cash::routes())
        .merge(displays::routes())
        .merge(crate::sync::api::routes())
        .merge(crate::update::api::routes())
        .split_for_parts();
    let doc = Arc::new(doc);
    Router::new().merge(api).route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { axum::Json((*doc).clone()) }
        }),
    )
}

/// What every command route answers: the events it recorded and the id it created, if any.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommandResponse {
    /// Log sequence of the last event recorded.
    pub seq: u64,
    pub events: Vec<EventSummary>,
    /// The id of what the command created (tournament, player, entry, table…), if anything.
    pub created_id: Option<Uuid>,
    /// Every id the command created, in order (registering a new player: the player, then
    /// the entry).
    pub created_ids: Vec<Uuid>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventSummary {
    pub seq: u64,
    pub id: Uuid,
    pub kind: String,
}

/// Runs `command` for `user` if their role allows, and answers with what was recorded.
pub async fn execute(
    state: &AppState,
    user: &AuthUser,
    role: Role,
    command: Command,
) -> ApiResult<axum::Json<CommandResponse>> {
    user.require(role)?;
    let outcome = state.engine.execute(command).await?;
    Ok(axum::Json(summarize(&outcome.events)))
}

pub fn summarize(events: &[Committed]) -> CommandResponse {
    CommandResponse {
        seq: events.last().map(|c| c.seq).unwrap_or(0),
        // The last thing created is what was asked for: registering a new player adds the
        // player first, but the caller needs the entry.
        created_id: events.iter().rev().find_map(|c| created_id(&c.event.body)),
        created_ids: events
            .iter()
            .filter_map(|c| created_id(&c.event.body))
            .collect(),
        events: events
            .iter()
            .map(|c| EventSummary {
                seq: c.seq,
                id: c.event.id.0,
                kind: c.event.kind().to_string(),
            })
            .collect(),
    }
}

fn created_id(body: &EventBody) -> Option<Uuid> {
    use pvm_core::tournament::TournamentEvent as T;
    match body {
        EventBody::PlayerAdded { player_id, .. } => Some(player_id.0),
        EventBody::Tournament {
            tournament_id,
            event,
        } => match event {
            T::Created { .. } => Some(tournament_id.0),
            T::EntryRegistered { entry_id, .. } => Some(entry_id.0),
            T::TableAdded { table_id, .. } => Some(table_id.0),
            _ => None,
        },
        EventBody::Cash { event } => event.created_id(),
        EventBody::ScreenSaved { screen } => Some(screen.id.0),
        EventBody::DisplayAdded { display } => Some(display.id.0),
        EventBody::Announced { announcement } => Some(announcement.id.0),
        _ => None,
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        ApiError::new(e.status(), e.code(), e.to_string())
    }
}

impl axum::extract::FromRef<AppState> for Arc<crate::auth::AuthService> {
    fn from_ref(s: &AppState) -> Self {
        s.auth.clone()
    }
}

impl AppState {
    /// What the setup screen shows. The one-time code only goes to clients on this machine
    /// (the HDMI kiosk): display pages and Chromecasts elsewhere on the LAN never see it.
    pub fn setup_info(&self, local_client: bool) -> pvm_core::views::SetupInfo {
        let setup_required = self.auth.setup_required().unwrap_or(false);
        pvm_core::views::SetupInfo {
            setup_required,
            setup_code: if setup_required && local_client {
                self.auth.setup_code().ok().flatten()
            } else {
                None
            },
            console_urls: self.node.console_urls.clone(),
            notices: self.node.firstboot_notices.clone(),
            venue_name: self.node.venue_name.clone(),
        }
    }
}
