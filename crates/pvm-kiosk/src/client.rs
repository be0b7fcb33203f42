//! The kiosk's link to the node: one WebSocket subscribed to `display/<id>`, kept alive with
//! pings (which also measure the clock offset), re-opened with backoff and `since=` whenever it
//! drops. What it learns is published on a `watch` channel; the UI thread reads the latest.

use crate::clock::{mono_ms, TimeSync};
use futures_util::{SinkExt, StreamExt};
use pvm_core::ids::DisplayId;
use pvm_core::patch::PatchOp;
use pvm_core::views::DisplayView;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://127.0.0.1:8080/api/v1/ws` (without a query).
    pub url: String,
    pub display_id: DisplayId,
    /// First wait after a failure; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub ping_every: Duration,
    /// Silence after which the connection is taken as dead (the node sends `time` every 10 s).
    pub silence_limit: Duration,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>, display_id: DisplayId) -> Self {
        ClientConfig {
            url: url.into(),
            display_id,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            ping_every: Duration::from_secs(5),
            silence_limit: Duration::from_secs(25),
        }
    }

    /// The URL for one attempt: the topic, and where to resume from.
    pub fn connect_url(&self, since: u64) -> String {
        let mut url = format!("{}?topics=display/{}", self.url, self.display_id);
        if since > 0 {
            url.push_str(&format!("&since={since}"));
        }
        url
    }
}

/// What the kiosk knows of the node right now.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    /// The latest view of this display; kept through disconnections so the TV keeps drawing.
    pub view: Option<Arc<DisplayView>>,
    /// Bumped on every new view, so the UI can tell a new view from a re-read of the old one.
    pub version: u64,
    pub connected: bool,
    pub time: TimeSync,
    /// Last log sequence seen, for `since=` on reconnect.
    pub seq: u64,
    /// Connections opened so far (1 after the first).
    pub connections: u64,
    /// Updates that came as a patch to the view held (the others came whole).
    pub patched: u64,
}

impl LiveState {
    /// The node's time now, if an offset is known.
    pub fn server_now(&self) -> Option<i64> {
        self.time.server_now(mono_ms())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("connection lost: {0}")]
    Lost(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the node said nothing for {0:?}")]
    Silent(Duration),
    #[error("the node closed the connection")]
    Closed,
    #[error("the node refused the subscription: {0}")]
    Refused(String),
    #[error("an update did not fit the view held ({0}); asking for a fresh one")]
    OutOfStep(#[from] pvm_core::patch::PatchError),
    #[error("a change arrived before the view it changes; asking for a fresh one")]
    NoView,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage {
    Hello {
        seq: u64,
        server_time_ms: i64,
    },
    Snapshot {
        topic: String,
        seq: u64,
        server_time_ms: i64,
        data: serde_json::Value,
    },
    /// Either the full view (`data`) or the change from the previous one (`patch`).
    Update {
        topic: String,
        seq: u64,
        server_time_ms: i64,
        #[serde(default)]
        data: Option<serde_json::Value>,
        #[serde(default)]
        patch: Option<Vec<PatchOp>>,
    },
    Time {
        server_time_ms: i64,
    },
    Pong {
        client_time_ms: Option<i64>,
        server_time_ms: i64,
    },
    Error {
        code: String,
        message: String,
    },
    #[serde(other)]
    Other,
}

/// Runs forever (until the receiver side is gone): connect, follow, back off, reconnect.
pub async fn run(config: ClientConfig, state: watch::Sender<LiveState>) {
    let mut backoff = config.min_backoff;
    loop {
        let since = state.borrow().seq;
        match session(&config, &state, since).await {
            Ok(()) => {}
            Err(e) => tracing::info!("kiosk link: {e}; retrying in {backoff:?}"),
        }
        let was_connected = state.borrow().connected;
        state.send_modify(|s| {
            s.connected = false;
            s.time.reset_precision();
        });
        if state.is_closed() {
            return;
        }
        if was_connected {
            // It worked a moment ago: the node is likely restarting, try again soon.
            backoff = config.min_backoff;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

/// Spawns `run` on the current tokio runtime and returns the receiving end.
pub fn spawn(config: ClientConfig) -> (watch::Receiver<LiveState>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(LiveState::default());
    let task = tokio::spawn(run(config, tx));
    (rx, task)
}

async fn session(
    config: &ClientConfig,
    state: &watch::Sender<LiveState>,
    since: u64,
) -> Result<(), ClientError> {
    let url = config.connect_url(since);
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|source| ClientError::Connect {
            url: url.clone(),
            source,
        })?;
    let topic = format!("display/{}", config.display_id);
    let (mut sink, mut stream) = ws.split();
    let mut ping = tokio::time::interval(config.ping_every);
    let mut opened = false;
    // The view as JSON, which the next update's patch applies to; each connection starts
    // from its own snapshot.
    let mut raw: Option<serde_json::Value> = None;
    loop {
        tokio::select! {
            msg = tokio::time::timeout(config.silence_limit, stream.next()) => {
                let msg = match msg {
                    Err(_) => return Err(ClientError::Silent(config.silence_limit)),
                    Ok(None) => return Err(ClientError::Closed),
                    Ok(Some(m)) => m?,
                };
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Close(_) => return Err(ClientError::Closed),
                    _ => continue,
                };
                let now = mono_ms();
                let parsed: ServerMessage = match serde_json::from_str(text.as_str()) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!("kiosk link: a message not understood: {e}");
                        continue;
                    }
                };
                if !opened {
                    opened = true;
                    state.send_modify(|s| {
                        s.connected = true;
                        s.connections += 1;
                    });
                }
                handle(parsed, &topic, now, state, &mut raw)?;
            }
            _ = ping.tick() => {
                let ping = serde_json::json!({ "type": "ping", "client_time_ms": mono_ms() });
                sink.send(Message::Text(ping.to_string().into())).await?;
            }
        }
    }
}

fn handle(
    msg: ServerMessage,
    topic: &str,
    now: i64,
    state: &watch::Sender<LiveState>,
    raw: &mut Option<serde_json::Value>,
) -> Result<(), ClientError> {
    let (seq, server_time_ms, data, patched) = match msg {
        ServerMessage::Hello {
            seq,
            server_time_ms,
        } => {
            state.send_modify(|s| {
                s.time.observe(server_time_ms, now);
                s.seq = s.seq.max(seq);
            });
            return Ok(());
        }
        ServerMessage::Snapshot {
            topic: t,
            seq,
            server_time_ms,
            data,
        }
        | ServerMessage::Update {
            topic: t,
            seq,
            server_time_ms,
            data: Some(data),
            ..
        } if t == topic => (seq, server_time_ms, data, false),
        ServerMessage::Update {
            topic: t,
            seq,
            server_time_ms,
            patch: Some(patch),
            ..
        } if t == topic => {
            let Some(mut data) = raw.take() else {
                return Err(ClientError::NoView);
            };
            pvm_core::patch::apply(&mut data, &patch)?;
            (seq, server_time_ms, data, true)
        }
        other => return handle_other(other, now, state),
    };
    match DisplayView::deserialize(&data) {
        Ok(view) => state.send_modify(|s| {
            s.time.observe(server_time_ms, now);
            s.seq = s.seq.max(seq);
            s.view = Some(Arc::new(view));
            s.version += 1;
            s.patched += u64::from(patched);
        }),
        Err(e) => tracing::warn!("kiosk link: a display view not understood: {e}"),
    }
    *raw = Some(data);
    Ok(())
}

fn handle_other(
    msg: ServerMessage,
    now: i64,
    state: &watch::Sender<LiveState>,
) -> Result<(), ClientError> {
    match msg {
        ServerMessage::Time { server_time_ms } => {
            state.send_modify(|s| s.time.observe(server_time_ms, now))
        }
        ServerMessage::Pong {
            client_time_ms: Some(sent),
            server_time_ms,
        } => state.send_modify(|s| s.time.observe_round_trip(sent, server_time_ms, now)),
        ServerMessage::Error { code, message } if code == "bad_topic" => {
            return Err(ClientError::Refused(message));
        }
        ServerMessage::Error { code, message } => {
            tracing::warn!("kiosk link: the node says {code}: {message}");
        }
        _ => {}
    }
    Ok(())
}
