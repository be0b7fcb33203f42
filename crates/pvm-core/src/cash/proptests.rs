//! Random command sequences: whatever `decide` accepts, the folded state keeps its
//! invariants, and `apply` never panics, even on events replayed out of order.

use super::*;
use crate::entropy::{Entropy, SeededEntropy};
use crate::time::MINUTE_MS;
use proptest::prelude::*;

/// A command with its ids as small indexes into whatever exists when it runs, so most
/// generated commands refer to real games, tables and entries and some to unknown ones.
#[derive(Debug, Clone)]
enum Op {
    CreateGame {
        kind: u8,
        blind: u8,
        named: bool,
    },
    Rename {
        game: u8,
        label: u8,
    },
    CloseGame {
        game: u8,
    },
    Link {
        must_move: u8,
        main: u8,
    },
    Unlink {
        game: u8,
    },
    AddTable {
        number: u8,
        seats: u8,
        game: u8,
    },
    ChangeTableGame {
        table: u8,
        game: u8,
    },
    OpenTable {
        table: u8,
    },
    CloseTable {
        table: u8,
    },
    SeatWalkIn {
        table: u8,
        seat: Option<u8>,
        person: u8,
    },
    SeatFromList {
        entry: u8,
        table: u8,
        seat: Option<u8>,
    },
    /// `occupant` indexes the occupied seats of the room.
    Unseat {
        occupant: u8,
    },
    Move {
        occupant: u8,
        to: u8,
        to_seat: Option<u8>,
    },
    Join {
        game: u8,
        person: u8,
    },
    Call {
        entry: u8,
    },
    UndoCall {
        entry: u8,
    },
    Remove {
        entry: u8,
    },
    NoShow {
        entry: u8,
    },
    Expire,
    Wait {
        minutes: u8,
    },
    Settings {
        remove_on_miss: bool,
        remove_others: bool,
        sample: u8,
    },
}

/// Mostly "any free seat", sometimes a named seat, rarely one that does not exist.
fn seat() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![3 => Just(None), 2 => (0u8..8).prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    let small = 0u8..12;
    prop_oneof![
        3 => (0u8..3, 1u8..4, any::<bool>()).prop_map(|(kind, blind, named)| Op::CreateGame { kind, blind, named }),
        1 => (small.clone(), 0u8..3).prop_map(|(game, label)| Op::Rename { game, label }),
        1 => small.clone().prop_map(|game| Op::CloseGame { game }),
        1 => (small.clone(), small.clone()).prop_map(|(must_move, main)| Op::Link { must_move, main }),
        1 => small.clone().prop_map(|game| Op::Unlink { game }),
        3 => (5u8..9, 2u8..10, small.clone()).prop_map(|(number, seats, game)| Op::AddTable { number, seats, game }),
        1 => (small.clone(), small.clone()).prop_map(|(table, game)| Op::ChangeTableGame { table, game }),
        3 => small.clone().prop_map(|table| Op::OpenTable { table }),
        1 => small.clone().prop_map(|table| Op::CloseTable { table }),
        4 => (small.clone(), seat(), 0u8..10).prop_map(|(table, seat, person)| Op::SeatWalkIn { table, seat, person }),
        5 => (small.clone(), small.clone(), seat()).prop_map(|(entry, table, seat)| Op::SeatFromList { entry, table, seat }),
        2 => small.clone().prop_map(|occupant| Op::Unseat { occupant }),
        4 => (small.clone(), small.clone(), seat()).prop_map(|(occupant, to, to_seat)| Op::Move { occupant, to, to_seat }),
        6 => (small.clone(), 0u8..10).prop_map(|(game, person)| Op::Join { game, person }),
        3 => small.clone().prop_map(|entry| Op::Call { entry }),
        1 => small.clone().prop_map(|entry| Op::UndoCall { entry }),
        1 => small.clone().prop_map(|entry| Op::Remove { entry }),
        1 => small.clone().prop_map(|entry| Op::NoShow { entry }),
        2 => Just(Op::Expire),
        2 => (0u8..12).prop_map(|minutes| Op::Wait { minutes }),
        1 => (any::<bool>(), any::<bool>(), 0u8..6).prop_map(|(remove_on_miss, remove_others, sample)| Op::Settings { remove_on_miss, remove_others, sample }),
    ]
}

/// People who come to the room: some share a name with different player ids, one player id
/// appears under two names, and "ana" differs from "Ana" only in case.
fn person(i: u8) -> (String, Option<PlayerId>) {
    let pid = |n: u128| Some(PlayerId(uuid::Uuid::from_u128(n)));
    let (name, id) = match i % 10 {
        0 => ("Ana", None),
        1 => ("ana", None),
        2 => ("Bob", pid(1)),
        3 => ("Robert", pid(1)),
        4 => ("Cy", pid(2)),
        5 => ("Cy", pid(3)),
        6 => ("Dee", None),
        7 => ("Eve Long", None),
        8 => ("Fay", pid(4)),
        _ => ("Gus", None),
    };
    (name.to_string(), id)
}

/// Index 11 (the top of the generated range) names something that does not exist; every
/// other index wraps onto what does.
fn pick<T: Copy>(items: &[T], i: u8, unknown: T) -> T {
    if i >= 11 || items.is_empty() {
        return unknown;
    }
    items
        .get(usize::from(i) % items.len())
        .copied()
        .unwrap_or(unknown)
}

/// A room that is already dealing, so random commands mostly land on real tables and lists:
/// NLH 1/2, NLH 1/3 and PLO 2/5, NLH 1/2 being the must-move game for NLH 1/3, four
/// tables of which three are open.
fn opening_night(
    state: &mut CashState,
    now: Timestamp,
    entropy: &mut dyn Entropy,
) -> Vec<CashEvent> {
    let mut log = Vec::new();
    let mut run = |state: &mut CashState, cmd: CashCommand| -> Vec<CashEvent> {
        let events = decide(state, cmd, now, entropy).unwrap_or_default();
        for e in &events {
            apply(state, e);
        }
        log.extend(events.iter().cloned());
        events
    };
    let mut games = Vec::new();
    for (game, sb, bb) in [("NLH", 1, 2), ("NLH", 1, 3), ("PLO", 2, 5)] {
        for e in run(
            state,
            CashCommand::CreateGame {
                game: game.into(),
                small_blind: Money::units(sb),
                big_blind: Money::units(bb),
                min_buy_in: None,
                max_buy_in: None,
                name: None,
            },
        ) {
            if let CashEvent::GameCreated { game_id, .. } = e {
                games.push(game_id);
            }
        }
    }
    let (Some(mm), Some(main), Some(plo)) = (games.first(), games.get(1), games.get(2)) else {
        return log;
    };
    run(
        state,
        CashCommand::LinkMustMove {
            must_move_game_id: *mm,
            main_game_id: *main,
        },
    );
    for (number, seat_count, game_id, open) in [
        (1, 4, *main, true),
        (2, 3, *mm, true),
        (3, 6, *plo, true),
        (4, 5, *plo, false),
    ] {
        for e in run(
            state,
            CashCommand::AddTable {
                number,
                seat_count,
                game_id,
            },
        ) {
            if let (CashEvent::TableAdded { table_id, .. }, true) = (e, open) {
                run(state, CashCommand::OpenTable { table_id });
            }
        }
    }
    log
}

fn to_command(state: &CashState, op: &Op) -> CashCommand {
    let unknown = uuid::Uuid::from_u128(0xdead);
    let games: Vec<GameId> = state.games.keys().copied().collect();
    let tables: Vec<TableId> = state.tables.keys().copied().collect();
    let entries: Vec<WaitlistEntryId> = state.waitlists.values().flatten().map(|e| e.id).collect();
    let game = |i| pick(&games, i, GameId(unknown));
    let table = |i| pick(&tables, i, TableId(unknown));
    let entry = |i| pick(&entries, i, WaitlistEntryId(unknown));
    let occupied: Vec<(TableId, u8)> = state
        .tables
        .values()
        .flat_map(|t| t.seats.keys().map(move |s| (t.id, *s)))
        .collect();
    let occupant = |i| pick(&occupied, i, (TableId(unknown), 1));
    match op.clone() {
        Op::CreateGame { kind, blind, named } => CashCommand::CreateGame {
            game: ["NLH", "PLO", "Stud"][usize::from(kind % 3)].into(),
            small_blind: Money::units(i64::from(blind)),
            big_blind: Money::units(i64::from(blind) * 2),
            min_buy_in: None,
            max_buy_in: None,
            name: named.then(|| format!("Game {kind}{blind}")),
        },
        Op::Rename { game: g, label } => CashCommand::RenameGame {
            game_id: game(g),
            name: (label > 0).then(|| format!("Label {label}")),
        },
        Op::CloseGame { game: g } => CashCommand::CloseGame { game_id: game(g) },
        Op::Link { must_move, main } => CashCommand::LinkMustMove {
            must_move_game_id: game(must_move),
            main_game_id: game(main),
        },
        Op::Unlink { game: g } => CashCommand::UnlinkMustMove {
            must_move_game_id: game(g),
        },
        Op::AddTable {
            number,
            seats,
            game: g,
        } => CashCommand::AddTable {
            number: u32::from(number),
            seat_count: seats,
            game_id: game(g),
        },
        Op::ChangeTableGame { table: t, game: g } => CashCommand::ChangeTableGame {
            table_id: table(t),
            game_id: game(g),
        },
        Op::OpenTable { table: t } => CashCommand::OpenTable { table_id: table(t) },
        Op::CloseTable { table: t } => CashCommand::CloseTable { table_id: table(t) },
        Op::SeatWalkIn {
            table: t,
            seat,
            person: p,
        } => {
            let (name, player_id) = person(p);
            CashCommand::SeatPlayer {
                table_id: table(t),
                seat,
                name,
                player_id,
            }
        }
        Op::SeatFromList {
            entry: e,
            table: t,
            seat,
        } => CashCommand::SeatFromWaitlist {
            entry_id: entry(e),
            table_id: table(t),
            seat,
        },
        Op::Unseat { occupant: o } => {
            let (table_id, seat) = occupant(o);
            CashCommand::UnseatPlayer { table_id, seat }
        }
        Op::Move {
            occupant: o,
            to,
            to_seat,
        } => {
            let (from_table_id, from_seat) = occupant(o);
            CashCommand::MovePlayer {
                from_table_id,
                from_seat,
                to_table_id: table(to),
                to_seat,
            }
        }
        Op::Join { game: g, person: p } => {
            let (name, player_id) = person(p);
            CashCommand::JoinWaitlist {
                game_id: game(g),
                name,
                phone: None,
                player_id,
            }
        }
        Op::Call { entry: e } => CashCommand::CallPlayer { entry_id: entry(e) },
        Op::UndoCall { entry: e } => CashCommand::UndoCall { entry_id: entry(e) },
        Op::Remove { entry: e } => CashCommand::RemoveFromWaitlist { entry_id: entry(e) },
        Op::NoShow { entry: e } => CashCommand::MarkNoShow { entry_id: entry(e) },
        Op::Expire | Op::Wait { .. } => CashCommand::ExpireCalls {},
        Op::Settings {
            remove_on_miss,
            remove_others,
            sample,
        } => CashCommand::ChangeSettings {
            settings: WaitlistSettings {
                call_response_ms: 3 * MINUTE_MS,
                on_missed_call: if remove_on_miss {
                    MissedCallPolicy::Remove
                } else {
                    MissedCallPolicy::MoveToEnd
                },
                seat_removes_other_lists: remove_others,
                turnover_sample: u32::from(sample),
                board_names: NameDisplay::Initials,
            },
        },
    }
}

fn check_invariants(state: &CashState, now: Timestamp) -> Result<(), TestCaseError> {
    let mut seen_entries = std::collections::BTreeSet::new();
    for (game_id, list) in &state.waitlists {
        for (i, e) in list.iter().enumerate() {
            prop_assert_eq!(e.game_id, *game_id);
            prop_assert!(seen_entries.insert(e.id), "entry {} listed twice", e.id);
            prop_assert_eq!(state.position(e.id), Some(i + 1));
            for other in list.iter().skip(i + 1) {
                prop_assert!(
                    !Person {
                        name: &e.name,
                        player_id: e.player_id
                    }
                    .is(&other.name, other.player_id),
                    "{} is twice on one list",
                    e.name
                );
            }
        }
    }
    let mut seated: Vec<(&str, Option<PlayerId>)> = Vec::new();
    for table in state.tables.values() {
        prop_assert!(table.seats.len() <= usize::from(table.seat_count));
        prop_assert!(
            table.open || table.seats.is_empty(),
            "closed table {} has players",
            table.number
        );
        for (seat, o) in &table.seats {
            prop_assert!((1..=table.seat_count).contains(seat));
            let me = Person {
                name: &o.name,
                player_id: o.player_id,
            };
            prop_assert!(
                !seated.iter().any(|(n, id)| me.is(n, *id)),
                "{} is seated twice",
                o.name
            );
            seated.push((&o.name, o.player_id));
        }
    }
    for line in board(state, now) {
        let positions: Vec<u32> = line.entries.iter().map(|e| e.position).collect();
        let expected: Vec<u32> = (1..=u32::try_from(positions.len()).unwrap_or(0)).collect();
        prop_assert_eq!(positions, expected);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn accepted_commands_keep_lists_contiguous_and_seats_single(
        ops in proptest::collection::vec(op(), 1..64),
        seed in any::<u64>(),
        shuffle_seed in any::<u64>(),
    ) {
        let mut state = CashState::default();
        let mut entropy = SeededEntropy::new(seed);
        let mut now = Timestamp::from_millis(1_800_000_000_000);
        let mut log = opening_night(&mut state, now, &mut entropy);
        for op in &ops {
            if let Op::Wait { minutes } = op {
                now = now.plus_millis(i64::from(*minutes) * MINUTE_MS);
            }
            let cmd = to_command(&state, op);
            if let Ok(events) = decide(&state, cmd, now, &mut entropy) {
                // Every prefix of the log is applied here, one event at a time.
                for e in events {
                    apply(&mut state, &e);
                    log.push(e);
                }
            }
            check_invariants(&state, now)?;
        }

        let mut replayed = CashState::default();
        for e in &log {
            apply(&mut replayed, e);
        }
        prop_assert_eq!(&replayed, &state, "replaying the log gives the same state");

        // Out of order and with gaps, apply must still not panic.
        let mut scrambled = log.clone();
        SeededEntropy::new(shuffle_seed).shuffle(&mut scrambled);
        let mut garbled = CashState::default();
        for e in scrambled.iter().step_by(2).chain(scrambled.iter().rev()) {
            apply(&mut garbled, e);
        }
        for table in garbled.tables.values() {
            prop_assert!(table.seats.keys().all(|s| (1..=table.seat_count).contains(s)));
        }
    }
}
