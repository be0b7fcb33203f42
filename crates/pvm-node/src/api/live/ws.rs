//! The live feed over WebSocket, built for fan-out: one commit reaches a thousand displays as
//! a thousand socket writes made by a few delivery tasks, not a thousand sessions woken.
//!
//! Each connection is a [`Conn`]: its socket (the plain `TcpStream`, handed back by the
//! upgrade; see `http_server`), what it watches and holds, and its outbox. The [`Hub`] keeps
//! the connections in shards, one delivery task per shard (as many as the runtime has
//! workers), indexed by the streams whose events can change what they watch. A delivery task
//! takes each commit once from the engine and, for each connection the commit touches, picks
//! the update messages from the render cache and writes them, framed, to the socket without
//! waiting: a socket that cannot take it all keeps the rest in the
//! connection's outbox and its session task writes it when the socket drains. A connection
//! whose outbox is full (`ws.client_queue` messages) is dropped; nobody ever waits on it.
//!
//! The session task of a connection does everything else: it sends the opening (hello,
//! replayed events, snapshots), reads what the client says (with tungstenite, which also
//! answers pings and closes; its replies go through the outbox like everything else), sends
//! the time and the update service's status, and closes the connection. Two things write to
//! a socket, the delivery task and the session: every write happens under the connection's
//! lock and whole frames are queued when the socket does not take them, so frames never
//! interleave.
//!
//! Before, each connection had its own task woken by every commit, writing through axum's
//! WebSocket (tungstenite framing each message, a boxed upgraded stream, a split lock): about
//! 8 µs of CPU per client per commit on top of the socket write itself.

use super::{
    audience, opening, parse_topics, stopped, system_message, time_message, viewer, Audience,
    ClientGuard, ClientMessage, Holdings, Interest, LiveQuery, Topic, UpdateRound, Viewer,
    SWEEP_EVERY_ENTRIES, TIME_EVERY,
};
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::ApiQuery;
use crate::api::AppState;
use crate::auth::ClientIp;
use crate::engine::{wall_now, Update};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, Notify};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The largest message a client may send (they send small control messages).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// A connection's read buffer. The default (128 KiB) is zero-filled when first read into, so
/// it cost every connection 128 KiB of resident memory: 1,000 displays took the node from
/// 14 MiB to 158 MiB. Larger client messages still arrive, the buffer grows for them.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// How long a closing connection may take to flush what was queued for it.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// At most this many queued frames are handed to the socket in one write.
const FRAMES_PER_WRITE: usize = 64;

/// The live WebSocket connections and the tasks that deliver commits to them.
pub struct Hub {
    shards: Vec<Shard>,
    /// Whether the delivery tasks run; they start with the first connection.
    started: std::sync::Once,
    ids: AtomicUsize,
    /// Connections a commit was offered to, over all commits: what delivery cost in visits.
    offers: AtomicU64,
}

/// Some of the connections, delivered to by one task. Copy-on-write: a delivery task takes
/// the current index (one `Arc` clone) and walks it without holding any lock; connections
/// come, go and change topics far less often than commits happen.
#[derive(Default)]
struct Shard {
    index: Mutex<Arc<ShardIndex>>,
}

/// A shard's connections, kept by what may change them. A commit visits only the
/// connections its events touch: with a thousand screens on the venue's theme, a chip count
/// used to visit all thousand (a lock, a lookup and a compare each, ~50 ns) to find nothing
/// to send.
#[derive(Default)]
struct ShardIndex {
    watchers: Vec<Watcher>,
    by_interest: HashMap<Interest, Vec<Arc<Conn>>>,
    /// The views the shard's connections watch: kept from being dropped as idle while they
    /// stay quiet (see [`super::RenderCache::still_watched`]).
    audiences: BTreeSet<Audience>,
}

/// A connection and what it watches, as the index keeps it.
#[derive(Clone)]
struct Watcher {
    conn: Arc<Conn>,
    interests: Arc<[Interest]>,
    audiences: Arc<[Audience]>,
}

impl Watcher {
    fn new(conn: &Arc<Conn>, topics: &BTreeSet<Topic>) -> Watcher {
        Watcher {
            conn: conn.clone(),
            interests: Interest::of_topics(topics).into_iter().collect(),
            audiences: topics.iter().map(|t| audience(t, conn.viewer)).collect(),
        }
    }
}

impl ShardIndex {
    fn new(watchers: Vec<Watcher>) -> ShardIndex {
        let mut by_interest: HashMap<Interest, Vec<Arc<Conn>>> = HashMap::new();
        let mut audiences = BTreeSet::new();
        for watcher in &watchers {
            for interest in watcher.interests.iter() {
                by_interest
                    .entry(interest.clone())
                    .or_default()
                    .push(watcher.conn.clone());
            }
            audiences.extend(watcher.audiences.iter().cloned());
        }
        ShardIndex {
            watchers,
            by_interest,
            audiences,
        }
    }

    /// The connections `update` may change, each once.
    fn touched(&self, update: &Update) -> Vec<&Arc<Conn>> {
        let mut streams: Vec<String> = update.events.iter().map(|c| c.event.stream()).collect();
        streams.sort_unstable();
        streams.dedup();
        let lists: Vec<&Vec<Arc<Conn>>> = streams
            .iter()
            .flat_map(|stream| Interest::of_stream(stream))
            .filter_map(|interest| self.by_interest.get(&interest))
            .collect();
        let mut touched: Vec<&Arc<Conn>> = lists.iter().flat_map(|list| list.iter()).collect();
        // One event touches each connection under one interest at most (`Interest::of_topics`);
        // events of several streams can touch one connection twice.
        if streams.len() > 1 {
            touched.sort_unstable_by_key(|conn| conn.id);
            touched.dedup_by_key(|conn| conn.id);
        }
        touched
    }
}

impl Default for Hub {
    fn default() -> Hub {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Hub {
            shards: (0..workers.clamp(1, 8)).map(|_| Shard::default()).collect(),
            started: std::sync::Once::new(),
            ids: Default::default(),
            offers: Default::default(),
        }
    }
}

impl Hub {
    fn next_id(&self) -> usize {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Connections a commit was offered to, over all commits so far.
    pub fn offers(&self) -> u64 {
        self.offers.load(Ordering::Relaxed)
    }

    /// Adds a connection that watches `topics` (it may still be preparing their opening).
    fn join(&self, s: &AppState, conn: &Arc<Conn>, topics: &BTreeSet<Topic>) {
        self.started.call_once(|| {
            for index in 0..self.shards.len() {
                // Subscribed here, before any connection is in a shard: no commit after a
                // connection joined can pass its delivery task by.
                let updates = s.engine.subscribe();
                tokio::spawn(deliver(s.clone(), index, updates));
            }
        });
        let watcher = Watcher::new(conn, topics);
        self.change(conn, |watchers| watchers.push(watcher));
    }

    /// The connection now watches `topics`. Called before the opening of added topics is
    /// read, like `join`: every commit after it that touches them reaches the connection.
    fn watch(&self, conn: &Arc<Conn>, topics: &BTreeSet<Topic>) {
        let watcher = Watcher::new(conn, topics);
        self.change(conn, |watchers| {
            if let Some(w) = watchers.iter_mut().find(|w| Arc::ptr_eq(&w.conn, conn)) {
                *w = watcher;
            }
        });
    }

    fn leave(&self, conn: &Arc<Conn>) {
        self.change(conn, |watchers| {
            watchers.retain(|w| !Arc::ptr_eq(&w.conn, conn));
        });
    }

    fn change(&self, conn: &Conn, edit: impl FnOnce(&mut Vec<Watcher>)) {
        let shard = &self.shards[conn.id % self.shards.len()];
        let mut index = lock(&shard.index);
        let mut watchers = index.watchers.clone();
        edit(&mut watchers);
        *index = Arc::new(ShardIndex::new(watchers));
    }

    fn index(&self, shard: usize) -> Arc<ShardIndex> {
        lock(&self.shards[shard].index).clone()
    }
}

/// One delivery task: every commit, to the connections of its shard that it touches.
async fn deliver(s: AppState, shard: usize, mut updates: broadcast::Receiver<Update>) {
    let stopped = stopped(&s);
    tokio::pin!(stopped);
    let mut vouched_at = 0;
    loop {
        let update = tokio::select! {
            _ = &mut stopped => return,
            update = updates.recv() => update,
        };
        let index = s.node.live_hub.index(shard);
        match update {
            Ok(update) => {
                // Half the sweep's period: a watched view is never idle at a sweep.
                if update.last_seq >= vouched_at + SWEEP_EVERY_ENTRIES / 2 {
                    s.node
                        .live_cache
                        .still_watched(&index.audiences, update.last_seq);
                    vouched_at = update.last_seq;
                }
                let touched = index.touched(&update);
                s.node
                    .live_hub
                    .offers
                    .fetch_add(touched.len() as u64, Ordering::Relaxed);
                let mut round = UpdateRound::new(&update);
                // Each round starts at another connection, so no screen is always the last
                // one served (the last of a thousand waits the whole round).
                let start = usize::try_from(update.last_seq).unwrap_or(0) % touched.len().max(1);
                let (later, first) = touched.split_at(start);
                for conn in first.iter().chain(later) {
                    conn.deliver(&s, &mut round);
                    // Lets the HTTP requests on this worker in between a long round.
                    tokio::task::consume_budget().await;
                }
            }
            // The task itself fell behind the engine (it never waits on a client, so only a
            // starved machine gets here): its connections may have missed commits and must
            // resume.
            Err(RecvError::Lagged(n)) => {
                for watcher in &index.watchers {
                    watcher.conn.missed(n);
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// One WebSocket connection.
struct Conn {
    id: usize,
    socket: TcpStream,
    viewer: Viewer,
    /// Messages a client may fall behind by before it is dropped.
    capacity: usize,
    state: Mutex<ConnState>,
    /// Wakes the session: bytes are waiting for the socket, or the connection is done.
    wake: Notify,
}

struct ConnState {
    topics: BTreeSet<Topic>,
    held: Holdings,
    /// The last commit this connection was given (or had covered by its snapshots).
    sent_seq: u64,
    /// While the session prepares an opening (on connect, and when the client subscribes to
    /// more topics), commits wait here and are delivered after it, in order.
    deferred: Option<Vec<Update>>,
    out: Outbox,
    gone: Option<Gone>,
}

/// Why a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    /// The client fell `capacity` messages behind.
    TooSlow,
    /// The connection is closed, or the node is stopping.
    Closed,
}

impl Conn {
    fn lock(&self) -> MutexGuard<'_, ConnState> {
        lock(&self.state)
    }

    /// Gives this connection one commit: its messages are written at once, or queued.
    fn deliver(&self, s: &AppState, round: &mut UpdateRound<'_>) {
        let mut state = self.lock();
        let wake = state.take(s, self, round);
        drop(state);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The delivery task missed commits: the connection is told to resume and closed.
    fn missed(&self, n: u64) {
        let mut state = self.lock();
        if state.gone.is_some() {
            return;
        }
        let message = json!({
            "type": "error",
            "code": "too_slow",
            "message": format!(
                "this connection fell {n} updates behind and is closed; reconnect with since={}",
                state.sent_seq
            ),
        });
        let _ = state
            .out
            .send(&self.socket, text_frame(&message.to_string()), None);
        state.gone = Some(Gone::Closed);
        drop(state);
        self.wake.notify_one();
    }

    /// Queues (or writes) a message of the session's own; the client's limit applies.
    fn send(&self, message: &Value) -> Result<(), Gone> {
        let mut state = self.lock();
        if let Some(gone) = state.gone {
            return Err(gone);
        }
        let frame = text_frame(&message.to_string());
        let capacity = self.capacity;
        state
            .out
            .send(&self.socket, frame, Some(capacity))
            .inspect_err(|&gone| {
                state.gone = Some(gone);
            })
    }
}

impl ConnState {
    /// Takes one commit; true if the session must be woken.
    fn take(&mut self, s: &AppState, conn: &Conn, round: &mut UpdateRound<'_>) -> bool {
        let update = round.update;
        if self.gone.is_some() {
            return false;
        }
        if let Some(deferred) = &mut self.deferred {
            if deferred.len() >= conn.capacity {
                self.gone = Some(Gone::TooSlow);
                return true;
            }
            deferred.push(update.clone());
            return false;
        }
        if update.last_seq <= self.sent_seq {
            return false;
        }
        self.sent_seq = update.last_seq;
        let was_waiting = self.out.is_waiting();
        let out = &mut self.out;
        let sent = round.messages(s, &self.topics, &mut self.held, conn.viewer, |m| {
            out.send(&conn.socket, m.frame, Some(conn.capacity))
        });
        if let Err(gone) = sent {
            self.gone = Some(gone);
            return true;
        }
        // A session already waiting for the socket need not be told again.
        self.out.is_waiting() && !was_waiting
    }

    /// Ends an opening: the commits that came meanwhile are delivered after it.
    fn end_opening(&mut self, s: &AppState, conn: &Conn) -> bool {
        let mut wake = false;
        for update in self.deferred.take().unwrap_or_default() {
            wake |= self.take(s, conn, &mut UpdateRound::new(&update));
        }
        wake
    }
}

/// Frames waiting for a socket that did not take them at once, in order; the first may have
/// been written in part.
#[derive(Default)]
struct Outbox {
    frames: VecDeque<Bytes>,
}

impl Outbox {
    fn is_waiting(&self) -> bool {
        !self.frames.is_empty()
    }

    /// Writes a frame now if nothing is waiting before it and the socket takes it, else
    /// queues it. With a `limit`, a client already that many frames behind is too slow; the
    /// opening a client asked for, and the closing frame, are taken whole.
    fn send(&mut self, socket: &TcpStream, frame: Bytes, limit: Option<usize>) -> Result<(), Gone> {
        if !self.frames.is_empty() {
            if limit.is_some_and(|limit| self.frames.len() >= limit) {
                return Err(Gone::TooSlow);
            }
            self.frames.push_back(frame);
            return Ok(());
        }
        match socket.try_write(&frame) {
            Ok(n) if n == frame.len() => {}
            Ok(n) => self.frames.push_back(frame.slice(n..)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.frames.push_back(frame),
            Err(_) => return Err(Gone::Closed),
        }
        Ok(())
    }

    /// Writes what is waiting, as far as the socket takes it; true once nothing waits.
    fn flush(&mut self, socket: &TcpStream) -> Result<bool, Gone> {
        while !self.frames.is_empty() {
            let slices: Vec<IoSlice<'_>> = self
                .frames
                .iter()
                .take(FRAMES_PER_WRITE)
                .map(|f| IoSlice::new(f))
                .collect();
            let mut written = match socket.try_write_vectored(&slices) {
                Ok(0) => return Err(Gone::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(_) => return Err(Gone::Closed),
            };
            while written > 0 {
                let Some(front) = self.frames.front_mut() else {
                    break;
                };
                if written >= front.len() {
                    written -= front.len();
                    self.frames.pop_front();
                } else {
                    front.advance(written);
                    written = 0;
                }
            }
        }
        Ok(true)
    }
}

/// A server's (unmasked) text frame.
pub(super) fn text_frame(text: &str) -> Bytes {
    frame(0x1, text.as_bytes())
}

fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    out.put_u8(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.extend_from_slice(payload);
    out.freeze()
}

/// A close frame with status 1000 (normal closure).
fn close_frame() -> Bytes {
    frame(0x8, &1000u16.to_be_bytes())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves a state that is still valid.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `GET /api/v1/ws`: the WebSocket handshake (RFC 6455), then the session.
pub(super) async fn ws_handler(
    State(s): State<AppState>,
    client: ClientIp,
    ApiQuery(q): ApiQuery<LiveQuery>,
    request: Request,
) -> ApiResult<Response> {
    let viewer = viewer(&s, client, request.headers());
    let topics = parse_topics(q.topics.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    let accept = accept_key(request.headers())?;
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!("a WebSocket upgrade did not complete: {e}");
                return;
            }
        };
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                session(
                    s,
                    parts.io.into_inner(),
                    parts.read_buf,
                    topics,
                    q.since,
                    viewer,
                )
                .await
            }
            Err(_) => tracing::error!(
                "a WebSocket connection on something other than a plain TCP socket: the node's \
                 router must be served by pvm_node::http_server"
            ),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(axum::body::Body::empty())
        .map_err(|e| ApiError::internal(format!("the WebSocket handshake answer: {e}")))
}

/// Checks the handshake's headers and derives the `Sec-WebSocket-Accept` answer.
fn accept_key(headers: &HeaderMap) -> ApiResult<String> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this is the live feed's WebSocket: open it with a WebSocket client (Connection: \
             upgrade, Upgrade: websocket), or use /api/v1/events for Server-Sent Events",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(ApiError::bad_request(
            "Sec-WebSocket-Version must be 13 (RFC 6455)",
        ));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("the WebSocket handshake has no Sec-WebSocket-Key"))?;
    Ok(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

async fn session(
    s: AppState,
    socket: TcpStream,
    read_ahead: Bytes,
    topics: BTreeSet<Topic>,
    since: Option<u64>,
    viewer: Viewer,
) {
    let _guard = ClientGuard::new(&s);
    let conn = Arc::new(Conn {
        id: s.node.live_hub.next_id(),
        socket,
        viewer,
        capacity: s.node.live_client_queue,
        state: Mutex::new(ConnState {
            topics: BTreeSet::new(),
            held: Holdings::new(),
            sent_seq: 0,
            deferred: Some(Vec::new()),
            out: Outbox::default(),
            gone: None,
        }),
        wake: Notify::new(),
    });
    s.node.live_hub.join(&s, &conn, &topics);
    // Read after joining: every commit after this one reaches the connection (deferred until
    // the opening is out), and the snapshots, taken later, cover every commit before it.
    conn.lock().sent_seq = s.engine.last_seq();
    let io = ClientIo {
        conn: conn.clone(),
        read_ahead,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
        .read_buffer_size(READ_BUFFER_BYTES);
    let mut client = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let why = run(&s, &conn, &mut client, topics, since).await;
    s.node.live_hub.leave(&conn);
    match why {
        Gone::TooSlow => {
            tracing::info!("dropping a live client that fell behind");
            // At once: its unread bytes are not worth waiting for.
            let _ = rustix::net::shutdown(&conn.socket, rustix::net::Shutdown::Both);
        }
        Gone::Closed => {
            let _ = tokio::time::timeout(CLOSE_GRACE, close(&conn)).await;
        }
    }
}

/// Sends what is queued and a close frame, and waits until the socket took them.
async fn close(conn: &Conn) {
    {
        let mut state = conn.lock();
        let _ = state.out.send(&conn.socket, close_frame(), None);
    }
    loop {
        match conn.lock().out.flush(&conn.socket) {
            Ok(false) => {}
            Ok(true) | Err(_) => return,
        }
        if conn.socket.writable().await.is_err() {
            return;
        }
    }
}

/// Runs the session until the client leaves, falls behind, or the node stops.
async fn run(
    s: &AppState,
    conn: &Arc<Conn>,
    client: &mut WebSocketStream<ClientIo>,
    topics: BTreeSet<Topic>,
    since: Option<u64>,
) -> Gone {
    let watches_system = topics.contains(&Topic::System);
    if let Err(gone) = open(s, conn, topics, since, true).await {
        return gone;
    }
    let mut ticker = tokio::time::interval(TIME_EVERY);
    ticker.tick().await;
    let mut system = s.node.update.subscribe();
    let mut watches_system = watches_system;
    let stopped = stopped(s);
    tokio::pin!(stopped);
    loop {
        let (waiting, gone) = {
            let state = conn.lock();
            (state.out.is_waiting(), state.gone)
        };
        if let Some(gone) = gone {
            return gone;
        }
        tokio::select! {
            biased;
            _ = &mut stopped => return Gone::Closed,
            _ = conn.wake.notified() => {}
            writable = conn.socket.writable(), if waiting => {
                if writable.is_err() {
                    return Gone::Closed;
                }
                if let Err(gone) = conn.lock().out.flush(&conn.socket) {
                    return gone;
                }
            }
            // Polled only by the sessions that show it: waiting on it registers with its
            // channel, and a thousand displays doing that contend for it.
            Ok(status) = system.recv(), if watches_system => {
                let seq = conn.lock().sent_seq;
                if let Err(gone) = conn.send(&system_message(s, seq, conn.viewer, status)) {
                    return gone;
                }
            }
            message = client.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    match answer(s, conn, text.as_str()).await {
                        Ok(Some(added_system)) if added_system && !watches_system => {
                            // Unread while nobody showed it: only what comes after the
                            // snapshot is news.
                            system = system.resubscribe();
                            watches_system = true;
                        }
                        Ok(_) => {}
                        Err(gone) => return gone,
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Gone::Closed,
                // Pings are answered by tungstenite (through the outbox); the rest is ignored.
                Some(Ok(_)) => {}
            },
            _ = ticker.tick() => {
                if let Err(gone) = conn.send(&time_message()) {
                    return gone;
                }
            }
        }
    }
}

/// Sends the opening of `topics` (hello first only when the connection opens) and ends the
/// deferral of commits that started before it.
async fn open(
    s: &AppState,
    conn: &Conn,
    topics: BTreeSet<Topic>,
    since: Option<u64>,
    hello: bool,
) -> Result<(), Gone> {
    let mut held = Holdings::new();
    let messages = opening(s, &topics, since, conn.viewer, &mut held).await;
    let mut state = conn.lock();
    for message in messages.iter().skip(usize::from(!hello)) {
        // The opening is what the client asked for: taken whole, judged from then on.
        if let Err(gone) = state
            .out
            .send(&conn.socket, text_frame(&message.to_string()), None)
        {
            state.gone = Some(gone);
            return Err(gone);
        }
    }
    state.held.extend(held);
    state.topics.extend(topics);
    let wake = state.end_opening(s, conn) || state.out.is_waiting();
    let gone = state.gone;
    drop(state);
    if wake {
        conn.wake.notify_one();
    }
    gone.map_or(Ok(()), Err)
}

/// Answers one client message; `Some(true)` when it subscribed to the system topic.
async fn answer(s: &AppState, conn: &Arc<Conn>, text: &str) -> Result<Option<bool>, Gone> {
    let reply = match serde_json::from_str::<ClientMessage>(text) {
        Ok(ClientMessage::Ping { client_time_ms }) => json!({
            "type": "pong",
            "client_time_ms": client_time_ms,
            "server_time_ms": wall_now().as_millis(),
        }),
        Ok(ClientMessage::Subscribe { topics, since }) => match parse_topics(&topics.join(",")) {
            Ok(wanted) => {
                let (added, watched) = {
                    let mut state = conn.lock();
                    let added: BTreeSet<Topic> =
                        wanted.difference(&state.topics).cloned().collect();
                    state.deferred = Some(Vec::new());
                    (added, wanted.union(&state.topics).cloned().collect())
                };
                s.node.live_hub.watch(conn, &watched);
                let system = added.contains(&Topic::System);
                open(s, conn, added, since, false).await?;
                return Ok(Some(system));
            }
            Err(e) => json!({"type": "error", "code": "bad_topic", "message": e}),
        },
        Ok(ClientMessage::Unsubscribe { topics }) => match parse_topics(&topics.join(",")) {
            Ok(gone) => {
                let watched = {
                    let mut state = conn.lock();
                    state.topics.retain(|t| !gone.contains(t));
                    state.held.retain(|t, _| !gone.contains(t));
                    state.topics.clone()
                };
                s.node.live_hub.watch(conn, &watched);
                return Ok(None);
            }
            Err(e) => json!({"type": "error", "code": "bad_topic", "message": e}),
        },
        Err(e) => json!({
            "type": "error",
            "code": "bad_message",
            "message": format!("not understood: {e}"),
        }),
    };
    conn.send(&reply).map(|()| None)
}

/// The connection as tungstenite sees it: reads come from the socket (after whatever the
/// upgrade had already read), and what it writes (answers to pings, the answer to a close)
/// goes through the connection's outbox, between whole frames of the delivery tasks.
struct ClientIo {
    conn: Arc<Conn>,
    read_ahead: Bytes,
}

impl AsyncRead for ClientIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            buf.put_slice(&self.read_ahead[..n]);
            self.read_ahead.advance(n);
            return Poll::Ready(Ok(()));
        }
        loop {
            ready!(self.conn.socket.poll_read_ready(cx))?;
            match self.conn.socket.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let conn = &self.conn;
        let mut state = conn.lock();
        let capacity = conn.capacity;
        match state
            .out
            .send(&conn.socket, Bytes::copy_from_slice(buf), Some(capacity))
        {
            Ok(()) => {
                let waiting = state.out.is_waiting();
                drop(state);
                if waiting {
                    conn.wake.notify_one();
                }
                Poll::Ready(Ok(buf.len()))
            }
            Err(gone) => {
                state.gone = Some(gone);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the live connection is closed or fell behind",
                )))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The session writes what waits whenever the socket can take it.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
