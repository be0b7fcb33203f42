//! Start-up time with a long event log: 1,000,000 events by default (`--events N`).
//!
//! Generates a realistic venue history straight through `pvm_core::decide`/`apply` and
//! `pvm_store` group appends (a few thousand players; tournaments of 100 entries with many
//! chip counts, then busts down to the winner), ends it with a snapshot as the engine would have written,
//! then times the real `pvm-node` binary from process spawn to `/healthz` answering, after a
//! clean stop and after a SIGKILL. Also prints where start-up time goes (opening and checking
//! the log, loading the snapshot) and, for comparison, a full replay without the snapshot.
//!
//! `cargo run --release -p pvm-node --example bench_startup -- --events 1000000`

#[path = "support/mod.rs"]
mod support;

use pvm_core::ids::{EntryId, PlayerId, TournamentId};
use pvm_core::structure::{Structure, Template};
use pvm_core::tournament::{BustInput, TournamentCommand, TournamentEvent};
use pvm_core::{apply, decide, Command, Event, EventBody, SeededEntropy, Timestamp, VenueState};
use pvm_node::engine::{self, SNAPSHOT_SCHEMA};
use pvm_store::{NewEvent, Store};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{ms, result, NodeProcess};

const PLAYERS: usize = 3_000;
const FIELD: usize = 100;
const CHIP_REPORTS_PER_TOURNAMENT: usize = 1_500;
/// Commands per group append while generating.
const APPEND_EVERY: usize = 20_000;

fn main() {
    let target: u64 = support::flag("--events", 1_000_000);
    let runs: usize = support::flag("--runs", 3);
    let dir = support::scratch_dir("pvm-bench-startup");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("creating the data directory");
    let db = data.join(pvm_node::node::EVENT_LOG_FILE);

    let started = Instant::now();
    let (events, tournaments, players) = generate(&db, target);
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "startup: generated {events} events ({tournaments} tournaments, {players} players, {:.0} MiB log) in {:.1}s",
        size as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );

    breakdown(&db);

    let mut clean = Vec::new();
    let mut rss = 0;
    for _ in 0..runs {
        let (node, took) = start_and_wait(dir.path());
        clean.push(took);
        rss = node.rss_kib();
        node.stop();
    }
    clean.sort();
    println!(
        "startup: clean starts {:?} ms",
        clean.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    );
    result(
        "startup_1m_events",
        ms(clean[clean.len() / 2]),
        "ms",
        Some(("<=", 1000.0)),
    );
    result("rss_after_start_1m", rss as f64 / 1024.0, "MiB", None);

    // A power cut: the next start finds the write-ahead log as the killed process left it.
    let (node, _) = start_and_wait(dir.path());
    node.kill();
    let (node, after_kill) = start_and_wait(dir.path());
    node.stop();
    result("startup_1m_after_kill", ms(after_kill), "ms", None);
}

/// Spawns the node on `dir` and polls `/healthz` until it answers 200.
fn start_and_wait(dir: &Path) -> (NodeProcess, Duration) {
    let node = NodeProcess::start(dir, support::QUIET_CONFIG, false);
    loop {
        if health_ok(node.addr) {
            let took = node.spawned.elapsed();
            return (node, took);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One plain HTTP/1.0 request: no client library between the figure and the socket.
fn health_ok(addr: std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

/// Where a start's time goes, measured in this process with the node's own code.
fn breakdown(db: &Path) {
    let t = Instant::now();
    let store = Store::open(db).expect("the generated log opens");
    let open = t.elapsed();
    let t = Instant::now();
    let (state, seq) = engine::load_state(&store).expect("the state loads");
    let load = t.elapsed();
    let snapshot_bytes = store
        .latest_snapshot(SNAPSHOT_SCHEMA)
        .ok()
        .flatten()
        .map(|s| s.state.len())
        .unwrap_or(0);
    println!(
        "startup: in-process: Store::open {:.0} ms (includes the integrity check), load_state {:.0} ms (snapshot of {:.1} MiB, seq {seq}, {} players)",
        ms(open),
        ms(load),
        snapshot_bytes as f64 / (1024.0 * 1024.0),
        state.players.len()
    );
    // The writer clones the whole state once per group commit; with a long history that
    // clone is a floor under every command's latency.
    let t = Instant::now();
    let copies = 5;
    for _ in 0..copies {
        std::hint::black_box(state.clone());
    }
    result(
        "state_clone_1m",
        ms(t.elapsed()) / copies as f64,
        "ms",
        None,
    );
    let t = Instant::now();
    let mut replayed = VenueState::default();
    let mut after = 0;
    loop {
        let batch = store.events_since(after, 10_000).expect("reading events");
        if batch.is_empty() {
            break;
        }
        for stored in &batch {
            apply(
                &mut replayed,
                &engine::decode(stored).expect("a readable event"),
            );
            after = stored.seq;
        }
    }
    let replay = t.elapsed();
    replayed.applied = after;
    assert_eq!(
        replayed, state,
        "snapshot + tail and a full replay must agree"
    );
    result("replay_1m_no_snapshot", ms(replay), "ms", None);
    drop(store);
}

/// Writes `target` events (a little more: whole commands) of plausible venue history.
fn generate(db: &Path, target: u64) -> (u64, usize, usize) {
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
    }
    flush(&mut store, &mut pending, &mut written);
    state.applied = written;
    let bytes = serde_json::to_vec(&state).expect("the state serializes");
    store
        .save_snapshot(written, SNAPSHOT_SCHEMA, &bytes)
        .expect("saving the snapshot");
    store.close().expect("closing the log");
    (written, tournaments, players.len())
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
