//! Command latency of the writer alone, without HTTP: where a durable answer's time goes.
//!
//! Runs the real engine in this process on a fresh log in the scratch directory, with
//! `--clients` (default 8) concurrent tasks sending chip reports straight to
//! `EngineHandle::execute` for `--seconds` (default 10) after a one-second warm-up. Beside it
//! prints the disk's fsync floor (one 4 KiB page appended and fdatasync'ed, alone). Comparing
//! the three — fsync alone, the engine alone, `bench_commands` over HTTP — shows what is the
//! disk's, what is the writer's and what is the HTTP stack's and load generator's.
//!
//! `cargo run --release -p pvm-node --example bench_engine_latency -- --clients 8`

#[path = "support/mod.rs"]
mod support;

use pvm_core::players::PlayerDetails;
use pvm_core::structure::{Structure, Template};
use pvm_core::tournament::{TournamentCommand, TournamentConfig};
use pvm_core::{Command, EventBody, Money};
use pvm_node::engine::{self, EngineConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{ms, percentile, result};

fn main() {
    let clients: usize = support::flag("--clients", 8);
    let seconds: u64 = support::flag("--seconds", 10);
    let scratch = support::scratch_dir("pvm-bench-engine-latency");

    let probe = support::fsync_probe(scratch.path(), 300);
    result("fsync_alone_p50", ms(percentile(&probe, 50.0)), "ms", None);
    result("fsync_alone_p99", ms(percentile(&probe, 99.0)), "ms", None);

    let (handle, writer) =
        engine::start(&scratch.path().join("events.db"), EngineConfig::default())
            .expect("the engine starts");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let created = handle
            .execute(Command::CreateTournament {
                config: TournamentConfig::freezeout(
                    "Latency bench",
                    Money::units(100),
                    Money::units(10),
                    20_000,
                ),
                structure: Structure::template(Template::Turbo),
            })
            .await
            .expect("a tournament");
        let tournament_id = created
            .events
            .iter()
            .find_map(|c| match &c.event.body {
                EventBody::Tournament { tournament_id, .. } => Some(*tournament_id),
                _ => None,
            })
            .expect("the tournament's id");
        for n in 0..50 {
            let details = PlayerDetails {
                name: format!("Latency bench player {n}"),
                ..Default::default()
            };
            handle
                .execute(Command::RegisterNewPlayer {
                    tournament_id,
                    details,
                })
                .await
                .expect("a registration");
        }
        let entries: Arc<Vec<_>> = Arc::new(
            handle.state().tournaments[&tournament_id]
                .entries
                .keys()
                .copied()
                .collect(),
        );

        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (handle, entries) = (handle.clone(), entries.clone());
            let (measuring, stop) = (measuring.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut n = c;
                while !stop.load(Ordering::Relaxed) {
                    let entry_id = entries[n % entries.len()];
                    n += clients;
                    let sent = Instant::now();
                    handle
                        .execute(Command::Tournament {
                            tournament_id,
                            command: TournamentCommand::ReportChips {
                                entry_id,
                                chips: 1_000 + n as u64,
                            },
                        })
                        .await
                        .expect("a chip report");
                    if measuring.load(Ordering::Relaxed) {
                        samples.push(sent.elapsed());
                    }
                }
                samples
            }));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let commits_before = handle.metrics.commits.load(Ordering::Relaxed);
        measuring.store(true, Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        measuring.store(false, Ordering::Relaxed);
        let elapsed = started.elapsed();
        let commits = handle.metrics.commits.load(Ordering::Relaxed) - commits_before;
        stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        for t in tasks {
            samples.extend(t.await.expect("a client task"));
        }
        samples.sort();
        println!(
            "engine: {} chip reports from {clients} in-process clients in {:.1}s; {commits} group \
             commits (≈{:.1} commands each); fsync alone p50 {:.2} ms, p99 {:.2} ms",
            samples.len(),
            elapsed.as_secs_f64(),
            samples.len() as f64 / commits.max(1) as f64,
            ms(percentile(&probe, 50.0)),
            ms(percentile(&probe, 99.0)),
        );
        let name = |figure: &str| format!("{figure}_{clients}c");
        result(
            &name("engine_commands_per_s"),
            samples.len() as f64 / elapsed.as_secs_f64(),
            "1/s",
            None,
        );
        result(
            &name("engine_p50"),
            ms(percentile(&samples, 50.0)),
            "ms",
            None,
        );
        result(
            &name("engine_p99"),
            ms(percentile(&samples, 99.0)),
            "ms",
            None,
        );
        result(
            &name("engine_max"),
            ms(percentile(&samples, 100.0)),
            "ms",
            None,
        );
        handle.shutdown().await;
    });
    writer.join().expect("the writer stops");
}
