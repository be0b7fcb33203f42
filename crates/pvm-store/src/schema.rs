//! File identity and versioned migrations.
//!
//! `PRAGMA application_id` marks a file as ours so that a mistyped path can never make us
//! write into somebody else's database; `PRAGMA user_version` counts the migrations applied.

use rusqlite::Connection;

/// The value of `PRAGMA application_id` in every PVM event store ("PVM1" in ASCII).
pub const APPLICATION_ID: i32 = 0x5056_4D31;

/// Migration SQL, applied in order. Migration `n` (1-based) brings the file to
/// `user_version = n`. Never edit a released entry: append a new one instead.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the event log, snapshots, sync cursors and node metadata.
    //
    // `seq INTEGER PRIMARY KEY` is the rowid, so a range scan on it needs no extra index,
    // and without AUTOINCREMENT a rolled-back batch gives its numbers back: the sequence
    // stays contiguous. The triggers make "append-only" a property of the file, not just
    // of this code.
    "CREATE TABLE events (
         seq   INTEGER PRIMARY KEY,
         id    BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
         stream TEXT   NOT NULL,
         kind  TEXT    NOT NULL,
         at_ms INTEGER NOT NULL,
         body  TEXT    NOT NULL
     ) STRICT;
     CREATE TRIGGER events_no_update BEFORE UPDATE ON events
         BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be changed'); END;
     CREATE TRIGGER events_no_delete BEFORE DELETE ON events
         BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be deleted'); END;
     CREATE TABLE snapshots (
         seq         INTEGER NOT NULL,
         schema      INTEGER NOT NULL,
         taken_at_ms INTEGER NOT NULL,
         body        BLOB    NOT NULL,
         PRIMARY KEY (schema, seq)
     ) STRICT;
     CREATE TABLE sync_cursors (
         name TEXT PRIMARY KEY,
         seq  INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE meta (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     ) STRICT;",
    // 2: cloud sync bookkeeping. Down-messages already applied (so a redelivery is
    // acknowledged without acting twice), and which local player stands for which cloud
    // player account.
    "CREATE TABLE sync_down_applied (
         id            BLOB    PRIMARY KEY CHECK (length(id) = 16),
         kind          TEXT    NOT NULL,
         outcome       TEXT    NOT NULL,
         applied_at_ms INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE sync_players (
         cloud_id BLOB PRIMARY KEY CHECK (length(cloud_id) = 16),
         local_id BLOB NOT NULL UNIQUE CHECK (length(local_id) = 16)
     ) STRICT;",
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Applies every migration after the file's current `user_version`, each in its own
/// transaction together with the version bump, so a crash leaves the file at a whole
/// version. Returns the version reached.
pub(crate) fn migrate(conn: &mut Connection, migrations: &[&str]) -> rusqlite::Result<u32> {
    let mut version: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, sql) in migrations.iter().enumerate().skip(version as usize) {
        let target = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if target == 1 {
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        version = target;
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_of(conn: &Connection) -> u32 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    fn tables_of(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migrations_from_version_zero_apply_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = ["CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER);"];
        assert_eq!(migrate(&mut conn, &steps).unwrap(), 2);
        assert_eq!(version_of(&conn), 2);
        assert_eq!(tables_of(&conn), vec!["a", "b"]);
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .unwrap();
        assert_eq!(app_id, APPLICATION_ID);
    }

    #[test]
    fn only_migrations_newer_than_the_file_are_applied() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &["CREATE TABLE a (x INTEGER);"]).unwrap();
        // Re-running migration 1 would fail with "table a already exists".
        let steps = ["CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER);"];
        assert_eq!(migrate(&mut conn, &steps).unwrap(), 2);
        assert_eq!(tables_of(&conn), vec!["a", "b"]);
    }

    #[test]
    fn a_failing_migration_leaves_the_file_at_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = [
            "CREATE TABLE a (x INTEGER);",
            "CREATE TABLE b (y INTEGER); THIS IS NOT SQL;",
        ];
        assert!(migrate(&mut conn, &steps).is_err());
        assert_eq!(version_of(&conn), 1);
        assert_eq!(tables_of(&conn), vec!["a"]);
    }

    #[test]
    fn the_real_migrations_create_the_store_tables() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, MIGRATIONS).unwrap(), SCHEMA_VERSION);
        assert_eq!(
            tables_of(&conn),
            vec![
                "events",
                "meta",
                "snapshots",
                "sync_cursors",
                "sync_down_applied",
                "sync_players"
            ]
        );
    }
}
