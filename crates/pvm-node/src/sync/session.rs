//! One NATS session with the cloud, and the loop that keeps starting them.
//!
//! A session connects with the node's own credentials (user JWT, nonce signed with its nkey
//! seed, its own inbox prefix) and runs three things together: the publisher, the heartbeat
//! and the down consumer. The publisher failing ends the session; the heartbeat and the down
//! consumer retry on their own, since the events matter most.

use super::pairing::Pairing;
use super::{cursor_name, now_ms, Context};
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use pvm_store::{Store, StoreError, StoredEvent};
use pvm_sync::{subjects, Heartbeat, MSG_ID_HEADER, SEQ_HEADER};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the durable cursor is written while catching up. The in-memory cursor moves on
/// every ack round; on a crash at most this much is re-sent (the cloud drops it by id), in
/// exchange for far fewer fsyncs next to the writer's.
const CURSOR_SAVE_EVERY: Duration = Duration::from_millis(250);
/// First wait after a failure; it doubles up to the configured maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// While idle the publisher still looks at the log this often (belt and braces: a missed
/// wake-up costs at most this much delay).
const IDLE_POLL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("cannot connect to the cloud's NATS ({urls}): {detail}")]
    Connect { urls: String, detail: String },
    #[error("the node's NATS credentials are unusable: {0}")]
    Credentials(String),
    #[error("publishing event {seq} failed: {detail}")]
    Publish { seq: u64, detail: String },
    #[error("the cloud did not acknowledge event {seq}: {detail}")]
    Ack { seq: u64, detail: String },
    #[error("the event log: {0}")]
    Store(#[from] StoreError),
    #[error("the down-message consumer: {0}")]
    Down(String),
    #[error("a background task failed: {0}")]
    Task(String),
}

/// The sync connection to the event log, shared by the session's parts (SQLite calls block,
/// so they run on the blocking pool).
#[derive(Clone)]
pub(crate) struct Ledger(Arc<Mutex<Store>>);

impl Ledger {
    async fn open(path: std::path::PathBuf) -> Result<Ledger, SessionError> {
        let store = tokio::task::spawn_blocking(move || Store::open_companion(&path))
            .await
            .map_err(|e| SessionError::Task(e.to_string()))??;
        Ok(Ledger(Arc::new(Mutex::new(store))))
    }

    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, SessionError> {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| SessionError::Task(e.to_string()))?
        .map_err(SessionError::from)
    }
}

/// Keeps sessions going until `stop` turns true.
pub(crate) async fn run(ctx: Arc<Context>, pairing: Pairing, mut stop: watch::Receiver<bool>) {
    let mut backoff = FIRST_BACKOFF;
    let mut ledger: Option<Ledger> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let result = async {
            let ledger = match &ledger {
                Some(l) => l.clone(),
                None => {
                    let l = Ledger::open(ctx.db_path.clone()).await?;
                    ledger = Some(l.clone());
                    l
                }
            };
            session(&ctx, &pairing, &ledger, &mut stop, &mut backoff).await
        }
        .await;
        ctx.shared.set_connected(false);
        match result {
            Ok(()) => break,
            Err(e) => {
                ctx.shared.record_error(&e);
                let wait = backoff;
                backoff = (backoff * 2).min(ctx.settings.max_backoff);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
    ctx.shared.set_connected(false);
}

async fn connect(ctx: &Context, pairing: &Pairing) -> Result<async_nats::Client, SessionError> {
    let e = &pairing.enrolment;
    let key_pair = Arc::new(
        nkeys::KeyPair::from_seed(&e.nats_user_seed)
            .map_err(|err| SessionError::Credentials(err.to_string()))?,
    );
    let shared = ctx.shared.clone();
    let options = async_nats::ConnectOptions::with_jwt(e.nats_user_jwt.clone(), move |nonce| {
        let key_pair = key_pair.clone();
        async move { key_pair.sign(&nonce).map_err(async_nats::AuthError::new) }
    })
    .custom_inbox_prefix(&e.inbox_prefix)
    .name(format!("pvm-node {}", e.node_id))
    .connection_timeout(Duration::from_secs(5))
    .event_callback(move |event| {
        let shared = shared.clone();
        async move {
            match event {
                async_nats::Event::Connected => shared.set_connected(true),
                async_nats::Event::Disconnected | async_nats::Event::Closed => {
                    shared.set_connected(false)
                }
                _ => {}
            }
        }
    });
    let urls: Vec<async_nats::ServerAddr> =
        e.nats_urls.iter().filter_map(|u| u.parse().ok()).collect();
    let describe = || e.nats_urls.join(", ");
    if urls.is_empty() {
        return Err(SessionError::Connect {
            urls: describe(),
            detail: "the pairing names no usable NATS address".into(),
        });
    }
    let client = options
        .connect(urls)
        .await
        .map_err(|err| SessionError::Connect {
            urls: describe(),
            detail: err.to_string(),
        })?;
    ctx.shared.set_connected(true);
    Ok(client)
}

async fn session(
    ctx: &Arc<Context>,
    pairing: &Pairing,
    ledger: &Ledger,
    stop: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
) -> Result<(), SessionError> {
    let client = connect(ctx, pairing).await?;
    tracing::info!(node = %pairing.enrolment.node_id, "cloud sync session up");
    let js = jetstream::ContextBuilder::new()
        .timeout(ctx.settings.ack_timeout)
        .max_ack_inflight(publish_window(ctx.settings.batch_size))
        .backpressure_on_inflight(true)
        .build(client.clone());
    let result = tokio::select! {
        r = publish_loop(ctx, pairing, ledger, &js, backoff) => r,
        r = heartbeat_loop(ctx, pairing, &client) => r,
        r = super::down::consume_loop(ctx, pairing, ledger, &js) => r,
        _ = stop.changed() => {
            // The publisher was cut off between cursor saves: keep what was acknowledged.
            let acked = ctx.shared.cursor.load(std::sync::atomic::Ordering::Relaxed);
            save_cursor_forward(ledger, &cursor_name(pairing.enrolment.node_id), acked).await
        }
    };
    // Best effort: pending acks are abandoned with the session anyway.
    let _ = tokio::time::timeout(Duration::from_secs(1), client.drain()).await;
    result
}

/// The body of one up-message: the contract's [`pvm_sync::UpEvent`], written around the
/// event's stored JSON so the event is not decoded and encoded again for every publish.
#[cfg(test)]
pub(crate) fn up_event_json(node_id: uuid::Uuid, venue_id: uuid::Uuid, e: &StoredEvent) -> Bytes {
    UpEncoder::new(node_id, venue_id).encode(e)
}

/// Writes up-messages for one node: the part before the sequence is the same for every
/// event of a session, so it is formatted once instead of twice per event.
pub(crate) struct UpEncoder {
    prefix: String,
}

impl UpEncoder {
    pub(crate) fn new(node_id: uuid::Uuid, venue_id: uuid::Uuid) -> UpEncoder {
        UpEncoder {
            prefix: format!("{{\"node_id\":\"{node_id}\",\"venue_id\":\"{venue_id}\",\"seq\":"),
        }
    }

    pub(crate) fn encode(&self, e: &StoredEvent) -> Bytes {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(self.prefix.len() + e.body.len() + 32);
        out.push_str(&self.prefix);
        // Writing into a String cannot fail.
        let _ = write!(out, "{}", e.seq);
        out.push_str(",\"event\":");
        out.push_str(&e.body);
        out.push('}');
        Bytes::from(out)
    }
}

async fn publish_loop(
    ctx: &Arc<Context>,
    pairing: &Pairing,
    ledger: &Ledger,
    js: &jetstream::Context,
    backoff: &mut Duration,
) -> Result<(), SessionError> {
    let node_id = pairing.enrolment.node_id;
    let venue_id = pairing.enrolment.venue_id;
    let subject = async_nats::Subject::from(subjects::up_events(node_id));
    let encoder = UpEncoder::new(node_id, venue_id);
    let name = cursor_name(node_id);
    let mut position = {
        let name = name.clone();
        ledger.with(move |s| s.sync_cursor(&name)).await?
    };
    ctx.shared
        .cursor
        .store(position, std::sync::atomic::Ordering::Relaxed);
    let mut saved = position;
    let mut saved_at = Instant::now();
    let mut commits = ctx.engine.watch_state();
    let batch_size = ctx.settings.batch_size;
    let mut window = Window::new(publish_window(batch_size), position);
    loop {
        if let Some(to) = ctx.shared.take_rewind() {
            // What is in flight was sent from the old cursor: settle it first, so the
            // acknowledged position stays a gap-free prefix.
            let settled = window.settle_all(&mut position).await;
            if let Err(e) = settled {
                return keep_acknowledged(ctx, ledger, &name, saved, position, e).await;
            }
            if to < position {
                tracing::info!(
                    from = position,
                    to,
                    "resync: re-sending from an earlier cursor"
                );
                position = to;
            }
            window.restart_at(position);
            // A rewind is saved at once: the down-message that asked for it is acknowledged
            // only after this, so it must survive a crash.
            save_cursor(ledger, &name, position).await?;
            saved = position;
            saved_at = Instant::now();
            ctx.shared.record_success(position);
            super::down::rewind_done(ctx);
        }
        // Mark the state seen before reading, so a commit landing after the read wakes us.
        commits.borrow_and_update();
        let limit = batch_size.min(window.room());
        let events = if limit > 0 {
            let after = window.sent;
            ledger.with(move |s| s.events_since(after, limit)).await?
        } else {
            Vec::new()
        };
        // Fewer than asked for: the log is read to its end.
        let at_end = limit > 0 && events.len() < limit;
        if events.is_empty() && window.is_empty() {
            if saved != position {
                save_cursor(ledger, &name, position).await?;
                saved = position;
                saved_at = Instant::now();
            }
            ctx.shared.record_success(position);
            *backoff = FIRST_BACKOFF;
            tokio::select! {
                changed = commits.changed() => {
                    if changed.is_err() {
                        // The engine is gone (node stopping): nothing more will be written.
                        std::future::pending::<()>().await;
                    }
                }
                _ = ctx.shared.rewind.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        let mut outcome = window.publish(js, &subject, &encoder, &events).await;
        if outcome.is_ok() {
            // Keep the window full while there is more to read; once the log is read to
            // its end, settle everything so the cursor (and the lag) reach the end.
            outcome = if at_end {
                window.settle_all(&mut position).await
            } else {
                let keep = window.capacity.saturating_sub(batch_size);
                window.settle_to(keep, &mut position).await
            };
        }
        if let Err(e) = outcome {
            return keep_acknowledged(ctx, ledger, &name, saved, position, e).await;
        }
        ctx.shared.record_success(position);
        *backoff = FIRST_BACKOFF;
        if saved_at.elapsed() >= CURSOR_SAVE_EVERY && saved != position {
            save_cursor(ledger, &name, position).await?;
            saved = position;
            saved_at = Instant::now();
        }
    }
}

/// Events published and not yet acknowledged, at most this many: the node keeps streaming
/// while JetStream's acknowledgements come back, instead of stopping after every read of
/// the log. A few reads' worth, so reading the log overlaps the acknowledgements.
fn publish_window(batch_size: usize) -> usize {
    batch_size.max(1) * 4
}

/// Ends a session after a failed publish or acknowledgement, keeping what was acknowledged
/// before it; the rest is re-sent next session (the cloud drops repeats by id).
async fn keep_acknowledged(
    ctx: &Arc<Context>,
    ledger: &Ledger,
    name: &str,
    saved: u64,
    position: u64,
    error: SessionError,
) -> Result<(), SessionError> {
    if saved != position {
        let _ = save_cursor(ledger, name, position).await;
    }
    ctx.shared
        .cursor
        .store(position, std::sync::atomic::Ordering::Relaxed);
    Err(error)
}

/// The publisher's acknowledgement window: publishes in log order and settles the
/// acknowledgements in the same order, so the cursor only ever covers a gap-free prefix of
/// acknowledged events.
struct Window {
    capacity: usize,
    /// Highest sequence published in this session (acknowledged or not).
    sent: u64,
    pending: std::collections::VecDeque<(u64, jetstream::context::PublishAckFuture)>,
}

impl Window {
    fn new(capacity: usize, sent: u64) -> Window {
        Window {
            capacity,
            sent,
            pending: std::collections::VecDeque::with_capacity(capacity),
        }
    }

    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn room(&self) -> usize {
        self.capacity.saturating_sub(self.pending.len())
    }

    /// Forgets nothing in flight (call after [`Self::settle_all`]) and reads on from `seq`.
    fn restart_at(&mut self, seq: u64) {
        self.sent = seq;
    }

    /// Publishes `events` (the next ones after [`Self::sent`]) without waiting for acks.
    async fn publish(
        &mut self,
        js: &jetstream::Context,
        subject: &async_nats::Subject,
        encoder: &UpEncoder,
        events: &[StoredEvent],
    ) -> Result<(), SessionError> {
        for e in events {
            let mut id = uuid::Uuid::encode_buffer();
            let message = PublishMessage::build()
                .payload(encoder.encode(e))
                .header(MSG_ID_HEADER, &*e.id.hyphenated().encode_lower(&mut id))
                .header(SEQ_HEADER, e.seq.to_string().as_str());
            // The subject is shared bytes: cloning it does not copy the string per event.
            let ack = js
                .send_publish(subject.clone(), message)
                .await
                .map_err(|err| SessionError::Publish {
                    seq: e.seq,
                    detail: err.to_string(),
                })?;
            self.pending.push_back((e.seq, ack));
            self.sent = e.seq;
        }
        Ok(())
    }

    /// Awaits acknowledgements in order until at most `keep` are outstanding; `position`
    /// ends at the highest sequence acknowledged together with all before it.
    async fn settle_to(&mut self, keep: usize, position: &mut u64) -> Result<(), SessionError> {
        while self.pending.len() > keep {
            let Some((seq, ack)) = self.pending.pop_front() else {
                break;
            };
            if let Err(err) = ack.await {
                self.pending.clear();
                return Err(SessionError::Ack {
                    seq,
                    detail: err.to_string(),
                });
            }
            *position = seq;
        }
        Ok(())
    }

    async fn settle_all(&mut self, position: &mut u64) -> Result<(), SessionError> {
        self.settle_to(0, position).await
    }
}

/// Saves `seq` unless the saved cursor is already there or beyond (never moves it back).
async fn save_cursor_forward(ledger: &Ledger, name: &str, seq: u64) -> Result<(), SessionError> {
    let name = name.to_string();
    ledger
        .with(move |s| {
            if s.sync_cursor(&name)? < seq {
                s.set_sync_cursor(&name, seq)?;
            }
            Ok(())
        })
        .await
}

async fn save_cursor(ledger: &Ledger, name: &str, seq: u64) -> Result<(), SessionError> {
    let name = name.to_string();
    ledger.with(move |s| s.set_sync_cursor(&name, seq)).await
}

async fn heartbeat_loop(
    ctx: &Arc<Context>,
    pairing: &Pairing,
    client: &async_nats::Client,
) -> Result<(), SessionError> {
    let subject = subjects::up_heartbeat(pairing.enrolment.node_id);
    let mut tick = tokio::time::interval(ctx.settings.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let beat = heartbeat(ctx, pairing);
        let body = match serde_json::to_vec(&beat) {
            Ok(b) => b,
            Err(e) => return Err(SessionError::Task(e.to_string())),
        };
        if let Err(e) = client.publish(subject.clone(), body.into()).await {
            // Core NATS publishes only fail once the client is closed; the publisher will
            // notice the same and end the session.
            ctx.shared
                .record_error(format!("sending a heartbeat failed: {e}"));
        }
    }
}

fn heartbeat(ctx: &Context, pairing: &Pairing) -> Heartbeat {
    let (disk_free_bytes, disk_total_bytes) = disk_of(&ctx.data_dir);
    Heartbeat {
        node_id: pairing.enrolment.node_id,
        version: crate::node::VERSION.to_string(),
        uptime_s: ctx.started_at.elapsed().as_secs(),
        temperature_c: soc_temperature(),
        disk_free_bytes,
        disk_total_bytes,
        last_synced_seq: ctx.shared.cursor.load(std::sync::atomic::Ordering::Relaxed),
        last_event_seq: ctx.engine.last_seq(),
        clock_offset_ms: ctx.time.borrow().offset_ms,
        sent_at_ms: now_ms(),
        update: ctx
            .update
            .get()
            .and_then(|rx| rx.borrow().as_ref().map(crate::update::fleet_report)),
    }
}

/// Free and total bytes of the file system holding the data directory (0, 0 if unknown).
fn disk_of(dir: &std::path::Path) -> (u64, u64) {
    match rustix::fs::statvfs(dir) {
        Ok(s) => (
            s.f_bavail.saturating_mul(s.f_frsize),
            s.f_blocks.saturating_mul(s.f_frsize),
        ),
        Err(_) => (0, 0),
    }
}

/// The SoC temperature from the first thermal zone, where the machine has one (the Pi does;
/// containers and many PCs do not).
fn soc_temperature() -> Option<f64> {
    let text = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp").ok()?;
    let milli: f64 = text.trim().parse().ok()?;
    Some(milli / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_up_message_is_the_contracts_up_event() {
        let event = pvm_core::Event {
            schema: pvm_core::SCHEMA_VERSION,
            id: pvm_core::ids::EventId(uuid::Uuid::from_u128(9)),
            at: pvm_core::Timestamp::from_millis(1_700_000_000_000),
            body: pvm_core::EventBody::PlayerAdded {
                player_id: pvm_core::ids::PlayerId(uuid::Uuid::from_u128(4)),
                details: pvm_core::players::PlayerDetails {
                    name: "Ann".into(),
                    ..Default::default()
                },
            },
        };
        let stored = StoredEvent {
            seq: 12,
            id: event.id.0,
            stream: event.stream(),
            kind: event.kind().to_string(),
            at_ms: event.at.as_millis(),
            body: serde_json::to_string(&event).unwrap(),
        };
        let (node, venue) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let bytes = up_event_json(node, venue, &stored);
        let parsed: pvm_sync::UpEvent = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            parsed,
            pvm_sync::UpEvent {
                node_id: node,
                venue_id: venue,
                seq: 12,
                event
            }
        );
    }

    #[test]
    fn the_disk_of_an_existing_directory_is_known() {
        let dir = tempfile::tempdir().unwrap();
        let (free, total) = disk_of(dir.path());
        assert!(total > 0 && free <= total, "free {free} total {total}");
    }
}
