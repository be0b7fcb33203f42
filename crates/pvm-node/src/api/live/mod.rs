//! Live updates over WebSocket (`/api/v1/ws`) and SSE (`/api/v1/events`): a snapshot of each
//! subscribed topic, then updates in log order carrying the sequence, resumable with `since=`,
//! with the server's time so displays correct their clocks. A client that falls behind (its
//! own queue of `ws.client_queue` messages is full, or it lags the bounded broadcast) is
//! dropped and reconnects with `since=`; it never stalls the writer or other clients.
//!
//! Topics: `venue`, `tournaments`, `tournament/<id>`, `cash`, `displays`, `display/<id>`,
//! `screen/<id>`, `system` (update status and progress; staff only). Each message is JSON with
//! a `type`: `hello`, `snapshot`, `update`, `event` (replayed on resume), `time`, `pong`,
//! `error`. An `update` carries an RFC 6902 JSON Patch (`patch`) against the view the client
//! holds, or the whole view (`data`) when the client is out of step or the patch would be
//! larger; docs/live-protocol.md is the full description.

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::AppState;
use crate::auth::ClientIp;
use crate::engine::{wall_now, Committed, Update};
use axum::extract::ws::Utf8Bytes;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::stream::Stream;
use futures::StreamExt;
use pvm_core::ids::{DisplayId, ScreenId, TournamentId};
use pvm_core::{views, VenueState};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// Resume from the log only this far back; beyond it the client just gets fresh snapshots.
const MAX_REPLAY: usize = 10_000;
/// How often the server's time is sent, so displays keep their offset fresh.
const TIME_EVERY: Duration = Duration::from_secs(10);

mod ws;
pub use ws::Hub;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/ws", axum::routing::get(ws::ws_handler))
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
    System,
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
            ("system", None) => Ok(Topic::System),
            ("tournament", Some(id)) => id.parse().map(Topic::Tournament).map_err(|_| bad_id("tournament")),
            ("display", Some(id)) => id.parse().map(Topic::Display).map_err(|_| bad_id("display")),
            ("screen", Some(id)) => id.parse().map(Topic::Screen).map_err(|_| bad_id("screen")),
            _ => Err(format!(
                "unknown topic {s:?}: use venue, tournaments, tournament/<id>, cash, displays, display/<id>, screen/<id> or system"
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
            Topic::System => "system".into(),
        }
    }

    /// The events that change what this topic shows.
    fn interests(&self) -> Vec<Interest> {
        let stream = |name: &str| Interest::Stream(name.into());
        match self {
            Topic::Venue => vec![stream("venue")],
            Topic::Tournaments => vec![Interest::Tournaments],
            Topic::Tournament(id) => vec![stream(&format!("tournament/{id}")), stream("players")],
            Topic::Cash => vec![stream("cash")],
            Topic::Displays => vec![stream("displays")],
            // A screen can show anything: tournaments, lists, the venue's theme, announcements.
            Topic::Display(_) | Topic::Screen(_) => vec![Interest::AllButPlayers],
            // Its own changes come from the update service; clocks decide whether an
            // install or reboot would be refused.
            Topic::System => vec![Interest::Tournaments],
        }
    }

    /// Does an event of `stream` change what this topic shows?
    fn touched_by(&self, stream: &str) -> bool {
        self.interests().iter().any(|i| i.touched_by(stream))
    }

    /// The topic's current data, as the REST API would answer it.
    fn data(&self, s: &AppState, state: &VenueState, local: Viewer) -> Value {
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
                "state": if local.staff {
                    serde_json::to_value(&state.cash).unwrap_or(Value::Null)
                } else {
                    without_phones(serde_json::to_value(&state.cash).unwrap_or(Value::Null))
                },
                "board": pvm_core::cash::board(&state.cash, now),
            })),
            Topic::Displays => serde_json::to_value(&state.displays),
            Topic::Display(id) => serde_json::to_value(views::display_view(
                state,
                *id,
                now,
                &s.setup_info(local.local),
            )),
            Topic::Screen(id) => serde_json::to_value(views::screen_view(
                state,
                *id,
                now,
                &s.setup_info(local.local),
            )),
            Topic::System if local.staff => serde_json::to_value(s.node.update.view(&s.engine)),
            Topic::System => Ok(json!({ "error": "log in to see the update status" })),
        };
        v.unwrap_or_else(|e| json!({ "error": e.to_string() }))
    }
}

/// A kind of event a topic changes with, by the stream the event belongs to. The live feed
/// keeps its WebSocket connections by these, so a commit reaches the connections it may
/// change without asking every other one: each of its events names at most three
/// ([`Interest::of_stream`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Interest {
    /// The events of one stream.
    Stream(String),
    /// The events of every tournament.
    Tournaments,
    /// Every event but the players' register's.
    AllButPlayers,
}

impl Interest {
    fn touched_by(&self, stream: &str) -> bool {
        match self {
            Interest::Stream(name) => name == stream,
            Interest::Tournaments => stream.starts_with("tournament/"),
            Interest::AllButPlayers => stream != "players",
        }
    }

    /// Every interest an event of `stream` touches: the keys to look its connections up by.
    fn of_stream(stream: &str) -> impl Iterator<Item = Interest> {
        [
            Some(Interest::Stream(stream.to_owned())),
            stream
                .starts_with("tournament/")
                .then_some(Interest::Tournaments),
            (stream != "players").then_some(Interest::AllButPlayers),
        ]
        .into_iter()
        .flatten()
    }

    /// What a connection watching `topics` is kept under: each event touches at most one of
    /// them (an interest that another one covers is left out), so no single event makes a
    /// connection appear twice among those it touches.
    fn of_topics<'t>(topics: impl IntoIterator<Item = &'t Topic>) -> BTreeSet<Interest> {
        let all: BTreeSet<Interest> = topics.into_iter().flat_map(Topic::interests).collect();
        let covered = |i: &Interest| match i {
            Interest::Stream(name) => {
                (all.contains(&Interest::AllButPlayers) && name != "players")
                    || (all.contains(&Interest::Tournaments) && name.starts_with("tournament/"))
            }
            Interest::Tournaments => all.contains(&Interest::AllButPlayers),
            Interest::AllButPlayers => false,
        };
        all.iter().filter(|i| !covered(i)).cloned().collect()
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

/// The messages that open a stream: hello, replayed events (on resume), snapshots. Records
/// in `held` which view of each topic the connection now holds.
async fn opening(
    s: &AppState,
    topics: &BTreeSet<Topic>,
    since: Option<u64>,
    local: Viewer,
    held: &mut Holdings,
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
                    let m = event_message(t, c);
                    out.push(if local.staff { m } else { without_phones(m) });
                }
            }
        }
    }
    for t in topics {
        let (data, holding) = if *t == Topic::System {
            // Not a log topic: its updates are always whole.
            (
                t.data(s, &state, local),
                Holding {
                    seq,
                    chained: false,
                },
            )
        } else {
            s.node
                .live_cache
                .snapshot(t, local, seq, t.data(s, &state, local))
        };
        held.insert(t.clone(), holding);
        out.push(json!({
            "type": "snapshot",
            "topic": t.name(),
            "seq": seq,
            "server_time_ms": wall_now().as_millis(),
            "data": data,
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
///
/// An update carries a JSON Patch (`patch`) against the topic's previous view, not the view:
/// sending the whole view to every socket on every commit is what made delivery slow. Each
/// (topic, audience) keeps a *chain*, the last view rendered and the commit it was rendered
/// for; the next commit's patch is made against it, once. A patch is only right for a client
/// that holds exactly that view, and views carry the time they were rendered at, so each
/// connection tracks what it holds ([`Holding`]) and gets the full view (`data`) whenever its
/// view is not the chain's: after a snapshot rendered at another moment, or when it read an
/// update the cache had already forgotten.
#[derive(Default)]
pub struct RenderCache {
    inner: Mutex<CacheInner>,
}

/// A topic as one audience sees it: (topic, loopback, staff).
type Audience = (Topic, bool, bool);

#[derive(Default)]
struct CacheInner {
    chains: BTreeMap<Audience, Chain>,
    /// (commit seq, audience) → the update, or none if the commit did not touch the topic.
    rendered: BTreeMap<(u64, Audience), Option<Rendered>>,
    /// The commit at which chains nobody asked for were last dropped.
    swept_at: u64,
}

/// The last view rendered for an audience, that the next patch is made against.
struct Chain {
    seq: u64,
    data: Arc<Value>,
    /// The last commit any connection asked this audience about: at every snapshot, every
    /// commit an SSE stream of it sees, every commit that touches it, and at least every
    /// [`SWEEP_EVERY_ENTRIES`] while a WebSocket connection watches it
    /// ([`RenderCache::still_watched`]).
    asked_at: u64,
}

/// A chain nobody asked about for this many log entries is dropped. Without it the cache
/// kept the last view of every tournament anyone ever opened, for as long as the node ran:
/// a season of them is tens of megabytes. A connection that still holds a dropped chain's
/// view gets the next update whole, which costs a little and is never wrong; the bound is
/// four times the engine's default broadcast depth (`ws.client_queue`, in commits of at
/// least one entry), so a connection that far behind is normally already dropped for lagging.
pub const CHAIN_IDLE_ENTRIES: u64 = 1_024;

/// How often (in log entries) idle chains are looked for.
pub const SWEEP_EVERY_ENTRIES: u64 = 128;

#[derive(Clone)]
struct Rendered {
    /// The chain commit the patch applies to; none if this is a view rendered on its own.
    base: Option<u64>,
    /// The `update` message with `patch`; none when the patch would not be smaller than the
    /// view.
    patch: Option<LiveMessage>,
    /// The `update` message with the full view; dropped once a newer commit is rendered, as
    /// views can be large and only a client that is out of step needs it.
    full: Option<LiveMessage>,
}

/// A message of the live feed as both transports send it, made once and shared: its text
/// (SSE) and its WebSocket frame, so a thousand sockets are written the same bytes without
/// each framing them.
#[derive(Clone)]
pub(crate) struct LiveMessage {
    text: Utf8Bytes,
    frame: bytes::Bytes,
}

impl LiveMessage {
    fn new(text: String) -> LiveMessage {
        LiveMessage {
            frame: ws::text_frame(&text),
            text: text.into(),
        }
    }
}

/// The update messages of one commit, as a round of deliveries goes through its connections:
/// each audience's renders are taken from the cache once per round, not once per connection
/// (a thousand displays on one topic would otherwise take the cache's lock a thousand times
/// per commit, from every delivery task at once).
pub(crate) struct UpdateRound<'u> {
    update: &'u Update,
    renders: Vec<(Audience, Option<Rendered>)>,
}

impl<'u> UpdateRound<'u> {
    pub(crate) fn new(update: &'u Update) -> UpdateRound<'u> {
        UpdateRound {
            update,
            renders: Vec::new(),
        }
    }

    /// The messages this commit produces for one connection's topics, in topic order,
    /// handed to `send` until it refuses one. A topic the connection already holds a newer
    /// view of (its snapshot was taken after this commit) is skipped.
    fn messages<E>(
        &mut self,
        s: &AppState,
        topics: &BTreeSet<Topic>,
        held: &mut Holdings,
        viewer: Viewer,
        mut send: impl FnMut(LiveMessage) -> Result<(), E>,
    ) -> Result<(), E> {
        let update = self.update;
        for t in topics {
            let entry = held.entry(t.clone()).or_insert(Holding {
                seq: 0,
                chained: false,
            });
            if entry.seq >= update.last_seq {
                continue;
            }
            if *t == Topic::System {
                // The update service changes this view between commits too (its own messages
                // carry it whole), so there is no chain to patch against.
                if let Some(m) = full_message(s, t, update, viewer) {
                    send(m)?;
                }
                continue;
            }
            let key = audience(t, viewer);
            let rendered = match self.renders.iter().position(|(k, _)| *k == key) {
                Some(at) => &self.renders[at].1,
                None => {
                    let rendered = s.node.live_cache.rendered(s, t, update, viewer);
                    self.renders.push((key, rendered));
                    &self.renders[self.renders.len() - 1].1
                }
            };
            let Some(rendered) = rendered else {
                continue;
            };
            let message = match pick(rendered, update.last_seq, entry) {
                Some(m) => Some(m),
                // The chain has moved past this commit: this connection gets a view of its own.
                None => full_message(s, t, update, viewer),
            };
            if let Some(m) = message {
                send(m)?;
            }
        }
        Ok(())
    }
}

/// The message of a render for a connection holding `held`: the shared patch when it holds
/// the chain's view, else the full view; none when the cache no longer has the full view.
fn pick(rendered: &Rendered, seq: u64, held: &mut Holding) -> Option<LiveMessage> {
    if let (Some(base), Some(patch)) = (rendered.base, &rendered.patch) {
        if held.chained && held.seq == base {
            *held = Holding { seq, chained: true };
            return Some(patch.clone());
        }
    }
    *held = Holding {
        seq,
        chained: rendered.base.is_some() && rendered.full.is_some(),
    };
    rendered.full.clone()
}

/// What a connection holds of a topic: the view of commit `seq`, and whether it is the
/// chain's view (so a patch made against the chain applies to it exactly).
#[derive(Debug, Clone, Copy)]
struct Holding {
    seq: u64,
    chained: bool,
}

/// Holdings per topic of one connection.
type Holdings = BTreeMap<Topic, Holding>;

/// Renders kept before the cache is trimmed to the newest commit; a client that lags behind
/// that gets a full view rendered for it alone, which costs time but is never wrong.
const RENDERS_KEPT: usize = 256;

fn audience(topic: &Topic, viewer: Viewer) -> Audience {
    // Audiences differ only where the data does: the setup code (display and screen
    // topics, loopback only) and phone numbers (the cash topic, staff only).
    let local = viewer.local && matches!(topic, Topic::Display(_) | Topic::Screen(_));
    let staff = viewer.staff && matches!(topic, Topic::Cash | Topic::System);
    (topic.clone(), local, staff)
}

impl RenderCache {
    /// The snapshot of a topic for a connection that opens it, and what the connection then
    /// holds. The first snapshot of an audience starts its chain.
    fn snapshot(&self, topic: &Topic, viewer: Viewer, seq: u64, data: Value) -> (Value, Holding) {
        let key = audience(topic, viewer);
        let mut inner = self.lock();
        if let Some(chain) = inner.chains.get_mut(&key) {
            chain.asked_at = chain.asked_at.max(seq);
        }
        match inner.chains.get(&key) {
            Some(chain) if *chain.data == data => (
                data,
                Holding {
                    seq: chain.seq,
                    chained: true,
                },
            ),
            Some(_) => (
                data,
                Holding {
                    seq,
                    chained: false,
                },
            ),
            None => {
                let data = Arc::new(data);
                inner.chains.insert(
                    key,
                    Chain {
                        seq,
                        data: data.clone(),
                        asked_at: seq,
                    },
                );
                (Arc::unwrap_or_clone(data), Holding { seq, chained: true })
            }
        }
    }

    /// The renders of one commit for one audience, made now if it is the first to ask; none
    /// if the commit did not touch the topic.
    fn rendered(
        &self,
        s: &AppState,
        topic: &Topic,
        update: &Update,
        viewer: Viewer,
    ) -> Option<Rendered> {
        let key = audience(topic, viewer);
        let seq = update.last_seq;
        // Rendered under the lock: every connection on this topic needs this render, so
        // waiting for the one already under way is the cheapest thing they can do.
        let mut inner = self.lock();
        let rkey = (seq, key.clone());
        if !inner.rendered.contains_key(&rkey) {
            if let Some(chain) = inner.chains.get_mut(&key) {
                chain.asked_at = chain.asked_at.max(seq);
            }
            inner.drop_idle_chains(seq);
            let r = inner.render(s, &key, update, viewer);
            if r.is_some() {
                for ((_, k), old) in inner.rendered.iter_mut() {
                    if *k == key {
                        if let Some(old) = old {
                            old.full = None;
                        }
                    }
                }
            }
            if inner.rendered.len() >= RENDERS_KEPT {
                let newest = inner.rendered.keys().map(|(s, _)| *s).max().unwrap_or(seq);
                inner.rendered.retain(|(s, _), _| *s >= newest);
            }
            inner.rendered.insert(rkey.clone(), r);
        }
        inner.rendered.get(&rkey)?.clone()
    }

    /// Marks the views of these audiences as asked about at `seq`. The WebSocket delivery
    /// tasks ask only about the topics a commit touches, so a watched topic that stays quiet
    /// while the rest of the venue is busy would otherwise look idle and be dropped, and its
    /// viewers would all get its next update whole.
    fn still_watched<'a>(&self, audiences: impl IntoIterator<Item = &'a Audience>, seq: u64) {
        let mut inner = self.lock();
        for audience in audiences {
            if let Some(chain) = inner.chains.get_mut(audience) {
                chain.asked_at = chain.asked_at.max(seq);
            }
        }
    }

    /// How many views the cache keeps to make patches against (one per watched topic and
    /// audience, plus those not yet dropped after their last viewer left).
    pub fn views_kept(&self) -> usize {
        self.lock().chains.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding this lock leaves maps that are still valid: keep using them.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl CacheInner {
    /// Drops the chains (and their renders) nobody asked about in the last
    /// [`CHAIN_IDLE_ENTRIES`] log entries; looks at most every [`SWEEP_EVERY_ENTRIES`].
    fn drop_idle_chains(&mut self, seq: u64) {
        if seq < self.swept_at.saturating_add(SWEEP_EVERY_ENTRIES) {
            return;
        }
        self.swept_at = seq;
        let before = self.chains.len();
        self.chains
            .retain(|_, chain| chain.asked_at.saturating_add(CHAIN_IDLE_ENTRIES) >= seq);
        if self.chains.len() < before {
            let chains = &self.chains;
            self.rendered.retain(|(_, key), _| chains.contains_key(key));
        }
    }

    fn render(
        &mut self,
        s: &AppState,
        key: &Audience,
        update: &Update,
        viewer: Viewer,
    ) -> Option<Rendered> {
        let topic = &key.0;
        let kinds = kinds(topic, update)?;
        let seq = update.last_seq;
        let data = topic.data(s, &update.state, viewer);
        let envelope = |field: &str, v: &Value| -> LiveMessage {
            LiveMessage::new(
                json!({
                    "type": "update",
                    "topic": topic.name(),
                    "seq": seq,
                    "server_time_ms": wall_now().as_millis(),
                    "kinds": kinds,
                    field: v,
                })
                .to_string(),
            )
        };
        let full = envelope("data", &data);
        let chain = self.chains.get(key).filter(|c| c.seq < seq);
        let Some(chain) = chain else {
            if self.chains.contains_key(key) {
                // Rendered late, for a connection behind the chain: not the chain's view.
                return Some(Rendered {
                    base: None,
                    patch: None,
                    full: Some(full),
                });
            }
            self.chains.insert(
                key.clone(),
                Chain {
                    seq,
                    data: Arc::new(data),
                    asked_at: seq,
                },
            );
            return Some(Rendered {
                base: Some(seq),
                patch: None,
                full: Some(full),
            });
        };
        let ops = pvm_core::patch::diff(&chain.data, &data);
        let patch = serde_json::to_value(&ops)
            .ok()
            .map(|ops| envelope("patch", &ops))
            .filter(|p| p.text.len() < full.text.len());
        let (base, asked_at) = (chain.seq, chain.asked_at.max(seq));
        self.chains.insert(
            key.clone(),
            Chain {
                seq,
                data: Arc::new(data),
                asked_at,
            },
        );
        Some(Rendered {
            base: Some(base),
            patch,
            full: Some(full),
        })
    }
}

/// The kinds of this commit's events that touch the topic; none if it is untouched.
fn kinds(topic: &Topic, update: &Update) -> Option<Vec<&'static str>> {
    let kinds: Vec<&'static str> = update
        .events
        .iter()
        .filter(|c| topic.touched_by(&c.event.stream()))
        .map(|c| c.event.kind())
        .collect();
    (!kinds.is_empty()).then_some(kinds)
}

/// One connection's full `update` of a topic, rendered for it alone.
fn full_message(
    s: &AppState,
    topic: &Topic,
    update: &Update,
    viewer: Viewer,
) -> Option<LiveMessage> {
    let kinds = kinds(topic, update)?;
    let message = json!({
        "type": "update",
        "topic": topic.name(),
        "seq": update.last_seq,
        "server_time_ms": wall_now().as_millis(),
        "kinds": kinds,
        "data": topic.data(s, &update.state, viewer),
    });
    Some(LiveMessage::new(message.to_string()))
}

/// The update status changed (state or progress): not a log event, so it carries the
/// last sequence sent, and `kinds` names what moved.
fn system_message(s: &AppState, seq: u64, local: Viewer, status: pvm_ota::UpdateStatus) -> Value {
    let data = if local.staff {
        serde_json::to_value(s.node.update.view_with(&s.engine, Some(status)))
            .unwrap_or_else(|e| json!({ "error": e.to_string() }))
    } else {
        json!({ "error": "log in to see the update status" })
    };
    json!({
        "type": "update",
        "topic": Topic::System.name(),
        "seq": seq,
        "server_time_ms": wall_now().as_millis(),
        "kinds": ["update_status"],
        "data": data,
    })
}

fn time_message() -> Value {
    json!({ "type": "time", "server_time_ms": wall_now().as_millis() })
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

/// Resolves once the node stops (or is gone).
fn stopped(s: &AppState) -> impl std::future::Future<Output = ()> {
    let mut stopping = s.node.stopping.clone();
    async move {
        let _ = stopping.wait_for(|v| *v).await;
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
    let viewer = viewer(&s, client, &headers);
    let stream = sse_stream(s, topics, since, viewer);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn sse_stream(
    s: AppState,
    topics: BTreeSet<Topic>,
    since: Option<u64>,
    local: Viewer,
) -> impl Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    // The body stream reads from this queue; a client that stops reading fills it and is
    // dropped (the sender goes away, the stream ends), as on the WebSocket.
    let (tx, rx) = mpsc::channel::<Outgoing>(s.node.live_client_queue.max(1));
    tokio::spawn(async move {
        let _guard = ClientGuard::new(&s);
        let mut updates = s.engine.subscribe();
        let mut sent_seq = s.engine.last_seq();
        let mut held = Holdings::new();
        for m in opening(&s, &topics, since, local, &mut held).await {
            if tx.send(Outgoing::from_value(&m)).await.is_err() {
                return;
            }
        }
        let mut ticker = tokio::time::interval(TIME_EVERY);
        ticker.tick().await;
        let mut system = s.node.update.subscribe();
        let stopped = stopped(&s);
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                Ok(status) = system.recv() => {
                    if topics.contains(&Topic::System)
                        && tx.try_send(Outgoing::from_value(&system_message(&s, sent_seq, local, status))).is_err()
                    {
                        return;
                    }
                }
                u = updates.recv() => match u {
                    Ok(update) => {
                        if update.last_seq <= sent_seq { continue; }
                        sent_seq = update.last_seq;
                        let sent = UpdateRound::new(&update).messages(&s, &topics, &mut held, local, |m| {
                            tx.try_send(Outgoing { text: m.text, seq: Some(update.last_seq) })
                        });
                        if sent.is_err() { return; }
                    }
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                },
                _ = ticker.tick() => {
                    if tx.try_send(Outgoing::from_value(&time_message())).is_err() { return; }
                }
                _ = tx.closed() => return,
            }
        }
    });
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

/// Who is watching: the HDMI kiosk connects over loopback and only it may see the setup
/// code; only signed-in staff see players' phone numbers on the waiting lists.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    local: bool,
    staff: bool,
}

fn viewer(s: &AppState, client: ClientIp, headers: &axum::http::HeaderMap) -> Viewer {
    Viewer {
        local: client.ip.is_some_and(|ip| ip.is_loopback()),
        staff: s.auth.session_from_headers(headers).is_some(),
    }
}

/// The cash state as a public screen may see it: without phone numbers.
fn without_phones(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            map.remove("phone");
            for child in map.values_mut() {
                *child = without_phones(std::mem::take(child));
            }
        }
        Value::Array(items) => {
            for child in items.iter_mut() {
                *child = without_phones(std::mem::take(child));
            }
        }
        _ => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use super::{Interest, Topic};
    use std::collections::BTreeSet;

    const A: &str = "0190a0a0-0000-7000-8000-00000000000a";
    const B: &str = "0190a0a0-0000-7000-8000-00000000000b";

    fn topic(name: &str) -> Topic {
        Topic::parse(name).expect("a valid topic")
    }

    fn every_topic() -> Vec<Topic> {
        [
            "venue".to_owned(),
            "tournaments".into(),
            format!("tournament/{A}"),
            format!("tournament/{B}"),
            "cash".into(),
            "displays".into(),
            format!("display/{A}"),
            format!("screen/{B}"),
            "system".into(),
        ]
        .iter()
        .map(|name| topic(name))
        .collect()
    }

    fn every_stream() -> Vec<String> {
        [
            "venue".to_owned(),
            "players".into(),
            format!("tournament/{A}"),
            format!("tournament/{B}"),
            "cash".into(),
            "displays".into(),
        ]
        .into()
    }

    #[test]
    fn topics_change_with_the_events_of_their_streams() {
        let touched = |t: &str, stream: &str| topic(t).touched_by(stream);
        assert!(touched("venue", "venue") && !touched("venue", "players"));
        assert!(touched(
            &format!("tournament/{A}"),
            &format!("tournament/{A}")
        ));
        assert!(
            touched(&format!("tournament/{A}"), "players"),
            "entries show names"
        );
        assert!(!touched(
            &format!("tournament/{A}"),
            &format!("tournament/{B}")
        ));
        assert!(touched("tournaments", &format!("tournament/{B}")));
        assert!(!touched("tournaments", "players"));
        assert!(touched("system", &format!("tournament/{A}")) && !touched("system", "cash"));
        for screen in [format!("display/{A}"), format!("screen/{B}")] {
            for stream in every_stream() {
                assert_eq!(
                    touched(&screen, &stream),
                    stream != "players",
                    "{screen} {stream}"
                );
            }
        }
    }

    /// The WebSocket hub finds a commit's connections by these keys: a connection must be
    /// found exactly when one of its topics is touched, and once per event.
    #[test]
    fn a_connection_is_found_once_by_each_event_that_touches_its_topics() {
        let topics = every_topic();
        let mut sets: Vec<BTreeSet<Topic>> = vec![BTreeSet::new()];
        for (i, a) in topics.iter().enumerate() {
            sets.push([a.clone()].into());
            for (j, b) in topics.iter().enumerate().skip(i + 1) {
                sets.push([a.clone(), b.clone()].into());
                for c in topics.iter().skip(j + 1) {
                    sets.push([a.clone(), b.clone(), c.clone()].into());
                }
            }
        }
        sets.push(topics.iter().cloned().collect());
        for set in &sets {
            let kept_under = Interest::of_topics(set);
            for stream in every_stream() {
                let keys: Vec<Interest> = Interest::of_stream(&stream).collect();
                let found = kept_under.iter().filter(|i| keys.contains(i)).count();
                let touched = set.iter().any(|t| t.touched_by(&stream));
                assert_eq!(
                    found,
                    usize::from(touched),
                    "{set:?} and an event of {stream}"
                );
            }
        }
    }
}
