//! The single writer. One task owns the venue state and the event log: it takes commands in
//! order from a bounded queue, decides, makes the events durable (group commit: every command
//! waiting in the queue shares one transaction and one fsync), applies them, and only then
//! publishes the new state and answers the callers. Readers get `Arc` snapshots and never block
//! it; slow subscribers lag on a bounded broadcast and are dropped by their connection task.

use pvm_core::{apply, decide, Command, DomainError, Entropy, Event, Timestamp, VenueState};
use pvm_store::{
    Checkpointer, NewEvent, PendingOpen, SnapshotBody, Store, StoreError, StoredEvent,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Snapshot format version; bump when `VenueState`'s serialized shape changes.
pub const SNAPSHOT_SCHEMA: u32 = 1;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("the event log could not record this: {0}")]
    Store(#[from] StoreError),
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("the node is busy: {0} commands are already waiting")]
    Busy(usize),
    #[error("event {seq} in the log cannot be read by this version: {detail}")]
    Unreadable { seq: u64, detail: String },
    #[error("could not start the writer thread: {0}")]
    Thread(std::io::Error),
    /// The log failed the integrity check run at start: nothing is written to it, ever.
    #[error("nothing can be recorded: {0}")]
    Damaged(String),
    /// The group's transaction failed: nothing of it is in the log or the state.
    #[error("nothing was recorded: {reason}")]
    NotRecorded { reason: String, disk_full: bool },
}

/// One committed event with its place in the log.
#[derive(Debug, Clone)]
pub struct Committed {
    pub seq: u64,
    pub event: Event,
}

/// What subscribers receive after every commit: the events, in log order.
#[derive(Debug, Clone)]
pub struct Update {
    pub events: Arc<Vec<Committed>>,
    pub state: Arc<VenueState>,
    pub last_seq: u64,
}

/// The answer to one command.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub events: Vec<Committed>,
    pub state: Arc<VenueState>,
}

/// Where the start-up integrity check of the event log stands.
///
/// The node serves reads from the state loaded at start while the check runs; the writer
/// opens the log for writing only once it has passed, so commands wait (in the queue) until
/// then, and a damaged log is never written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    Checking,
    Passed,
    /// The check (or opening the log for writing after it) failed; the reason, as said.
    Failed(String),
}

/// What the writer's queue carries: commands, and the request to stop after those queued.
enum Msg {
    Run(Box<Job>),
    Stop,
}

struct Job {
    command: Command,
    reply: oneshot::Sender<Result<Outcome, EngineError>>,
    enqueued: Instant,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct EngineMetrics {
    pub commands_ok: AtomicU64,
    pub commands_refused: AtomicU64,
    pub commands_failed: AtomicU64,
    pub events_appended: AtomicU64,
    pub commits: AtomicU64,
    /// Sum of command latencies (enqueue → durable answer), microseconds.
    pub latency_us_sum: AtomicU64,
    pub latency_us_max: AtomicU64,
    /// Times the writer finished a checkpoint so the write-ahead log could start over.
    pub wal_resets: AtomicU64,
    /// Snapshots saved (each a copy of the whole venue, compressed).
    pub snapshots_saved: AtomicU64,
    /// Where a command's time goes, so a slow tail can be placed: waiting in the queue for
    /// the writer (enqueue → its group starts), the group's transaction (inserts + fsync), and
    /// the whole of it (enqueue → answer sent). What a client sees beyond `answered` is the
    /// HTTP stack's and the scheduler's.
    pub queued: Histogram,
    pub committing: Histogram,
    pub answered: Histogram,
    /// The writer's own work between two groups, each time it had some: saving a snapshot,
    /// finishing a checkpoint. Commands that arrive meanwhile wait (in `queued`).
    pub housekeeping: Histogram,
}

/// Upper bounds of the latency histograms' buckets, microseconds; a last bucket takes the rest.
pub const HISTOGRAM_BOUNDS_US: [u64; 18] = [
    100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 7_500, 10_000, 20_000,
    50_000, 100_000, 500_000, 1_000_000,
];

/// A lock-free latency histogram with fixed buckets ([`HISTOGRAM_BOUNDS_US`]): recording is
/// two relaxed atomic adds, cheap enough for the writer's path.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; HISTOGRAM_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = HISTOGRAM_BOUNDS_US.partition_point(|&bound| bound < us);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Count per bucket (not cumulative), in the order of [`HISTOGRAM_BOUNDS_US`], then the
    /// count above the last bound.
    pub fn counts(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_us.load(Ordering::Relaxed))
    }
}

/// The handle the rest of the node uses: send commands, read state, subscribe.
#[derive(Clone)]
pub struct EngineHandle {
    queue: mpsc::Sender<Msg>,
    state: watch::Receiver<Arc<VenueState>>,
    seq: watch::Receiver<u64>,
    updates: broadcast::Sender<Update>,
    store_reader: Arc<std::sync::Mutex<Store>>,
    integrity: watch::Receiver<Integrity>,
    pub metrics: Arc<EngineMetrics>,
    /// This node's identity (a UUID made on first start, kept in the log's metadata).
    pub node_id: String,
}

/// What snapshots may cost, in bytes of serialized state per event on average (an event is
/// ~450 bytes in the log). A snapshot holds the whole venue, the history included: 36 MB of
/// JSON after a million events. Written every `snapshot_every` events (1,000 by default) that
/// was 36 KB of snapshot per event, a hundred times the event itself, and the writer spent most
/// of its time saving snapshots and the checkpoints folding them into the file: at 2,000
/// commands/s, commands waited half a second. With this bound such a venue is snapshotted every
/// 90,000 events, and a start replays at most those after the last snapshot (~0.2 s for
/// 100,000). What is saved is compressed ([`SnapshotBody`], about a tenth); the bound is on the
/// JSON because making it (serializing, compressing) is the part that grows with the venue.
pub const SNAPSHOT_BYTES_PER_EVENT: u64 = 400;

pub struct EngineConfig {
    pub queue_depth: usize,
    pub snapshot_every: u64,
    pub broadcast_depth: usize,
    /// The write-ahead log's bound in frames, past which the writer finishes the background
    /// checkpoint so the log starts over ([`pvm_store::WAL_RESET_FRAMES`]).
    pub wal_reset_frames: u64,
    /// How often the background thread folds the write-ahead log into the file.
    pub checkpoint_every: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            queue_depth: 1024,
            snapshot_every: 10_000,
            broadcast_depth: 1024,
            wal_reset_frames: pvm_store::WAL_RESET_FRAMES,
            checkpoint_every: CHECKPOINT_EVERY,
        }
    }
}

/// The wall clock, in one place, so the rest of the node takes `now` from here.
pub fn wall_now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp::from_millis(ms)
}

/// Production entropy: the operating system's generator, so seat draws are unpredictable.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        // The OS generator only fails if the kernel has none, which Linux always has; fall back
        // to the clock's nanoseconds rather than stop the venue.
        if getrandom::fill(&mut b).is_err() {
            let n = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            return n ^ 0x9E37_79B9_7F4A_7C15;
        }
        u64::from_le_bytes(b)
    }
}

/// Rebuilds the state from the newest snapshot plus the events after it.
pub fn load_state(store: &Store) -> Result<(VenueState, u64), EngineError> {
    load(store).map(|loaded| (loaded.state, loaded.seq))
}

/// The state as [`load_state`] rebuilds it, and what the writer's snapshot cadence needs.
struct Loaded {
    state: VenueState,
    seq: u64,
    /// The size of the snapshot it started from, as JSON (0 without one).
    snapshot_bytes: u64,
    /// Events folded after that snapshot: not in any snapshot yet.
    replayed: u64,
}

fn load(store: &Store) -> Result<Loaded, EngineError> {
    let (mut state, mut seq, snapshot_bytes) = match store.latest_snapshot(SNAPSHOT_SCHEMA)? {
        Some(snap) => match snap.state().map_err(|e| e.to_string()).and_then(|json| {
            serde_json::from_slice::<VenueState>(&json)
                .map(|state| (state, json.len() as u64))
                .map_err(|e| e.to_string())
        }) {
            Ok((state, json_len)) => (state, snap.seq, json_len),
            Err(e) => {
                tracing::warn!(seq = snap.seq, error = %e, "snapshot unreadable; replaying the whole log");
                (VenueState::default(), 0, 0)
            }
        },
        None => (VenueState::default(), 0, 0),
    };
    let mut replayed = 0;
    loop {
        let batch = store.events_since(seq, 10_000)?;
        if batch.is_empty() {
            break;
        }
        for stored in &batch {
            let event = decode(stored)?;
            apply(&mut state, &event);
            seq = stored.seq;
            replayed += 1;
        }
    }
    state.applied = seq;
    Ok(Loaded {
        state,
        seq,
        snapshot_bytes,
        replayed,
    })
}

pub fn decode(stored: &StoredEvent) -> Result<Event, EngineError> {
    serde_json::from_str(&stored.body).map_err(|e| EngineError::Unreadable {
        seq: stored.seq,
        detail: e.to_string(),
    })
}

fn encode(event: &Event) -> Result<NewEvent, EngineError> {
    let body = serde_json::to_string(event).map_err(|e| EngineError::Unreadable {
        seq: 0,
        detail: e.to_string(),
    })?;
    Ok(NewEvent {
        id: event.id.0,
        stream: event.stream(),
        kind: event.kind().to_string(),
        at_ms: event.at.as_millis(),
        body,
    })
}

impl Integrity {
    /// One word for health reports: `running`, `passed` or `failed`.
    pub fn word(&self) -> &'static str {
        match self {
            Integrity::Checking => "running",
            Integrity::Passed => "passed",
            Integrity::Failed(_) => "failed",
        }
    }
}

impl EngineHandle {
    /// Sends a command and waits until its events are durable (or it is refused).
    pub async fn execute(&self, command: Command) -> Result<Outcome, EngineError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            command,
            reply,
            enqueued: Instant::now(),
        };
        self.queue
            .try_send(Msg::Run(Box::new(job)))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => EngineError::Busy(self.queue.max_capacity()),
                mpsc::error::TrySendError::Closed(_) => EngineError::ShuttingDown,
            })?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// The latest published state. Cheap: an `Arc` clone.
    pub fn state(&self) -> Arc<VenueState> {
        self.state.borrow().clone()
    }

    pub fn last_seq(&self) -> u64 {
        *self.seq.borrow()
    }

    pub fn watch_state(&self) -> watch::Receiver<Arc<VenueState>> {
        self.state.clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.updates.subscribe()
    }

    /// Committed events after `after_seq` (for resume and sync), from the log.
    pub async fn events_since(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Committed>, EngineError> {
        let reader = self.store_reader.clone();
        tokio::task::spawn_blocking(move || {
            let store = reader.lock().map_err(|_| EngineError::ShuttingDown)?;
            let stored = store.events_since(after_seq, limit)?;
            stored
                .iter()
                .map(|s| {
                    Ok(Committed {
                        seq: s.seq,
                        event: decode(s)?,
                    })
                })
                .collect()
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    /// Asks the writer to stop once every command queued so far is committed. Commands sent
    /// later are answered "shutting down".
    pub async fn shutdown(&self) {
        let _ = self.queue.send(Msg::Stop).await;
    }

    /// Where the start-up integrity check stands now.
    pub fn integrity(&self) -> Integrity {
        self.integrity.borrow().clone()
    }

    /// Waits for the start-up integrity check: `Ok` once the log is open for writing, the
    /// reason otherwise (also when the writer is gone before the check ended).
    pub async fn integrity_checked(&self) -> Result<(), String> {
        let mut integrity = self.integrity.clone();
        let settled = integrity
            .wait_for(|i| *i != Integrity::Checking)
            .await
            .map(|i| i.clone());
        match settled {
            Ok(Integrity::Failed(reason)) => Err(reason),
            Ok(_) => Ok(()),
            Err(_) => Err(EngineError::ShuttingDown.to_string()),
        }
    }

    pub fn queue_len(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// Starts the writer on its own thread (SQLite calls block). Returns the handle and a join
/// handle that completes once the queue is drained and the database is closed.
pub fn start(
    db_path: &std::path::Path,
    config: EngineConfig,
) -> Result<(EngineHandle, std::thread::JoinHandle<()>), EngineError> {
    // The integrity check reads the whole file: on a long log it takes longer than loading the
    // state, and on an SD card seconds. So the state is loaded beside it and the node serves
    // reads from that state at once; only the writer waits for the check, since `finish` is
    // what opens the log for writing. A damaged file is therefore never written to.
    let (reader, pending) = Store::open_checking(db_path)?;
    let Loaded {
        state,
        seq,
        snapshot_bytes,
        replayed,
    } = match load(&reader) {
        Ok(loaded) => loaded,
        Err(e) => {
            // A damaged file is the better explanation of a failed load: the check speaks first.
            pending.finish()?;
            return Err(e);
        }
    };
    let (opening, node_id) = match reader.meta_get("node_id")? {
        Some(id) => (Opening::Pending(pending), id),
        None => {
            // Only a log that has never been opened by a node lacks an id: a new one, whose
            // check is instant. It is written now, so the identity exists before anything
            // can be published under it.
            let mut store = pending.finish()?;
            let id = pvm_core::ids::new_uuid_v7(wall_now(), &mut OsEntropy).to_string();
            store.meta_set("node_id", &id)?;
            (Opening::Open(store), id)
        }
    };
    let (integrity_tx, integrity_rx) = watch::channel(Integrity::Checking);
    let state = Arc::new(state);
    let (queue_tx, queue_rx) = mpsc::channel(config.queue_depth);
    let (state_tx, state_rx) = watch::channel(state.clone());
    let (seq_tx, seq_rx) = watch::channel(seq);
    let (updates_tx, _) = broadcast::channel(config.broadcast_depth);
    let metrics = Arc::new(EngineMetrics::default());
    let handle = EngineHandle {
        queue: queue_tx,
        state: state_rx,
        seq: seq_rx,
        updates: updates_tx.clone(),
        store_reader: Arc::new(std::sync::Mutex::new(reader)),
        integrity: integrity_rx,
        metrics: metrics.clone(),
        node_id,
    };
    let writer = Writer {
        store: None,
        damaged: None,
        checkpointer: None,
        state,
        seq,
        since_snapshot: replayed,
        snapshot_every: config.snapshot_every.max(1),
        // A start does not write the large venue's snapshot again 1,000 events later.
        snapshot_bytes,
        wal_reset_frames: config.wal_reset_frames.max(1),
        checkpoint_every: config.checkpoint_every,
        state_tx,
        seq_tx,
        updates_tx,
        metrics,
        entropy: OsEntropy,
        snapshots: Snapshotter::spawn().map_err(EngineError::Thread)?,
    };
    let join = std::thread::Builder::new()
        .name("pvm-writer".into())
        .spawn(move || writer.run(opening, integrity_tx, queue_rx))
        .map_err(EngineError::Thread)?;
    Ok((handle, join))
}

/// The log as handed to the writer thread: still being checked, or already open.
enum Opening {
    Pending(PendingOpen),
    Open(Store),
}

struct Writer {
    /// `None` until the integrity check has passed, and again once closed.
    store: Option<Store>,
    /// Why the log is refused, if its integrity check failed: every command gets this.
    damaged: Option<String>,
    /// Folds the write-ahead log into the file beside the writer, so no commit waits for it.
    checkpointer: Option<Checkpointer>,
    state: Arc<VenueState>,
    seq: u64,
    since_snapshot: u64,
    snapshot_every: u64,
    /// The size of the last snapshot saved: larger states are snapshotted less often.
    snapshot_bytes: u64,
    wal_reset_frames: u64,
    checkpoint_every: Duration,
    state_tx: watch::Sender<Arc<VenueState>>,
    seq_tx: watch::Sender<u64>,
    updates_tx: broadcast::Sender<Update>,
    metrics: Arc<EngineMetrics>,
    entropy: OsEntropy,
    snapshots: Snapshotter,
}

/// Serializes and compresses snapshots on a thread of its own. A year of venue history is tens
/// of megabytes of JSON; made on the writer, it would be added to the latency of every command
/// of the group that crossed the snapshot interval. The state is shared (`Arc`), so handing it
/// over is free.
struct Snapshotter {
    requests: std::sync::mpsc::SyncSender<(u64, Arc<VenueState>)>,
    ready: std::sync::mpsc::Receiver<(u64, Result<SnapshotBody, String>)>,
    /// A request is out and its bytes have not been saved yet.
    busy: bool,
}

impl Snapshotter {
    fn spawn() -> Result<Snapshotter, std::io::Error> {
        let (requests, jobs) = std::sync::mpsc::sync_channel::<(u64, Arc<VenueState>)>(1);
        let (done, ready) = std::sync::mpsc::channel();
        // Ends when the writer (the only sender) is gone.
        std::thread::Builder::new()
            .name("pvm-snapshot".into())
            .spawn(move || {
                for (seq, state) in jobs {
                    let body = snapshot_body(&state);
                    if done.send((seq, body)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Snapshotter {
            requests,
            ready,
            busy: false,
        })
    }
}

/// How often the write-ahead log is folded back into the database file (off the writer).
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// At most this many commands share one transaction.
const MAX_GROUP: usize = 256;

impl Writer {
    /// Waits for the integrity check, then opens the log for writing (or, if it failed,
    /// refuses every command until stopped, touching nothing).
    fn open(&mut self, opening: Opening, integrity: &watch::Sender<Integrity>) {
        let opened = match opening {
            Opening::Open(store) => Ok(store),
            Opening::Pending(pending) => pending.finish(),
        };
        let status = match opened {
            Ok(mut store) => match store
                .checkpoint_in_background_bounded(self.checkpoint_every, self.wal_reset_frames)
            {
                Ok(checkpointer) => {
                    self.checkpointer = Some(checkpointer);
                    self.store = Some(store);
                    Integrity::Passed
                }
                Err(e) => Integrity::Failed(e.to_string()),
            },
            Err(e) => Integrity::Failed(e.to_string()),
        };
        if let Integrity::Failed(reason) = &status {
            tracing::error!(error = %reason, "the event log is refused; no command will be recorded");
            self.damaged = Some(reason.clone());
        }
        let _ = integrity.send(status);
    }

    fn run(
        mut self,
        opening: Opening,
        integrity: watch::Sender<Integrity>,
        mut queue: mpsc::Receiver<Msg>,
    ) {
        self.open(opening, &integrity);
        // Stops on `Msg::Stop` or when every handle is gone: what was queued before is still
        // decided and committed before the database closes.
        let mut stopping = false;
        while !stopping {
            let Some(Msg::Run(first)) = queue.blocking_recv() else {
                break;
            };
            let started = Instant::now();
            self.metrics
                .queued
                .record(started.saturating_duration_since(first.enqueued));
            let mut jobs = vec![*first];
            while jobs.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(Msg::Run(j)) => {
                        self.metrics
                            .queued
                            .record(started.saturating_duration_since(j.enqueued));
                        jobs.push(*j);
                    }
                    Ok(Msg::Stop) => {
                        stopping = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(jobs);
            self.finish_checkpoint_if_wanted();
        }
        queue.close();
        self.snapshot_now();
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop();
        }
        if let Some(store) = self.store.take() {
            if let Err(e) = store.close() {
                tracing::error!(error = %e, "closing the event log failed");
            }
        }
        tracing::info!(seq = self.seq, "writer stopped; event log closed");
    }

    fn commit_group(&mut self, jobs: Vec<Job>) {
        if let Some(reason) = &self.damaged {
            for job in jobs {
                self.metrics.commands_failed.fetch_add(1, Ordering::Relaxed);
                let _ = job.reply.send(Err(EngineError::Damaged(reason.clone())));
            }
            return;
        }
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let before = self.state.clone();
        let mut working = (*self.state).clone();
        let mut accepted: Vec<(Job, Vec<Event>)> = Vec::with_capacity(jobs.len());
        for job in jobs {
            let now = crate::engine::wall_now();
            match decide(&working, job.command.clone(), now, &mut self.entropy) {
                Ok(events) => {
                    for e in &events {
                        apply(&mut working, e);
                    }
                    accepted.push((job, events));
                }
                Err(e) => {
                    self.metrics
                        .commands_refused
                        .fetch_add(1, Ordering::Relaxed);
                    let _ = job.reply.send(Err(EngineError::Domain(e)));
                }
            }
        }
        if accepted.is_empty() {
            return;
        }
        let encoded: Result<Vec<Vec<NewEvent>>, EngineError> = accepted
            .iter()
            .map(|(_, evs)| evs.iter().map(encode).collect())
            .collect();
        let committing = Instant::now();
        let result =
            encoded.and_then(|batches| store.append_batches(&batches).map_err(EngineError::from));
        self.metrics.committing.record(committing.elapsed());
        match result {
            Ok(results) => {
                // Each command's batch has its own savepoint: when one fails (it cannot, short
                // of a duplicate UUID), the others are in the log. `working` then has events the
                // log lacks, so the state is rebuilt from the log itself.
                if results.iter().any(|r| r.is_err()) {
                    match load_state(store) {
                        Ok((state, _)) => working = state,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot rebuild the state after a partly failed commit");
                            working = (*before).clone();
                        }
                    }
                }
                let mut all = Vec::new();
                let mut outcomes = Vec::with_capacity(accepted.len());
                for ((job, events), result) in accepted.into_iter().zip(results) {
                    let seqs = match result {
                        Ok(seqs) => seqs,
                        Err(e) => {
                            self.metrics.commands_failed.fetch_add(1, Ordering::Relaxed);
                            let disk_full = matches!(e, StoreError::DiskFull { .. });
                            let _ = job.reply.send(Err(EngineError::NotRecorded {
                                reason: e.to_string(),
                                disk_full,
                            }));
                            continue;
                        }
                    };
                    let committed: Vec<Committed> = events
                        .into_iter()
                        .zip(seqs)
                        .map(|(event, seq)| Committed { seq, event })
                        .collect();
                    all.extend(committed.iter().cloned());
                    outcomes.push((job, committed));
                }
                let last = all.last().map(|c| c.seq).unwrap_or(self.seq);
                working.applied = last;
                self.seq = last;
                self.since_snapshot += all.len() as u64;
                let state = Arc::new(working);
                self.state = state.clone();
                self.metrics
                    .events_appended
                    .fetch_add(all.len() as u64, Ordering::Relaxed);
                self.metrics.commits.fetch_add(1, Ordering::Relaxed);
                // The state first, so a read made after an answer sees what it answered.
                let _ = self.state_tx.send(state.clone());
                let _ = self.seq_tx.send(last);
                for (job, events) in outcomes {
                    let took = job.enqueued.elapsed();
                    self.metrics.answered.record(took);
                    let us = took.as_micros() as u64;
                    self.metrics.latency_us_sum.fetch_add(us, Ordering::Relaxed);
                    self.metrics.latency_us_max.fetch_max(us, Ordering::Relaxed);
                    self.metrics.commands_ok.fetch_add(1, Ordering::Relaxed);
                    let _ = job.reply.send(Ok(Outcome {
                        events,
                        state: state.clone(),
                    }));
                }
                // Only then the live subscribers: publishing wakes every connection (a
                // thousand displays), and no answer has to wait behind that. What they send
                // is built on their side, from the shared state, never on this thread.
                let _ = self.updates_tx.send(Update {
                    events: Arc::new(all),
                    state: state.clone(),
                    last_seq: last,
                });
                self.save_ready_snapshot();
                if self.since_snapshot >= self.snapshot_interval() && !self.snapshots.busy {
                    let sent = self
                        .snapshots
                        .requests
                        .try_send((self.seq, self.state.clone()));
                    // Busy either way: a thread that is gone is not asked again.
                    self.snapshots.busy = true;
                    if sent.is_err() {
                        tracing::warn!("the snapshot thread is gone; snapshots only at shutdown");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed; nothing of this group was recorded");
                self.state = before;
                let disk_full = matches!(e, EngineError::Store(StoreError::DiskFull { .. }));
                let reason = e.to_string();
                for (job, _) in accepted {
                    self.metrics.commands_failed.fetch_add(1, Ordering::Relaxed);
                    let _ = job.reply.send(Err(EngineError::NotRecorded {
                        reason: reason.clone(),
                        disk_full,
                    }));
                }
            }
        }
    }

    /// Between two groups, when the background checkpointer found the log past its bound with
    /// frames left behind: copies those few frames here, where nothing commits meanwhile, so the
    /// next commit starts the log over instead of appending to an ever longer file.
    fn finish_checkpoint_if_wanted(&mut self) {
        let (Some(checkpointer), Some(store)) = (self.checkpointer.as_ref(), self.store.as_mut())
        else {
            return;
        };
        if !checkpointer.reset_wanted() {
            return;
        }
        let started = Instant::now();
        let finished = store.finish_checkpoint();
        self.metrics.housekeeping.record(started.elapsed());
        match finished {
            Ok(frames) => {
                self.metrics.wal_resets.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    frames,
                    took_us = started.elapsed().as_micros() as u64,
                    "write-ahead log checkpointed to its end"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not finish the checkpoint; the log grows until the next one")
            }
        }
    }

    /// Saves the snapshot the snapshot thread has finished, if any. The insert shares the
    /// writer's connection, so it is done here, between two groups.
    fn save_ready_snapshot(&mut self) {
        let Ok((seq, body)) = self.snapshots.ready.try_recv() else {
            return;
        };
        self.snapshots.busy = false;
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let started = Instant::now();
        let saved = body.map(|body| {
            store
                .save_snapshot(seq, SNAPSHOT_SCHEMA, &body)
                .map(|()| body.state_len() as u64)
        });
        self.metrics.housekeeping.record(started.elapsed());
        match saved {
            Ok(Ok(size)) => {
                self.metrics.snapshots_saved.fetch_add(1, Ordering::Relaxed);
                // Events committed while it was being made are still to be covered.
                self.since_snapshot = self.seq.saturating_sub(seq);
                self.snapshot_bytes = size;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "snapshot not saved; will retry later"),
            Err(e) => tracing::warn!(error = %e, "snapshot not made"),
        }
    }

    /// Events between two snapshots: `snapshot_every`, or more for a state so large that
    /// snapshots would cost more than [`SNAPSHOT_BYTES_PER_EVENT`] per event.
    fn snapshot_interval(&self) -> u64 {
        self.snapshot_every
            .max(self.snapshot_bytes / SNAPSHOT_BYTES_PER_EVENT)
    }

    fn snapshot_now(&mut self) {
        if self.since_snapshot == 0 {
            return;
        }
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match snapshot_body(&self.state) {
            Ok(body) => match store.save_snapshot(self.seq, SNAPSHOT_SCHEMA, &body) {
                Ok(()) => {
                    self.metrics.snapshots_saved.fetch_add(1, Ordering::Relaxed);
                    self.since_snapshot = 0;
                }
                Err(e) => tracing::warn!(error = %e, "snapshot not saved; will retry later"),
            },
            Err(e) => tracing::warn!(error = %e, "snapshot not made"),
        }
    }
}

/// The state as a snapshot saves it.
fn snapshot_body(state: &VenueState) -> Result<SnapshotBody, String> {
    let json = serde_json::to_vec(state).map_err(|e| format!("serializing: {e}"))?;
    SnapshotBody::compress(&json).map_err(|e| e.to_string())
}

/// How long the node waits for the writer to drain on shutdown before giving up.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
