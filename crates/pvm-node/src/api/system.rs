//! Version, health and time: what the console's System page and the monitoring read.

use super::AppState;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(version))
        .routes(routes!(health))
        .routes(routes!(time))
        .routes(routes!(firstboot))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub product: &'static str,
    pub version: &'static str,
}

/// The running node's version.
#[utoipa::path(get, path = "/api/v1/system/version", tag = "system",
    responses((status = 200, body = VersionInfo)))]
async fn version(State(s): State<AppState>) -> Json<VersionInfo> {
    Json(VersionInfo {
        product: "pvm-node",
        version: s.node.version,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub uptime_secs: u64,
    /// Sequence of the last event in the log.
    pub seq: u64,
    /// Commands waiting for the writer.
    pub queue: usize,
    pub time_trusted: bool,
}

/// Whether the node is serving, with a few vital signs.
#[utoipa::path(get, path = "/api/v1/system/health", tag = "system",
    responses((status = 200, body = Health)))]
async fn health(State(s): State<AppState>) -> Json<Health> {
    Json(health_of(&s))
}

pub fn health_of(s: &AppState) -> Health {
    Health {
        status: "ok",
        uptime_secs: s.node.started_at.elapsed().as_secs(),
        seq: s.engine.last_seq(),
        queue: s.engine.queue_len(),
        time_trusted: s.node.time.borrow().trusted,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TimeInfo {
    /// The node's wall clock, ms since the Unix epoch. Displays use it to correct their own clock.
    pub server_time_ms: i64,
    #[schema(value_type = Object)]
    pub sntp: crate::timesync::TimeStatus,
}

/// The node's time and the SNTP status (offset, stratum, last sync, "not trusted yet").
#[utoipa::path(get, path = "/api/v1/system/time", tag = "system",
    responses((status = 200, body = TimeInfo)))]
async fn time(State(s): State<AppState>) -> Json<TimeInfo> {
    Json(TimeInfo {
        server_time_ms: crate::engine::wall_now().as_millis(),
        sntp: s.node.time.borrow().clone(),
    })
}

/// One mistake in the venue's `pvm.toml`, as pvm-firstboot reported it.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct FirstbootProblem {
    /// The setting's name; `null` when the file as a whole is at fault.
    pub key: Option<String>,
    pub message: String,
    /// 1-based line in `pvm.toml`, when one is to blame.
    pub line: Option<u64>,
}

/// What the appliance's first boot did with `pvm.toml` (written by pvm-firstboot; see
/// docs/image.md).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct FirstbootReport {
    /// No problems (an absent `pvm.toml` is fine).
    pub ok: bool,
    /// False where pvm-firstboot never ran (a desktop install): nothing to show.
    #[serde(default = "yes")]
    pub available: bool,
    /// Whether a `pvm.toml` was on the card.
    #[serde(default)]
    pub found: bool,
    /// Settings this boot applied.
    pub applied: Vec<String>,
    pub errors: Vec<FirstbootProblem>,
}

fn yes() -> bool {
    true
}

/// The first-boot report, for the TV's and the web console's setup screens. Public and
/// read-only: it holds no secrets (pvm-firstboot never repeats a passphrase or a code).
#[utoipa::path(get, path = "/api/v1/system/firstboot", tag = "system",
    responses((status = 200, body = FirstbootReport)))]
async fn firstboot(State(s): State<AppState>) -> Json<FirstbootReport> {
    let path = &s.node.firstboot_report;
    let unreadable = |why: String| FirstbootReport {
        ok: false,
        available: true,
        found: true,
        applied: Vec::new(),
        errors: vec![FirstbootProblem {
            key: None,
            message: format!(
                "the first-boot report {} cannot be read: {why}",
                path.display()
            ),
            line: None,
        }],
    };
    let report = match tokio::fs::read(path).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| unreadable(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FirstbootReport {
            ok: true,
            available: false,
            found: false,
            applied: Vec::new(),
            errors: Vec::new(),
        },
        Err(e) => unreadable(e.to_string()),
    };
    Json(report)
}
