//! The node's fast paths. `Store::open_checking`: the quick start, where the state is read while
//! the integrity check runs beside it; it must refuse exactly what `Store::open` refuses and
//! write nothing before the check has passed. `Store::checkpoint_in_background`: the write-ahead
//! log is folded into the file by another thread, never inside a commit, and stays bounded
//! under steady load once the writer finishes what a pass left behind.

use std::path::Path;
use std::time::{Duration, Instant};

use pvm_store::{NewEvent, Store, StoreError};
use uuid::Uuid;

fn event(n: u64) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        stream: "tournament".to_owned(),
        kind: "chips_counted".to_owned(),
        at_ms: 1_700_000_000_000 + i64::try_from(n).unwrap(),
        body: format!(r#"{{"n":{n},"name":"Player {n}"}}"#),
    }
}

/// Writes `commands` two-event commands in large groups and closes the store.
fn fill(path: &Path, commands: u64) {
    let mut store = Store::open(path).unwrap();
    let batches: Vec<Vec<NewEvent>> = (0..commands)
        .map(|n| vec![event(2 * n), event(2 * n + 1)])
        .collect();
    for group in batches.chunks(500) {
        let outcomes = store.append_batches(group).unwrap();
        assert!(outcomes.iter().all(Result::is_ok));
    }
    store.close().unwrap();
}

/// Overwrites four pages in the middle of the file with pseudo-random bytes.
fn scribble_middle(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let page = 4096;
    let pages = bytes.len() / page;
    assert!(pages > 20, "the test database should span many pages");
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    for byte in &mut bytes[(pages / 2) * page..(pages / 2 + 4) * page] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state.to_le_bytes()[0];
    }
    std::fs::write(path, &bytes).unwrap();
    bytes
}

#[test]
fn a_healthy_store_is_readable_at_once_and_writable_after_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    fill(&path, 1_000);

    let (reader, pending) = Store::open_checking(&path).unwrap();
    assert_eq!(reader.last_seq().unwrap(), 2_000);
    assert_eq!(reader.events_since(1_990, 100).unwrap().len(), 10);

    let mut writer = pending.finish().unwrap();
    assert_eq!(writer.append(&[event(9_000)]).unwrap(), vec![2_001]);
    // The early reader is a live connection, not a copy: it sees what is written later.
    assert_eq!(reader.last_seq().unwrap(), 2_001);
    writer.close().unwrap();
}

#[test]
fn a_new_store_is_created_and_writable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    let (reader, pending) = Store::open_checking(&path).unwrap();
    assert_eq!(reader.last_seq().unwrap(), 0);
    let mut writer = pending.finish().unwrap();
    assert_eq!(writer.append(&[event(0), event(1)]).unwrap(), vec![1, 2]);
    assert_eq!(reader.last_seq().unwrap(), 2);
}

#[test]
fn a_damaged_store_is_refused_as_corrupt_and_left_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    fill(&path, 2_000);
    let bytes = scribble_middle(&path);

    // The damage may already show while opening; if not, the check must catch it.
    let refused = match Store::open_checking(&path) {
        Err(e) => e,
        Ok((reader, pending)) => {
            let refused = pending.finish();
            drop(reader);
            match refused {
                Err(e) => e,
                Ok(_) => panic!("a damaged store was opened for writing"),
            }
        }
    };
    match refused {
        StoreError::Corrupt { path: p, detail } => {
            assert_eq!(p, path);
            assert!(!detail.is_empty());
        }
        other => panic!("expected a corruption refusal, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_foreign_file_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    let bytes = b"this is somebody's shopping list, not a database".repeat(200);
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        Store::open_checking(&path),
        Err(StoreError::Foreign { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn giving_up_before_finish_stops_the_check_and_leaves_the_store_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    fill(&path, 5_000);
    let before = std::fs::read(&path).unwrap();

    let (reader, pending) = Store::open_checking(&path).unwrap();
    drop(pending);
    drop(reader);
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.last_seq().unwrap(), 10_000);
}

#[test]
fn the_background_checkpointer_folds_the_log_into_the_file_and_the_writer_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    let mut store = Store::open(&path).unwrap();
    let empty_file = std::fs::metadata(&path).unwrap().len();

    // Without the thread running yet, the writer no longer checkpoints by itself: far more
    // than SQLite's 1,000-page threshold stays in the write-ahead log.
    let checkpointer = store
        .checkpoint_in_background(Duration::from_secs(3_600))
        .unwrap();
    let batches: Vec<Vec<NewEvent>> = (0..6_000).map(|n| vec![event(n)]).collect();
    for group in batches.chunks(200) {
        assert!(store
            .append_batches(group)
            .unwrap()
            .iter()
            .all(Result::is_ok));
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), empty_file);
    checkpointer.stop();

    // With a short period the thread copies the log into the file while the writer appends.
    let checkpointer = store
        .checkpoint_in_background(Duration::from_millis(10))
        .unwrap();
    store.append(&[event(7_000)]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&path).unwrap().len() <= empty_file {
        assert!(Instant::now() < deadline, "nothing was checkpointed");
        std::thread::sleep(Duration::from_millis(10));
    }
    checkpointer.stop();
    store.close().unwrap();
    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.last_seq().unwrap(), 6_001);
}

#[test]
fn under_steady_load_the_log_starts_over_once_the_writer_finishes_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pvm.db");
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let mut store = Store::open(&path).unwrap();
    let bound = 16;
    let checkpointer = store
        .checkpoint_in_background_bounded(Duration::from_millis(5), bound)
        .unwrap();
    // Commits back to back, as under load: the background pass keeps finding new frames.
    let mut finished = 0;
    let mut largest = 0;
    for n in 0..1_500 {
        store.append(&[event(n)]).unwrap();
        if checkpointer.reset_wanted() {
            store.finish_checkpoint().unwrap();
            finished += 1;
        }
        largest = largest.max(wal_len());
    }
    checkpointer.stop();
    assert!(finished > 0, "the checkpointer never asked for a reset");
    let frame = 4096 + 24;
    assert!(
        largest <= 16 * bound * frame,
        "the log grew to {} frames with a bound of {bound}",
        largest / frame
    );
    store.close().unwrap();
    assert_eq!(Store::open(&path).unwrap().last_seq().unwrap(), 1_500);
}
