//! Behaviour of the event store against real files in temporary directories.

use std::path::Path;

use pvm_store::{
    NewEvent, Snapshot, SnapshotBody, Store, StoreError, APPLICATION_ID, SCHEMA_VERSION,
    SNAPSHOTS_KEPT,
};
use rusqlite::Connection;
use uuid::Uuid;

fn event(n: u64) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        stream: format!("tournament-{}", n % 3),
        kind: "player_registered".to_owned(),
        at_ms: 1_700_000_000_000 + i64::try_from(n).unwrap(),
        body: format!(r#"{{"n":{n},"name":"Player {n}"}}"#),
    }
}

fn body(state: &[u8]) -> SnapshotBody {
    SnapshotBody::compress(state).unwrap()
}

fn state(snapshot: &Snapshot) -> Vec<u8> {
    snapshot.state().unwrap().into_owned()
}

fn events(count: u64) -> Vec<NewEvent> {
    (0..count).map(event).collect()
}

fn seqs_in_log(store: &Store) -> Vec<u64> {
    store
        .events_since(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect()
}

/// Writes `commands` two-event commands, grouped so that the test does not pay one fsync
/// per command.
fn fill(path: &Path, commands: u64) {
    let mut store = Store::open(path).unwrap();
    let batches: Vec<Vec<NewEvent>> = (0..commands)
        .map(|n| vec![event(n), event(n + 1)])
        .collect();
    for group in batches.chunks(500) {
        let outcomes = store.append_batches(group).unwrap();
        assert!(outcomes.iter().all(Result::is_ok));
    }
    store.close().unwrap();
}

#[test]
fn appended_events_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    let batch = events(3);
    let seqs = store.append(&batch).unwrap();
    assert_eq!(seqs, vec![1, 2, 3]);
    let read = store.events_since(0, 10).unwrap();
    assert_eq!(read.len(), 3);
    for (stored, new) in read.iter().zip(&batch) {
        assert_eq!(stored.id, new.id);
        assert_eq!(stored.stream, new.stream);
        assert_eq!(stored.kind, new.kind);
        assert_eq!(stored.at_ms, new.at_ms);
        assert_eq!(stored.body, new.body);
    }
    assert_eq!(store.last_seq().unwrap(), 3);
}

#[test]
fn an_empty_store_has_last_seq_zero_and_no_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("pvm.db")).unwrap();
    assert_eq!(store.last_seq().unwrap(), 0);
    assert!(store.events_since(0, 100).unwrap().is_empty());
}

#[test]
fn sequence_numbers_are_contiguous_across_commands_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    let first = event(0);
    store.append(&[first.clone(), event(1)]).unwrap();
    // A refused batch must not burn sequence numbers.
    assert!(store.append(&[event(2), first]).is_err());
    store.append(&[event(3)]).unwrap();
    let outcomes = store
        .append_batches(&[events(2), events(1), events(4)])
        .unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(seqs_in_log(&store), (1..=10).collect::<Vec<_>>());
}

#[test]
fn events_since_returns_only_later_events_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    store.append(&events(10)).unwrap();
    let page = store.events_since(4, 3).unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    assert!(store.events_since(10, 3).unwrap().is_empty());
    assert!(store.events_since(u64::MAX, 3).unwrap().is_empty());
    assert!(store.events_since(0, 0).unwrap().is_empty());
}

#[test]
fn a_duplicate_id_fails_only_its_own_batch_in_a_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    let already = event(0);
    store.append(std::slice::from_ref(&already)).unwrap();

    let good_before = events(2);
    let bad = vec![event(10), already.clone(), event(11)];
    let good_after = events(3);
    let outcomes = store
        .append_batches(&[good_before.clone(), bad.clone(), good_after.clone()])
        .unwrap();

    assert_eq!(outcomes[0].as_ref().unwrap(), &vec![2, 3]);
    match &outcomes[1] {
        Err(StoreError::DuplicateEvent { id }) => assert_eq!(*id, already.id),
        other => panic!("expected a duplicate-event refusal, got {other:?}"),
    }
    assert_eq!(outcomes[2].as_ref().unwrap(), &vec![4, 5, 6]);

    let stored_ids: Vec<Uuid> = store
        .events_since(0, 100)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let expected: Vec<Uuid> = std::iter::once(&already)
        .chain(&good_before)
        .chain(&good_after)
        .map(|e| e.id)
        .collect();
    assert_eq!(
        stored_ids, expected,
        "nothing of the refused batch was kept"
    );
}

#[test]
fn a_duplicate_id_within_one_batch_refuses_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    let twice = event(0);
    let result = store.append(&[twice.clone(), event(1), twice]);
    assert!(matches!(result, Err(StoreError::DuplicateEvent { .. })));
    assert_eq!(store.last_seq().unwrap(), 0);
}

#[test]
fn a_body_that_is_not_json_is_refused_with_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    let mut broken = event(1);
    broken.body = "{not json".to_owned();
    let outcomes = store
        .append_batches(&[vec![event(0), broken.clone()], events(1)])
        .unwrap();
    match &outcomes[0] {
        Err(StoreError::BodyNotJson { id, .. }) => assert_eq!(*id, broken.id),
        other => panic!("expected a JSON refusal, got {other:?}"),
    }
    assert_eq!(outcomes[1].as_ref().unwrap(), &vec![1]);
}

#[test]
fn reopening_after_drop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    let written = events(5);
    {
        let mut store = Store::open(&path).unwrap();
        store.append(&written).unwrap();
        store.save_snapshot(5, 1, &body(b"state at 5")).unwrap();
        store.set_sync_cursor("cloud", 3).unwrap();
        store.meta_set("node_id", "pi-1").unwrap();
        // Dropped without close(): the WAL is left for the next open to pick up.
    }
    let store = Store::open(&path).unwrap();
    let read = store.events_since(0, 100).unwrap();
    assert_eq!(
        read.iter().map(|e| e.id).collect::<Vec<_>>(),
        written.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    assert_eq!(
        state(&store.latest_snapshot(1).unwrap().unwrap()),
        b"state at 5"
    );
    assert_eq!(store.sync_cursor("cloud").unwrap(), 3);
    assert_eq!(store.meta_get("node_id").unwrap().as_deref(), Some("pi-1"));
}

#[test]
fn close_folds_the_write_ahead_log_into_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    let mut store = Store::open(&path).unwrap();
    store.append(&events(50)).unwrap();
    store.close().unwrap();
    let wal = dir.path().join("pvm.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    // The main file alone now holds everything.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    assert_eq!(Store::open(&copy).unwrap().last_seq().unwrap(), 50);
}

#[test]
fn a_new_store_is_marked_as_ours_and_at_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    Store::open(&path).unwrap().close().unwrap();
    let conn = Connection::open(&path).unwrap();
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(app_id, APPLICATION_ID);
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(mode, "wal");
}

#[test]
fn a_file_of_random_bytes_is_refused_and_left_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    // A fixed pseudo-random pattern: reproducible, and certainly not a SQLite header.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let bytes: Vec<u8> = (0..10_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(&path, &bytes).unwrap();

    let result = Store::open(&path);
    assert!(matches!(result, Err(StoreError::Foreign { ref path }) if path.ends_with("notes.db")));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(!dir.path().join("notes.db-wal").exists());
}

#[test]
fn a_short_text_file_is_refused_and_left_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    std::fs::write(&path, b"hello").unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Foreign { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
}

#[test]
fn another_programs_sqlite_database_is_refused_and_left_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", 0x1234_5678)
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('Ann');",
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Foreign { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(!dir.path().join("other.db-wal").exists());
}

#[test]
fn a_sqlite_database_without_application_id_but_with_tables_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER);").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Foreign { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn an_empty_file_is_adopted_as_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    std::fs::write(&path, b"").unwrap();
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.append(&events(1)).unwrap(), vec![1]);
}

#[test]
fn a_store_from_a_newer_version_is_refused_and_left_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    fill(&path, 3);
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    match Store::open(&path) {
        Err(StoreError::TooNew { found, known, .. }) => {
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(known, SCHEMA_VERSION);
        }
        other => panic!("expected a too-new refusal, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_store_at_version_zero_is_migrated_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    {
        // What a crash right after marking the file, before the first migration, leaves.
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.append(&events(2)).unwrap(), vec![1, 2]);
    store.close().unwrap();
    let conn = Connection::open(&path).unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_damaged_store_is_refused_as_corrupt_and_left_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    fill(&path, 2_000);
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    let pages = bytes.len() / page;
    assert!(pages > 20, "the test database should span many pages");
    // Scribble over a run of pages in the middle of the file.
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    for byte in &mut bytes[(pages / 2) * page..(pages / 2 + 4) * page] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state.to_le_bytes()[0];
    }
    std::fs::write(&path, &bytes).unwrap();

    match Store::open(&path) {
        Err(StoreError::Corrupt { path: p, detail }) => {
            assert_eq!(p, path);
            assert!(!detail.is_empty());
        }
        other => panic!("expected a corruption refusal, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn snapshots_save_load_and_keep_only_the_newest_few() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    assert!(store.latest_snapshot(1).unwrap().is_none());
    store.append(&events(10)).unwrap();
    for seq in 1..=6 {
        store
            .save_snapshot(seq, 1, &body(format!("state {seq}").as_bytes()))
            .unwrap();
    }
    let latest = store.latest_snapshot(1).unwrap().unwrap();
    assert_eq!(latest.seq, 6);
    assert_eq!(latest.schema, 1);
    assert_eq!(state(&latest), b"state 6");
    assert!(latest.taken_at_ms > 0);

    let conn = Connection::open(dir.path().join("pvm.db")).unwrap();
    let kept: Vec<i64> = conn
        .prepare("SELECT seq FROM snapshots WHERE schema = 1 ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let newest: Vec<i64> = (7 - i64::try_from(SNAPSHOTS_KEPT).unwrap()..=6).collect();
    assert_eq!(kept, newest);
}

#[test]
fn snapshots_of_another_schema_version_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    store.append(&events(5)).unwrap();
    store.save_snapshot(2, 1, &body(b"old format")).unwrap();
    store.save_snapshot(4, 2, &body(b"new format")).unwrap();
    assert_eq!(
        state(&store.latest_snapshot(1).unwrap().unwrap()),
        b"old format"
    );
    assert_eq!(
        state(&store.latest_snapshot(2).unwrap().unwrap()),
        b"new format"
    );
    assert!(store.latest_snapshot(3).unwrap().is_none());
}

#[test]
fn snapshots_are_stored_compressed_and_older_plain_ones_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    let mut store = Store::open(&path).unwrap();
    store.append(&events(5)).unwrap();
    // A venue's JSON repeats its field names over and over, as this does.
    let json: Vec<u8> = (0..5_000)
        .map(|n| format!(r#"{{"player":"p{n}","chips":{}}},"#, n * 25))
        .collect::<String>()
        .into_bytes();
    let packed = body(&json);
    assert_eq!(packed.state_len(), json.len());
    assert!(
        packed.stored_len() * 4 < json.len(),
        "{} bytes compressed to {}",
        json.len(),
        packed.stored_len()
    );
    store.save_snapshot(3, 1, &packed).unwrap();
    let saved = store.latest_snapshot(1).unwrap().unwrap();
    assert_eq!(saved.stored_len(), packed.stored_len());
    assert_eq!(state(&saved), json);
    let conn = Connection::open(&path).unwrap();
    let stored: Vec<u8> = conn
        .query_row("SELECT body FROM snapshots WHERE seq = 3", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        stored.len(),
        packed.stored_len(),
        "the file holds it compressed"
    );

    // Written by a node from before compression: the body is the JSON itself.
    conn.execute(
        "INSERT INTO snapshots (seq, schema, taken_at_ms, body) VALUES (4, 1, 0, ?1)",
        [br#"{"plain":true}"#.as_slice()],
    )
    .unwrap();
    assert_eq!(
        state(&store.latest_snapshot(1).unwrap().unwrap()),
        br#"{"plain":true}"#
    );

    // Cut short: the state cannot be had from it, and the error says so.
    conn.execute(
        "UPDATE snapshots SET body = substr(body, 1, length(body) / 2) WHERE seq = 3",
        [],
    )
    .unwrap();
    conn.execute("DELETE FROM snapshots WHERE seq = 4", [])
        .unwrap();
    let damaged = store.latest_snapshot(1).unwrap().unwrap();
    let err = damaged.state().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the snapshot could not be decompressed"),
        "{err}"
    );
}

#[test]
fn a_snapshot_beyond_the_end_of_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    store.append(&events(2)).unwrap();
    assert!(matches!(
        store.save_snapshot(3, 1, &body(b"x")),
        Err(StoreError::BeyondLog {
            seq: 3,
            last_seq: 2,
            ..
        })
    ));
    assert!(store.latest_snapshot(1).unwrap().is_none());
}

#[test]
fn sync_cursors_start_at_zero_and_remember_each_target() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    store.append(&events(5)).unwrap();
    assert_eq!(store.sync_cursor("cloud").unwrap(), 0);
    store.set_sync_cursor("cloud", 4).unwrap();
    store.set_sync_cursor("backup", 2).unwrap();
    store.set_sync_cursor("cloud", 5).unwrap();
    assert_eq!(store.sync_cursor("cloud").unwrap(), 5);
    assert_eq!(store.sync_cursor("backup").unwrap(), 2);
    assert!(matches!(
        store.set_sync_cursor("cloud", 6),
        Err(StoreError::BeyondLog { .. })
    ));
    assert_eq!(store.sync_cursor("cloud").unwrap(), 5);
}

#[test]
fn meta_values_are_set_replaced_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("pvm.db")).unwrap();
    assert_eq!(store.meta_get("venue").unwrap(), None);
    store.meta_set("venue", "Casino A").unwrap();
    store.meta_set("venue", "Casino B").unwrap();
    assert_eq!(
        store.meta_get("venue").unwrap().as_deref(),
        Some("Casino B")
    );
}

#[test]
fn events_cannot_be_changed_or_deleted_even_with_raw_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    fill(&path, 1);
    let conn = Connection::open(&path).unwrap();
    assert!(conn.execute("DELETE FROM events", []).is_err());
    assert!(conn.execute("UPDATE events SET body = '{}'", []).is_err());
    let count: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 2);
}

#[test]
fn error_messages_say_what_was_refused_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"shopping list").unwrap();
    let message = Store::open(&path).unwrap_err().to_string();
    assert!(message.contains("notes.txt"), "{message}");
    assert!(message.contains("not a PVM event store"), "{message}");
    assert!(message.contains("untouched"), "{message}");
}

#[test]
fn a_write_ahead_log_without_its_database_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    let wal = dir.path().join("pvm.db-wal");
    {
        let mut store = Store::open(&path).unwrap();
        store.append(&events(3)).unwrap();
        // Keep a copy of the live log before close() folds it away.
        std::fs::copy(&wal, dir.path().join("saved-wal")).unwrap();
        store.close().unwrap();
    }
    std::fs::remove_file(&path).unwrap();
    std::fs::rename(dir.path().join("saved-wal"), &wal).unwrap();
    let before = std::fs::read(&wal).unwrap();
    assert!(!before.is_empty());

    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(
        !path.exists(),
        "no new database was created over the orphaned log"
    );
    assert_eq!(std::fs::read(&wal).unwrap(), before);
}
