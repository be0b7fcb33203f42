//! Live updates over WebSocket (`/api/v1/ws`) and SSE (`/api/v1/events`): a snapshot of each
//! subscribed topic, then updates in log order carrying the sequence, resumable with `since=`,
//! with the server's time so displays correct their clocks. A client that falls behind the
//! bounded broadcast is dropped (it reconnects with `since=`); it never stalls the writer.
//!
//! Topics: `venue`, `tournaments`, `tournament/<id>`, `cash`, `displays`, `display/<id>`,
//! `screen/<id>`. Each message is JSON with a `type`: `hello`, `snapshot`, `update`, `event`
//! (replayed on resume), `time`, `pong`, `error`.

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::AppState;
use crate::auth::ClientIp;
use crate::engine::{wall_now, Committed, Update};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::Stream;
use pvm_core::ids::{DisplayId, ScreenId, TournamentId};
use pvm_core::{views, VenueState};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Resume from the log only this far back; beyond it the client just gets fresh snapshots.
const MAX_REPLAY: usize = 10_000;
/// A WebSocket connection's read buffer; larger client messages still arrive (up to the
/// message limit), the buffer grows for them.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// How often the server's time is sent, so displays keep their offset fresh.
const TIME_EVERY: Duration = Duration::from_secs(10);

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/ws", axum::routing::get(ws_handler))
        .route("/api/v1/events", axum::routing::get(sse_handler))
}

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    /// Comma-separated topics.
    pub topics: Option<String>,
    /// Resume after this log sequence.
    pub since: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topic {
    Venue,
    Tournaments,
    Tournament(TournamentId),
    Cash,
    Displays,
    Display(DisplayId),
    Screen(ScreenId),
}

impl Topic {
    pub fn parse(s: &str) -> Result<Topic, String> {
        let s = s.trim();
        let (head, id) = match s.split_once('/') {
            Some((h, id)) => (h, Some(id)),
            None => (s, None),
        };
        let bad_id = |what: &str| format!("topic {s:?}: {what} id is not a UUID");
        match (head, id) {
            ("venue", None) => Ok(Topic::Venue),
            ("tournaments", None) => Ok(Topic::Tournaments),
            ("cash", None) => Ok(Topic::Cash),
            ("displays", None) => Ok(Topic::Displays),
            ("tournament", Some(id)) => id.parse().map(Topic::Tournament).map_err(|_| bad_id("tournament")),
            ("display", Some(id)) => id.parse().map(Topic::Display).map_err(|_| bad_id("display")),
            ("screen", Some(id)) => id.parse().map(Topic::Screen).map_err(|_| bad_id("screen")),
            _ => Err(format!(
                "unknown topic {s:?}: use venue, tournaments, tournament/<id>, cash, displays, display/<id> or screen/<id>"
            )),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Topic::Venue => "venue".into(),
            Topic::Tournaments => "tournaments".into(),
            Topic::Tournament(id) => format!("tournament/{id}"),
            Topic::Cash => "cash".into(),
            Topic::Displays => "displays".into(),
            Topic::Display(id) => format!("display/{id}"),
            Topic::Screen(id) => format!("screen/{id}"),
        }
    }

    /// Does an event of `stream` change what this topic shows?
    fn touched_by(&self, stream: &str) -> bool {
        match self {
            Topic::Venue => stream == "venue",
            Topic::Tournaments => stream.starts_with("tournament/"),
            Topic::Tournament(id) => stream == format!("tournament/{id}") || stream == "players",
            Topic::Cash => stream == "cash",
            Topic::Displays => stream == "displays",
            // A screen can show anything: tournaments, lists, the venue's theme, announcements.
            Topic::Display(_) | Topic::Screen(_) => stream != "players",
        }
    }

    /// The topic's current data, as the REST API would answer it.
    fn data(&self, s: &AppState, state: &VenueState, local: bool) -> Value {
        let now = wall_now();
        let v = match self {
            Topic::Venue => serde_json::to_value(&state.settings),
            Topic::Tournaments => serde_json::to_value(
                state
                    .tournaments
                    .values()
                    .map(|t| {
                        json!({
                            "id": t.id,
                            "name": t.config.name,
                            "status": t.status,
                            "entries": t.entries.len(),
                            "players_left": t.active_count(),
                            "clock": t.clock.view(&t.structure, now),
                        })
                    })
                    .collect::<Vec<_>>(),
            ),
            Topic::Tournament(id) => match state.tournaments.get(id) {
                Some(t) => serde_json::to_value(super::tournaments::detail(state, t)),
                None => Ok(Value::Null),
            },
            Topic::Cash => Ok(json!({
                "state": state.cash,
                "board": pvm_core::cash::board(&state.cash, now),
            })),
            Topic::Displays => serde_json::to_value(&state.displays),
            Topic::Display(id) => {
                serde_json::to_value(views::display_view(state, *id, now, &s.setup_info(local)))
            }
            Topic::Screen(id) => {
                serde_json::to_value(views::screen_view(state, *id, now, &s.setup_info(local)))
            }
        };
        v.unwrap_or_else(|e| json!({ "error": e.to_string() }))
    }
}

pub fn parse_topics(list: &str) -> Result<BTreeSet<Topic>, String> {
    let mut topics = BTreeSet::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        topics.insert(Topic::parse(part)?);
    }
    if topics.len() > 32 {
        return Err("at most 32 topics per connection".into());
    }
    Ok(topics)
}

/// The messages that open a stream: hello, replayed events (on resume), snapshots.
async fn opening(
    s: &AppState,
    topics: &BTreeSet<Topic>,
    since: Option<u64>,
    local: bool,
) -> Vec<Value> {
    let state = s.engine.state();
    let seq = state.applied;
    let mut out = vec![json!({
        "type": "hello",
        "seq": seq,
        "server_time_ms": wall_now().as_millis(),
    })];
    if let Some(since) = since.filter(|n| *n < seq) {
        if let Ok(missed) = s.engine.events_since(since, MAX_REPLAY).await {
            for c in missed.iter().filter(|c| c.seq <= seq) {
                let stream = c.event.stream();
                for t in topics.iter().filter(|t| t.touched_by(&stream)) {
                    out.push(event_message(t, c));
                }
            }
        }
    }
    for t in topics {
        out.push(json!({
            "type": "snapshot",
            "topic": t.name(),
            "seq": seq,
            "server_time_ms": wall_now().as_millis(),
            "data": t.data(s, &state, local),
        }));
    }
    out
}

fn event_message(topic: &Topic, c: &Committed) -> Value {
    json!({
        "type": "event",
        "topic": topic.name(),
        "seq": c.seq,
        "kind": c.event.kind(),
        "event": c.event,
    })
}

/// Update messages rendered once per commit, topic and audience, and shared by every
/// connection that needs them.
///
/// A thousand displays watching one tournament would otherwise each build the same view and
/// serialize the same JSON on every commit: a thousand times the work, on the two cores the
/// writer needs too. Only the setup screen differs between audiences (the kiosk on loopback
/// sees the setup code), so only display and screen topics are keyed by it.
#[derive(Default)]
pub struct RenderCache {
    rendered: Mutex<Rendered>,
}

/// (commit seq, topic, loopback audience) → the update message, or none if the commit did
/// not touch the topic.
type Rendered = BTreeMap<(u64, Topic, bool), Option<Utf8Bytes>>;

/// Renders kept before the cache is trimmed to the newest commit; a client that lags behind
/// that re-renders its own copy, which costs time but is never wrong.
const RENDERS_KEPT: usize = 256;

impl RenderCache {
    fn get_or_render(
        &self,
        seq: u64,
        topic: &Topic,
        local: bool,
        render: impl FnOnce() -> Option<Utf8Bytes>,
    ) -> Option<Utf8Bytes> {
        let local = local && matches!(topic, Topic::Display(_) | Topic::Screen(_));
        let key = (seq, topic.clone(), local);
        if let Some(hit) = self.lock().get(&key) {
            return hit.clone();
        }
        // Rendered outside the lock: two connections may race to render the same message,
        // which is cheaper than making every other connection wait behind one render.
        let message = render();
        let mut rendered = self.lock();
        if rendered.len() >= RENDERS_KEPT {
            let newest = rendered.keys().map(|(s, _, _)| *s).max().unwrap_or(seq);
            rendered.retain(|(s, _, _), _| *s >= newest);
        }
        rendered.insert(key, message.clone());
        message
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rendered> {
        // A panic while holding this lock leaves a map that is still valid: keep using it.
        self.rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The messages one commit produces for these topics.
fn update_messages(
    s: &AppState,
    topics: &BTreeSet<Topic>,
    update: &Update,
    local: bool,
) -> Vec<Utf8Bytes> {
    topics
        .iter()
        .filter_map(|t| {
            s.node
                .live_cache
                .get_or_render(update.last_seq, t, local, || {
                    render_update(s, t, update, local)
                })
        })
        .collect()
}

fn render_update(s: &AppState, t: &Topic, update: &Update, local: bool) -> Option<Utf8Bytes> {
    let kinds: Vec<&str> = update
        .events
        .iter()
        .filter(|c| t.touched_by(&c.event.stream()))
        .map(|c| c.event.kind())
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let message = json!({
        "type": "update",
        "topic": t.name(),
        "seq": update.last_seq,
        "server_time_ms": wall_now().as_millis(),
        "kinds": kinds,
        "data": t.data(s, &update.state, local),
    });
    Some(message.to_string().into())
}

fn time_message() -> Value {
    json!({ "type": "time", "server_time_ms": wall_now().as_millis() })
}

async fn ws_handler(
    State(s): State<AppState>,
    client: ClientIp,
    ApiQuery(q): ApiQuery<LiveQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let topics = parse_topics(q.topics.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    Ok(ws
        .max_message_size(64 * 1024)
        // Clients only send small control messages. The default 128 KiB read buffer is
        // zero-filled when first read into, so it cost every connection 128 KiB of resident
        // memory: 1,000 displays took the node from 14 MiB to 158 MiB.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| ws_session(s, socket, topics, q.since, is_local(client)))
        .into_response())
}

struct ClientGuard(AppState);

impl ClientGuard {
    fn new(s: &AppState) -> ClientGuard {
        s.node.live_clients.fetch_add(1, Ordering::Relaxed);
        ClientGuard(s.clone())
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.node.live_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Subscribe {
        topics: Vec<String>,
        #[serde(default)]
        since: Option<u64>,
    },
    Unsubscribe {
        topics: Vec<String>,
    },
    Ping {
        #[serde(default)]
        client_time_ms: Option<i64>,
    },
}

async fn send(socket: &mut WebSocket, v: &Value) -> bool {
    send_text(socket, v.to_string().into()).await
}

async fn send_text(socket: &mut WebSocket, text: Utf8Bytes) -> bool {
    socket.send(Message::Text(text)).await.is_ok()
}

async fn ws_session(
    s: AppState,
    mut socket: WebSocket,
    mut topics: BTreeSet<Topic>,
    since: Option<u64>,
    local: bool,
) {
    let _guard = ClientGuard::new(&s);
    // Subscribe before the snapshot so nothing committed in between is missed; updates
    // already covered by the snapshot are skipped by their sequence.
    let mut updates = s.engine.subscribe();
    let mut sent_seq = s.engine.last_seq();
    for m in opening(&s, &topics, since, local).await {
        if !send(&mut socket, &m).await {
            return;
        }
    }
    let mut ticker = tokio::time::interval(TIME_EVERY);
    ticker.tick().await;
    loop {
        tokio::select! {
            u = updates.recv() => match u {
                Ok(update) => {
                    if update.last_seq <= sent_seq {
                        continue;
                    }
                    sent_seq = update.last_seq;
                    for m in update_messages(&s, &topics, &update, local) {
                        if !send_text(&mut socket, m).await {
                            return;
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let _ = send(&mut socket, &json!({
                        "type": "error",
                        "code": "too_slow",
                        "message": format!("this connection fell {n} updates behind and is closed; reconnect with since={sent_seq}"),
                    })).await;
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                Err(RecvError::Closed) => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let reply = match serde_json::from_str::<ClientMessage>(&text) {
                        Ok(ClientMessage::Ping { client_time_ms }) => vec![json!({
                            "type": "pong",
                            "client_time_ms": client_time_ms,
                            "server_time_ms": wall_now().as_millis(),
                        })],
                        Ok(ClientMessage::Subscribe { topics: names, since }) => {
                            match parse_topics(&names.join(",")) {
                                Ok(new) => {
                                    let added: BTreeSet<Topic> = new.difference(&topics).cloned().collect();
                                    topics.extend(added.iter().cloned());
                                    opening(&s, &added, since, local).await.into_iter().skip(1).collect()
                                }
                                Err(e) => vec![json!({"type": "error", "code": "bad_topic", "message": e})],
                            }
                        }
                        Ok(ClientMessage::Unsubscribe { topics: names }) => {
                            match parse_topics(&names.join(",")) {
                                Ok(gone) => {
                                    topics.retain(|t| !gone.contains(t));
                                    Vec::new()
                                }
                                Err(e) => vec![json!({"type": "error", "code": "bad_topic", "message": e})],
                            }
                        }
                        Err(e) => vec![json!({
                            "type": "error",
                            "code": "bad_message",
                            "message": format!("not understood: {e}"),
                        })],
                    };
                    for m in reply {
                        if !send(&mut socket, &m).await {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ticker.tick() => {
                if !send(&mut socket, &time_message()).await {
                    return;
                }
            }
        }
    }
}

async fn sse_handler(
    State(s): State<AppState>,
    client: ClientIp,
    ApiQuery(q): ApiQuery<LiveQuery>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, std::convert::Infallible>>>> {
    let topics = parse_topics(q.topics.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    // Browsers resume an EventSource with Last-Event-ID, which carries the sequence.
    let since = q.since.or_else(|| {
        headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    });
    let stream = sse_stream(s, topics, since, is_local(client));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn sse_stream(
    s: AppState,
    topics: BTreeSet<Topic>,
    since: Option<u64>,
    local: bool,
) -> impl Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Outgoing>(256);
    tokio::spawn(async move {
        let _guard = ClientGuard::new(&s);
        let mut updates = s.engine.subscribe();
        let mut sent_seq = s.engine.last_seq();
        for m in opening(&s, &topics, since, local).await {
            if tx.send(Outgoing::from_value(&m)).await.is_err() {
                return;
            }
        }
        let mut ticker = tokio::time::interval(TIME_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                u = updates.recv() => match u {
                    Ok(update) => {
                        if update.last_seq <= sent_seq { continue; }
                        sent_seq = update.last_seq;
                        for m in update_messages(&s, &topics, &update, local) {
                            let out = Outgoing { text: m, seq: Some(update.last_seq) };
                            if tx.send(out).await.is_err() { return; }
                        }
                    }
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                },
                _ = ticker.tick() => {
                    if tx.send(Outgoing::from_value(&time_message())).await.is_err() { return; }
                }
                _ = tx.closed() => return,
            }
        }
    });
    use futures::StreamExt;
    tokio_stream_from(rx).map(to_sse)
}

/// One SSE message: its JSON text and, when it has one, the sequence used as its id.
struct Outgoing {
    text: Utf8Bytes,
    seq: Option<u64>,
}

impl Outgoing {
    fn from_value(v: &Value) -> Outgoing {
        Outgoing {
            text: v.to_string().into(),
            seq: v.get("seq").and_then(Value::as_u64),
        }
    }
}

fn tokio_stream_from(rx: tokio::sync::mpsc::Receiver<Outgoing>) -> impl Stream<Item = Outgoing> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

fn to_sse(out: Outgoing) -> Result<SseEvent, std::convert::Infallible> {
    // One event type ("message") so a plain EventSource.onmessage sees everything; the JSON
    // carries its own `type`.
    let mut ev = SseEvent::default().data(out.text.as_str());
    if let Some(seq) = out.seq {
        ev = ev.id(seq.to_string());
    }
    Ok(ev)
}

/// The HDMI kiosk connects over loopback; only it may see the setup code.
fn is_local(client: ClientIp) -> bool {
    client.ip.is_some_and(|ip| ip.is_loopback())
}
