//! Throughput and latency figures for the event store on this machine's disk.
//!
//! `cargo run --release -p pvm-store --example store_bench [DIR]` — DIR defaults to a fresh
//! temporary directory; pass a directory on the disk you care about (e.g. the SD card).
//! `PVM_STORE_BENCH_EVENTS` overrides the size of the large log (default 1,000,000).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pvm_store::{NewEvent, SnapshotBody, Store};
use uuid::Uuid;

/// A body about the size of a typical domain event (a registration or a chip count).
fn event(n: u64) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        stream: format!("tournament-{}", n % 4),
        kind: "player_registered".to_owned(),
        at_ms: 1_700_000_000_000 + i64::try_from(n).unwrap_or(0),
        body: format!(
            r#"{{"type":"player_registered","player":"{}","seat":{},"table":{},"buy_in":{{"cents":15000}}}}"#,
            Uuid::now_v7(),
            n % 10,
            n % 37
        ),
    }
}

/// Single-event commands, `per_transaction` of them per group commit, for about `budget`.
/// Returns the rate and every transaction's duration (its `synchronous=FULL` commit included).
fn commands_per_second(
    dir: &Path,
    per_transaction: usize,
    budget: Duration,
) -> Result<(f64, Vec<Duration>), Box<dyn Error>> {
    let mut commits = Vec::new();
    let path = dir.join(format!("group-{per_transaction}.db"));
    let mut store = Store::open(&path)?;
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        let batches: Vec<Vec<NewEvent>> = (0..per_transaction)
            .map(|_| {
                n += 1;
                vec![event(n)]
            })
            .collect();
        let began = Instant::now();
        for outcome in store.append_batches(&batches)? {
            outcome?;
        }
        commits.push(began.elapsed());
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    store.close()?;
    Ok((rate, commits))
}

fn main() -> Result<(), Box<dyn Error>> {
    let temp = tempfile::tempdir()?;
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map_or_else(|| temp.path().to_path_buf(), PathBuf::from);
    let total: u64 = std::env::var("PVM_STORE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!("pvm-store bench in {}", dir.display());

    for per_transaction in [1, 16, 64] {
        let (rate, mut commits) =
            commands_per_second(&dir, per_transaction, Duration::from_secs(3))?;
        commits.sort();
        let at = |p: usize| {
            commits
                .get((commits.len().saturating_sub(1)) * p / 100)
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        // The durable commit alone, without the engine or HTTP: a floor under every command's
        // latency, set by this disk's fsync.
        println!(
            "append, single-event commands, {per_transaction:>2} per transaction: {rate:>9.0} commands/s; \
             commit p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} commits)",
            at(50),
            at(99),
            at(100),
            commits.len()
        );
    }

    let path = dir.join("large.db");
    let mut store = Store::open(&path)?;
    let start = Instant::now();
    let mut n = 0u64;
    while n < total {
        let batches: Vec<Vec<NewEvent>> = (0..10_000.min(total - n))
            .map(|_| {
                n += 1;
                vec![event(n)]
            })
            .collect();
        for outcome in store.append_batches(&batches)? {
            outcome?;
        }
    }
    let last = store.last_seq()?;
    let state = vec![0x5a_u8; 1 << 20];
    store.save_snapshot(last, 1, &SnapshotBody::compress(&state)?)?;
    store.close()?;
    println!(
        "fill: {total} events in {:.1} s (10,000 commands per transaction), file {} MB",
        start.elapsed().as_secs_f64(),
        std::fs::metadata(&path)?.len() / 1_000_000
    );

    let store = Store::open(&path)?;
    let start = Instant::now();
    let mut after = 0;
    let mut read = 0usize;
    loop {
        let page = store.events_since(after, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        read += page.len();
    }
    println!(
        "read {read} events since seq 0 (pages of 10,000): {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let tail = store.events_since(total.saturating_sub(100), 1_000)?;
    println!(
        "read the last {} events (index range scan): {:.3} ms",
        tail.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    drop(store);

    let start = Instant::now();
    let store = Store::open(&path)?;
    let opened = start.elapsed();
    let snapshot = store.latest_snapshot(1)?.ok_or("the snapshot is missing")?;
    let state = snapshot.state()?;
    assert_eq!(state.len(), 1 << 20, "the snapshot decompresses whole");
    let replay = store.events_since(snapshot.seq, usize::MAX)?;
    println!(
        "open a {total}-event store (integrity check included): {:.2} s; \
         + load 1 MB snapshot and replay {} events: {:.2} s total",
        opened.as_secs_f64(),
        replay.len(),
        start.elapsed().as_secs_f64()
    );
    store.close()?;
    Ok(())
}
