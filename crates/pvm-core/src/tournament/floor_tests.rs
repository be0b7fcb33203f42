//! Seating, hand-for-hand, bounties, re-entry and the chip plan, proved through the tournament
//! aggregate (`TournamentCommand` → events → `apply`), as the node drives them. Rule numbers are
//! the Poker TDA Rules, 2024 edition.

use super::*;
use crate::chips::{ChipSet, ColourUp, Denomination};
use crate::seating::{self, BalancePolicy, SourceTable};
use crate::testkit::Night;
use crate::time::{MINUTE_MS, SECOND_MS};

fn add_tables(n: &mut Night, count: u32, seats: u8) -> Vec<TableId> {
    for number in 1..=count {
        n.t(TournamentCommand::AddTable { number, seats }).unwrap();
    }
    n.tour().floor.tables.iter().map(|t| t.id).collect()
}

fn counts(n: &Night) -> Vec<usize> {
    n.tour()
        .floor
        .tables
        .iter()
        .map(|t| t.player_count())
        .collect()
}

fn seated_at(n: &Night, table: TableId) -> Vec<EntryId> {
    n.tour()
        .floor
        .table(table)
        .map(|t| t.occupants.values().copied().collect())
        .unwrap_or_default()
}

fn assert_floor_sound(n: &Night) {
    let t = n.tour();
    t.floor.check_integrity().unwrap();
    for tb in &t.floor.tables {
        for e in tb.occupants.values() {
            assert_eq!(
                t.entries[e].status,
                EntryStatus::Active,
                "a busted entry holds a seat"
            );
        }
    }
}

/// Busts one player seated at `table` (the lowest seat), without an eliminator.
fn bust_at(n: &mut Night, table: TableId) -> EntryId {
    let e = seated_at(n, table)[0];
    n.bust(e).unwrap();
    e
}

#[test]
fn rule_11_balancing_moves_the_player_due_big_blind_to_the_worst_seat_of_the_short_table() {
    let mut n = Night::standard();
    let tables = add_tables(&mut n, 2, 9);
    n.field(18);
    assert_eq!(counts(&n), vec![9, 9]);
    for _ in 0..3 {
        bust_at(&mut n, tables[1]);
    }
    assert_eq!(counts(&n), vec![9, 6]);
    for tb in &tables {
        n.t(TournamentCommand::SetButton {
            table_id: *tb,
            seat: 1,
        })
        .unwrap();
    }
    // Rule 11-D: a table 3 short of the largest halts until the move is made.
    assert_eq!(seating::balance_plan(&n.tour().floor).halt, vec![tables[1]]);
    let long = n.tour().floor.table(tables[0]).unwrap().clone();
    let short = n.tour().floor.table(tables[1]).unwrap().clone();
    let mover_seat = long.big_blind_next().unwrap();
    let mover = long.occupants[&mover_seat];
    let target = short.worst_open_seat().unwrap();

    let events = n.t(TournamentCommand::BalanceTables).unwrap();
    assert_eq!(counts(&n), vec![8, 7]);
    let to = n.tour().floor.seat_of(mover).unwrap();
    assert_eq!((to.table, to.seat), (tables[1], target));
    // Rule 11-A: never the small blind. With the button on seat 1 the small blind is the first
    // occupied seat after it.
    let after_button: Vec<u8> = (2..=9)
        .filter(|s| short.occupants.contains_key(s))
        .collect();
    assert_ne!(Some(&target), after_button.first());
    let reason = match &events[0].body {
        crate::EventBody::Tournament {
            event: TournamentEvent::SeatsChanged { reason, .. },
            ..
        } => reason.clone(),
        other => panic!("unexpected {other:?}"),
    };
    assert!(reason.starts_with("balancing"), "{reason}");
    assert!(reason.contains("table 1 seat") && reason.contains("table 2 seat"));
    let err = n.t(TournamentCommand::BalanceTables).unwrap_err();
    assert!(err.to_string().contains("already balanced"), "{err}");
    assert_floor_sound(&n);
}

#[test]
fn rule_11_unknown_buttons_still_balance_and_the_room_is_told_what_to_confirm() {
    let mut n = Night::standard();
    let tables = add_tables(&mut n, 2, 9);
    n.field(18);
    for _ in 0..3 {
        bust_at(&mut n, tables[1]);
    }
    let events = n.t(TournamentCommand::BalanceTables).unwrap();
    assert_eq!(counts(&n), vec![8, 7]);
    let reason = match &events[0].body {
        crate::EventBody::Tournament {
            event: TournamentEvent::SeatsChanged { reason, .. },
            ..
        } => reason.clone(),
        other => panic!("unexpected {other:?}"),
    };
    assert!(reason.contains("confirm"), "{reason}");
}

#[test]
fn rule_11c_the_posted_order_policy_takes_the_player_from_the_table_breaking_next() {
    let mut n = Night::standard();
    let tables = add_tables(&mut n, 3, 9);
    n.field(24);
    assert_eq!(counts(&n), vec![8, 8, 8]);
    n.t(TournamentCommand::SetBalancePolicy {
        policy: BalancePolicy {
            source: SourceTable::PostedOrder,
            ..BalancePolicy::default()
        },
    })
    .unwrap();
    n.t(TournamentCommand::SetBreakOrder {
        tables: vec![tables[2], tables[0], tables[1]],
    })
    .unwrap();
    for _ in 0..3 {
        bust_at(&mut n, tables[1]);
    }
    assert_eq!(counts(&n), vec![8, 5, 8]);
    n.t(TournamentCommand::BalanceTables).unwrap();
    // The tolerance in force is 1 (three tables ≤ four): two moves, the first from table 3.
    let c = counts(&n);
    assert_eq!(c.iter().sum::<usize>(), 21);
    assert!(
        c.iter().max().unwrap() - c.iter().min().unwrap() <= 1,
        "{c:?}"
    );
    assert_eq!(c[2], 7, "table 3 breaks next, so it gives first: {c:?}");
}

#[test]
fn rule_10_break_table_follows_the_posted_break_order_and_redraws_into_open_seats() {
    let mut n = Night::standard();
    let tables = add_tables(&mut n, 3, 9);
    let es = n.field(21);
    assert_eq!(counts(&n), vec![7, 7, 7]);
    n.t(TournamentCommand::SetBreakOrder {
        tables: vec![tables[1], tables[2], tables[0]],
    })
    .unwrap();
    // 21 players do not fit at two tables of 9: nothing to break yet.
    let err = n
        .t(TournamentCommand::BreakTable { table_id: None })
        .unwrap_err();
    assert!(err.to_string().contains("no table needs breaking"), "{err}");
    for _ in 0..3 {
        bust_at(&mut n, tables[0]);
    }
    let leaving = seated_at(&n, tables[1]);
    assert_eq!(leaving.len(), 7);
    n.t(TournamentCommand::BreakTable { table_id: None })
        .unwrap();
    assert_eq!(counts(&n), vec![9, 0, 9]);
    for e in &leaving {
        let s = n.tour().floor.seat_of(*e).unwrap();
        assert_ne!(s.table, tables[1], "a player stayed at the broken table");
    }
    let active = es
        .iter()
        .filter(|e| n.tour().entries[*e].status == EntryStatus::Active)
        .count();
    assert_eq!(n.tour().floor.player_count(), active);
    // The broken table can now leave the floor and the break order.
    n.t(TournamentCommand::RemoveTable {
        table_id: tables[1],
    })
    .unwrap();
    assert!(!n.tour().floor.break_order.contains(&tables[1]));
    assert_floor_sound(&n);
}

#[test]
fn rule_10_break_draws_are_reproducible_from_the_seed() {
    let play = || {
        let mut n = Night::standard();
        let tables = add_tables(&mut n, 2, 9);
        n.field(8);
        n.t(TournamentCommand::BreakTable {
            table_id: Some(tables[1]),
        })
        .unwrap();
        n.tour().floor.clone()
    };
    assert_eq!(play(), play());
}

#[test]
fn rp_9_final_table_redraw_seats_every_finalist_at_the_final_table() {
    let mut n = Night::standard();
    let tables = add_tables(&mut n, 2, 9);
    let es = n.field(14);
    for e in &es[..5] {
        n.bust(*e).unwrap();
    }
    assert_eq!(n.tour().active_count(), 9);
    n.t(TournamentCommand::FinalTable {
        table_id: tables[0],
    })
    .unwrap();
    assert_eq!(counts(&n), vec![9, 0]);
    for e in n.tour().active_entries() {
        assert_eq!(n.tour().floor.seat_of(e.id).unwrap().table, tables[0]);
    }
    assert_floor_sound(&n);
}

#[test]
fn seating_changes_undo_and_redo_in_order_and_refuse_once_the_player_has_gone() {
    let mut n = Night::standard();
    let tables = add_tables(&mut n, 2, 9);
    n.field(8);
    assert_eq!(counts(&n), vec![4, 4]);
    let before = n.tour().floor.clone();
    n.t(TournamentCommand::BreakTable {
        table_id: Some(tables[1]),
    })
    .unwrap();
    assert_eq!(counts(&n), vec![8, 0]);
    let broken = n.tour().floor.clone();
    n.t(TournamentCommand::UndoSeating).unwrap();
    assert_eq!(n.tour().floor, before, "undo puts every player back");
    n.t(TournamentCommand::RedoSeating).unwrap();
    assert_eq!(n.tour().floor, broken, "redo makes the same moves again");

    let mover = seated_at(&n, tables[0])[0];
    let from = n.tour().floor.seat_of(mover).unwrap();
    let to = SeatRef {
        table: tables[1],
        seat: 1,
    };
    n.t(TournamentCommand::MoveEntry {
        entry_id: mover,
        to,
    })
    .unwrap();
    n.t(TournamentCommand::UndoSeating).unwrap();
    assert_eq!(n.tour().floor.seat_of(mover), Some(from));
    n.t(TournamentCommand::RedoSeating).unwrap();
    assert_eq!(n.tour().floor.seat_of(mover), Some(to));

    // The player busts after the move: the move can no longer be undone, and the refusal
    // says why.
    n.bust(mover).unwrap();
    let err = n.t(TournamentCommand::UndoSeating).unwrap_err();
    assert!(
        err.to_string().contains("is no longer at table 2 seat 1"),
        "{err}"
    );
    assert_floor_sound(&n);
}

/// Two tables of nine with twelve players, the clock running and both buttons on seat 1.
fn hand_for_hand_night() -> (Night, Vec<TableId>) {
    let mut n = Night::standard();
    let tables = add_tables(&mut n, 2, 9);
    n.field(12);
    n.t(TournamentCommand::StartClock).unwrap();
    for tb in &tables {
        n.t(TournamentCommand::SetButton {
            table_id: *tb,
            seat: 1,
        })
        .unwrap();
    }
    n.t(TournamentCommand::SetHandForHand { on: true }).unwrap();
    n.wait_minutes(3);
    (n, tables)
}

fn remaining_ms(n: &Night) -> i64 {
    n.tour().clock.view(&n.tour().structure, n.now).remaining_ms
}

#[test]
fn rp_8_the_clock_loses_the_per_hand_time_once_per_hand_whatever_the_number_of_tables() {
    let (mut n, tables) = hand_for_hand_night();
    let start = remaining_ms(&n);
    n.t(TournamentCommand::HandCompleted {
        table_id: tables[0],
    })
    .unwrap();
    assert_eq!(remaining_ms(&n), start, "table 2 is still playing the hand");
    let err = n
        .t(TournamentCommand::HandCompleted {
            table_id: tables[0],
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "hand-for-hand: table 1 has already finished this hand; waiting for table 2"
    );
    n.t(TournamentCommand::HandCompleted {
        table_id: tables[1],
    })
    .unwrap();
    assert_eq!(start - remaining_ms(&n), 2 * MINUTE_MS);
    for tb in &tables {
        n.t(TournamentCommand::HandCompleted { table_id: *tb })
            .unwrap();
    }
    assert_eq!(start - remaining_ms(&n), 4 * MINUTE_MS);
    // Paused between hands, no time is lost, but the hand is still counted for the buttons.
    n.t(TournamentCommand::PauseClock).unwrap();
    for tb in &tables {
        n.t(TournamentCommand::HandCompleted { table_id: *tb })
            .unwrap();
    }
    assert_eq!(start - remaining_ms(&n), 4 * MINUTE_MS);
    assert!(n.tour().hand_for_hand_done.is_empty());
}

#[test]
fn rp_8_the_per_hand_time_follows_the_config_and_never_eats_into_the_next_level() {
    let mut c = TournamentConfig::freezeout("H4H", Money::units(100), Money::ZERO, 20_000);
    c.hand_for_hand_secs_per_hand = 90;
    let mut n = Night::new(c);
    let tables = add_tables(&mut n, 2, 9);
    n.field(12);
    n.t(TournamentCommand::StartClock).unwrap();
    n.t(TournamentCommand::SetHandForHand { on: true }).unwrap();
    let start = remaining_ms(&n);
    for tb in &tables {
        n.t(TournamentCommand::HandCompleted { table_id: *tb })
            .unwrap();
    }
    assert_eq!(start - remaining_ms(&n), 90 * SECOND_MS);
    n.t(TournamentCommand::SetTimeLeft { seconds: 30 }).unwrap();
    for tb in &tables {
        n.t(TournamentCommand::HandCompleted { table_id: *tb })
            .unwrap();
    }
    let view = n.tour().clock.view(&n.tour().structure, n.now);
    assert_eq!(
        view.level_number,
        Some(2),
        "level 1 ran out; level 2 is whole"
    );
    assert_eq!(view.elapsed_ms, 0);
    assert_eq!(view.remaining_ms, n.level_minutes(2) * MINUTE_MS);
}

#[test]
fn rp_8_players_busting_at_different_tables_on_one_hand_share_the_places() {
    let mut c = TournamentConfig::freezeout("Bubble", Money::units(100), Money::ZERO, 20_000);
    c.payout_plan = crate::payouts::PayoutPlan::Custom {
        shares_bp: vec![4_000, 2_500, 1_500, 1_000, 600, 400],
    };
    let mut n = Night::new(c);
    let tables = add_tables(&mut n, 2, 9);
    n.field(12);
    n.t(TournamentCommand::SetHandForHand { on: true }).unwrap();
    let a = seated_at(&n, tables[0])[0];
    let b = seated_at(&n, tables[1])[0];
    n.t(TournamentCommand::Bust {
        busts: vec![
            BustInput {
                entry_id: a,
                stack: Some(1_000),
            },
            BustInput {
                entry_id: b,
                stack: Some(9_000),
            },
        ],
        eliminated_by: None,
    })
    .unwrap();
    for e in [a, b] {
        let entry = &n.tour().entries[&e];
        assert_eq!(
            (entry.place, entry.shared_places),
            (Some(11), 2),
            "stacks do not matter"
        );
    }
    // Two at one table on one hand are still placed by their starting stacks, so the stacks
    // are needed.
    let pair = seated_at(&n, tables[0]);
    let err = n
        .t(TournamentCommand::Bust {
            busts: vec![
                BustInput {
                    entry_id: pair[0],
                    stack: None,
                },
                BustInput {
                    entry_id: pair[1],
                    stack: None,
                },
            ],
            eliminated_by: None,
        })
        .unwrap_err();
    assert!(err.to_string().contains("give each one's stack"), "{err}");
    // Near the money: the 6th and 7th busting at different tables on one hand split 6th's
    // prize (and 7th's, which is nothing).
    while n.tour().active_count() > 7 {
        let fuller = if counts(&n)[0] >= counts(&n)[1] { 0 } else { 1 };
        bust_at(&mut n, tables[fuller]);
    }
    let per_table: Vec<EntryId> = tables
        .iter()
        .filter_map(|tb| seated_at(&n, *tb).first().copied())
        .collect();
    assert_eq!(per_table.len(), 2, "both tables still play");
    n.t(TournamentCommand::Bust {
        busts: per_table
            .iter()
            .map(|e| BustInput {
                entry_id: *e,
                stack: None,
            })
            .collect(),
        eliminated_by: None,
    })
    .unwrap();
    let results = n.tour().results(Money::units(1));
    let sixth: Vec<_> = results.iter().filter(|r| r.place == 6).collect();
    assert_eq!(sixth.len(), 2);
    // 6th pays 4% of 1,200 = 48: 24 each.
    for r in sixth {
        assert_eq!(r.paid, Some(Money::units(24)));
    }
}

#[test]
fn fixed_bounties_for_a_double_knockout_are_paid_undone_and_redone_exactly() {
    let mut c = TournamentConfig::freezeout("KO", Money::units(100), Money::units(10), 20_000);
    c.bounty = Money::units(20);
    c.bounty_kind = BountyKind::Fixed;
    let mut n = Night::new(c);
    let es = n.field(5);
    n.t(TournamentCommand::Bust {
        busts: vec![
            BustInput {
                entry_id: es[0],
                stack: Some(4_000),
            },
            BustInput {
                entry_id: es[1],
                stack: Some(6_000),
            },
        ],
        eliminated_by: Some(es[2]),
    })
    .unwrap();
    assert_eq!(n.tour().entries[&es[2]].bounties_won, Money::units(40));
    assert_eq!(n.tour().entries[&es[1]].place, Some(4));
    n.t(TournamentCommand::UndoBust).unwrap();
    assert_eq!(n.tour().entries[&es[2]].bounties_won, Money::ZERO);
    assert!(n.tour().active_entries().count() == 5);
    n.t(TournamentCommand::RedoBust).unwrap();
    assert_eq!(n.tour().entries[&es[2]].bounties_won, Money::units(40));
    // Bounties never enter the prize pool: 5 × (100 − 10 − 20).
    assert_eq!(n.tour().prize_pool().total, Money::units(350));
}

/// Bounty money is never created or lost: what is on heads plus what was collected is what
/// the entries paid in bounties.
fn bounty_money(t: &Tournament) -> Money {
    t.entries
        .values()
        .map(|e| {
            let on_head = if e.status == EntryStatus::Active {
                e.bounty
            } else {
                Money::ZERO
            };
            on_head + e.bounties_won
        })
        .sum()
}

#[test]
fn progressive_bounties_conserve_money_through_busts_undo_and_redo() {
    let mut c = TournamentConfig::freezeout("PKO", Money::units(100), Money::units(10), 20_000);
    c.bounty = Money::cents(2_501);
    c.bounty_kind = BountyKind::Progressive;
    let mut n = Night::new(c);
    let es = n.field(6);
    let paid_in = Money::cents(2_501) * 6;
    assert_eq!(bounty_money(n.tour()), paid_in);
    for (loser, winner) in [(0, 5), (1, 5), (2, 4), (5, 4)] {
        n.t(TournamentCommand::Bust {
            busts: vec![BustInput {
                entry_id: es[loser],
                stack: None,
            }],
            eliminated_by: Some(es[winner]),
        })
        .unwrap();
        assert_eq!(bounty_money(n.tour()), paid_in);
    }
    // Each knock-out of a 25.01 head paid 12.50 and put 12.51 onto the eliminator's head.
    n.t(TournamentCommand::UndoBust).unwrap();
    assert_eq!(bounty_money(n.tour()), paid_in);
    let k = &n.tour().entries[&es[5]];
    assert_eq!(k.bounties_won, Money::cents(1_250 * 2));
    assert_eq!(k.bounty, Money::cents(2_501 + 1_251 * 2));
    n.t(TournamentCommand::RedoBust).unwrap();
    assert_eq!(bounty_money(n.tour()), paid_in);
    assert_eq!(n.tour().entries[&es[5]].status, EntryStatus::Busted);
}

#[test]
fn rule_8a_a_re_entry_draws_from_the_same_seat_pool_and_adds_to_the_prize_pool() {
    let mut n = Night::standard();
    let tables = add_tables(&mut n, 2, 9);
    let es = n.field(10);
    n.t(TournamentCommand::StartClock).unwrap();
    let ana = n.tour().entries[&es[0]].player_id;
    n.bust(es[0]).unwrap();
    let counts_before = counts(&n);
    let again = n.register(ana);
    let entry = &n.tour().entries[&again];
    assert!(entry.is_reentry);
    assert_eq!(entry.number, 11);
    let seat = n.tour().floor.seat_of(again).expect("re-entry is seated");
    // The draw goes to the table with the fewest players (Rule 7, 8-A).
    let fewest = tables
        .iter()
        .zip(&counts_before)
        .min_by_key(|(_, c)| **c)
        .map(|(t, _)| *t)
        .unwrap();
    if counts_before[0] != counts_before[1] {
        assert_eq!(seat.table, fewest);
    }
    let pool = n.tour().prize_pool();
    assert_eq!((pool.entries, pool.reentries), (11, 1));
    assert_eq!(pool.total, Money::units(90 * 11));
    let stats = n.tour().stats(n.now);
    assert_eq!(stats.unique_players, 10);
    assert_eq!(stats.players_left, 10);
}

fn chip(value: u64, colour: &str) -> Denomination {
    Denomination {
        value,
        colour: colour.into(),
    }
}

fn chip_plan(colour_ups: Vec<(u32, Vec<u64>)>) -> ChipPlan {
    ChipPlan {
        chip_set: ChipSet {
            denominations: vec![
                chip(25, "green"),
                chip(100, "black"),
                chip(500, "purple"),
                chip(1_000, "yellow"),
                chip(5_000, "orange"),
                chip(25_000, "grey"),
            ],
        },
        colour_ups: colour_ups
            .into_iter()
            .map(|(after_level, remove)| ColourUp {
                after_level,
                remove,
            })
            .collect(),
    }
}

fn config_with(plan: ChipPlan) -> TournamentConfig {
    let mut c = TournamentConfig::freezeout("Chips", Money::units(100), Money::ZERO, 20_000);
    c.chips = Some(plan);
    c
}

#[test]
fn rule_24_a_chip_plan_is_checked_against_the_structure() {
    let s = crate::structure::Structure::template(crate::structure::Template::Standard);
    // The standard ladder needs 25s until level 8 and 100s until level 12.
    config_with(chip_plan(vec![(8, vec![25]), (12, vec![100])]))
        .validate(&s)
        .unwrap();
    let too_early = config_with(chip_plan(vec![(4, vec![25])]))
        .validate(&s)
        .unwrap_err();
    assert_eq!(
        too_early.to_string(),
        "level 5: the small blind of 250 cannot be paid with the chips in play then (the \
         smallest is 100): colour up later, or change the blinds"
    );
    let no_break = config_with(chip_plan(vec![(6, vec![25])]))
        .validate(&s)
        .unwrap_err();
    assert!(
        no_break.to_string().contains("needs a break after level 6"),
        "{no_break}"
    );
    let skipping = config_with(chip_plan(vec![(8, vec![100])]))
        .validate(&s)
        .unwrap_err();
    assert!(
        skipping.to_string().contains("not the smallest"),
        "{skipping}"
    );
    let mut odd_stack = config_with(chip_plan(vec![]));
    odd_stack.starting_stack = 20_010;
    let err = odd_stack.validate(&s).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the starting stack of 20,010 cannot be made from the chip set: its smallest chip is 25"
    );
    let shared_colour = ChipPlan {
        chip_set: ChipSet {
            denominations: vec![chip(25, "green"), chip(100, "Green")],
        },
        colour_ups: vec![],
    };
    assert!(config_with(shared_colour).validate(&s).is_err());
}

#[test]
fn rule_24_a_tournament_with_a_bad_chip_plan_is_refused_and_a_structure_change_is_rechecked() {
    let mut n = Night::new(config_with(chip_plan(vec![(8, vec![25])])));
    // A structure without the break after level 8 would strand the colour-up.
    let mut s = n.tour().structure.clone();
    let idx = s.index_of_level(8).unwrap();
    s.items.remove(idx + 1);
    let err = n
        .t(TournamentCommand::SetStructure { structure: s })
        .unwrap_err();
    assert!(
        err.to_string().contains("needs a break after level 8"),
        "{err}"
    );
}

#[test]
fn rule_24_the_break_shows_the_colour_up_from_the_chip_plan() {
    let mut n = Night::new(config_with(chip_plan(vec![(8, vec![25]), (12, vec![100])])));
    n.field(4);
    let screen = crate::views::clock_screen(&n.state, n.tour(), n.now);
    let notes: Vec<&str> = screen
        .segments
        .iter()
        .filter(|s| s.is_break)
        .map(|s| s.detail.as_str())
        .collect();
    // Breaks follow levels 4, 8, 12, …: only 8 and 12 colour up under this plan.
    assert_eq!(notes[0], "");
    assert_eq!(notes[1], "Colour up: race off the green 25s for black 100s");
    assert_eq!(
        notes[2],
        "Colour up: race off the black 100s for purple 500s"
    );
    n.t(TournamentCommand::StartClock).unwrap();
    n.run_past_level(8);
    let screen = crate::views::clock_screen(&n.state, n.tour(), n.now);
    assert!(screen.on_break);
    assert_eq!(screen.level_title, "Break");
    assert_eq!(
        screen.blinds,
        "Colour up: race off the green 25s for black 100s"
    );
}

#[test]
fn a_config_stored_before_chip_plans_existed_still_reads() {
    let c = TournamentConfig::freezeout("Old", Money::units(50), Money::units(5), 10_000);
    let mut json: serde_json::Value = serde_json::to_value(&c).unwrap();
    json.as_object_mut().unwrap().remove("chips");
    let back: TournamentConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
    let with_plan = config_with(chip_plan(vec![(8, vec![25])]));
    let text = serde_json::to_string(&with_plan).unwrap();
    assert_eq!(
        serde_json::from_str::<TournamentConfig>(&text).unwrap(),
        with_plan
    );
}

#[test]
fn a_redone_bust_frees_the_seat_the_player_took_after_the_undo() {
    let mut n = Night::standard();
    let es = n.field(4);
    n.bust(es[0]).unwrap();
    n.t(TournamentCommand::UndoBust).unwrap();
    // Tables open only now: the restored player draws a seat, then the bust is redone.
    add_tables(&mut n, 1, 9);
    n.t(TournamentCommand::DrawSeat { entry_id: es[0] })
        .unwrap();
    let seat = n.tour().floor.seat_of(es[0]).unwrap();
    n.t(TournamentCommand::RedoBust).unwrap();
    assert_eq!(n.tour().floor.seat_of(es[0]), None);
    assert_floor_sound(&n);
    // Undoing it again returns the player to the seat they held when it was redone.
    n.t(TournamentCommand::UndoBust).unwrap();
    assert_eq!(n.tour().floor.seat_of(es[0]), Some(seat));
}

fn deal_night() -> (Night, Vec<EntryId>) {
    let mut c = TournamentConfig::freezeout("Deal", Money::units(100), Money::ZERO, 10_000);
    c.late_registration = Some(LateRegistration {
        until_level: 6,
        through_break: false,
    });
    c.reentry = Some(ReentryRule { max_per_player: 1 });
    c.payout_plan = crate::payouts::PayoutPlan::Custom {
        shares_bp: vec![5_000, 3_000, 2_000],
    };
    let mut n = Night::new(c);
    let es = n.field(6);
    for e in &es[3..] {
        n.bust(*e).unwrap();
    }
    n.t(TournamentCommand::MakeDeal {
        method: crate::deals::DealMethod::ChipChop { clamp: true },
        stacks: es[..3]
            .iter()
            .zip([30_000, 20_000, 10_000])
            .map(|(e, chips)| DealStack {
                entry_id: *e,
                chips,
            })
            .collect(),
        hold_back: Money::ZERO,
    })
    .unwrap();
    (n, es)
}

#[test]
fn a_standing_deal_refuses_what_would_change_its_pool_until_it_is_cancelled() {
    let (mut n, es) = deal_night();
    let busted_player = n.tour().entries[&es[5]].player_id;
    let err = n
        .t(TournamentCommand::Register {
            player_id: busted_player,
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a deal was made among the last 3 players: cancel it before registering"
    );
    let err = n.t(TournamentCommand::UndoBust).unwrap_err();
    assert!(
        err.to_string()
            .contains("undoing a bust from before the deal"),
        "{err}"
    );
    let mut c = n.tour().config.clone();
    c.guarantee = Some(Money::units(5_000));
    let err = n
        .t(TournamentCommand::UpdateConfig { config: c })
        .unwrap_err();
    assert!(err.to_string().contains("changing the payouts"), "{err}");
    // Play goes on to the end and the whole pool is paid exactly once.
    n.bust(es[2]).unwrap();
    n.t(TournamentCommand::UndoBust).unwrap();
    n.bust(es[2]).unwrap();
    n.bust(es[1]).unwrap();
    let paid: Money = n
        .tour()
        .results(Money::units(1))
        .iter()
        .filter_map(|r| r.paid)
        .sum();
    assert_eq!(paid, n.tour().prize_pool().total);
}

#[test]
fn a_deal_keeps_the_rounding_unit_it_was_priced_with() {
    let (mut n, es) = deal_night();
    n.bust(es[2]).unwrap();
    n.bust(es[1]).unwrap();
    let pool = n.tour().prize_pool().total;
    let paid_with = |unit: Money, n: &Night| -> Money {
        n.tour().results(unit).iter().filter_map(|r| r.paid).sum()
    };
    // The venue changes its rounding unit afterwards: the results still add up.
    assert_eq!(paid_with(Money::units(1), &n), pool);
    assert_eq!(paid_with(Money::units(25), &n), pool);
    n.t(TournamentCommand::UndoBust).unwrap();
    n.t(TournamentCommand::CancelDeal).unwrap();
    // Without the deal, busts from before it can be undone again.
    n.t(TournamentCommand::UndoBust).unwrap();
    n.t(TournamentCommand::UndoBust).unwrap();
    assert_eq!(n.tour().entries[&es[5]].status, EntryStatus::Active);
}

#[test]
fn late_entries_push_earlier_busts_down_so_every_place_is_held_once() {
    let mut n = Night::standard();
    let es = n.field(3);
    n.t(TournamentCommand::StartClock).unwrap();
    n.bust(es[0]).unwrap();
    assert_eq!(n.tour().entries[&es[0]].place, Some(3));
    // Two late entries (one of them Player 00 re-entering) join a field of three.
    let p0 = n.tour().entries[&es[0]].player_id;
    let again = n.register(p0);
    let late = n.player("Late Larry");
    let larry = n.register(late);
    assert_eq!(
        n.tour().entries[&es[0]].place,
        Some(5),
        "5 entries, out first"
    );
    n.bust(larry).unwrap();
    assert_eq!(n.tour().entries[&larry].place, Some(4));
    n.t(TournamentCommand::UndoBust).unwrap();
    let later = n.player("Later Lou");
    n.register(later);
    n.t(TournamentCommand::RedoBust).unwrap();
    n.bust(again).unwrap();
    n.bust(es[1]).unwrap();
    n.bust(es[2]).unwrap();
    let mut places: Vec<u32> = n
        .tour()
        .entries
        .values()
        .map(|e| e.place.unwrap())
        .collect();
    places.sort_unstable();
    assert_eq!(places, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(n.tour().status, TournamentStatus::Finished);
}
