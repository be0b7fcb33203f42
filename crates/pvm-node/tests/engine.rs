//! The writer's background work: snapshots serialized off the writer thread are saved at the
//! sequence they were taken at (a snapshot that mixed two states would load wrong), and a
//! restart from snapshot plus tail is the state the writer had. The write-ahead log, folded into
//! the file by another thread, stays bounded while commands keep coming.

use pvm_core::players::PlayerDetails;
use pvm_core::{apply, decide, Command, SeededEntropy, Timestamp, VenueState};
use pvm_node::engine::{self, EngineConfig, SNAPSHOT_BYTES_PER_EVENT, SNAPSHOT_SCHEMA};
use pvm_store::{NewEvent, SnapshotBody, Store};
use std::time::{Duration, Instant};

fn config(snapshot_every: u64) -> EngineConfig {
    EngineConfig {
        queue_depth: 64,
        snapshot_every,
        broadcast_depth: 64,
        ..EngineConfig::default()
    }
}

fn add_player(n: u64) -> Command {
    Command::AddPlayer {
        details: PlayerDetails {
            name: format!("Player {n}"),
            ..Default::default()
        },
    }
}

/// The state as a full replay of the log's first `upto` events gives it.
fn replayed(store: &Store, upto: u64) -> VenueState {
    let mut state = VenueState::default();
    for stored in store.events_since(0, usize::MAX).unwrap() {
        if stored.seq > upto {
            break;
        }
        apply(&mut state, &engine::decode(&stored).unwrap());
    }
    state.applied = upto;
    state
}

#[tokio::test]
async fn snapshots_made_beside_the_writer_hold_exactly_the_state_at_their_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let (handle, writer) = engine::start(&path, config(20)).unwrap();
    let reader = Store::open_reader(&path).unwrap();

    // Commands keep coming while snapshots are made, so a snapshot is saved some commits after
    // the state it holds; it must still be labelled with that state's sequence.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    let snapshot = loop {
        handle.execute(add_player(n)).await.unwrap();
        n += 1;
        if let Some(s) = reader.latest_snapshot(SNAPSHOT_SCHEMA).unwrap() {
            if n > 100 {
                break s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot was saved while running"
        );
    };
    assert!(snapshot.seq >= 20 && snapshot.seq <= n);
    // The save ran on the writer, between two groups: /metrics shows how long it held them up.
    let housekeeping: u64 = handle.metrics.housekeeping.counts().iter().sum();
    assert!(housekeeping >= 1, "the snapshot's save was not timed");
    assert!(
        handle
            .metrics
            .snapshots_saved
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    let saved: VenueState = serde_json::from_slice(&snapshot.state().unwrap()).unwrap();
    assert_eq!(saved, replayed(&reader, snapshot.seq));
    assert_eq!(saved.players.len() as u64, snapshot.seq);

    let before = handle.state();
    handle.shutdown().await;
    writer.join().unwrap();
    drop(reader);

    let (handle, writer) = engine::start(&path, config(20)).unwrap();
    assert_eq!(*handle.state(), *before);
    handle.shutdown().await;
    writer.join().unwrap();
}

/// A snapshot holds the whole venue, history included, so the larger the venue the fewer of
/// them: after a snapshot of B bytes the next one waits B / SNAPSHOT_BYTES_PER_EVENT events
/// (at least `snapshot_every`), so snapshots never cost more than that per event.
#[tokio::test]
async fn a_large_venue_is_snapshotted_less_often() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let snapshot_every = 20;
    let (handle, writer) = engine::start(&path, config(snapshot_every)).unwrap();
    let reader = Store::open_reader(&path).unwrap();

    // Every player makes the venue larger, and its snapshots with it. (seq, JSON bytes) of each
    // snapshot seen; looked for every 10 commands, so some may pass unseen, which only makes
    // the gaps between those seen longer.
    let mut seen: Vec<(u64, u64)> = Vec::new();
    for n in 0..1_500 {
        handle.execute(add_player(n)).await.unwrap();
        if n % 10 == 9 {
            if let Some(s) = reader.latest_snapshot(SNAPSHOT_SCHEMA).unwrap() {
                if seen.last().map(|(seq, _)| *seq) != Some(s.seq) {
                    seen.push((s.seq, s.state().unwrap().len() as u64));
                }
            }
        }
    }
    handle.shutdown().await;
    writer.join().unwrap();

    let (_, largest) = *seen.last().expect("snapshots were saved");
    assert!(
        largest / SNAPSHOT_BYTES_PER_EVENT > 4 * snapshot_every,
        "the venue never grew large enough to matter: {seen:?}"
    );
    for pair in seen.windows(2) {
        let ((earlier, bytes), (later, _)) = (pair[0], pair[1]);
        let wanted = (bytes / SNAPSHOT_BYTES_PER_EVENT).max(snapshot_every);
        assert!(
            later - earlier >= wanted,
            "a snapshot at {later} only {} events after one of {bytes} bytes at {earlier}: {seen:?}",
            later - earlier
        );
    }

    // A restart goes on from the snapshot it loaded (the one written at shutdown): the next
    // is as far away as from any other of that size, not `snapshot_every` events.
    let at_restart = reader.latest_snapshot(SNAPSHOT_SCHEMA).unwrap().unwrap();
    let (handle, writer) = engine::start(&path, config(snapshot_every)).unwrap();
    for n in 0..(6 * snapshot_every) {
        handle.execute(add_player(10_000 + n)).await.unwrap();
    }
    let latest = reader.latest_snapshot(SNAPSHOT_SCHEMA).unwrap().unwrap();
    assert_eq!(
        latest.seq,
        at_restart.seq,
        "a {} byte venue was snapshotted again {} events after a restart",
        at_restart.state().unwrap().len(),
        latest.seq - at_restart.seq
    );
    handle.shutdown().await;
    writer.join().unwrap();
}

#[tokio::test]
async fn a_restart_folds_the_events_after_the_last_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    // No snapshot during the run: the only one is written at shutdown, at event 30.
    let (handle, writer) = engine::start(&path, config(u64::MAX)).unwrap();
    for n in 0..30 {
        handle.execute(add_player(n)).await.unwrap();
    }
    let mut state = (*handle.state()).clone();
    handle.shutdown().await;
    writer.join().unwrap();

    // Fifteen more events in the log and none in a snapshot, as a power cut after their
    // commit would leave them.
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        store.latest_snapshot(SNAPSHOT_SCHEMA).unwrap().unwrap().seq,
        30
    );
    let mut entropy = SeededEntropy::new(3);
    for n in 30..45 {
        let at = Timestamp::from_millis(1_700_000_000_000 + n as i64);
        let events = decide(&state, add_player(n), at, &mut entropy).unwrap();
        let batch: Vec<NewEvent> = events
            .iter()
            .map(|e| NewEvent {
                id: e.id.0,
                stream: e.stream(),
                kind: e.kind().to_string(),
                at_ms: e.at.as_millis(),
                body: serde_json::to_string(e).unwrap(),
            })
            .collect();
        store.append(&batch).unwrap();
        for e in &events {
            apply(&mut state, e);
        }
    }
    store.close().unwrap();

    let (handle, writer) = engine::start(&path, config(u64::MAX)).unwrap();
    assert_eq!(handle.state().players.len(), 45);
    assert_eq!(handle.last_seq(), 45);
    let reader = Store::open_reader(&path).unwrap();
    assert_eq!(*handle.state(), replayed(&reader, 45));
    state.applied = 45;
    assert_eq!(*handle.state(), state);
    handle.shutdown().await;
    writer.join().unwrap();
}

/// A log of `events` small events with a snapshot of the empty state at its end, as a node
/// that has stopped cleanly leaves it; closed, so the whole of it is in the main file.
fn log_with_snapshot_at_end(path: &std::path::Path, events: u64) {
    let mut store = Store::open(path).unwrap();
    let batches: Vec<Vec<NewEvent>> = (0..events)
        .map(|n| {
            vec![NewEvent {
                id: uuid::Uuid::now_v7(),
                stream: "venue".to_owned(),
                kind: "filler".to_owned(),
                at_ms: 1_700_000_000_000,
                body: format!(r#"{{"n":{n},"pad":"{}"}}"#, "x".repeat(40)),
            }]
        })
        .collect();
    for group in batches.chunks(500) {
        assert!(store
            .append_batches(group)
            .unwrap()
            .iter()
            .all(Result::is_ok));
    }
    store.meta_set("node_id", "test-node").unwrap();
    let state = VenueState {
        applied: events,
        ..VenueState::default()
    };
    store
        .save_snapshot(
            events,
            SNAPSHOT_SCHEMA,
            &SnapshotBody::compress(&serde_json::to_vec(&state).unwrap()).unwrap(),
        )
        .unwrap();
    store.close().unwrap();
}

#[tokio::test]
async fn a_log_that_fails_the_integrity_check_after_the_state_loaded_is_never_written_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    log_with_snapshot_at_end(&path, 3_000);
    // Damage in the middle of the old events: loading the state (snapshot and an empty tail)
    // never reads those pages, only the integrity check does.
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    let middle = bytes.len() / page / 2;
    for (i, byte) in bytes[middle * page..(middle + 4) * page]
        .iter_mut()
        .enumerate()
    {
        *byte = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    std::fs::write(&path, &bytes).unwrap();

    let (handle, writer) = engine::start(&path, config(u64::MAX))
        .expect("the state loads before the check has found the damage");
    // Reads are served from the loaded state meanwhile.
    assert_eq!(handle.last_seq(), 3_000);
    let reason = handle.integrity_checked().await.unwrap_err();
    assert!(reason.contains("damaged"), "{reason}");
    assert!(matches!(handle.integrity(), engine::Integrity::Failed(_)));
    match handle.execute(add_player(1)).await {
        Err(engine::EngineError::Damaged(r)) => assert_eq!(r, reason),
        other => panic!("a command on a damaged log must be refused, got {other:?}"),
    }
    handle.shutdown().await;
    writer.join().unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the damaged log was changed"
    );
}

#[tokio::test]
async fn a_command_sent_while_the_check_runs_is_recorded_once_it_passed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    log_with_snapshot_at_end(&path, 20_000);
    let (handle, writer) = engine::start(&path, config(u64::MAX)).unwrap();
    let outcome = handle.execute(add_player(1)).await.unwrap();
    assert_eq!(handle.integrity(), engine::Integrity::Passed);
    assert_eq!(outcome.events.last().unwrap().seq, handle.last_seq());
    assert!(handle.last_seq() > 20_000);
    handle.integrity_checked().await.unwrap();
    handle.shutdown().await;
    writer.join().unwrap();
}

#[tokio::test]
async fn an_unreadable_snapshot_is_passed_over_and_the_state_replayed_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let (handle, writer) = engine::start(&path, config(u64::MAX)).unwrap();
    for n in 0..25 {
        handle.execute(add_player(n)).await.unwrap();
    }
    let before = handle.state();
    handle.shutdown().await;
    writer.join().unwrap();

    // The newest snapshot of the current schema is damaged, as a bug in an older build (or a
    // bit flip the page checksums missed) could leave it: its JSON cut short, or the compressed
    // bytes themselves. Each start replays the log and saves a good snapshot on its way out.
    for damage in ["json cut short", "compressed bytes cut short"] {
        let mut store = Store::open(&path).unwrap();
        let last = store.last_seq().unwrap();
        let good = store.latest_snapshot(SNAPSHOT_SCHEMA).unwrap().unwrap();
        assert_eq!(good.seq, last, "{damage}");
        let json = good.state().unwrap();
        if damage == "json cut short" {
            let cut = json[..json.len() / 2].to_vec();
            store
                .save_snapshot(
                    last,
                    SNAPSHOT_SCHEMA,
                    &SnapshotBody::compress(&cut).unwrap(),
                )
                .unwrap();
        } else {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let cut = conn
                .execute(
                    "UPDATE snapshots SET body = substr(body, 1, length(body) / 2) WHERE seq = ?1",
                    [i64::try_from(last).unwrap()],
                )
                .unwrap();
            assert_eq!(cut, 1);
        }
        assert!(
            store
                .latest_snapshot(SNAPSHOT_SCHEMA)
                .unwrap()
                .unwrap()
                .state()
                .map_or(true, |json| serde_json::from_slice::<VenueState>(&json)
                    .is_err()),
            "{damage}: the snapshot still reads"
        );
        store.close().unwrap();

        let (handle, writer) = engine::start(&path, config(u64::MAX)).unwrap();
        handle.integrity_checked().await.unwrap();
        assert_eq!(*handle.state(), *before, "{damage}");
        let reader = Store::open_reader(&path).unwrap();
        assert_eq!(*handle.state(), replayed(&reader, last), "{damage}");
        handle.shutdown().await;
        writer.join().unwrap();
    }
}

fn wal_len(db: &std::path::Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_stays_bounded_while_commands_keep_coming() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    // A small bound and a quick checkpointer, so a short run crosses the bound many times.
    // Eight senders keep the writer committing back to back: a passive checkpoint alone then
    // nearly always has frames committed during its pass left behind, and the log only grows.
    let bound = 32;
    let small = EngineConfig {
        wal_reset_frames: bound,
        checkpoint_every: Duration::from_millis(10),
        ..config(u64::MAX)
    };
    let (handle, writer) = engine::start(&path, small).unwrap();
    let senders = 8;
    let each = 500;
    let mut tasks = Vec::new();
    for s in 0..senders {
        let handle = handle.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..each {
                handle.execute(add_player(s * each + n)).await.unwrap();
            }
        }));
    }
    let mut largest = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        largest = largest.max(wal_len(&path));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let resets = handle
        .metrics
        .wal_resets
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(resets > 0, "the writer never had to finish a checkpoint");
    // Commands wait while the writer finishes one: /metrics shows each as housekeeping.
    let housekeeping: u64 = handle.metrics.housekeeping.counts().iter().sum();
    assert!(
        housekeeping >= resets,
        "{housekeeping} housekeeping times recorded for {resets} finished checkpoints"
    );
    // The log restarts once a pass finds it past the bound, so it holds the bound plus what
    // the writer commits until the next pass; a wide margin for a busy machine, far below the
    // several megabytes these commands write.
    let frame = 4096 + 24;
    assert!(
        largest <= 8 * bound * frame,
        "the write-ahead log grew to {largest} bytes ({} frames), with a bound of {bound} frames",
        largest / frame
    );

    // Nothing was lost to the checkpoints: a restart has every command.
    let before = handle.state();
    assert_eq!(before.players.len() as u64, senders * each);
    handle.shutdown().await;
    writer.join().unwrap();
    let (handle, writer) = engine::start(&path, config(u64::MAX)).unwrap();
    assert_eq!(*handle.state(), *before);
    let reader = Store::open_reader(&path).unwrap();
    assert_eq!(*handle.state(), replayed(&reader, senders * each));
    handle.shutdown().await;
    writer.join().unwrap();
}
