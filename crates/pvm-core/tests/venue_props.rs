//! Property tests of the whole venue through its one `decide` and one `apply`: random
//! sequences of commands (tournaments with registrations, busts, clock actions, seating; cash
//! games and waiting lists; screens and announcements) against the invariants the room relies
//! on. Only the public API is used, as the node uses it.

use proptest::prelude::*;
use pvm_core::cash::{self, CashCommand};
use pvm_core::clock::ClockStatus;
use pvm_core::deals::DealMethod;
use pvm_core::displays::{AnnouncementStyle, ScreenKind, HDMI_DISPLAY_ID};
use pvm_core::ids::{EntryId, GameId, ScreenId, TableId, TournamentId, WaitlistEntryId};
use pvm_core::payouts::PayoutPlan;
use pvm_core::players::PlayerDetails;
use pvm_core::seating::SeatRef;
use pvm_core::structure::{Structure, Template};
use pvm_core::tournament::{
    AddonRule, BountyKind, BustInput, DealStack, EntryStatus, LateRegistration, RebuyRule,
    ReentryRule, Tournament, TournamentCommand, TournamentConfig, TournamentStatus,
};
use pvm_core::views::{self, SetupInfo};
use pvm_core::{apply, decide, Command, Event, Money, SeededEntropy, Timestamp, VenueState};
use std::collections::BTreeSet;

/// A command in terms of indices into what exists when it runs, so that most of the random
/// commands name real things and reach the rules rather than "not found".
#[derive(Debug, Clone)]
enum Op {
    Wait(u16),
    AddPlayer(u8),
    CreateTournament {
        template: u8,
        options: u8,
    },
    Register {
        t: u8,
        p: u8,
    },
    RegisterNew {
        t: u8,
        name: u8,
    },
    Clock {
        t: u8,
        action: u8,
        secs: u16,
    },
    Bust {
        t: u8,
        a: u8,
        b: Option<u8>,
        stacks: (u16, u16),
        by: Option<u8>,
    },
    UndoBust(u8),
    RedoBust(u8),
    Rebuy {
        t: u8,
        e: u8,
    },
    Addon {
        t: u8,
        e: u8,
    },
    AddTable {
        t: u8,
        seats: u8,
    },
    DrawSeat {
        t: u8,
        e: u8,
    },
    MoveEntry {
        t: u8,
        e: u8,
        table: u8,
        seat: u8,
    },
    Balance(u8),
    BreakTable(u8),
    FinalTable {
        t: u8,
        table: u8,
    },
    UndoSeating(u8),
    RedoSeating(u8),
    SetButton {
        t: u8,
        table: u8,
        seat: u8,
    },
    HandCompleted {
        t: u8,
        table: u8,
    },
    HandForHand {
        t: u8,
        on: bool,
    },
    LockSeat {
        t: u8,
        table: u8,
        seat: u8,
    },
    Deal {
        t: u8,
        method: u8,
        hold_back: u8,
    },
    CancelDeal(u8),
    CreateGame(u8),
    CashTable {
        g: u8,
    },
    OpenTable(u8),
    CloseTable(u8),
    Join {
        g: u8,
        name: u8,
    },
    Call(u8),
    SeatFromList {
        w: u8,
        table: u8,
    },
    Unseat {
        table: u8,
        seat: u8,
    },
    Leave(u8),
    NoShow(u8),
    ExpireCalls,
    Screen {
        kind: u8,
        of: u8,
    },
    Assign {
        s: u8,
    },
    Announce {
        secs: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let x = any::<u8>;
    prop_oneof![
        4 => (0u16..1_800).prop_map(Op::Wait),
        2 => x().prop_map(Op::AddPlayer),
        1 => (x(), x()).prop_map(|(template, options)| Op::CreateTournament { template, options }),
        5 => (x(), x()).prop_map(|(t, p)| Op::Register { t, p }),
        5 => (x(), x()).prop_map(|(t, name)| Op::RegisterNew { t, name }),
        6 => (x(), 0u8..8, 0u16..900).prop_map(|(t, action, secs)| Op::Clock { t, action, secs }),
        6 => (x(), x(), proptest::option::weighted(0.3, x()), (0u16..4, 0u16..4), proptest::option::of(x()))
            .prop_map(|(t, a, b, stacks, by)| Op::Bust { t, a, b, stacks, by }),
        2 => x().prop_map(Op::UndoBust),
        1 => x().prop_map(Op::RedoBust),
        1 => (x(), x()).prop_map(|(t, e)| Op::Rebuy { t, e }),
        1 => (x(), x()).prop_map(|(t, e)| Op::Addon { t, e }),
        2 => (x(), 2u8..11).prop_map(|(t, seats)| Op::AddTable { t, seats }),
        2 => (x(), x()).prop_map(|(t, e)| Op::DrawSeat { t, e }),
        1 => (x(), x(), x(), 1u8..11).prop_map(|(t, e, table, seat)| Op::MoveEntry { t, e, table, seat }),
        2 => x().prop_map(Op::Balance),
        2 => x().prop_map(Op::BreakTable),
        1 => (x(), x()).prop_map(|(t, table)| Op::FinalTable { t, table }),
        2 => x().prop_map(Op::UndoSeating),
        1 => x().prop_map(Op::RedoSeating),
        2 => (x(), x(), 1u8..11).prop_map(|(t, table, seat)| Op::SetButton { t, table, seat }),
        3 => (x(), x()).prop_map(|(t, table)| Op::HandCompleted { t, table }),
        1 => (x(), any::<bool>()).prop_map(|(t, on)| Op::HandForHand { t, on }),
        1 => (x(), x(), 1u8..11).prop_map(|(t, table, seat)| Op::LockSeat { t, table, seat }),
        1 => (x(), 0u8..5, 0u8..3).prop_map(|(t, method, hold_back)| Op::Deal { t, method, hold_back }),
        1 => x().prop_map(Op::CancelDeal),
        1 => x().prop_map(Op::CreateGame),
        1 => x().prop_map(|g| Op::CashTable { g }),
        2 => x().prop_map(Op::OpenTable),
        1 => x().prop_map(Op::CloseTable),
        4 => (x(), x()).prop_map(|(g, name)| Op::Join { g, name }),
        2 => x().prop_map(Op::Call),
        3 => (x(), x()).prop_map(|(w, table)| Op::SeatFromList { w, table }),
        2 => (x(), 1u8..10).prop_map(|(table, seat)| Op::Unseat { table, seat }),
        1 => x().prop_map(Op::Leave),
        1 => x().prop_map(Op::NoShow),
        1 => Just(Op::ExpireCalls),
        1 => (x(), x()).prop_map(|(kind, of)| Op::Screen { kind, of }),
        1 => x().prop_map(|s| Op::Assign { s }),
        1 => x().prop_map(|secs| Op::Announce { secs }),
    ]
}

fn pick<T: Copy>(items: &[T], i: u8) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        items.get(usize::from(i) % items.len()).copied()
    }
}

const NAMES: [&str; 12] = [
    "Ana Martins",
    "Bruno Costa",
    "Carla Dias",
    "Dev Patel",
    "Eve Moreau",
    "Finn O'Brien",
    "Gus Lind",
    "Hana Sato",
    "Ivo Peres",
    "Jo Kim",
    "Kai Berg",
    "Lia Rossi",
];

fn config(options: u8, n: usize) -> TournamentConfig {
    let mut c = TournamentConfig::freezeout(
        &format!("Event {n}"),
        Money::units(100),
        Money::units(10),
        10_000,
    );
    if options & 1 != 0 {
        c.bounty = Money::cents(2_501);
        c.bounty_kind = if options & 2 != 0 {
            BountyKind::Progressive
        } else {
            BountyKind::Fixed
        };
    }
    if options & 4 != 0 {
        c.late_registration = Some(LateRegistration {
            until_level: 3,
            through_break: options & 8 != 0,
        });
        c.reentry = Some(ReentryRule { max_per_player: 2 });
    }
    if options & 16 != 0 {
        c.rebuy = Some(RebuyRule {
            price: Money::units(50),
            fee: Money::units(5),
            chips: 10_000,
            until_level: 2,
            max_stack: None,
            max_per_entry: Some(3),
        });
        c.addon = Some(AddonRule {
            price: Money::units(40),
            fee: Money::ZERO,
            chips: 15_000,
            from_level: 2,
            until_level: 3,
        });
    }
    if options & 32 != 0 {
        c.guarantee = Some(Money::units(2_000));
    }
    if options & 64 != 0 {
        c.payout_plan = PayoutPlan::Standard { paid_percent: 15 };
        c.rounding_unit = Some(Money::units(5));
    }
    c
}

struct Venue {
    state: VenueState,
    entropy: SeededEntropy,
    now: Timestamp,
    events: Vec<Event>,
}

impl Venue {
    fn tournaments(&self) -> Vec<TournamentId> {
        self.state.tournaments.keys().copied().collect()
    }

    fn tournament(&self, t: u8) -> Option<&Tournament> {
        pick(&self.tournaments(), t)
            .and_then(|id| self.state.tournaments.get(&id))
            .map(|t| &**t)
    }

    fn active(t: &Tournament) -> Vec<EntryId> {
        t.active_entries().map(|e| e.id).collect()
    }

    fn tables(t: &Tournament) -> Vec<TableId> {
        t.floor.tables.iter().map(|x| x.id).collect()
    }

    fn waitlist_entries(&self) -> Vec<WaitlistEntryId> {
        self.state
            .cash
            .waitlists
            .values()
            .flatten()
            .map(|e| e.id)
            .collect()
    }

    fn cash_tables(&self) -> Vec<TableId> {
        self.state.cash.tables.keys().copied().collect()
    }

    fn games(&self) -> Vec<GameId> {
        self.state
            .cash
            .games
            .iter()
            .filter(|(_, g)| !g.closed)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The command an op stands for in the current state, if it can name what it needs.
    fn command(&self, op: &Op) -> Option<Command> {
        let tc = |t: u8, command: TournamentCommand| -> Option<Command> {
            Some(Command::Tournament {
                tournament_id: pick(&self.tournaments(), t)?,
                command,
            })
        };
        Some(match op {
            Op::Wait(_) => return None,
            Op::AddPlayer(i) => Command::AddPlayer {
                details: PlayerDetails {
                    name: format!("{} {}", NAMES[usize::from(*i) % NAMES.len()], i),
                    ..Default::default()
                },
            },
            Op::CreateTournament { template, options } => Command::CreateTournament {
                config: config(*options, self.state.tournaments.len()),
                structure: Structure::template(Template::ALL[usize::from(*template) % 3]),
            },
            Op::Register { t, p } => {
                let players: Vec<_> = self.state.players.keys().copied().collect();
                tc(
                    *t,
                    TournamentCommand::Register {
                        player_id: pick(&players, *p)?,
                    },
                )?
            }
            Op::RegisterNew { t, name } => Command::RegisterNewPlayer {
                tournament_id: pick(&self.tournaments(), *t)?,
                details: PlayerDetails {
                    name: format!("{} {name}", NAMES[usize::from(*name) % NAMES.len()]),
                    ..Default::default()
                },
            },
            Op::Clock { t, action, secs } => {
                let secs = i64::from(*secs) + 1;
                let command = match action {
                    0 | 1 => TournamentCommand::StartClock,
                    2 => TournamentCommand::PauseClock,
                    3 => TournamentCommand::ResumeClock,
                    4 => TournamentCommand::NextLevel,
                    5 => TournamentCommand::PreviousLevel,
                    6 => TournamentCommand::AddTime {
                        seconds: if secs % 2 == 0 { secs } else { -secs },
                    },
                    _ => TournamentCommand::SetTimeLeft { seconds: secs },
                };
                tc(*t, command)?
            }
            Op::Bust {
                t,
                a,
                b,
                stacks,
                by,
            } => {
                let tour = self.tournament(*t)?;
                let active = Self::active(tour);
                let first = pick(&active, *a)?;
                let mut busts = vec![BustInput {
                    entry_id: first,
                    stack: b.map(|_| u64::from(stacks.0) * 1_000 + 1_000),
                }];
                if let Some(b) = b {
                    let second = pick(&active, *b)?;
                    busts.push(BustInput {
                        entry_id: second,
                        stack: Some(u64::from(stacks.1) * 1_000 + 1_000),
                    });
                }
                let eliminated_by = by.and_then(|i| pick(&active, i));
                tc(
                    *t,
                    TournamentCommand::Bust {
                        busts,
                        eliminated_by,
                    },
                )?
            }
            Op::UndoBust(t) => tc(*t, TournamentCommand::UndoBust)?,
            Op::RedoBust(t) => tc(*t, TournamentCommand::RedoBust)?,
            Op::Rebuy { t, e } => {
                let entry_id = pick(&Self::active(self.tournament(*t)?), *e)?;
                tc(
                    *t,
                    TournamentCommand::Rebuy {
                        entry_id,
                        stack: Some(0),
                    },
                )?
            }
            Op::Addon { t, e } => {
                let entry_id = pick(&Self::active(self.tournament(*t)?), *e)?;
                tc(*t, TournamentCommand::Addon { entry_id })?
            }
            Op::AddTable { t, seats } => {
                let number = self.tournament(*t)?.floor.tables.len() as u32 + 1;
                tc(
                    *t,
                    TournamentCommand::AddTable {
                        number,
                        seats: *seats,
                    },
                )?
            }
            Op::DrawSeat { t, e } => {
                let entry_id = pick(&Self::active(self.tournament(*t)?), *e)?;
                tc(*t, TournamentCommand::DrawSeat { entry_id })?
            }
            Op::MoveEntry { t, e, table, seat } => {
                let tour = self.tournament(*t)?;
                let entry_id = pick(&Self::active(tour), *e)?;
                let to = SeatRef {
                    table: pick(&Self::tables(tour), *table)?,
                    seat: *seat,
                };
                tc(*t, TournamentCommand::MoveEntry { entry_id, to })?
            }
            Op::Balance(t) => tc(*t, TournamentCommand::BalanceTables)?,
            Op::BreakTable(t) => tc(*t, TournamentCommand::BreakTable { table_id: None })?,
            Op::FinalTable { t, table } => {
                let table_id = pick(&Self::tables(self.tournament(*t)?), *table)?;
                tc(*t, TournamentCommand::FinalTable { table_id })?
            }
            Op::UndoSeating(t) => tc(*t, TournamentCommand::UndoSeating)?,
            Op::RedoSeating(t) => tc(*t, TournamentCommand::RedoSeating)?,
            Op::SetButton { t, table, seat } => {
                let table_id = pick(&Self::tables(self.tournament(*t)?), *table)?;
                tc(
                    *t,
                    TournamentCommand::SetButton {
                        table_id,
                        seat: *seat,
                    },
                )?
            }
            Op::HandCompleted { t, table } => {
                let table_id = pick(&Self::tables(self.tournament(*t)?), *table)?;
                tc(*t, TournamentCommand::HandCompleted { table_id })?
            }
            Op::HandForHand { t, on } => tc(*t, TournamentCommand::SetHandForHand { on: *on })?,
            Op::LockSeat { t, table, seat } => {
                let table_id = pick(&Self::tables(self.tournament(*t)?), *table)?;
                tc(
                    *t,
                    TournamentCommand::LockSeat {
                        table_id,
                        seat: *seat,
                    },
                )?
            }
            Op::Deal {
                t,
                method,
                hold_back,
            } => {
                let active = Self::active(self.tournament(*t)?);
                let method = match method {
                    0 => DealMethod::EvenChop,
                    1 => DealMethod::ChipChop { clamp: true },
                    2 => DealMethod::ChipChop { clamp: false },
                    3 => DealMethod::NextPayoutPlusChips,
                    _ => DealMethod::Icm,
                };
                tc(
                    *t,
                    TournamentCommand::MakeDeal {
                        method,
                        stacks: active
                            .iter()
                            .enumerate()
                            .map(|(i, e)| DealStack {
                                entry_id: *e,
                                chips: 5_000 * (i as u64 + 1),
                            })
                            .collect(),
                        hold_back: Money::units(i64::from(*hold_back) * 10),
                    },
                )?
            }
            Op::CancelDeal(t) => tc(*t, TournamentCommand::CancelDeal)?,
            Op::CreateGame(i) => Command::Cash {
                command: CashCommand::CreateGame {
                    game: ["NLH", "PLO", "Mixed"][usize::from(*i) % 3].into(),
                    small_blind: Money::units(i64::from(*i % 4) + 1),
                    big_blind: Money::units(i64::from(*i % 4) * 2 + 2),
                    min_buy_in: None,
                    max_buy_in: None,
                    name: None,
                },
            },
            Op::CashTable { g } => Command::Cash {
                command: CashCommand::AddTable {
                    number: self.state.cash.tables.len() as u32 + 1,
                    seat_count: 6,
                    game_id: pick(&self.games(), *g)?,
                },
            },
            Op::OpenTable(i) => Command::Cash {
                command: CashCommand::OpenTable {
                    table_id: pick(&self.cash_tables(), *i)?,
                },
            },
            Op::CloseTable(i) => Command::Cash {
                command: CashCommand::CloseTable {
                    table_id: pick(&self.cash_tables(), *i)?,
                },
            },
            Op::Join { g, name } => Command::Cash {
                command: CashCommand::JoinWaitlist {
                    game_id: pick(&self.games(), *g)?,
                    name: NAMES[usize::from(*name) % NAMES.len()].into(),
                    phone: None,
                    player_id: None,
                },
            },
            Op::Call(w) => Command::Cash {
                command: CashCommand::CallPlayer {
                    entry_id: pick(&self.waitlist_entries(), *w)?,
                },
            },
            Op::SeatFromList { w, table } => Command::Cash {
                command: CashCommand::SeatFromWaitlist {
                    entry_id: pick(&self.waitlist_entries(), *w)?,
                    table_id: pick(&self.cash_tables(), *table)?,
                    seat: None,
                },
            },
            Op::Unseat { table, seat } => Command::Cash {
                command: CashCommand::UnseatPlayer {
                    table_id: pick(&self.cash_tables(), *table)?,
                    seat: *seat,
                },
            },
            Op::Leave(w) => Command::Cash {
                command: CashCommand::RemoveFromWaitlist {
                    entry_id: pick(&self.waitlist_entries(), *w)?,
                },
            },
            Op::NoShow(w) => Command::Cash {
                command: CashCommand::MarkNoShow {
                    entry_id: pick(&self.waitlist_entries(), *w)?,
                },
            },
            Op::ExpireCalls => Command::Cash {
                command: CashCommand::ExpireCalls {},
            },
            Op::Screen { kind, of } => {
                let kind = match kind % 4 {
                    0 => ScreenKind::TournamentClock {
                        tournament_id: pick(&self.tournaments(), *of)?,
                    },
                    1 => ScreenKind::Payouts {
                        tournament_id: pick(&self.tournaments(), *of)?,
                    },
                    2 => ScreenKind::WaitingList { games: vec![] },
                    _ => {
                        let screens: Vec<ScreenId> = self
                            .state
                            .displays
                            .screens
                            .iter()
                            .filter(|(_, s)| !matches!(s.kind, ScreenKind::Rotation { .. }))
                            .map(|(id, _)| *id)
                            .collect();
                        if screens.is_empty() {
                            return None;
                        }
                        ScreenKind::Rotation {
                            screens,
                            interval_secs: 10,
                        }
                    }
                };
                Command::CreateScreen {
                    name: format!("Screen {of}"),
                    kind,
                }
            }
            Op::Assign { s } => {
                let screens: Vec<ScreenId> = self.state.displays.screens.keys().copied().collect();
                Command::AssignScreen {
                    display_id: HDMI_DISPLAY_ID,
                    screen_id: pick(&screens, *s),
                    always: false,
                }
            }
            Op::Announce { secs } => Command::Announce {
                text: "Last call for late registration".into(),
                style: AnnouncementStyle::Ticker,
                duration_secs: Some(u32::from(*secs) + 1),
            },
        })
    }
}

/// Time played on a tournament's clock: what pause, resume and waiting must conserve.
fn played(t: &Tournament, now: Timestamp) -> i64 {
    t.clock.played_ms(&t.structure, now)
}

/// The invariants every state reached by accepted commands must keep.
fn check_state(state: &VenueState, now: Timestamp) -> Result<(), TestCaseError> {
    for t in state.tournaments.values() {
        t.floor
            .check_integrity()
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", t.config.name)))?;
        // No seat is ever held twice, and only live entries hold seats.
        let mut seated = BTreeSet::new();
        for tb in &t.floor.tables {
            for (seat, e) in &tb.occupants {
                prop_assert!(seated.insert(*e), "entry {e} holds two seats");
                prop_assert!(tb.is_usable(*seat));
                let entry = t.entries.get(e);
                prop_assert!(
                    entry.is_some_and(|x| x.status == EntryStatus::Active),
                    "a busted or unknown entry holds a seat"
                );
            }
        }
        // Payouts always sum to the prize pool, whatever the field and the rounding unit.
        let pool = t.prize_pool();
        let unit = state.settings.rounding_unit;
        let payouts = t.payouts(unit);
        prop_assert_eq!(payouts.iter().copied().sum::<Money>(), pool.total);
        prop_assert!(payouts.iter().all(|m| m.as_cents() >= 0));
        prop_assert_eq!(pool.total, pool.collected + pool.overlay);
        // Places handed out are blocks inside the field that never overlap: a shared block of
        // `s` places is held by exactly `s` entries, and no other entry has a place inside it.
        let mut places = std::collections::BTreeMap::new();
        for e in t.entries.values() {
            if let Some(p) = e.place {
                prop_assert!(p >= 1 && p + e.shared_places - 1 <= t.entries.len() as u32);
                places.entry((p, e.shared_places)).or_insert(0u32);
                *places.get_mut(&(p, e.shared_places)).unwrap() += 1;
            }
        }
        let mut next_free = 1;
        for ((p, shared), holders) in &places {
            prop_assert_eq!(
                holders,
                shared,
                "place {} is held by {} entries",
                p,
                holders
            );
            prop_assert!(*p >= next_free, "place {} overlaps the block before it", p);
            next_free = p + shared;
        }
        let results = t.results(unit);
        if t.status == TournamentStatus::Finished && t.active_count() <= 1 {
            let paid: Money = results.iter().filter_map(|r| r.paid).sum();
            prop_assert_eq!(
                paid,
                pool.total,
                "a finished tournament pays its whole pool"
            );
        }
        let _ = t.stats(now);
        let _ = views::clock_screen(state, t, now);
        let _ = views::seating_screen(t);
        let _ = views::payouts_screen(state, t);
    }
    // Waiting-list positions stay contiguous: 1, 2, 3… on every list, as the board shows them.
    let mut ids = BTreeSet::new();
    for list in state.cash.waitlists.values() {
        for (i, e) in list.iter().enumerate() {
            prop_assert!(ids.insert(e.id), "a list entry appears twice");
            prop_assert_eq!(state.cash.position(e.id), Some(i + 1));
        }
    }
    for g in cash::board(&state.cash, now) {
        let positions: Vec<u32> = g.entries.iter().map(|e| e.position).collect();
        let expected: Vec<u32> = (1..=positions.len() as u32).collect();
        prop_assert_eq!(positions, expected);
        // The board tells the truth: a game shown as a waiting list is running.
        prop_assert_eq!(
            g.kind == cash::ListKind::WaitingList,
            state.cash.is_running(g.game_id)
        );
    }
    // No cash seat holds two people and nobody sits twice.
    let mut people = BTreeSet::new();
    for tb in state.cash.tables.values() {
        prop_assert!(tb.seats.len() <= usize::from(tb.seat_count));
        for (seat, o) in &tb.seats {
            prop_assert!(*seat >= 1 && *seat <= tb.seat_count);
            prop_assert!(
                people.insert(cash::normalized_name(&o.name)),
                "{} sits twice",
                o.name
            );
        }
    }
    let view = views::display_view(state, HDMI_DISPLAY_ID, now, &SetupInfo::default());
    serde_json::to_string(&view).map_err(|e| TestCaseError::fail(e.to_string()))?;
    for id in state.displays.screens.keys() {
        let _ = views::screen_view(state, *id, now, &SetupInfo::default());
    }
    Ok(())
}

fn run(ops: &[Op], seed: u64) -> Result<Venue, TestCaseError> {
    let mut v = Venue {
        state: VenueState::default(),
        entropy: SeededEntropy::new(seed),
        now: Timestamp::from_millis(1_800_000_000_000),
        events: Vec::new(),
    };
    for op in ops {
        if let Op::Wait(secs) = op {
            let before: Vec<(i64, ClockStatus)> = v
                .state
                .tournaments
                .values()
                .map(|t| (played(t, v.now), t.clock.status))
                .collect();
            let dt = i64::from(*secs) * 1_000;
            v.now = v.now.plus_millis(dt);
            for (t, (was, status)) in v.state.tournaments.values().zip(before) {
                let total = t.structure.total_duration_ms();
                let expected = match status {
                    ClockStatus::Running => (was + dt).min(total),
                    _ => was,
                };
                prop_assert_eq!(
                    played(t, v.now),
                    expected,
                    "waiting moved the clock wrongly"
                );
            }
            continue;
        }
        let Some(cmd) = v.command(op) else { continue };
        let clock_neutral = matches!(
            &cmd,
            Command::Tournament {
                command: TournamentCommand::PauseClock
                    | TournamentCommand::ResumeClock
                    | TournamentCommand::StartClock,
                ..
            }
        );
        let before: Vec<i64> = v
            .state
            .tournaments
            .values()
            .map(|t| played(t, v.now))
            .collect();
        let Ok(events) = decide(&v.state, cmd, v.now, &mut v.entropy) else {
            continue;
        };
        for e in &events {
            prop_assert_eq!(e.schema, pvm_core::SCHEMA_VERSION);
            prop_assert_eq!(e.at, v.now);
            prop_assert_eq!(e.id.0.get_version_num(), 7);
            apply(&mut v.state, e);
        }
        v.events.extend(events);
        if clock_neutral {
            // Pause, resume and start never lose or gain a millisecond.
            let after: Vec<i64> = v
                .state
                .tournaments
                .values()
                .map(|t| played(t, v.now))
                .collect();
            prop_assert_eq!(before, after);
        }
        check_state(&v.state, v.now)?;
    }
    Ok(v)
}

/// 48 random nights by default (the suite stays fast); `PROPTEST_CASES=N` runs more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_nights_keep_every_invariant_and_replay_exactly(
        setup in prop::collection::vec(
            prop_oneof![
                Just(Op::CreateTournament { template: 0, options: 0 }),
                Just(Op::CreateGame(0)),
                Just(Op::CashTable { g: 0 }),
            ],
            3..4,
        ),
        ops in prop::collection::vec(op(), 60..200),
        seed in any::<u64>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let all: Vec<Op> = setup.into_iter().chain(ops).collect();
        let v = run(&all, seed)?;

        // Folding the events again gives the same state; so does folding them after a trip
        // through JSON, the form they are stored and synced in.
        let mut replayed = VenueState::default();
        let mut from_json = VenueState::default();
        for e in &v.events {
            apply(&mut replayed, e);
            let text = serde_json::to_string(e).unwrap();
            let back: Event = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&back, e);
            apply(&mut from_json, &back);
        }
        prop_assert_eq!(&replayed, &v.state);
        prop_assert_eq!(&from_json, &v.state);
        let snapshot: VenueState =
            serde_json::from_str(&serde_json::to_string(&v.state).unwrap()).unwrap();
        prop_assert_eq!(&snapshot, &v.state);

        // Any prefix folds (the loop above already folded every one without panicking) into a
        // state the node can keep working with: it draws its screens and takes commands.
        if !v.events.is_empty() {
            let k = cut.index(v.events.len() + 1);
            let mut prefix = VenueState::default();
            for e in &v.events[..k] {
                apply(&mut prefix, e);
            }
            prop_assert_eq!(prefix.applied, k as u64);
            let view = views::display_view(&prefix, HDMI_DISPLAY_ID, v.now, &SetupInfo::default());
            serde_json::to_string(&view).unwrap();
            let mut entropy = SeededEntropy::new(seed ^ 1);
            let announce = Command::Announce {
                text: "Still here".into(),
                style: AnnouncementStyle::Overlay,
                duration_secs: None,
            };
            let events = decide(&prefix, announce, v.now, &mut entropy).unwrap();
            for e in &events {
                apply(&mut prefix, e);
            }
        }
    }

    #[test]
    fn replaying_with_the_same_seed_and_times_makes_the_same_events(
        ops in prop::collection::vec(op(), 20..60),
        seed in any::<u64>(),
    ) {
        let setup = [
            Op::CreateTournament { template: 1, options: 0b0101_0101 },
            Op::AddTable { t: 0, seats: 9 },
            Op::AddTable { t: 0, seats: 9 },
        ];
        let all: Vec<Op> = setup.iter().cloned().chain(ops).collect();
        let a = run(&all, seed)?;
        let b = run(&all, seed)?;
        prop_assert_eq!(a.events, b.events);
    }
}
