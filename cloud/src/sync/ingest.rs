//! Ingestion: the shared durable pull consumer on PVM_UP into PostgreSQL.
//!
//! For each batch, one transaction stores the events (`ON CONFLICT DO NOTHING`: the event id
//! and `(node_id, seq)` are unique), then, per node and under that node's `sync_node_state`
//! row lock, folds the contiguous run of stored events after the node's `applied_seq`
//! watermark into the projections. Only after the commit are the messages acknowledged, so
//! a crash anywhere means redelivery, and redelivery means a no-op insert. Because
//! projections only ever advance through a gap-free run, events arriving out of order,
//! twice, or split between several cloud instances cannot corrupt them: a later event just
//! waits in `sync_events` until the ones before it arrive.
//!
//! Unreadable messages, and messages naming a node that is not enrolled, go to
//! `sync_dead_letters` and are terminated (never redelivered).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt as _;
use pvm_core::VenueState;
use pvm_sync::UpEvent;
use uuid::Uuid;

use super::projections::{self, Changes};
use super::streams;

/// Where a node belongs, from the `nodes` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    pub node_id: Uuid,
    pub venue_id: Uuid,
    pub tenant_id: Uuid,
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Most messages stored in one transaction.
    pub batch_size: usize,
    /// How long to gather more messages once the first of a batch has arrived.
    pub gather: Duration,
    /// Save the folded state every this many events (the rest is replayed on a cold start).
    pub snapshot_every: i64,
    /// Unacknowledged deliveries JetStream allows the shared consumer.
    pub max_ack_pending: i64,
    /// How long a delivery may stay unacknowledged (an instance died mid-batch) before
    /// JetStream gives it to another instance. Part of the shared consumer's configuration.
    pub ack_wait: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            batch_size: 4000,
            gather: Duration::from_millis(20),
            snapshot_every: 50_000,
            max_ack_pending: 40_000,
            ack_wait: streams::INGEST_ACK_WAIT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Streams(#[from] streams::StreamError),
    #[error("JetStream: {0}")]
    Nats(String),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

/// Events read per query while folding a node's run.
const RUN_PAGE: i64 = 2000;

/// How a batch's events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InsertPath {
    /// `COPY`: fails on any event already stored.
    Copy,
    /// `INSERT … ON CONFLICT DO NOTHING`, then sorting out which skipped events collide.
    SkipStored,
}

/// Events rejected since start (a reused sequence or id): also logged at error level.
static REJECTED_TOTAL: AtomicU64 = AtomicU64::new(0);
/// Times a node's folded state was rebuilt from PostgreSQL instead of this instance's cache.
static RELOADS_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Events this process rejected because they reuse a stored event's sequence or id.
pub fn rejected_total() -> u64 {
    REJECTED_TOTAL.load(std::sync::atomic::Ordering::Relaxed)
}

/// Times this process rebuilt a node's folded state from PostgreSQL (cold start, or another
/// instance moved the node's watermark since this one cached it).
pub fn state_reloads_total() -> u64 {
    RELOADS_TOTAL.load(std::sync::atomic::Ordering::Relaxed)
}

fn nats_err(e: impl std::fmt::Display) -> IngestError {
    IngestError::Nats(e.to_string())
}

/// A readable event with what its row needs.
struct Incoming {
    up: UpEvent,
    /// The event's JSON exactly as the node sent it: stored as is, so an event is decoded
    /// once (to fold it) and never encoded again.
    body: Box<serde_json::value::RawValue>,
}

/// [`UpEvent`] with the event left as JSON text, to keep it for the `body` column.
#[derive(serde::Deserialize)]
struct RawUpEvent {
    node_id: Uuid,
    venue_id: Uuid,
    seq: u64,
    event: Box<serde_json::value::RawValue>,
}

struct DeadLetter {
    subject: String,
    stream_seq: Option<i64>,
    node_id: Option<Uuid>,
    reason: String,
    payload: Vec<u8>,
}

/// The node id in `pvm.up.<node>.events`.
fn subject_node(subject: &str) -> Option<Uuid> {
    let rest = subject.strip_prefix("pvm.up.")?;
    let id = rest.strip_suffix(".events")?;
    Uuid::parse_str(id).ok()
}

fn parse(message: &jetstream::Message) -> Result<Incoming, DeadLetter> {
    let subject: &str = message.subject.as_ref();
    // Built only for a dead letter: the reply subject is parsed for the stream sequence
    // and the payload copied only then, not for every good message.
    let dead = |node_id, reason: String| DeadLetter {
        subject: subject.to_string(),
        stream_seq: message
            .info()
            .ok()
            .and_then(|i| i64::try_from(i.stream_sequence).ok()),
        node_id,
        reason,
        payload: message.payload.to_vec(),
    };
    let Some(subject_node) = subject_node(subject) else {
        return Err(dead(None, "subject is not pvm.up.<node>.events".into()));
    };
    let raw: RawUpEvent = serde_json::from_slice(&message.payload)
        .map_err(|e| dead(Some(subject_node), format!("unreadable event: {e}")))?;
    let event: pvm_core::Event = serde_json::from_str(raw.event.get())
        .map_err(|e| dead(Some(subject_node), format!("unreadable event: {e}")))?;
    let up = UpEvent {
        node_id: raw.node_id,
        venue_id: raw.venue_id,
        seq: raw.seq,
        event,
    };
    // Credentials bind a node to its own subject; the body must agree with it, or one
    // node could write into another's log.
    if up.node_id != subject_node {
        return Err(dead(
            Some(subject_node),
            format!("body names node {} on another node's subject", up.node_id),
        ));
    }
    if up.seq == 0 || i64::try_from(up.seq).is_err() {
        return Err(dead(Some(subject_node), format!("bad sequence {}", up.seq)));
    }
    Ok(Incoming {
        up,
        body: raw.event,
    })
}

/// A node's folded state as this instance last committed it.
struct Cached {
    applied_seq: i64,
    state: VenueState,
}

/// Messages whose batch is committed, waiting for their acknowledgement.
pub struct StoredBatch {
    ack: Vec<jetstream::Message>,
    term: Vec<jetstream::Message>,
    pub stored_events: usize,
    pub dead_letters: usize,
}

impl StoredBatch {
    fn split(batch: Vec<jetstream::Message>, stored_events: usize, dead_at: &[usize]) -> Self {
        let (mut ack, mut term) = (Vec::new(), Vec::new());
        for (i, message) in batch.into_iter().enumerate() {
            if dead_at.contains(&i) {
                term.push(message);
            } else {
                ack.push(message);
            }
        }
        StoredBatch {
            ack,
            term,
            stored_events,
            dead_letters: dead_at.len(),
        }
    }

    /// Acknowledges the batch: stored messages with `ack`, dead letters with `term`.
    pub async fn acknowledge(self) -> Result<(), IngestError> {
        for message in &self.ack {
            message.ack().await.map_err(nats_err)?;
        }
        for message in &self.term {
            message.ack_with(AckKind::Term).await.map_err(nats_err)?;
        }
        Ok(())
    }
}

/// One cloud instance's ingestion. Several may run against the same consumer.
pub struct Ingestor {
    pool: deadpool_postgres::Pool,
    config: IngestConfig,
    messages: tokio::sync::Mutex<consumer::pull::Stream>,
    nodes: Mutex<HashMap<Uuid, NodeInfo>>,
    states: Mutex<HashMap<Uuid, Cached>>,
    /// Batches whose `COPY` met an already stored event and were stored again with the
    /// insert that skips stored events.
    copy_fallbacks: AtomicU64,
}

impl Ingestor {
    /// Ensures the streams and the shared durable consumer and starts pulling from it.
    pub async fn new(
        pool: deadpool_postgres::Pool,
        js: &jetstream::Context,
        config: IngestConfig,
    ) -> Result<Self, IngestError> {
        streams::ensure_streams(js).await?;
        let consumer =
            streams::ensure_ingest_consumer(js, config.max_ack_pending, config.ack_wait).await?;
        let batch = config.batch_size.max(1);
        let messages = consumer
            .stream()
            .max_messages_per_batch(batch)
            .messages()
            .await
            .map_err(nats_err)?;
        Ok(Ingestor {
            pool,
            config,
            messages: tokio::sync::Mutex::new(messages),
            nodes: Mutex::new(HashMap::new()),
            states: Mutex::new(HashMap::new()),
            copy_fallbacks: AtomicU64::new(0),
        })
    }

    /// Batches this instance stored twice over because their `COPY` met an event
    /// PostgreSQL already had (a redelivery or a re-publish): each costs a rolled back
    /// transaction, so a steady stream of them would show a delivery problem.
    pub fn copy_fallbacks(&self) -> u64 {
        self.copy_fallbacks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits for the next message, then gathers what else arrives within the gather time,
    /// up to the batch size.
    pub async fn next_batch(&self) -> Result<Vec<jetstream::Message>, IngestError> {
        let mut messages = self.messages.lock().await;
        let mut batch = Vec::new();
        match messages.next().await {
            Some(first) => batch.push(first.map_err(nats_err)?),
            None => return Err(IngestError::Nats("consumer stream ended".into())),
        }
        let deadline = tokio::time::Instant::now() + self.config.gather;
        while batch.len() < self.config.batch_size {
            match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(Some(Ok(message))) => batch.push(message),
                Ok(Some(Err(e))) => {
                    tracing::warn!(error = %e, "ingest pull error inside a batch");
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        Ok(batch)
    }

    /// Stores a batch in one transaction (events, then projections) and commits. The
    /// messages are not acknowledged yet: that is [`StoredBatch::acknowledge`].
    pub async fn store(&self, batch: Vec<jetstream::Message>) -> Result<StoredBatch, IngestError> {
        let (stored_events, dead_at) = self.commit(&batch).await?;
        Ok(StoredBatch::split(batch, stored_events, &dead_at))
    }

    /// The transaction behind [`Self::store`]: returns how many events it wrote or found
    /// already there, and which messages of the batch became dead letters.
    ///
    /// The events go in first by `COPY` (see [`copy_events`]): the cheap path, taken by every
    /// batch that holds only new events. A batch holding an event PostgreSQL already has (a
    /// redelivery, a re-publish, a reused sequence) makes that `COPY` fail on a unique key,
    /// which aborts the whole transaction; the batch is then stored again from the start with
    /// the insert that skips and sorts out stored events.
    async fn commit(
        &self,
        batch: &[jetstream::Message],
    ) -> Result<(usize, Vec<usize>), IngestError> {
        match self.commit_with(batch, InsertPath::Copy).await {
            Err(IngestError::Db(e))
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                self.copy_fallbacks
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.commit_with(batch, InsertPath::SkipStored).await
            }
            other => other,
        }
    }

    async fn commit_with(
        &self,
        batch: &[jetstream::Message],
        path: InsertPath,
    ) -> Result<(usize, Vec<usize>), IngestError> {
        let mut good = Vec::new();
        let mut dead = Vec::new();
        let mut dead_at = Vec::new();
        for (i, message) in batch.iter().enumerate() {
            match parse(message) {
                Ok(incoming) => good.push((i, incoming)),
                Err(letter) => {
                    dead.push(letter);
                    dead_at.push(i);
                }
            }
        }
        let mut client = self.pool.get().await?;
        let nodes = self
            .node_infos(&client, good.iter().map(|(_, g)| g))
            .await?;
        // Events of nodes that are not enrolled (or that claim another venue) cannot be
        // attributed to a tenant: they become dead letters too.
        let mut events: BTreeMap<(Uuid, u64), Incoming> = BTreeMap::new();
        let mut rejected: Vec<Rejected> = Vec::new();
        for (i, incoming) in good {
            let node = incoming.up.node_id;
            match nodes.get(&node) {
                Some(info) if info.venue_id == incoming.up.venue_id => {
                    let key = (node, incoming.up.seq);
                    match events.get(&key) {
                        None => {
                            events.insert(key, incoming);
                        }
                        // The same event twice in one batch (a re-publish): once is enough.
                        Some(first) if first.up.event.id == incoming.up.event.id => {}
                        // Two different events claiming one sequence in the same batch: the
                        // first delivered is kept, as it would be across batches.
                        Some(first) => rejected.push(Rejected {
                            existing: Some(first.up.event.id.0),
                            reason: "sequence reused by another event in the same batch",
                            incoming,
                        }),
                    }
                }
                found => {
                    dead_at.push(i);
                    dead.push(DeadLetter {
                        subject: pvm_sync::subjects::up_events(node),
                        stream_seq: batch[i]
                            .info()
                            .ok()
                            .and_then(|info| i64::try_from(info.stream_sequence).ok()),
                        node_id: Some(node),
                        reason: if found.is_some() {
                            format!("event names venue {}, not the node's", incoming.up.venue_id)
                        } else {
                            "node is not enrolled".into()
                        },
                        payload: batch[i].payload.to_vec(),
                    })
                }
            }
        }
        let tx = client.transaction().await?;
        for letter in &dead {
            tx.execute(
            &tx.prepare_cached("INSERT INTO sync_dead_letters (subject, stream_seq, node_id, reason, payload) \
                 VALUES ($1, $2, $3, $4, $5)").await?,
                &[
                    &letter.subject,
                    &letter.stream_seq,
                    &letter.node_id,
                    &letter.reason,
                    &letter.payload,
                ],
            )
            .await?;
        }
        let mut stored = events.len();
        if !events.is_empty() && path == InsertPath::Copy {
            copy_events(&tx, &nodes, &events).await?;
        } else if !events.is_empty() {
            let inserted = insert_events(&tx, &nodes, &events).await?;
            if inserted < events.len() as u64 {
                for (key, existing, reason) in conflicting(&tx, &events).await? {
                    if let Some(incoming) = events.remove(&key) {
                        rejected.push(Rejected {
                            existing,
                            reason,
                            incoming,
                        });
                    }
                }
            }
            stored = events.len();
        }
        if !rejected.is_empty() {
            record_rejected(&tx, &rejected).await?;
        }
        // Sorted node order: two instances lock the watermark rows in the same order.
        let mut touched: Vec<Uuid> = events.keys().map(|(n, _)| *n).collect();
        touched.dedup();
        let mut new_states = Vec::new();
        for node in touched {
            if let Some(info) = nodes.get(&node) {
                if let Some(done) = self.apply_node(&tx, info, &events).await? {
                    new_states.push((node, done));
                }
            }
        }
        tx.commit().await?;
        for r in &rejected {
            tracing::error!(
                node = %r.incoming.up.node_id,
                seq = r.incoming.up.seq,
                event = %r.incoming.up.event.id.0,
                existing = ?r.existing,
                reason = r.reason,
                "sync event rejected: kept in sync_rejected_events, the stored event stays"
            );
        }
        REJECTED_TOTAL.fetch_add(rejected.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut states) = self.states.lock() {
            for (node, cached) in new_states {
                states.insert(node, cached);
            }
        }
        Ok((stored, dead_at))
    }

    async fn node_infos(
        &self,
        client: &deadpool_postgres::Client,
        events: impl Iterator<Item = &Incoming>,
    ) -> Result<HashMap<Uuid, NodeInfo>, IngestError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        if let Ok(known) = self.nodes.lock() {
            for e in events {
                match known.get(&e.up.node_id) {
                    Some(info) => {
                        found.insert(info.node_id, *info);
                    }
                    None => missing.push(e.up.node_id),
                }
            }
        }
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            let rows = client
                .query(
                    "SELECT id, venue_id, tenant_id FROM nodes WHERE id = ANY($1)",
                    &[&missing],
                )
                .await?;
            let mut known = self.nodes.lock().ok();
            for row in rows {
                let info = NodeInfo {
                    node_id: row.get(0),
                    venue_id: row.get(1),
                    tenant_id: row.get(2),
                };
                found.insert(info.node_id, info);
                if let Some(known) = known.as_mut() {
                    known.insert(info.node_id, info);
                }
            }
        }
        Ok(found)
    }

    /// Folds the node's contiguous run after its watermark into the projections, under the
    /// watermark's row lock: first from this batch's events in memory, then from events
    /// stored earlier (they arrived ahead of a gap). The folded state comes from this
    /// instance's cache when the locked watermark is the one it cached (no other instance
    /// moved it), else from the saved snapshot plus the events after it. Returns the new
    /// state to cache.
    async fn apply_node(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        node: &NodeInfo,
        batch: &BTreeMap<(Uuid, u64), Incoming>,
    ) -> Result<Option<Cached>, IngestError> {
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO sync_node_state (node_id) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .await?,
            &[&node.node_id],
        )
        .await?;
        let row = tx
            .query_one(
                // Not the snapshot: it is read only when the cached state cannot be used. (Read
                // with every batch it made each batch carry the whole saved state, megabytes
                // once a node has many players: why a catch-up used to ingest slower than the
                // steady state.)
                &tx.prepare_cached(
                    "SELECT applied_seq, state_seq FROM sync_node_state \
                 WHERE node_id = $1 FOR UPDATE",
                )
                .await?,
                &[&node.node_id],
            )
            .await?;
        let applied_seq: i64 = row.get(0);
        let state_seq: i64 = row.get(1);
        let in_batch = |seq: i64| {
            u64::try_from(seq)
                .ok()
                .and_then(|s| batch.get(&(node.node_id, s)))
        };
        if in_batch(applied_seq + 1).is_none() {
            let next_stored = tx
                .query_opt(
                    &tx.prepare_cached("SELECT 1 FROM sync_events WHERE node_id = $1 AND seq = $2")
                        .await?,
                    &[&node.node_id, &(applied_seq + 1)],
                )
                .await?;
            if next_stored.is_none() {
                // The next event has not arrived yet: the projections wait for it.
                return Ok(None);
            }
        }
        let cached = self
            .states
            .lock()
            .ok()
            .and_then(|mut s| s.remove(&node.node_id))
            .filter(|c| c.applied_seq == applied_seq);
        let mut state = match cached {
            Some(c) => c.state,
            None => {
                RELOADS_TOTAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let snapshot: Option<serde_json::Value> = tx
                    .query_one(
                        "SELECT state FROM sync_node_state WHERE node_id = $1",
                        &[&node.node_id],
                    )
                    .await?
                    .get(0);
                let mut state = snapshot
                    .and_then(|s| serde_json::from_value::<VenueState>(s).ok())
                    .unwrap_or_default();
                let replay = tx
                    .query(
                        &tx.prepare_cached(
                            "SELECT body FROM sync_events WHERE node_id = $1 AND seq > $2 \
                         AND seq <= $3 ORDER BY seq",
                        )
                        .await?,
                        &[&node.node_id, &state_seq, &applied_seq],
                    )
                    .await?;
                for row in replay {
                    if let Ok(event) = serde_json::from_value(row.get(0)) {
                        pvm_core::apply(&mut state, &event);
                    }
                }
                state
            }
        };
        let mut changes = Changes::default();
        let mut next = applied_seq + 1;
        // The batch's own events, already decoded: no need to read them back.
        while let Some(incoming) = in_batch(next) {
            changes.fold(&mut state, next, &incoming.up.event);
            next += 1;
        }
        // Then what was stored ahead of a gap this batch closed, page by page (after a long
        // outage the run can be the node's whole backlog).
        loop {
            let page = tx
                .query(
                    &tx.prepare_cached(
                        "SELECT seq, body FROM sync_events WHERE node_id = $1 AND seq >= $2 \
                     ORDER BY seq LIMIT $3",
                    )
                    .await?,
                    &[&node.node_id, &next, &RUN_PAGE],
                )
                .await?;
            let full = page.len() as i64 == RUN_PAGE;
            let mut gap = false;
            for row in page {
                let seq: i64 = row.get(0);
                if seq != next {
                    gap = true;
                    break;
                }
                match serde_json::from_value::<pvm_core::Event>(row.get(1)) {
                    Ok(event) => changes.fold(&mut state, seq, &event),
                    // Stored only after it parsed, so this is a body from another build:
                    // counted as applied, as the node did.
                    Err(e) => {
                        tracing::warn!(node = %node.node_id, seq, error = %e, "unreadable stored event")
                    }
                }
                next += 1;
            }
            if gap || !full {
                break;
            }
        }
        let run_len = next - 1 - applied_seq;
        let new_applied = applied_seq + run_len;
        projections::write(tx, node, new_applied, &state, &changes).await?;
        if new_applied - state_seq >= self.config.snapshot_every {
            let snapshot = serde_json::to_value(&state).unwrap_or(serde_json::Value::Null);
            tx.execute(
                &tx.prepare_cached(
                    "UPDATE sync_node_state SET applied_seq = $2, state_seq = $2, state = $3, \
                 updated_at = now() WHERE node_id = $1",
                )
                .await?,
                &[&node.node_id, &new_applied, &snapshot],
            )
            .await?;
        } else {
            tx.execute(
                &tx.prepare_cached(
                    "UPDATE sync_node_state SET applied_seq = $2, updated_at = now() \
                 WHERE node_id = $1",
                )
                .await?,
                &[&node.node_id, &new_applied],
            )
            .await?;
        }
        Ok(Some(Cached {
            applied_seq: new_applied,
            state,
        }))
    }

    /// Pulls, stores and acknowledges until the task is dropped. Every await point is a
    /// safe place to stop: an uncommitted transaction rolls back, a committed but
    /// unacknowledged batch is redelivered and stored as a no-op.
    ///
    /// Three stages run concurrently, so the PostgreSQL commit of one batch overlaps the
    /// pull of the next and the acknowledgements of the previous: pulling, storing (one
    /// batch at a time, in delivery order) and acknowledging. A batch is acknowledged only
    /// after its own commit; a batch whose commit fails is handed back to JetStream
    /// (`nak`) while later batches go on, which is safe because projections only advance
    /// through a gap-free run: the later events wait in `sync_events` for the redelivery.
    pub async fn run(self) {
        let (to_store, mut fetched) = tokio::sync::mpsc::channel::<Vec<jetstream::Message>>(1);
        let (to_ack, mut stored) = tokio::sync::mpsc::channel::<StoredBatch>(4);
        let this = &self;
        let pull = async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match this.next_batch().await {
                    Ok(batch) => {
                        backoff = Duration::from_millis(100);
                        if to_store.send(batch).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ingest pull failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        };
        let store = async move {
            let mut backoff = Duration::from_millis(100);
            while let Some(batch) = fetched.recv().await {
                match this.store_with_progress(batch).await {
                    Ok(done) => {
                        backoff = Duration::from_millis(100);
                        if to_ack.send(done).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ingest failed; unacknowledged messages will be redelivered");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        };
        let acknowledge = async move {
            while let Some(done) = stored.recv().await {
                if let Err(e) = done.acknowledge().await {
                    tracing::warn!(error = %e, "ack failed; the batch will be redelivered");
                }
            }
        };
        tokio::join!(pull, store, acknowledge);
    }

    /// [`Self::store_with_retry`], telling JetStream the batch is still being worked on
    /// every third of `ack_wait`: the ack wait can then be short (a crashed instance's
    /// batch goes to another one within seconds) without a slow batch (a cold reload of a
    /// large node) being redelivered while it is being stored.
    pub async fn store_with_progress(
        &self,
        batch: Vec<jetstream::Message>,
    ) -> Result<StoredBatch, IngestError> {
        let every = (self.config.ack_wait / 3).max(Duration::from_millis(100));
        let progress = async {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                for message in &batch {
                    // Lost progress only means an earlier redelivery, which stores nothing.
                    let _ = message.ack_with(AckKind::Progress).await;
                }
            }
        };
        let outcome = tokio::select! {
            r = self.store_with_retry(&batch) => r,
            _ = progress => Err(IngestError::Nats("in-progress ticker ended".into())),
        };
        outcome.map(|(stored_events, dead_at)| StoredBatch::split(batch, stored_events, &dead_at))
    }

    /// Stores a batch, retrying a transaction PostgreSQL aborted (a deadlock between two
    /// instances storing the same redelivered events is resolved by aborting one). A batch
    /// that still fails is handed back to JetStream for redelivery after a pause.
    async fn store_with_retry(
        &self,
        batch: &[jetstream::Message],
    ) -> Result<(usize, Vec<usize>), IngestError> {
        let mut attempt = 0;
        loop {
            match self.commit(batch).await {
                Ok(done) => return Ok(done),
                Err(IngestError::Db(e)) if attempt < 3 && is_retryable(&e) => {
                    attempt += 1;
                    tracing::info!(error = %e, attempt, "retrying ingest transaction");
                }
                Err(e) => {
                    for message in batch {
                        let _ = message
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                            .await;
                    }
                    return Err(e);
                }
            }
        }
    }
}

fn is_retryable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// Writes the batch's events with a binary `COPY`. Unlike the insert below, it checks no
/// conflict ahead of each row (no speculative insertion) and PostgreSQL writes the rows a
/// page at a time: measured, the cheapest way in for events seen for the first time. Any
/// event already stored fails it with a unique violation (see [`Ingestor::commit`]).
async fn copy_events(
    tx: &deadpool_postgres::Transaction<'_>,
    nodes: &HashMap<Uuid, NodeInfo>,
    events: &BTreeMap<(Uuid, u64), Incoming>,
) -> Result<(), tokio_postgres::Error> {
    use tokio_postgres::types::{Json, Type};
    let sink = tx
        .copy_in(
            "COPY sync_events (id, node_id, venue_id, tenant_id, seq, type, at, body) \
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(
        sink,
        &[
            Type::UUID,
            Type::UUID,
            Type::UUID,
            Type::UUID,
            Type::INT8,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::JSONB,
        ],
    );
    let mut writer = std::pin::pin!(writer);
    for ((node, _), incoming) in events {
        let Some(info) = nodes.get(node) else {
            continue;
        };
        let seq = i64::try_from(incoming.up.seq).unwrap_or(i64::MAX);
        let at = chrono::DateTime::from_timestamp_millis(incoming.up.event.at.as_millis())
            .unwrap_or_default();
        writer
            .as_mut()
            .write(&[
                &incoming.up.event.id.0,
                &info.node_id,
                &info.venue_id,
                &info.tenant_id,
                &seq,
                &incoming.up.event.kind(),
                &at,
                &Json(&*incoming.body),
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Inserts the batch's events in one statement; returns how many it actually inserted (the
/// others were there already, or collide with a different stored event). Only the count
/// comes back: returning every inserted id cost a row per event on the wire and a hash set
/// in the cloud, for the rare batch that holds a redelivery.
async fn insert_events(
    tx: &deadpool_postgres::Transaction<'_>,
    nodes: &HashMap<Uuid, NodeInfo>,
    events: &BTreeMap<(Uuid, u64), Incoming>,
) -> Result<u64, tokio_postgres::Error> {
    let mut ids = Vec::with_capacity(events.len());
    let mut node_ids = Vec::with_capacity(events.len());
    let mut venue_ids = Vec::with_capacity(events.len());
    let mut tenant_ids = Vec::with_capacity(events.len());
    let mut seqs = Vec::with_capacity(events.len());
    let mut kinds = Vec::with_capacity(events.len());
    let mut ats = Vec::with_capacity(events.len());
    let mut bodies = Vec::with_capacity(events.len());
    for ((node, _), incoming) in events {
        let Some(info) = nodes.get(node) else {
            continue;
        };
        ids.push(incoming.up.event.id.0);
        node_ids.push(info.node_id);
        venue_ids.push(info.venue_id);
        tenant_ids.push(info.tenant_id);
        seqs.push(i64::try_from(incoming.up.seq).unwrap_or(i64::MAX));
        kinds.push(incoming.up.event.kind());
        ats.push(
            chrono::DateTime::from_timestamp_millis(incoming.up.event.at.as_millis())
                .unwrap_or_default(),
        );
        bodies.push(incoming.body.get());
    }
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO sync_events (id, node_id, venue_id, tenant_id, seq, type, at, body) \
         SELECT id, node_id, venue_id, tenant_id, seq, type, at, body::jsonb \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int8[], \
           $6::text[], $7::timestamptz[], $8::text[]) \
           AS e(id, node_id, venue_id, tenant_id, seq, type, at, body) \
         ON CONFLICT DO NOTHING",
        )
        .await?,
        &[
            &ids,
            &node_ids,
            &venue_ids,
            &tenant_ids,
            &seqs,
            &kinds,
            &ats,
            &bodies,
        ],
    )
    .await
}

/// Of the batch's events, the ones that are not simply stored (by this transaction or an
/// earlier one): their `(node, seq)` holds another event, or their id is stored under
/// another `(node, seq)`. Returns each with the stored event's id and why it is rejected.
/// Run only when the insert stored fewer events than the batch holds.
async fn conflicting(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &BTreeMap<(Uuid, u64), Incoming>,
) -> Result<Vec<((Uuid, u64), Option<Uuid>, &'static str)>, tokio_postgres::Error> {
    let mut nodes = Vec::new();
    let mut seqs = Vec::new();
    let mut ids = Vec::new();
    for ((node, seq), incoming) in events {
        nodes.push(*node);
        seqs.push(i64::try_from(*seq).unwrap_or(i64::MAX));
        ids.push(incoming.up.event.id.0);
    }
    let rows = tx
        .query(
            &tx.prepare_cached(
                "SELECT k.node_id, k.seq, by_seq.id, by_id.node_id, by_id.seq \
             FROM UNNEST($1::uuid[], $2::int8[], $3::uuid[]) AS k(node_id, seq, id) \
             LEFT JOIN sync_events by_seq ON by_seq.node_id = k.node_id AND by_seq.seq = k.seq \
             LEFT JOIN sync_events by_id ON by_id.id = k.id",
            )
            .await?,
            &[&nodes, &seqs, &ids],
        )
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let node: Uuid = row.get(0);
        let seq: i64 = row.get(1);
        let at_seq: Option<Uuid> = row.get(2);
        let id_node: Option<Uuid> = row.get(3);
        let id_seq: Option<i64> = row.get(4);
        let Some(incoming) = u64::try_from(seq).ok().and_then(|s| events.get(&(node, s))) else {
            continue;
        };
        let id = incoming.up.event.id.0;
        if at_seq == Some(id) && id_node == Some(node) && id_seq == Some(seq) {
            continue; // already stored: a redelivery or a re-publish
        }
        let key = (node, incoming.up.seq);
        match at_seq {
            Some(other) if other != id => {
                out.push((key, Some(other), "sequence already holds another event"))
            }
            _ => out.push((
                key,
                Some(id),
                "event id already stored under another sequence",
            )),
        }
    }
    Ok(out)
}

/// A readable event that collides with a different stored event.
struct Rejected {
    incoming: Incoming,
    existing: Option<Uuid>,
    reason: &'static str,
}

async fn record_rejected(
    tx: &deadpool_postgres::Transaction<'_>,
    rejected: &[Rejected],
) -> Result<(), tokio_postgres::Error> {
    let nodes: Vec<Uuid> = rejected.iter().map(|r| r.incoming.up.node_id).collect();
    let seqs: Vec<i64> = rejected
        .iter()
        .map(|r| i64::try_from(r.incoming.up.seq).unwrap_or(i64::MAX))
        .collect();
    let ids: Vec<Uuid> = rejected.iter().map(|r| r.incoming.up.event.id.0).collect();
    let existing: Vec<Option<Uuid>> = rejected.iter().map(|r| r.existing).collect();
    let reasons: Vec<&str> = rejected.iter().map(|r| r.reason).collect();
    let bodies: Vec<&str> = rejected.iter().map(|r| r.incoming.body.get()).collect();
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO sync_rejected_events (node_id, seq, event_id, existing_event_id, reason, \
           body) \
         SELECT node_id, seq, event_id, existing, reason, body::jsonb \
         FROM UNNEST($1::uuid[], $2::int8[], $3::uuid[], $4::uuid[], $5::text[], \
           $6::text[]) AS r(node_id, seq, event_id, existing, reason, body) \
         ON CONFLICT (node_id, seq, event_id) DO NOTHING",
        )
        .await?,
        &[&nodes, &seqs, &ids, &existing, &reasons, &bodies],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_events_subject_names_a_node() {
        let node = Uuid::from_u128(9);
        assert_eq!(
            subject_node(&pvm_sync::subjects::up_events(node)),
            Some(node)
        );
        assert_eq!(subject_node(&pvm_sync::subjects::up_heartbeat(node)), None);
        assert_eq!(subject_node("pvm.up.not-a-uuid.events"), None);
    }
}
