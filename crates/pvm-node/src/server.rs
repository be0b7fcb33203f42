//! The whole HTTP surface in one place: the API, live feeds, auth routes, health, metrics and
//! the embedded web pages, with the layers every request goes through.

use crate::api::{self, error::ApiError, AppState, MAX_BODY_BYTES};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::atomic::Ordering;

/// Routes that change state without a session: they are how a session is obtained.
pub const PUBLIC_MUTATIONS: &[(&str, &str)] =
    &[("POST", "/api/v1/setup"), ("POST", "/api/v1/auth/login")];

pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(api::router())
        .merge(crate::auth::routes())
        .merge(api::live::routes())
        .route("/healthz", axum::routing::get(healthz))
        .route("/metrics", axum::routing::get(metrics))
        .route(
            "/cast/receiver.html",
            axum::routing::get(|| async { axum::response::Html(pvm_cast::RECEIVER_HTML) }),
        )
        .fallback(crate::web::serve)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_session_for_changes,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Belt and braces: whatever a handler does, no request that can change anything reaches it
/// without a valid session or bearer token (handlers then check the role).
async fn require_session_for_changes(
    State(s): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let path = req.uri().path().to_string();
    let exempt = PUBLIC_MUTATIONS
        .iter()
        .any(|(m, p)| *m == req.method().as_str() && *p == path);
    if mutating && !exempt {
        let Some(user) = s.auth.session_from_headers(req.headers()) else {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "log in first: this action needs a floor staff session",
            )
            .into_response();
        };
        // The handler's `AuthUser` extractor takes it from here instead of looking the
        // session up in SQLite a second time for the same request.
        req.extensions_mut().insert(user);
    }
    next.run(req).await
}

/// 200 while the node can do its job (also while the log's integrity check still runs: reads
/// are served and commands only wait); 503 once the log is found damaged, so a supervisor or
/// a trial boot's health check sees a node that cannot record anything.
async fn healthz(State(s): State<AppState>) -> Response {
    let h = api::system_health(&s);
    let status = if h.database_problem.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(h)).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    let m = &s.engine.metrics;
    let ok = m.commands_ok.load(Ordering::Relaxed);
    let refused = m.commands_refused.load(Ordering::Relaxed);
    let failed = m.commands_failed.load(Ordering::Relaxed);
    let time = s.node.time.borrow().clone();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, f64)]| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in lines {
            out.push_str(&format!("{name}{labels} {v}\n"));
        }
    };
    metric(
        "pvm_events_appended_total",
        "counter",
        "Events made durable in the log.",
        &[(
            String::new(),
            m.events_appended.load(Ordering::Relaxed) as f64,
        )],
    );
    metric(
        "pvm_commands_total",
        "counter",
        "Commands by result.",
        &[
            ("{result=\"ok\"}".into(), ok as f64),
            ("{result=\"refused\"}".into(), refused as f64),
            ("{result=\"failed\"}".into(), failed as f64),
        ],
    );
    metric(
        "pvm_commits_total",
        "counter",
        "Group commits (transactions with one fsync).",
        &[(String::new(), m.commits.load(Ordering::Relaxed) as f64)],
    );
    metric(
        "pvm_wal_resets_total",
        "counter",
        "Checkpoints the writer finished so the write-ahead log could start over.",
        &[(String::new(), m.wal_resets.load(Ordering::Relaxed) as f64)],
    );
    metric(
        "pvm_snapshots_saved_total",
        "counter",
        "Snapshots of the venue saved, so a start replays only the events after the last.",
        &[(
            String::new(),
            m.snapshots_saved.load(Ordering::Relaxed) as f64,
        )],
    );
    metric(
        "pvm_command_latency_seconds_sum",
        "counter",
        "Total time from enqueue to durable answer of successful commands.",
        &[(
            String::new(),
            m.latency_us_sum.load(Ordering::Relaxed) as f64 / 1e6,
        )],
    );
    metric(
        "pvm_command_latency_seconds_max",
        "gauge",
        "Slowest successful command since start.",
        &[(
            String::new(),
            m.latency_us_max.load(Ordering::Relaxed) as f64 / 1e6,
        )],
    );
    let stages = [
        ("queued", &m.queued),
        ("committing", &m.committing),
        ("answered", &m.answered),
        ("housekeeping", &m.housekeeping),
    ];
    let mut lines = Vec::new();
    for (stage, histogram) in stages {
        let mut cumulative = 0;
        let counts = histogram.counts();
        for (i, count) in counts.iter().enumerate() {
            cumulative += count;
            let le = crate::engine::HISTOGRAM_BOUNDS_US
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |us| (*us as f64 / 1e6).to_string());
            lines.push((
                format!("_bucket{{stage=\"{stage}\",le=\"{le}\"}}"),
                cumulative as f64,
            ));
        }
        lines.push((
            format!("_sum{{stage=\"{stage}\"}}"),
            histogram.sum().as_secs_f64(),
        ));
        lines.push((format!("_count{{stage=\"{stage}\"}}"), cumulative as f64));
    }
    metric(
        "pvm_engine_stage_seconds",
        "histogram",
        "Time of commands in the writer's stages: queued (waiting for their group), \
         committing (per group: inserts and fsync), answered (enqueue to durable answer), \
         housekeeping (the writer's own work between groups: snapshot saves, checkpoints).",
        &lines,
    );
    metric(
        "pvm_log_sequence",
        "gauge",
        "Sequence of the last event in the log.",
        &[(String::new(), s.engine.last_seq() as f64)],
    );
    metric(
        "pvm_command_queue",
        "gauge",
        "Commands waiting for the writer.",
        &[(String::new(), s.engine.queue_len() as f64)],
    );
    metric(
        "pvm_live_clients",
        "gauge",
        "Connected WebSocket and SSE clients.",
        &[(
            String::new(),
            s.node.live_clients.load(Ordering::Relaxed) as f64,
        )],
    );
    metric(
        "pvm_live_ws_offers_total",
        "counter",
        "Commits offered to WebSocket connections, counted once per connection offered: only \
         connections watching a topic the commit may change are.",
        &[(String::new(), s.node.live_hub.offers() as f64)],
    );
    metric(
        "pvm_live_views_kept",
        "gauge",
        "Views the live feed keeps to patch against (one per watched topic and audience).",
        &[(String::new(), s.node.live_cache.views_kept() as f64)],
    );
    metric(
        "pvm_time_trusted",
        "gauge",
        "1 once SNTP has synchronised the clock.",
        &[(String::new(), if time.trusted { 1.0 } else { 0.0 })],
    );
    if let Some(offset) = time.offset_ms {
        metric(
            "pvm_time_offset_ms",
            "gauge",
            "Last measured offset from the NTP server.",
            &[(String::new(), offset as f64)],
        );
    }
    out.push_str(&s.node.cloud.render_metrics());
    if let Some(cast) = &s.node.cast {
        out.push_str(&pvm_cast::render_metrics(&cast.borrow()));
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        Body::from(out),
    )
        .into_response()
}
