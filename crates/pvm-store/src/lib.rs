//! pvm-store: the node's durable storage — the append-only event log in SQLite, snapshots,
//! versioned migrations, sync cursors and a little node metadata.
//!
//! It does not know the domain: events arrive already serialized (JSON bodies) and leave
//! the same way. What it guarantees:
//! - an acknowledged append is on disk (`journal_mode=WAL`, `synchronous=FULL`), and the
//!   events of one command are all there or none are;
//! - the per-node sequence numbers are contiguous from 1;
//! - it never writes into a file that is not a PVM event store, or into a damaged one.

pub mod accounts;
mod error;
mod schema;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use error::{SnapshotBodyError, StoreError};
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use sync::AppliedDown;

/// How many snapshots of each schema version are kept; older ones are pruned on save.
pub const SNAPSHOTS_KEPT: usize = 3;

/// The write-ahead log's bound, in frames (pages, 4 KiB each): SQLite's own checkpoint
/// threshold. Past it the writer finishes the background checkpoint so the log starts over.
pub const WAL_RESET_FRAMES: u64 = 1_000;

/// How long a write waits for another connection (e.g. a backup reader) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps a cached statement's plan across uses.
///
/// The bundled SQLite is built with STAT4, and its planner marks every `column = ?` term as
/// "the plan may depend on this value". `sqlite3_clear_bindings`, which rusqlite calls when a
/// statement goes back into its cache, then expires the statement, so each use of a
/// `prepare_cached` statement parsed and planned its SQL again: a fifth of the node's CPU per
/// command went into re-preparing the session lookup. Our queries are small lookups by key
/// whose best plan never depends on the values, so the planner's stability guarantee (one
/// plan per SQL text) costs nothing and keeps the prepared statements prepared.
pub(crate) fn keep_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map(|_| ())
}

/// The 16 bytes every SQLite database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// SQLITE_CONSTRAINT_UNIQUE: the only constraint an insert into `events` can break in
/// practice is the unique event id.
const SQLITE_CONSTRAINT_UNIQUE: std::ffi::c_int = 2067;

const INSERT_EVENT: &str =
    "INSERT INTO events (id, stream, kind, at_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)";

/// An event to append; the store assigns its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Globally unique event id (UUIDv7); appending the same id twice is refused.
    pub id: Uuid,
    /// The aggregate the event belongs to (e.g. a tournament).
    pub stream: String,
    /// The event type name.
    pub kind: String,
    /// Wall time of the event, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The serialized event, JSON.
    pub body: String,
}

/// An event as stored, with its per-node sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Per-node sequence number, contiguous from 1.
    pub seq: u64,
    /// Globally unique event id.
    pub id: Uuid,
    /// The aggregate the event belongs to.
    pub stream: String,
    /// The event type name.
    pub kind: String,
    /// Wall time of the event, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The serialized event, JSON.
    pub body: String,
}

/// A saved state, valid as of event `seq`, in the serialization format `schema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last event included in the state.
    pub seq: u64,
    /// Version of the state's serialization format.
    pub schema: u32,
    /// When the snapshot was saved, milliseconds since the Unix epoch.
    pub taken_at_ms: i64,
    /// As stored: see [`SnapshotBody`]. Read it through [`Snapshot::state`].
    body: Vec<u8>,
}

impl Snapshot {
    /// The serialized state, decompressed. Snapshots saved before they were compressed are
    /// plain JSON and come back as they are.
    pub fn state(&self) -> Result<std::borrow::Cow<'_, [u8]>, SnapshotBodyError> {
        if !self.body.starts_with(&ZSTD_MAGIC) {
            return Ok(std::borrow::Cow::Borrowed(&self.body));
        }
        zstd::stream::decode_all(self.body.as_slice())
            .map(std::borrow::Cow::Owned)
            .map_err(|e| SnapshotBodyError {
                doing: "decompressed",
                detail: e.to_string(),
            })
    }

    /// The size of the body as stored, compressed or not.
    pub fn stored_len(&self) -> usize {
        self.body.len()
    }
}

/// Every zstd frame starts with these bytes; a JSON document never does.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// A snapshot body ready to be saved: the serialized state, compressed.
///
/// A venue with a year of history is ~36 MB of JSON; zstd at its fastest level makes that
/// ~3 MB in ~0.1 s. Saving a snapshot shares the writer's connection, so every command waits
/// for it: compressed, the save writes (and syncs, and later checkpoints) a tenth of the
/// bytes. Compressing is left to the caller's thread, which the node keeps off its writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotBody {
    compressed: Vec<u8>,
    json_len: usize,
}

impl SnapshotBody {
    /// The fastest level: on a venue's JSON, level 3 came out no smaller (3.37 MB against
    /// 3.33 from 36 MB) and took half again the time.
    const LEVEL: i32 = 1;

    /// Compresses a serialized state.
    pub fn compress(state: &[u8]) -> Result<SnapshotBody, SnapshotBodyError> {
        let compressed =
            zstd::bulk::compress(state, Self::LEVEL).map_err(|e| SnapshotBodyError {
                doing: "compressed",
                detail: e.to_string(),
            })?;
        Ok(SnapshotBody {
            compressed,
            json_len: state.len(),
        })
    }

    /// The size of the serialized state before compression.
    pub fn state_len(&self) -> usize {
        self.json_len
    }

    /// The size that is saved.
    pub fn stored_len(&self) -> usize {
        self.compressed.len()
    }
}

/// The open event store. One per node; it is the single writer.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens the store at `path`, creating it if the file does not exist.
    ///
    /// An existing file is first inspected read-only: a file that is not ours, is damaged,
    /// or comes from a newer version is refused before anything is written to it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if file_exists(path)? {
            let (conn, _) = inspect_existing(path)?;
            quick_check(&conn, path)?;
        } else {
            refuse_orphaned_wal(path)?;
        }
        Store::open_writer(path)
    }

    /// Opens the store at `path` for a quick start: returns at once a read-only connection
    /// (to load the state through) and the opening itself, whose integrity check — the same
    /// `PRAGMA quick_check` as [`Store::open`] — runs meanwhile on its own thread and
    /// connection. On a long log the check and the state's load take about as long as each
    /// other, and a Pi has cores to spare at start.
    ///
    /// Nothing can be written before [`PendingOpen::finish`] has seen the check pass, so a
    /// damaged file is never written to, as with [`Store::open`]. A new file, or one that
    /// needs a migration (which writes), is checked and opened completely before this returns.
    pub fn open_checking(path: &Path) -> Result<(Store, PendingOpen), StoreError> {
        if file_exists(path)? {
            let (conn, version) = inspect_existing(path)?;
            if version == i64::from(SCHEMA_VERSION) {
                let interrupt = conn.get_interrupt_handle();
                let check_path = path.to_path_buf();
                let thread = std::thread::Builder::new()
                    .name("pvm-store-check".into())
                    .spawn(move || quick_check(&conn, &check_path))
                    .map_err(|source| StoreError::Io {
                        path: path.to_path_buf(),
                        doing: "starting the integrity check",
                        source,
                    })?;
                let pending = PendingOpen {
                    path: path.to_path_buf(),
                    state: Some(Pending::Checking { thread, interrupt }),
                };
                let reader = Store::open_reader(path)?;
                return Ok((reader, pending));
            }
        }
        let store = Store::open(path)?;
        let reader = Store::open_reader(path)?;
        let pending = PendingOpen {
            path: path.to_path_buf(),
            state: Some(Pending::Ready(store)),
        };
        Ok((reader, pending))
    }

    /// Opens a file that has passed (or, being new, needs no) inspection for writing.
    fn open_writer(path: &Path) -> Result<Store, StoreError> {
        let sqlite = |doing| move |e| StoreError::from_sqlite(path, doing, e);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(sqlite("opening for writing"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite("setting the busy timeout"))?;
        keep_plans(&conn).map_err(sqlite("keeping query plans"))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sqlite("switching to write-ahead logging"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWriteAheadLog {
                path: path.to_path_buf(),
                mode,
            });
        }
        // FULL: the SD card can lose power at any instant, and an acknowledged command
        // must survive that.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite("setting synchronous=FULL"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sqlite("enabling foreign keys"))?;
        let version = schema::migrate(&mut conn, schema::MIGRATIONS)
            .map_err(sqlite("migrating the schema"))?;
        tracing::debug!(path = %path.display(), version, "event store open");
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// A read-only connection to a store this process has already opened with
    /// [`Store::open`], which inspected and migrated it. The integrity check is not run again:
    /// on a long log it is most of the node's start-up time. Writing through it fails.
    pub fn open_reader(path: &Path) -> Result<Store, StoreError> {
        let sqlite = |doing| move |e| StoreError::from_sqlite(path, doing, e);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(sqlite("opening for reading"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite("setting the busy timeout"))?;
        keep_plans(&conn).map_err(sqlite("keeping query plans"))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Group commit: writes many commands' batches in one transaction (one fsync).
    ///
    /// Each batch is all-or-nothing on its own: the inner result says whether that batch
    /// was recorded (with its sequence numbers) or why it was refused, while the others
    /// still commit. An outer error means nothing of this call was recorded.
    pub fn append_batches(
        &mut self,
        batches: &[Vec<NewEvent>],
    ) -> Result<Vec<Result<Vec<u64>, StoreError>>, StoreError> {
        let path = self.path.as_path();
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::from_sqlite(path, "starting to append events", e))?;
        let mut outcomes = Vec::with_capacity(batches.len());
        for batch in batches {
            outcomes.push(write_batch(&mut tx, path, batch)?);
        }
        tx.commit()
            .map_err(|e| StoreError::from_sqlite(path, "committing appended events", e))?;
        Ok(outcomes)
    }

    /// Appends one command's events, all or nothing; returns their sequence numbers.
    pub fn append(&mut self, batch: &[NewEvent]) -> Result<Vec<u64>, StoreError> {
        let path = self.path.as_path();
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::from_sqlite(path, "starting to append events", e))?;
        let seqs = write_batch(&mut tx, path, batch)??;
        tx.commit()
            .map_err(|e| StoreError::from_sqlite(path, "committing appended events", e))?;
        Ok(seqs)
    }

    /// Up to `limit` events with a sequence number greater than `after_seq`, in order.
    pub fn events_since(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sqlite = |e| StoreError::from_sqlite(&self.path, "reading events", e);
        let Ok(after) = i64::try_from(after_seq) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, id, stream, kind, at_ms, body FROM events
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(sqlite)?;
        let mut rows = stmt.query(params![after, limit]).map_err(sqlite)?;
        let mut events = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite)? {
            let seq: i64 = row.get(0).map_err(sqlite)?;
            let id: Vec<u8> = row.get(1).map_err(sqlite)?;
            let seq = self.stored_seq(seq)?;
            let id = Uuid::from_slice(&id).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("event {seq} has a malformed id: {e}"),
            })?;
            events.push(StoredEvent {
                seq,
                id,
                stream: row.get(2).map_err(sqlite)?,
                kind: row.get(3).map_err(sqlite)?,
                at_ms: row.get(4).map_err(sqlite)?,
                body: row.get(5).map_err(sqlite)?,
            });
        }
        Ok(events)
    }

    /// The sequence number of the last event, 0 when the log is empty.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let seq: i64 = self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |row| {
                row.get(0)
            })
            .map_err(|e| {
                StoreError::from_sqlite(&self.path, "reading the last sequence number", e)
            })?;
        self.stored_seq(seq)
    }

    /// Saves a snapshot of the state as of event `seq` and prunes older snapshots of the
    /// same schema, keeping the newest [`SNAPSHOTS_KEPT`].
    pub fn save_snapshot(
        &mut self,
        seq: u64,
        schema: u32,
        body: &SnapshotBody,
    ) -> Result<(), StoreError> {
        let state = body.compressed.as_slice();
        let seq_sql = self.existing_seq(seq, "save a snapshot")?;
        let taken_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let kept = i64::try_from(SNAPSHOTS_KEPT).unwrap_or(i64::MAX);
        let path = self.path.as_path();
        let sqlite = |e| StoreError::from_sqlite(path, "saving a snapshot", e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        tx.execute(
            "INSERT OR REPLACE INTO snapshots (seq, schema, taken_at_ms, body) VALUES (?1, ?2, ?3, ?4)",
            params![seq_sql, schema, taken_at_ms, state],
        )
        .map_err(sqlite)?;
        tx.execute(
            "DELETE FROM snapshots WHERE schema = ?1 AND seq NOT IN
                 (SELECT seq FROM snapshots WHERE schema = ?1 ORDER BY seq DESC LIMIT ?2)",
            params![schema, kept],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)
    }

    /// The newest snapshot written with serialization format `schema`; snapshots of other
    /// schema versions are ignored (the state must then be rebuilt from the log).
    pub fn latest_snapshot(&self, schema: u32) -> Result<Option<Snapshot>, StoreError> {
        let sqlite = |e| StoreError::from_sqlite(&self.path, "reading the latest snapshot", e);
        let found: Option<(i64, i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT seq, taken_at_ms, body FROM snapshots WHERE schema = ?1
                 ORDER BY seq DESC LIMIT 1",
                params![schema],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(sqlite)?;
        found
            .map(|(seq, taken_at_ms, state)| {
                Ok(Snapshot {
                    seq: self.stored_seq(seq)?,
                    schema,
                    taken_at_ms,
                    body: state,
                })
            })
            .transpose()
    }

    /// The last sequence number acknowledged by the sync target `name`; 0 if never synced.
    pub fn sync_cursor(&self, name: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM sync_cursors WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| StoreError::from_sqlite(&self.path, "reading a sync cursor", e))?;
        seq.map_or(Ok(0), |seq| self.stored_seq(seq))
    }

    /// Records that the sync target `name` has acknowledged every event up to `seq`.
    pub fn set_sync_cursor(&mut self, name: &str, seq: u64) -> Result<(), StoreError> {
        let seq = self.existing_seq(seq, "move the sync cursor")?;
        self.conn
            .execute(
                "INSERT INTO sync_cursors (name, seq) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                params![name, seq],
            )
            .map_err(|e| StoreError::from_sqlite(&self.path, "saving a sync cursor", e))?;
        Ok(())
    }

    /// A node metadata value, if set.
    pub fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| StoreError::from_sqlite(&self.path, "reading node metadata", e))
    }

    /// Sets a node metadata value, replacing any previous one.
    pub fn meta_set(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| StoreError::from_sqlite(&self.path, "saving node metadata", e))?;
        Ok(())
    }

    /// Moves checkpoints (folding the write-ahead log back into the database file) off this
    /// connection onto a thread of its own that runs a passive checkpoint every `every`.
    ///
    /// By default SQLite checkpoints inside whichever commit pushes the log past 1,000 pages,
    /// and that commit then waits for the database file to be written and fsynced too: one
    /// command in a few hundred paid tens of milliseconds. A passive checkpoint never blocks the
    /// writer (it copies only what no transaction is using), so commits stay one WAL fsync.
    /// Stop the returned [`Checkpointer`] before [`Store::close`].
    ///
    /// A passive checkpoint alone does not bound the log under steady load: SQLite starts the
    /// log over only when a write finds it wholly copied, and a commit landing during the pass
    /// leaves it short, so the log keeps growing (measured: past 1,900 frames with a bound of 16
    /// in the test), and every commit appending to a growing file costs the file system more
    /// than one overwriting a reused log. So, once a pass finds the log past
    /// [`WAL_RESET_FRAMES`], [`Checkpointer::reset_wanted`] says so and the writer calls
    /// [`Store::finish_checkpoint`] between two commits.
    pub fn checkpoint_in_background(
        &mut self,
        every: Duration,
    ) -> Result<Checkpointer, StoreError> {
        self.checkpoint_in_background_bounded(every, WAL_RESET_FRAMES)
    }

    /// [`Store::checkpoint_in_background`] with the log's bound, in frames (pages), given.
    pub fn checkpoint_in_background_bounded(
        &mut self,
        every: Duration,
        wal_reset_frames: u64,
    ) -> Result<Checkpointer, StoreError> {
        let path = self.path.clone();
        let sqlite = |doing| {
            let path = path.clone();
            move |e| StoreError::from_sqlite(&path, doing, e)
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(sqlite("opening the checkpoint connection"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite("setting the busy timeout"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite("setting synchronous=FULL"))?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let reset_wanted = Arc::new(AtomicBool::new(false));
        let thread_reset_wanted = reset_wanted.clone();
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("pvm-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    match passive_checkpoint(&conn) {
                        Ok(pass) => {
                            // The pass reports the log as it was when it began: frames
                            // committed during it are not counted, so "all copied" cannot be
                            // trusted here, only on the writer's connection.
                            if !pass.busy && pass.log_frames >= wal_reset_frames {
                                thread_reset_wanted.store(true, Ordering::Release);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(path = %thread_path.display(), error = %e, "background checkpoint failed; will retry");
                        }
                    }
                }
            })
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                doing: "starting the checkpoint thread",
                source,
            })?;
        // Only once the thread runs: a store whose checkpointer failed to start keeps SQLite's own.
        // The size limit trims a log that a burst grew beyond the bound when it is next started
        // over, so the disk it takes stays bounded too; below the limit the file is reused in
        // place, which is what keeps commits cheap.
        let handed_over = self
            .conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .and_then(|()| {
                self.conn.pragma_update(
                    None,
                    "journal_size_limit",
                    i64::try_from(wal_reset_frames.saturating_mul(2 * 4096)).unwrap_or(i64::MAX),
                )
            });
        if let Err(e) = handed_over {
            drop(stop);
            let _ = thread.join();
            return Err(StoreError::from_sqlite(
                &path,
                "handing checkpoints over",
                e,
            ));
        }
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
            reset_wanted,
        })
    }

    /// Copies what the background checkpointer left in the log (the frames committed during
    /// its last pass: few) into the file, from the writer's own connection. Nothing can commit
    /// meanwhile, so the log ends wholly copied and the next commit starts it over from the
    /// beginning. `Ok(false)` when that did not happen (a background pass was running, or a
    /// reader still uses old frames): the checkpointer keeps asking.
    pub fn finish_checkpoint(&mut self) -> Result<bool, StoreError> {
        let pass = passive_checkpoint(&self.conn)
            .map_err(|e| StoreError::from_sqlite(&self.path, "finishing a checkpoint", e))?;
        Ok(!pass.busy && !pass.left_behind())
    }

    /// Folds the write-ahead log back into the database file and closes it, so the file
    /// can be copied on its own (backups, diagnostics).
    pub fn close(self) -> Result<(), StoreError> {
        let path = self.path;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| StoreError::from_sqlite(&path, "checkpointing before close", e))?;
        self.conn
            .close()
            .map_err(|(_, e)| StoreError::from_sqlite(&path, "closing", e))
    }

    /// Checks that `seq` names an event already in the log (or 0, "before the first").
    fn existing_seq(&self, seq: u64, doing: &'static str) -> Result<i64, StoreError> {
        let last_seq = self.last_seq()?;
        if seq > last_seq {
            return Err(StoreError::BeyondLog {
                doing,
                seq,
                last_seq,
            });
        }
        i64::try_from(seq).map_err(|_| StoreError::BeyondLog {
            doing,
            seq,
            last_seq,
        })
    }

    fn stored_seq(&self, seq: i64) -> Result<u64, StoreError> {
        u64::try_from(seq).map_err(|_| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("negative sequence number {seq}"),
        })
    }
}

/// The background checkpoint thread of [`Store::checkpoint_in_background`]; stops on
/// [`Checkpointer::stop`] or when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    reset_wanted: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Whether the last pass found the log past its bound, so the writer
    /// should call [`Store::finish_checkpoint`]; reading it clears it.
    pub fn reset_wanted(&self) -> bool {
        self.reset_wanted.swap(false, Ordering::Acquire)
    }

    /// Stops the thread after the checkpoint it may be running, and closes its connection.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// What one `PRAGMA wal_checkpoint(PASSIVE)` reported.
#[derive(Debug, Clone, Copy)]
struct CheckpointPass {
    /// Another checkpoint was running, so this one did nothing.
    busy: bool,
    log_frames: u64,
    copied_frames: u64,
}

impl CheckpointPass {
    fn left_behind(&self) -> bool {
        !self.busy && self.copied_frames < self.log_frames
    }
}

fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<CheckpointPass> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        let busy: i64 = row.get(0)?;
        let log: i64 = row.get(1)?;
        let copied: i64 = row.get(2)?;
        // -1 when the database is not in write-ahead mode: nothing to report.
        Ok(CheckpointPass {
            busy: busy != 0,
            log_frames: u64::try_from(log).unwrap_or(0),
            copied_frames: u64::try_from(copied).unwrap_or(0),
        })
    })
}

/// A store being opened by [`Store::open_checking`]: its integrity check may still be running.
pub struct PendingOpen {
    path: PathBuf,
    /// `None` only once `finish` has taken it.
    state: Option<Pending>,
}

enum Pending {
    /// Already checked and open for writing.
    Ready(Store),
    Checking {
        thread: std::thread::JoinHandle<Result<(), StoreError>>,
        interrupt: rusqlite::InterruptHandle,
    },
}

impl std::fmt::Debug for PendingOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            Some(Pending::Ready(_)) => "checked",
            Some(Pending::Checking { .. }) => "checking",
            None => "finished",
        };
        f.debug_struct("PendingOpen")
            .field("path", &self.path)
            .field("state", &state)
            .finish()
    }
}

impl PendingOpen {
    /// Waits for the integrity check and, if it passed, opens the store for writing. A
    /// damaged file gives [`StoreError::Corrupt`] and is left as it was.
    pub fn finish(mut self) -> Result<Store, StoreError> {
        match self.state.take() {
            Some(Pending::Ready(store)) => Ok(store),
            Some(Pending::Checking { thread, .. }) => {
                thread.join().map_err(|_| StoreError::Io {
                    path: self.path.clone(),
                    doing: "checking integrity",
                    source: std::io::Error::other("the integrity check stopped unexpectedly"),
                })??;
                Store::open_writer(&self.path)
            }
            None => Store::open(&self.path),
        }
    }
}

impl Drop for PendingOpen {
    /// Given up on (the caller failed before `finish`): the check is interrupted rather than
    /// left reading a large file for nobody.
    fn drop(&mut self) {
        if let Some(Pending::Checking { thread, interrupt }) = self.state.take() {
            interrupt.interrupt();
            let _ = thread.join();
        }
    }
}

/// Writes one command's events inside a savepoint of `tx`.
///
/// The inner result is the batch's own fate. The outer error means the whole transaction
/// is lost (SQLite rolls everything back itself on some errors, such as a full disk), so
/// no batch of it may be reported as recorded.
fn write_batch(
    tx: &mut Transaction<'_>,
    path: &Path,
    batch: &[NewEvent],
) -> Result<Result<Vec<u64>, StoreError>, StoreError> {
    if let Some(refused) = batch.iter().find_map(body_not_json) {
        return Ok(Err(refused));
    }
    let mut savepoint = tx
        .savepoint()
        .map_err(|e| StoreError::from_sqlite(path, "starting a command's batch", e))?;
    let outcome = insert_events(&savepoint, path, batch);
    if outcome.is_err() {
        if savepoint.is_autocommit() {
            return outcome.map(Ok);
        }
        savepoint
            .rollback()
            .map_err(|e| StoreError::from_sqlite(path, "undoing a refused batch", e))?;
    }
    savepoint
        .commit()
        .map_err(|e| StoreError::from_sqlite(path, "finishing a command's batch", e))?;
    Ok(outcome)
}

fn insert_events(
    conn: &Connection,
    path: &Path,
    batch: &[NewEvent],
) -> Result<Vec<u64>, StoreError> {
    let mut stmt = conn
        .prepare_cached(INSERT_EVENT)
        .map_err(|e| StoreError::from_sqlite(path, "appending events", e))?;
    let mut seqs = Vec::with_capacity(batch.len());
    for event in batch {
        stmt.execute(params![
            event.id.as_bytes().as_slice(),
            event.stream,
            event.kind,
            event.at_ms,
            event.body
        ])
        .map_err(|e| match &e {
            rusqlite::Error::SqliteFailure(failure, _)
                if failure.extended_code == SQLITE_CONSTRAINT_UNIQUE =>
            {
                StoreError::DuplicateEvent { id: event.id }
            }
            _ => StoreError::from_sqlite(path, "appending events", e),
        })?;
        let seq = u64::try_from(conn.last_insert_rowid()).map_err(|_| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "SQLite assigned a negative sequence number".to_owned(),
        })?;
        seqs.push(seq);
    }
    Ok(seqs)
}

fn body_not_json(event: &NewEvent) -> Option<StoreError> {
    serde_json::from_str::<serde::de::IgnoredAny>(&event.body)
        .err()
        .map(|e| StoreError::BodyNotJson {
            id: event.id,
            detail: e.to_string(),
        })
}

fn file_exists(path: &Path) -> Result<bool, StoreError> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            doing: "checking whether the store exists",
            source,
        }),
    }
}

/// A write-ahead log whose database file is gone holds committed events that SQLite would
/// replay onto a fresh, empty file; refuse rather than guess, so someone can look at it.
fn refuse_orphaned_wal(path: &Path) -> Result<(), StoreError> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    match std::fs::metadata(&wal) {
        Ok(meta) if meta.len() > 0 => Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "the database file is missing but its write-ahead log {} is not",
                wal.display()
            ),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: wal,
            doing: "checking for a leftover write-ahead log",
            source,
        }),
    }
}

/// Decides, without writing anything, whether an existing file may be opened for writing:
/// it must be ours, or an empty SQLite file, and not from a newer version. Returns the
/// read-only connection it used and the file's schema version; the integrity check is
/// separate ([`quick_check`]) so that it can run beside other work.
fn inspect_existing(path: &Path) -> Result<(Connection, i64), StoreError> {
    let foreign = || StoreError::Foreign {
        path: path.to_path_buf(),
    };
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        doing: "reading the file header",
        source,
    };
    // SQLite itself treats an empty file as a new database; anything else must at least
    // carry the SQLite header before we let SQLite near it.
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > 0 {
        std::io::Read::read_exact(&mut file, &mut header).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                foreign()
            } else {
                io(e)
            }
        })?;
        if &header != SQLITE_MAGIC {
            return Err(foreign());
        }
    }
    drop(file);

    let sqlite = |doing| move |e| StoreError::from_sqlite(path, doing, e);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite("opening read-only to inspect it"))?;
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(sqlite("reading the application id"))?;
    if application_id != APPLICATION_ID {
        // A crash between creating the file and the first migration leaves an empty
        // SQLite file without our id; it holds nothing, so it is safe to adopt.
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(sqlite("listing the schema"))?;
        if application_id != 0 || objects != 0 {
            return Err(foreign());
        }
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite("reading the schema version"))?;
    if version > i64::from(SCHEMA_VERSION) || version < 0 {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: u32::try_from(version).unwrap_or(u32::MAX),
            known: SCHEMA_VERSION,
        });
    }
    Ok((conn, version))
}

/// Runs `PRAGMA quick_check` on `conn`: every page, index and constraint SQLite can check
/// without comparing indexes against their tables. On a long log this is most of a start.
fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let sqlite = |e| StoreError::from_sqlite(path, "checking integrity", e);
    let mut stmt = conn.prepare("PRAGMA quick_check").map_err(sqlite)?;
    let findings = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(sqlite)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sqlite)?;
    if findings != ["ok"] {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: findings
                .iter()
                .take(3)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize, body_len: usize) -> NewEvent {
        NewEvent {
            id: Uuid::now_v7(),
            stream: "tournament".to_owned(),
            kind: "chips_counted".to_owned(),
            at_ms: 1_700_000_000_000,
            body: format!(r#"{{"n":{n},"pad":"{}"}}"#, "x".repeat(body_len)),
        }
    }

    fn page_count(store: &Store) -> i64 {
        store
            .conn
            .pragma_query_value(None, "page_count", |row| row.get(0))
            .unwrap()
    }

    /// Caps the file at its current size plus `spare` pages; SQLite then reports
    /// SQLITE_FULL exactly as it does when the disk itself is full.
    fn cap_file(store: &Store, spare: i64) {
        let cap = page_count(store) + spare;
        store
            .conn
            .pragma_update(None, "max_page_count", cap)
            .unwrap();
    }

    #[test]
    fn a_reader_sees_what_the_writer_commits_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pvm.db");
        let mut writer = Store::open(&path).unwrap();
        let mut reader = Store::open_reader(&path).unwrap();
        writer.append(&[event(0, 10)]).unwrap();
        writer.append(&[event(1, 10), event(2, 10)]).unwrap();
        assert_eq!(reader.events_since(0, 100).unwrap().len(), 3);
        assert_eq!(reader.last_seq().unwrap(), 3);
        assert!(reader.append(&[event(3, 10)]).is_err());
        assert_eq!(writer.last_seq().unwrap(), 3);
    }

    #[test]
    fn a_full_disk_fails_the_append_cleanly_and_the_store_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pvm.db");
        let mut store = Store::open(&path).unwrap();
        store.append(&[event(0, 10), event(1, 10)]).unwrap();
        cap_file(&store, 2);

        // Each command is larger than the remaining space, so it cannot fit.
        let big: Vec<NewEvent> = (0..20).map(|n| event(n, 2_000)).collect();
        let refused = store.append(&big);
        assert!(
            matches!(refused, Err(StoreError::DiskFull { ref path, .. }) if path.ends_with("pvm.db")),
            "expected a disk-full error, got {refused:?}"
        );
        assert!(refused.unwrap_err().to_string().contains("full"));

        // Nothing half-written, and reads still work.
        assert_eq!(store.last_seq().unwrap(), 2);
        assert_eq!(store.events_since(0, 100).unwrap().len(), 2);

        // Space is freed: the very same command now goes through, with contiguous seqs.
        cap_file(&store, 10_000);
        assert_eq!(store.append(&big).unwrap(), (3..=22).collect::<Vec<u64>>());
        store.close().unwrap();

        let reopened = Store::open(&path).unwrap();
        assert_eq!(reopened.last_seq().unwrap(), 22);
    }

    #[test]
    fn a_full_disk_during_a_group_commit_never_reports_a_lost_batch_as_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pvm.db");
        let mut store = Store::open(&path).unwrap();
        store.append(&[event(0, 10)]).unwrap();
        cap_file(&store, 20);

        let batches: Vec<Vec<NewEvent>> = (0..30)
            .map(|n| vec![event(n, 1_500), event(n, 1_500)])
            .collect();
        // SQLite may roll back the whole transaction on SQLITE_FULL (it does today), or only
        // the failing statement; either way the report must match what is on disk.
        let recorded: usize = match store.append_batches(&batches) {
            Ok(outcomes) => {
                assert!(
                    outcomes
                        .iter()
                        .any(|o| matches!(o, Err(StoreError::DiskFull { .. }))),
                    "the space should run out part-way"
                );
                outcomes
                    .iter()
                    .filter_map(|o| o.as_ref().ok())
                    .map(Vec::len)
                    .sum()
            }
            Err(StoreError::DiskFull { .. }) => 0,
            Err(other) => panic!("expected a disk-full error, got {other:?}"),
        };
        // Exactly what was reported as recorded is in the log, nothing more.
        assert_eq!(store.last_seq().unwrap(), 1 + recorded as u64);

        cap_file(&store, 10_000);
        let fresh: Vec<Vec<NewEvent>> = (0..2).map(|n| vec![event(n, 1_500)]).collect();
        let outcomes = store.append_batches(&fresh).unwrap();
        assert!(outcomes.iter().all(Result::is_ok));
        let seqs: Vec<u64> = store
            .events_since(0, usize::MAX)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    }
}
