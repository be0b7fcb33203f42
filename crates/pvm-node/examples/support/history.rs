//! A plausible venue history written straight into an event log, for the benchmarks that need
//! a long one: a few thousand players; tournaments of 100 entries with many chip counts, then
//! busts down to the winner. Generated through `pvm_core::decide`/`apply` and `pvm_store` group
//! appends, and ended with a snapshot as the engine would have written it.

use pvm_core::ids::{EntryId, PlayerId, TournamentId};
use pvm_core::structure::{Structure, Template};
use pvm_core::tournament::{BustInput, TournamentCommand, TournamentEvent};
use pvm_core::{apply, decide, Command, Event, EventBody, SeededEntropy, Timestamp, VenueState};
use pvm_node::engine::{self, SNAPSHOT_SCHEMA};
use pvm_store::{NewEvent, SnapshotBody, Store};
use std::path::Path;

const PLAYERS: usize = 3_000;
const FIELD: usize = 100;
const CHIP_REPORTS_PER_TOURNAMENT: usize = 1_500;
/// Commands per group append while generating.
const APPEND_EVERY: usize = 20_000;

/// Writes `target` events (a little more: whole commands) of plausible venue history, with a
/// snapshot about `snapshot_behind` events before the end (as a running node leaves it: the
/// events after its last snapshot are replayed at the next start).
pub fn generate(db: &Path, target: u64, snapshot_behind: u64) -> (u64, usize, usize) {
    let mut store = Store::open(db).expect("a fresh log");
    let mut state = VenueState::default();
    let mut entropy = SeededEntropy::new(0x5EED);
    // Start a year ago, one command every two seconds on average.
    let mut now_ms = engine::wall_now().as_millis() - 365 * 24 * 3600 * 1000;
    let mut pending: Vec<Vec<NewEvent>> = Vec::new();
    let mut written = 0u64;
    let mut tournaments = 0usize;

    let mut run = |state: &mut VenueState, command: Command, pending: &mut Vec<Vec<NewEvent>>| {
        now_ms += 2_000;
        let events = decide(state, command, Timestamp::from_millis(now_ms), &mut entropy)
            .expect("generated commands are valid");
        for e in &events {
            apply(state, e);
        }
        pending.push(events.iter().map(encode).collect());
        events
    };
    let flush = |store: &mut Store, pending: &mut Vec<Vec<NewEvent>>, written: &mut u64| {
        for outcome in store.append_batches(pending).expect("appending") {
            *written += outcome.expect("a batch").len() as u64;
        }
        pending.clear();
    };

    let mut players: Vec<PlayerId> = Vec::with_capacity(PLAYERS);
    for n in 0..PLAYERS {
        let details = serde_json::from_value(serde_json::json!({
            "name": format!("Player {n}"),
            "phone": format!("+1555{n:07}"),
        }))
        .expect("player details");
        let events = run(&mut state, Command::AddPlayer { details }, &mut pending);
        if let Some(EventBody::PlayerAdded { player_id, .. }) = events.first().map(|e| &e.body) {
            players.push(*player_id);
        }
    }
    let mut pick = SeededEntropy::new(7);
    let mut snapshotted = false;
    while written + pending.iter().map(|b| b.len() as u64).sum::<u64>() < target {
        tournaments += 1;
        let config = serde_json::from_value(serde_json::json!({
            "name": format!("Tournament {tournaments}"),
            "buy_in": 10_000,
            "fee": 1_000,
            "starting_stack": 20_000,
        }))
        .expect("a tournament config");
        let events = run(
            &mut state,
            Command::CreateTournament {
                config,
                structure: Structure::template(Template::Turbo),
            },
            &mut pending,
        );
        let Some(tournament_id) = events.iter().find_map(created_tournament) else {
            panic!("creating a tournament created none");
        };
        let on = |command| Command::Tournament {
            tournament_id,
            command,
        };
        let mut field: Vec<EntryId> = Vec::with_capacity(FIELD);
        let start = pvm_core::Entropy::below(&mut pick, (PLAYERS - FIELD) as u64) as usize;
        for player_id in &players[start..start + FIELD] {
            let events = run(
                &mut state,
                on(TournamentCommand::Register {
                    player_id: *player_id,
                }),
                &mut pending,
            );
            field.extend(events.iter().find_map(registered_entry));
        }
        run(&mut state, on(TournamentCommand::StartClock), &mut pending);
        for n in 0..CHIP_REPORTS_PER_TOURNAMENT {
            let entry_id = field[n % field.len()];
            let chips = 1_000 + pvm_core::Entropy::below(&mut pick, 100_000);
            run(
                &mut state,
                on(TournamentCommand::ReportChips { entry_id, chips }),
                &mut pending,
            );
        }
        for entry_id in field.iter().skip(1) {
            run(
                &mut state,
                on(TournamentCommand::Bust {
                    busts: vec![BustInput {
                        entry_id: *entry_id,
                        stack: None,
                    }],
                    eliminated_by: Some(field[0]),
                }),
                &mut pending,
            );
        }
        // The last bust leaves one player and finishes the tournament by itself.
        if pending.len() >= APPEND_EVERY {
            flush(&mut store, &mut pending, &mut written);
        }
        let so_far = written + pending.iter().map(|b| b.len() as u64).sum::<u64>();
        if !snapshotted && so_far + snapshot_behind >= target {
            flush(&mut store, &mut pending, &mut written);
            snapshot(&mut store, &mut state, written);
            snapshotted = true;
        }
    }
    flush(&mut store, &mut pending, &mut written);
    if !snapshotted {
        snapshot(&mut store, &mut state, written);
    }
    store.close().expect("closing the log");
    (written, tournaments, players.len())
}

fn snapshot(store: &mut Store, state: &mut VenueState, seq: u64) {
    state.applied = seq;
    let json = serde_json::to_vec(&*state).expect("the state serializes");
    let body = SnapshotBody::compress(&json).expect("the state compresses");
    store
        .save_snapshot(seq, SNAPSHOT_SCHEMA, &body)
        .expect("saving the snapshot");
}

fn created_tournament(e: &Event) -> Option<TournamentId> {
    match &e.body {
        EventBody::Tournament {
            tournament_id,
            event: TournamentEvent::Created { .. },
        } => Some(*tournament_id),
        _ => None,
    }
}

fn registered_entry(e: &Event) -> Option<EntryId> {
    match &e.body {
        EventBody::Tournament {
            event: TournamentEvent::EntryRegistered { entry_id, .. },
            ..
        } => Some(*entry_id),
        _ => None,
    }
}

/// The engine's encoding of an event for the log (kept in step with `engine.rs`).
fn encode(event: &Event) -> NewEvent {
    NewEvent {
        id: event.id.0,
        stream: event.stream(),
        kind: event.kind().to_string(),
        at_ms: event.at.as_millis(),
        body: serde_json::to_string(event).expect("an event serializes"),
    }
}
