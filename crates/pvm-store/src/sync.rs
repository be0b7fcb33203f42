//! Cloud sync bookkeeping: a second read-write connection for the sync task, the ledger of
//! applied down-messages, and the cloud ↔ local player map.
//!
//! The sync task must never wait on the engine's writer connection (nor the writer on it for
//! long), so it reads the log and records its own progress through a connection of its own.
//! It never appends events: those still go through the engine only.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use uuid::Uuid;

use crate::{Store, StoreError, BUSY_TIMEOUT};

/// What happened to one down-message, as recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedDown {
    /// The message kind (`resync`, `reboot`, …).
    pub kind: String,
    /// What the node did: `applied`, or why it refused.
    pub outcome: String,
    /// When it was applied, milliseconds since the Unix epoch.
    pub applied_at_ms: i64,
}

impl Store {
    /// A read-write connection to a store this process has already opened (and so inspected
    /// and migrated) with [`Store::open`], for bookkeeping outside the event log: sync
    /// cursors, the down-message ledger, the player map. It must not be used to append events.
    pub fn open_companion(path: &Path) -> Result<Store, StoreError> {
        let sqlite = |doing| move |e| StoreError::from_sqlite(path, doing, e);
        // No CREATE flag: the file must already be the one the engine opened.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(sqlite("opening a companion connection"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite("setting the busy timeout"))?;
        crate::keep_plans(&conn).map_err(sqlite("keeping query plans"))?;
        // synchronous is per connection: FULL here too, so a recorded cursor or ledger entry
        // survives a power cut like the events do.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite("setting synchronous=FULL"))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite("reading the schema version"))?;
        if version != i64::from(crate::SCHEMA_VERSION) {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "a companion connection needs schema version {}, the file has {version} \
                     (open it with Store::open first)",
                    crate::SCHEMA_VERSION
                ),
            });
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The ledger entry of down-message `id`, if it was applied (or refused) before.
    pub fn applied_down_message(&self, id: Uuid) -> Result<Option<AppliedDown>, StoreError> {
        self.conn
            .query_row(
                "SELECT kind, outcome, applied_at_ms FROM sync_down_applied WHERE id = ?1",
                params![id.as_bytes().as_slice()],
                |row| {
                    Ok(AppliedDown {
                        kind: row.get(0)?,
                        outcome: row.get(1)?,
                        applied_at_ms: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| StoreError::from_sqlite(&self.path, "reading the down-message ledger", e))
    }

    /// Records that down-message `id` was dealt with. Recording it twice keeps the first.
    pub fn record_down_message(
        &mut self,
        id: Uuid,
        applied: &AppliedDown,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO sync_down_applied (id, kind, outcome, applied_at_ms)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
                params![
                    id.as_bytes().as_slice(),
                    applied.kind,
                    applied.outcome,
                    applied.applied_at_ms
                ],
            )
            .map_err(|e| {
                StoreError::from_sqlite(&self.path, "recording an applied down-message", e)
            })?;
        Ok(())
    }

    /// The local player standing for cloud player `cloud_id`, if one was mapped.
    pub fn local_player_of(&self, cloud_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        let found: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT local_id FROM sync_players WHERE cloud_id = ?1",
                params![cloud_id.as_bytes().as_slice()],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| StoreError::from_sqlite(&self.path, "reading the player map", e))?;
        found.map(|bytes| self.uuid_from(&bytes)).transpose()
    }

    /// Every cloud → local player pair.
    pub fn player_map(&self) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let sqlite = |e| StoreError::from_sqlite(&self.path, "reading the player map", e);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT cloud_id, local_id FROM sync_players ORDER BY cloud_id")
            .map_err(sqlite)?;
        let mut rows = stmt.query([]).map_err(sqlite)?;
        let mut pairs = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite)? {
            let cloud: Vec<u8> = row.get(0).map_err(sqlite)?;
            let local: Vec<u8> = row.get(1).map_err(sqlite)?;
            pairs.push((self.uuid_from(&cloud)?, self.uuid_from(&local)?));
        }
        Ok(pairs)
    }

    /// Maps cloud player `cloud_id` to local player `local_id`, replacing an older mapping
    /// of the same cloud player.
    pub fn map_player(&mut self, cloud_id: Uuid, local_id: Uuid) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO sync_players (cloud_id, local_id) VALUES (?1, ?2)
                 ON CONFLICT (cloud_id) DO UPDATE SET local_id = excluded.local_id",
                params![
                    cloud_id.as_bytes().as_slice(),
                    local_id.as_bytes().as_slice()
                ],
            )
            .map_err(|e| StoreError::from_sqlite(&self.path, "saving the player map", e))?;
        Ok(())
    }

    fn uuid_from(&self, bytes: &[u8]) -> Result<Uuid, StoreError> {
        Uuid::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("malformed id in the sync tables: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewEvent;

    fn event() -> NewEvent {
        NewEvent {
            id: Uuid::now_v7(),
            stream: "venue".to_owned(),
            kind: "k".to_owned(),
            at_ms: 1,
            body: "{}".to_owned(),
        }
    }

    #[test]
    fn a_companion_moves_the_cursor_while_the_writer_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pvm.db");
        let mut writer = Store::open(&path).unwrap();
        let mut companion = Store::open_companion(&path).unwrap();
        writer.append(&[event(), event()]).unwrap();
        assert_eq!(companion.events_since(0, 10).unwrap().len(), 2);
        companion.set_sync_cursor("cloud", 2).unwrap();
        writer.append(&[event()]).unwrap();
        assert_eq!(writer.sync_cursor("cloud").unwrap(), 2);
        assert_eq!(companion.last_seq().unwrap(), 3);
    }

    #[test]
    fn a_companion_refuses_a_file_the_engine_has_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pvm.db");
        assert!(Store::open_companion(&path).is_err());
        assert!(!path.exists(), "the companion must not create the file");
    }

    #[test]
    fn the_down_ledger_keeps_the_first_outcome_of_each_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pvm.db");
        let _writer = Store::open(&path).unwrap();
        let mut store = Store::open_companion(&path).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(store.applied_down_message(id).unwrap(), None);
        let first = AppliedDown {
            kind: "reboot".into(),
            outcome: "refused: a clock runs".into(),
            applied_at_ms: 5,
        };
        store.record_down_message(id, &first).unwrap();
        let again = AppliedDown {
            outcome: "applied".into(),
            ..first.clone()
        };
        store.record_down_message(id, &again).unwrap();
        assert_eq!(store.applied_down_message(id).unwrap(), Some(first));
    }

    #[test]
    fn the_player_map_replaces_a_cloud_players_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pvm.db");
        let _writer = Store::open(&path).unwrap();
        let mut store = Store::open_companion(&path).unwrap();
        let (cloud, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(store.local_player_of(cloud).unwrap(), None);
        store.map_player(cloud, a).unwrap();
        store.map_player(cloud, b).unwrap();
        assert_eq!(store.local_player_of(cloud).unwrap(), Some(b));
        assert_eq!(store.player_map().unwrap(), vec![(cloud, b)]);
    }
}
