//! The core's two speed figures, printed for `make bench`:
//! - folding 1,000,000 events into a fresh venue (what a node does when it opens its log);
//!   target ≤ 1 s on the 2-core build machine, release build;
//! - `decide` + `apply` per command, median over every command of the run; target ≤ 10 µs;
//! - the copy of the venue the node's writer makes per commit group, with that history.
//!
//! The events come from the real `decide`, driven through busy nights: tournaments with three
//! tables, registrations with seat draws, clock actions, chip counts, hands, busts to a
//! winner, balancing and table breaks, and a cash game with its waiting list. Run with
//! `cargo run --release -p pvm-core --example core_bench` (an optional argument changes the
//! number of events).

use pvm_core::cash::CashCommand;
use pvm_core::ids::{EntryId, GameId, TableId, TournamentId};
use pvm_core::players::PlayerDetails;
use pvm_core::structure::{Structure, Template};
use pvm_core::tournament::{
    BustInput, LateRegistration, ReentryRule, TournamentCommand, TournamentConfig,
};
use pvm_core::{apply, decide, Command, Event, EventBody, Money, SeededEntropy, Timestamp};
use pvm_core::{Entropy, VenueState};
use std::time::{Duration, Instant};

struct Driver {
    state: VenueState,
    entropy: SeededEntropy,
    now: Timestamp,
    events: Vec<Event>,
    timings: Vec<Duration>,
    refused: u64,
}

impl Driver {
    /// Decides and applies one command, timing both together.
    fn run(&mut self, cmd: Command) -> Option<Vec<Event>> {
        let started = Instant::now();
        let result = decide(&self.state, cmd, self.now, &mut self.entropy);
        let out = match result {
            Ok(events) => {
                for e in &events {
                    apply(&mut self.state, e);
                }
                Some(events)
            }
            Err(_) => None,
        };
        self.timings.push(started.elapsed());
        match out {
            Some(events) => {
                self.events.extend(events.iter().cloned());
                Some(events)
            }
            None => {
                self.refused += 1;
                None
            }
        }
    }

    fn t(&mut self, tid: TournamentId, command: TournamentCommand) -> bool {
        self.run(Command::Tournament {
            tournament_id: tid,
            command,
        })
        .is_some()
    }

    fn tick(&mut self, secs: i64) {
        self.now = self.now.plus_millis(secs * 1000);
    }

    fn cash_setup(&mut self) -> (GameId, TableId) {
        self.run(Command::Cash {
            command: CashCommand::CreateGame {
                game: "NLH".into(),
                small_blind: Money::units(1),
                big_blind: Money::units(3),
                min_buy_in: None,
                max_buy_in: None,
                name: None,
            },
        });
        let game = self
            .state
            .cash
            .games
            .keys()
            .next()
            .copied()
            .expect("the game was just created");
        self.run(Command::Cash {
            command: CashCommand::AddTable {
                number: 50,
                seat_count: 9,
                game_id: game,
            },
        });
        let table = self
            .state
            .cash
            .tables
            .keys()
            .next()
            .copied()
            .expect("the table was just added");
        self.run(Command::Cash {
            command: CashCommand::OpenTable { table_id: table },
        });
        (game, table)
    }

    /// One walk-in for the cash game: joins the list, is called and seated; someone leaves.
    fn cash_turn(&mut self, game: GameId, table: TableId, n: u64) {
        self.run(Command::Cash {
            command: CashCommand::JoinWaitlist {
                game_id: game,
                name: format!("Cash Player {n}"),
                phone: None,
                player_id: None,
            },
        });
        let first = self.state.cash.list(game).first().map(|e| e.id);
        if let Some(entry_id) = first {
            self.run(Command::Cash {
                command: CashCommand::CallPlayer { entry_id },
            });
            let full = self
                .state
                .cash
                .tables
                .get(&table)
                .is_some_and(|t| t.first_free_seat().is_none());
            if full {
                let seat = self
                    .state
                    .cash
                    .tables
                    .get(&table)
                    .and_then(|t| t.seats.keys().next().copied())
                    .unwrap_or(1);
                self.run(Command::Cash {
                    command: CashCommand::UnseatPlayer {
                        table_id: table,
                        seat,
                    },
                });
            }
            self.run(Command::Cash {
                command: CashCommand::SeatFromWaitlist {
                    entry_id,
                    table_id: table,
                    seat: None,
                },
            });
        }
    }

    /// A tournament from creation to its winner.
    fn night(&mut self, night: u64, game: GameId, cash_table: TableId) {
        let structure = Structure::template(Template::Turbo);
        let mut config = TournamentConfig::freezeout(
            &format!("Night {night}"),
            Money::units(100),
            Money::units(10),
            10_000,
        );
        config.late_registration = Some(LateRegistration {
            until_level: 4,
            through_break: false,
        });
        config.reentry = Some(ReentryRule { max_per_player: 1 });
        let Some(created) = self.run(Command::CreateTournament { config, structure }) else {
            return;
        };
        let Some(tid) = created.iter().find_map(|e| match &e.body {
            EventBody::Tournament { tournament_id, .. } => Some(*tournament_id),
            _ => None,
        }) else {
            return;
        };
        for number in 1..=3 {
            self.t(tid, TournamentCommand::AddTable { number, seats: 9 });
        }
        for i in 0..24 {
            self.run(Command::RegisterNewPlayer {
                tournament_id: tid,
                details: PlayerDetails {
                    name: format!("Player {night}-{i}"),
                    ..Default::default()
                },
            });
        }
        self.t(tid, TournamentCommand::StartClock);
        let tables: Vec<TableId> = self.tournament_tables(tid);
        for table in &tables {
            self.t(
                tid,
                TournamentCommand::SetButton {
                    table_id: *table,
                    seat: 1,
                },
            );
        }
        let mut hand = 0u64;
        loop {
            let active: Vec<EntryId> = match self.state.tournaments.get(&tid) {
                Some(t) if t.active_count() > 1 => t.active_entries().map(|e| e.id).collect(),
                _ => break,
            };
            hand += 1;
            self.tick(40);
            for table in self.tournament_tables(tid) {
                self.t(tid, TournamentCommand::HandCompleted { table_id: table });
            }
            let who = active[(self.entropy.below(active.len() as u64)) as usize];
            self.t(
                tid,
                TournamentCommand::ReportChips {
                    entry_id: who,
                    chips: 5_000 + hand * 10,
                },
            );
            if hand.is_multiple_of(7) {
                self.t(tid, TournamentCommand::PauseClock);
                self.tick(30);
                self.t(tid, TournamentCommand::ResumeClock);
            }
            if hand.is_multiple_of(3) {
                self.cash_turn(game, cash_table, night * 1_000 + hand);
            }
            if hand.is_multiple_of(4) {
                let loser = active[(self.entropy.below(active.len() as u64)) as usize];
                let winner = active.iter().copied().find(|e| *e != loser);
                self.t(
                    tid,
                    TournamentCommand::Bust {
                        busts: vec![BustInput {
                            entry_id: loser,
                            stack: None,
                        }],
                        eliminated_by: winner,
                    },
                );
                if !self.t(tid, TournamentCommand::BreakTable { table_id: None }) {
                    self.t(tid, TournamentCommand::BalanceTables);
                }
            }
        }
    }

    fn tournament_tables(&self, tid: TournamentId) -> Vec<TableId> {
        self.state
            .tournaments
            .get(&tid)
            .map(|t| t.floor.tables_in_play().map(|tb| tb.id).collect())
            .unwrap_or_default()
    }
}

fn main() {
    let target: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut d = Driver {
        state: VenueState::default(),
        entropy: SeededEntropy::new(2024),
        now: Timestamp::from_millis(1_800_000_000_000),
        events: Vec::with_capacity(target + 1_000),
        timings: Vec::with_capacity(target),
        refused: 0,
    };
    let generating = Instant::now();
    let (game, table) = d.cash_setup();
    let mut night = 0;
    while d.events.len() < target {
        night += 1;
        d.night(night, game, table);
        d.tick(3_600);
    }
    d.events.truncate(target);
    let generated_in = generating.elapsed();

    let mut timings = std::mem::take(&mut d.timings);
    timings.sort_unstable();
    let pct = |p: usize| timings[(timings.len() - 1) * p / 100];

    // Fold the whole log into a fresh venue, as a node does when it opens the log.
    let mut folds = Vec::new();
    let mut folded = VenueState::default();
    for _ in 0..3 {
        let started = Instant::now();
        let mut state = VenueState::default();
        for e in &d.events {
            apply(&mut state, e);
        }
        folds.push(started.elapsed());
        folded = state;
    }
    folds.sort_unstable();
    assert_eq!(folded.applied, target as u64);

    let json: Vec<String> = d
        .events
        .iter()
        .map(|e| serde_json::to_string(e).expect("events serialise"))
        .collect();
    let started = Instant::now();
    let mut from_json = VenueState::default();
    for line in &json {
        let e: Event = serde_json::from_str(line).expect("events deserialise");
        apply(&mut from_json, &e);
    }
    let json_fold = started.elapsed();

    println!(
        "pvm-core bench ({} events, {} tournaments, {} players)",
        target,
        folded.tournaments.len(),
        folded.players.len()
    );
    println!(
        "  generated by {} commands ({} refused) in {:.2} s",
        timings.len(),
        d.refused,
        generated_in.as_secs_f64()
    );
    println!(
        "  fold {} events:               {:>8.3} s (best of 3; median {:.3} s)   target <= 1 s",
        target,
        folds[0].as_secs_f64(),
        folds[1].as_secs_f64()
    );
    println!(
        "  fold per event:                  {:>8.0} ns",
        folds[0].as_nanos() as f64 / target as f64
    );
    println!(
        "  decode JSON + fold {} events: {:>8.3} s",
        target,
        json_fold.as_secs_f64()
    );
    println!(
        "  decide+apply per command: median {:>6.2} µs   p90 {:.2} µs   p99 {:.2} µs   max {:.2} µs   target median <= 10 µs",
        pct(50).as_secs_f64() * 1e6,
        pct(90).as_secs_f64() * 1e6,
        pct(99).as_secs_f64() * 1e6,
        timings[timings.len() - 1].as_secs_f64() * 1e6,
    );
    // The node's writer decides each commit group on a copy of the venue, so that readers
    // keep the state they hold, and drops the previous copy once they let it go: with the
    // history of a million events behind it, that copy must not grow with the history.
    let rounds = 2_000;
    let mut current = std::sync::Arc::new(folded);
    let started = Instant::now();
    for _ in 0..rounds {
        current = std::sync::Arc::new((*current).clone());
    }
    println!(
        "  copy of the venue per commit group: {:>6.2} µs ({} tournaments, {} players kept)",
        (started.elapsed() / rounds).as_secs_f64() * 1e6,
        current.tournaments.len(),
        current.players.len()
    );
    println!(
        "  size of one Event in memory: {} bytes",
        std::mem::size_of::<Event>()
    );
}
