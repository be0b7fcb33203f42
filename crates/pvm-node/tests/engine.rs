//! The writer's background work: snapshots serialized off the writer thread are saved at the
//! sequence they were taken at (a snapshot that mixed two states would load wrong), and a
//! restart from snapshot plus tail is the state the writer had.

use pvm_core::players::PlayerDetails;
use pvm_core::{apply, decide, Command, SeededEntropy, Timestamp, VenueState};
use pvm_node::engine::{self, EngineConfig, SNAPSHOT_SCHEMA};
use pvm_store::{NewEvent, Store};
use std::time::{Duration, Instant};

fn config(snapshot_every: u64) -> EngineConfig {
    EngineConfig {
        queue_depth: 64,
        snapshot_every,
        broadcast_depth: 64,
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
    let saved: VenueState = serde_json::from_slice(&snapshot.state).unwrap();
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
