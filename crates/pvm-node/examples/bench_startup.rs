//! Start-up time with a long event log: 1,000,000 events by default (`--events N`).
//!
//! Generates a realistic venue history straight through `pvm_core::decide`/`apply` and
//! `pvm_store` group appends (a few thousand players; tournaments of 100 entries with many
//! chip counts, then busts down to the winner) with the last snapshot `--tail` events (default
//! 100,000) before its end, as a running node leaves a venue of that size, then times the real `pvm-node` binary from process spawn to `/healthz` answering, after a
//! clean stop and after a SIGKILL. "Serving" there means reads: the state is loaded and the HTTP
//! server answers, while commands wait for the log's integrity check (`PRAGMA quick_check`),
//! which runs on beside it; the in-process breakdown prints when that check has passed. Also prints where start-up time goes (opening and checking
//! the log, loading the snapshot) and, for comparison, a full replay without the snapshot.
//!
//! `cargo run --release -p pvm-node --example bench_startup -- --events 1000000`

#[path = "support/mod.rs"]
mod support;

use pvm_core::{apply, VenueState};
use pvm_node::engine::{self, SNAPSHOT_SCHEMA};
use pvm_store::Store;
use std::path::Path;
use std::time::{Duration, Instant};
use support::history::generate;
use support::{ms, result, NodeProcess};

fn main() {
    let target: u64 = support::flag("--events", 1_000_000);
    let runs: usize = support::flag("--runs", 3);
    // A running node snapshots a venue this size (~40 MB of state) every 100,000 events
    // (`engine::SNAPSHOT_BYTES_PER_EVENT`), so a start finds up to that many after the last
    // snapshot: the figure is for that worst case.
    let tail: u64 = support::flag("--tail", 100_000);
    let dir = support::scratch_dir("pvm-bench-startup");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("creating the data directory");
    let db = data.join(pvm_node::node::EVENT_LOG_FILE);

    let started = Instant::now();
    let (events, tournaments, players) = generate(&db, target, tail);
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "startup: generated {events} events ({tournaments} tournaments, {players} players, {:.0} MiB log) in {:.1}s",
        size as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );

    breakdown(&db);

    // A clean stop snapshots what the start replayed: each start gets the log as generated.
    let pristine = dir.path().join("pristine.db");
    std::fs::copy(&db, &pristine).expect("keeping a copy of the generated log");
    let mut clean = Vec::new();
    let mut rss = 0;
    for _ in 0..runs {
        std::fs::copy(&pristine, &db).expect("restoring the generated log");
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
    std::fs::copy(&pristine, &db).expect("restoring the generated log");
    let (node, _) = start_and_wait(dir.path());
    node.kill();
    let (node, after_kill) = start_and_wait(dir.path());
    node.stop();
    result("startup_1m_after_kill", ms(after_kill), "ms", None);
}

/// Spawns the node on `dir` and polls `/healthz` until it answers 200: the node serves reads
/// from then on, while commands wait for the log's integrity check (timed apart, in
/// [`breakdown`]).
fn start_and_wait(dir: &Path) -> (NodeProcess, Duration) {
    let node = NodeProcess::start_at(dir, support::QUIET_CONFIG, support::free_loopback_addr());
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

/// Where a start's time goes, measured in this process with the node's own code: the node's
/// own sequence (integrity check beside the state's load), then each part alone.
fn breakdown(db: &Path) {
    let t = Instant::now();
    let (reader, pending) = Store::open_checking(db).expect("the generated log opens");
    let opened = t.elapsed();
    let (state, seq) = engine::load_state(&reader).expect("the state loads");
    let loaded = t.elapsed();
    let store = pending
        .finish()
        .expect("the generated log passes its check");
    let writable = t.elapsed();
    drop(store);
    println!(
        "startup: in-process, as the node does it: opened {:.0} ms, state loaded {:.0} ms, \
         integrity check passed and log writable {:.0} ms after the start",
        ms(opened),
        ms(loaded),
        ms(writable)
    );

    let t = Instant::now();
    let checked = Store::open(db).expect("the generated log opens");
    let check_alone = t.elapsed();
    drop(checked);
    let t = Instant::now();
    let snapshot = reader
        .latest_snapshot(SNAPSHOT_SCHEMA)
        .ok()
        .flatten()
        .expect("the generated log has a snapshot");
    let read_snapshot = t.elapsed();
    let t = Instant::now();
    let json = snapshot.state().expect("the snapshot decompresses");
    let decompress = t.elapsed();
    let t = Instant::now();
    let parsed: VenueState = serde_json::from_slice(&json).expect("the snapshot parses");
    let parse = t.elapsed();
    let t = Instant::now();
    let bytes = serde_json::to_vec(&parsed).expect("the state serializes");
    let serialize = t.elapsed();
    println!(
        "startup: alone: Store::open with its integrity check {:.0} ms; snapshot read {:.0} ms \
         ({:.1} MiB stored), decompressed {:.0} ms, parsed {:.0} ms ({:.1} MiB JSON, seq {}), \
         serialized again {:.0} ms; tail {} events; state at seq {seq}: {} players, {} tournaments",
        ms(check_alone),
        ms(read_snapshot),
        snapshot.stored_len() as f64 / (1024.0 * 1024.0),
        ms(decompress),
        ms(parse),
        bytes.len() as f64 / (1024.0 * 1024.0),
        snapshot.seq,
        ms(serialize),
        seq - snapshot.seq,
        state.players.len(),
        state.tournaments.len(),
    );
    drop(parsed);
    // The writer copies the state once per group commit (to publish it while readers keep the
    // previous one); with the players and tournaments in persistent maps that copy shares them.
    let t = Instant::now();
    let copies = 100;
    for _ in 0..copies {
        std::hint::black_box(state.clone());
    }
    result(
        "state_clone_1m",
        ms(t.elapsed()) / copies as f64,
        "ms",
        None,
    );
    // What the writer did per group commit before players and tournaments were shared: a deep
    // copy of every one.
    let t = Instant::now();
    let copies = 5;
    for _ in 0..copies {
        let players: Vec<_> = state.players.values().map(|p| (**p).clone()).collect();
        let tournaments: Vec<_> = state.tournaments.values().map(|t| (**t).clone()).collect();
        std::hint::black_box((
            players,
            tournaments,
            state.cash.clone(),
            state.displays.clone(),
        ));
    }
    result(
        "state_deep_copy_1m",
        ms(t.elapsed()) / copies as f64,
        "ms",
        None,
    );
    let store = reader;
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
