//! The writer's CPU work per durable command at a venue with a long history, counted in
//! instructions under callgrind: on a shared 2-core machine wall time is too noisy to compare
//! two builds, instruction counts are not.
//!
//! ```text
//! bench_engine_cpu generate DIR --events 200000      # once: a log with a snapshot
//! valgrind --tool=callgrind --callgrind-out-file=few  bench_engine_cpu run DIR --commands 100
//! valgrind --tool=callgrind --callgrind-out-file=many bench_engine_cpu run DIR --commands 1100
//! ```
//!
//! (Ir(many) − Ir(few)) / 1000 is the cost of one chip report, from the HTTP handler's call to
//! `EngineHandle::execute` to its answer (decide, append, fsync, apply, publish), every thread
//! counted; start-up and set-up cancel out. Each `run` works on a copy of DIR's log. Snapshots are
//! off (`snapshot_every` beyond the run) so that what is compared is the per-commit work.

#[path = "support/mod.rs"]
mod support;

use pvm_core::players::PlayerDetails;
use pvm_core::structure::{Structure, Template};
use pvm_core::tournament::{TournamentCommand, TournamentConfig};
use pvm_core::{Command, EventBody, Money};
use pvm_node::engine::{self, EngineConfig};
use std::path::PathBuf;

const LOG: &str = "events.db";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bench_engine_cpu generate|run DIR [--events N] [--commands N]");
        std::process::exit(2);
    };
    let dir = PathBuf::from(dir);
    match mode.as_str() {
        "generate" => {
            let events: u64 = support::flag("--events", 200_000);
            std::fs::create_dir_all(&dir).expect("creating DIR");
            let (written, tournaments, players) =
                support::history::generate(&dir.join(LOG), events, 0);
            println!("generated {written} events ({tournaments} tournaments, {players} players)");
        }
        "run" => run(&dir, support::flag("--commands", 100)),
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
}

fn run(dir: &std::path::Path, commands: u64) {
    let scratch = support::scratch_dir("pvm-bench-engine-cpu");
    let db = scratch.path().join(LOG);
    std::fs::copy(dir.join(LOG), &db).expect("copying the generated log");
    let (handle, writer) = engine::start(
        &db,
        EngineConfig {
            queue_depth: 1024,
            snapshot_every: u64::MAX / 2,
            broadcast_depth: 1024,
            ..EngineConfig::default()
        },
    )
    .expect("the engine starts");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let created = handle
            .execute(Command::CreateTournament {
                config: TournamentConfig::freezeout(
                    "CPU bench",
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
        let mut entries = Vec::new();
        for n in 0..20 {
            let details = PlayerDetails {
                name: format!("CPU bench player {n}"),
                ..Default::default()
            };
            handle
                .execute(Command::RegisterNewPlayer {
                    tournament_id,
                    details,
                })
                .await
                .expect("a registration");
            let state = handle.state();
            let tournament = &state.tournaments[&tournament_id];
            entries = tournament.entries.keys().copied().collect();
        }
        for n in 0..commands {
            let entry_id = entries[(n as usize) % entries.len()];
            handle
                .execute(Command::Tournament {
                    tournament_id,
                    command: TournamentCommand::ReportChips {
                        entry_id,
                        chips: 1_000 + n,
                    },
                })
                .await
                .expect("a chip report");
        }
        handle.shutdown().await;
    });
    writer.join().expect("the writer stops");
    println!("ran {commands} chip reports");
}
