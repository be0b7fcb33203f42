//! Seating: the random draw, balancing, breaking tables and the final-table redraw, after the
//! Poker TDA Rules, 2024 edition (Rules 7–11, RP-8, RP-9).
//!
//! Everything here is a plan: the tournament holds a [`Floor`], asks for a plan, records it as
//! events and applies the moves with [`Floor::apply_move`] / [`Floor::apply_moves`]. Every
//! mutation checks that no seat is ever held twice and no entry ever sits in two seats.
//!
//! ## Conventions
//! - Seats are numbered from 1, clockwise.
//! - `Table::button` is the seat that holds the dealer button for the **next hand to be dealt**.
//!   Staff set it (or clear it when nobody knows); [`Floor::advance_button`] moves it to the next
//!   occupied seat when a hand is reported finished. So between hands the small blind is the
//!   first occupied seat clockwise after the button and the big blind the second (heads-up, the
//!   button posts the small blind and the other player the big blind). A button on an empty seat
//!   (a dead button) is allowed.
//! - A locked seat is not in use (TDA 2024 Rule 9: special needs, reserved seats): nobody is
//!   drawn, moved or balanced into it, and it does not count when asking whether players fit.

use crate::entropy::Entropy;
use crate::error::{DomainError, DomainResult};
use crate::ids::{EntryId, TableId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One seat at one table. Seats are 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeatRef {
    pub table: TableId,
    pub seat: u8,
}

/// A physical tournament table and who sits where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub id: TableId,
    /// The number painted on the table, used in every message to staff.
    pub number: u32,
    pub seat_count: u8,
    pub occupants: BTreeMap<u8, EntryId>,
    /// Seats not in use (TDA 2024 Rule 9: reserved, special needs).
    pub locked: BTreeSet<u8>,
    /// Seat holding the button for the next hand; `None` when staff have not said.
    pub button: Option<u8>,
}

/// The tournament's tables, in the posted table order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    /// Vec order is the posted table order.
    pub tables: Vec<Table>,
    /// The posted order in which tables break (TDA 2024 Rule 10).
    pub break_order: Vec<TableId>,
    pub policy: BalancePolicy,
}

/// How tightly tables are kept balanced: the largest and smallest table differ by at most
/// `tolerance` players until only `tight_from_tables` tables remain, then by `tight_tolerance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancePolicy {
    pub tolerance: u8,
    pub tight_tolerance: u8,
    pub tight_from_tables: u32,
    pub source: SourceTable,
}

/// Which table gives up a player when balancing: a predetermined procedure shown to everyone
/// (TDA 2024 Rule 11-C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceTable {
    /// The table with the most players; ties go to the earliest table in the posted order.
    MostPlayers,
    /// The earliest table in the posted break order (then the posted table order) that has at
    /// least two more players than the short table. Players then come from the table that will
    /// break next, so fewer people are moved twice.
    PostedOrder,
}

/// One player moving from one seat to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub entry: EntryId,
    pub from: SeatRef,
    pub to: SeatRef,
    /// Why, in words for the floor and the players.
    pub reason: String,
    /// What staff must confirm before the move is made (e.g. the button is unknown).
    pub needs_confirmation: Option<String>,
}

/// The moves that bring the tables back within tolerance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancePlan {
    /// Apply in order with [`Floor::apply_move`].
    pub moves: Vec<Move>,
    /// Tables 3 or more players short of the largest table: play halts there until the moves
    /// are made (TDA 2024 Rule 11-D).
    pub halt: Vec<TableId>,
}

impl Default for BalancePolicy {
    /// Within 2 players until 4 tables remain, then within 1; the player comes from the table
    /// with the most players.
    fn default() -> Self {
        BalancePolicy {
            tolerance: 2,
            tight_tolerance: 1,
            tight_from_tables: 4,
            source: SourceTable::MostPlayers,
        }
    }
}

impl Table {
    /// An empty table with every seat in use and no button yet.
    pub fn new(id: TableId, number: u32, seat_count: u8) -> Self {
        Table {
            id,
            number,
            seat_count,
            occupants: BTreeMap::new(),
            locked: BTreeSet::new(),
            button: None,
        }
    }

    /// Whether a player may sit in `seat`: it exists and is not locked.
    pub fn is_usable(&self, seat: u8) -> bool {
        (1..=self.seat_count).contains(&seat) && !self.locked.contains(&seat)
    }

    /// Seats in use, whether occupied or not.
    pub fn usable_seat_count(&self) -> usize {
        (1..=self.seat_count).filter(|s| self.is_usable(*s)).count()
    }

    /// Usable seats nobody sits in, lowest first.
    pub fn open_seats(&self) -> Vec<u8> {
        (1..=self.seat_count)
            .filter(|s| self.is_usable(*s) && !self.occupants.contains_key(s))
            .collect()
    }

    pub fn player_count(&self) -> usize {
        self.occupants.len()
    }

    /// The seat of the player due to post the big blind on the next hand, if the button is known
    /// and at least two players sit here.
    pub fn big_blind_next(&self) -> Option<u8> {
        let button = self.known_button()?;
        let order = self.occupied_clockwise_after(button, None);
        let heads_up = order.len() == 2 && self.occupants.contains_key(&button);
        if heads_up {
            // Heads-up the button posts the small blind, so the other player is big blind.
            order.first().copied()
        } else {
            order.get(1).copied()
        }
    }

    /// The worst position for a player moved in to balance (TDA 2024 Rule 11-A): the open seat
    /// that will post the big blind soonest, which is a single big blind on the very next hand
    /// when one is available, and never the small blind. `None` when the button is unknown or no
    /// seat is open.
    pub fn worst_open_seat(&self) -> Option<u8> {
        let button = self.known_button()?;
        let mut best: Option<(usize, u8)> = None;
        for seat in self.open_seats() {
            let Some(hands) = self.hands_until_big_blind_if_seated(button, seat) else {
                continue;
            };
            if best.is_none_or(|(h, _)| hands < h) {
                best = Some((hands, seat));
            }
        }
        best.map(|(_, seat)| seat)
    }

    /// How many hands a newcomer in `seat` waits before posting the big blind, assuming the
    /// button moves one occupied seat per hand; `None` if `seat` would be the small blind.
    fn hands_until_big_blind_if_seated(&self, button: u8, seat: u8) -> Option<usize> {
        let order = self.occupied_clockwise_after(button, Some(seat));
        let position = order.iter().position(|s| *s == seat)?;
        if order.len() == 2 && self.occupants.contains_key(&button) {
            // Heads-up the newcomer faces the button, so posts the big blind at once.
            return Some(0);
        }
        if order.len() < 2 {
            // Alone at the table: no blinds yet, any seat is as good as another.
            return Some(0);
        }
        // Clockwise after the button: small blind, big blind, then each seat in turn posts the
        // big blind one hand later than the one before it.
        position.checked_sub(1)
    }

    /// Occupied seats clockwise strictly after `from`, ending with `from` itself if occupied;
    /// `extra` is counted as occupied (a newcomer being tried in a seat).
    fn occupied_clockwise_after(&self, from: u8, extra: Option<u8>) -> Vec<u8> {
        let after = (from.saturating_add(1)..=self.seat_count).chain(1..=from.min(self.seat_count));
        after
            .filter(|s| self.occupants.contains_key(s) || extra == Some(*s))
            .collect()
    }

    fn known_button(&self) -> Option<u8> {
        self.button.filter(|b| (1..=self.seat_count).contains(b))
    }

    fn label(&self) -> String {
        format!("table {}", self.number)
    }
}

impl Floor {
    /// An empty floor with the given balancing policy.
    pub fn new(policy: BalancePolicy) -> Self {
        Floor {
            tables: Vec::new(),
            break_order: Vec::new(),
            policy,
        }
    }

    pub fn table(&self, id: TableId) -> Option<&Table> {
        self.tables.iter().find(|t| t.id == id)
    }

    fn existing_table(&self, id: TableId) -> DomainResult<&Table> {
        self.table(id)
            .ok_or_else(|| DomainError::not_found("table", id))
    }

    fn table_mut(&mut self, id: TableId) -> DomainResult<&mut Table> {
        self.tables
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| DomainError::not_found("table", id))
    }

    fn label(&self, id: TableId) -> String {
        self.table(id)
            .map(Table::label)
            .unwrap_or_else(|| format!("table {id}"))
    }

    /// Every open seat, tables in posted order, seats lowest first.
    pub fn open_seats(&self) -> Vec<SeatRef> {
        self.tables
            .iter()
            .flat_map(|t| {
                t.open_seats()
                    .into_iter()
                    .map(|seat| SeatRef { table: t.id, seat })
            })
            .collect()
    }

    /// Where `entry` sits, if seated.
    pub fn seat_of(&self, entry: EntryId) -> Option<SeatRef> {
        self.tables.iter().find_map(|t| {
            t.occupants
                .iter()
                .find(|(_, e)| **e == entry)
                .map(|(seat, _)| SeatRef {
                    table: t.id,
                    seat: *seat,
                })
        })
    }

    /// Players seated at all tables.
    pub fn player_count(&self) -> usize {
        self.tables.iter().map(Table::player_count).sum()
    }

    /// Tables with at least one player. An empty table (just broken, or opened and not yet
    /// drawn into) is not in play: balancing neither counts it nor fills it.
    pub fn tables_in_play(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().filter(|t| !t.occupants.is_empty())
    }

    /// The balance tolerance in force for the number of tables in play, never below 1
    /// (a difference of 0 cannot be kept whenever players do not divide evenly).
    pub fn tolerance_in_force(&self) -> u8 {
        let tables = u32::try_from(self.tables_in_play().count()).unwrap_or(u32::MAX);
        let tolerance = if tables <= self.policy.tight_from_tables {
            self.policy.tight_tolerance
        } else {
            self.policy.tolerance
        };
        tolerance.max(1)
    }

    /// Adds an empty table at the end of the posted table order. It is not in the break order
    /// until staff post one with [`Floor::set_break_order`].
    pub fn add_table(&mut self, id: TableId, number: u32, seat_count: u8) -> DomainResult<()> {
        if seat_count < 2 {
            return Err(DomainError::invalid(format!(
                "table {number} needs at least 2 seats, not {seat_count}"
            )));
        }
        if self.table(id).is_some() {
            return Err(DomainError::conflict(format!(
                "{} is already on the floor",
                self.label(id)
            )));
        }
        if self.tables.iter().any(|t| t.number == number) {
            return Err(DomainError::conflict(format!(
                "another table is already numbered {number}"
            )));
        }
        self.tables.push(Table::new(id, number, seat_count));
        Ok(())
    }

    /// Takes an empty table off the floor (and out of the break order).
    pub fn remove_table(&mut self, id: TableId) -> DomainResult<()> {
        let table = self.existing_table(id)?;
        if !table.occupants.is_empty() {
            return Err(DomainError::refused(format!(
                "{} still has {} players seated: break it before removing it",
                table.label(),
                table.player_count()
            )));
        }
        self.tables.retain(|t| t.id != id);
        self.break_order.retain(|t| *t != id);
        Ok(())
    }

    /// Posts the order in which tables break (TDA 2024 Rule 10).
    pub fn set_break_order(&mut self, order: Vec<TableId>) -> DomainResult<()> {
        let mut seen = BTreeSet::new();
        for id in &order {
            self.existing_table(*id)?;
            if !seen.insert(*id) {
                return Err(DomainError::invalid(format!(
                    "{} is listed twice in the break order",
                    self.label(*id)
                )));
            }
        }
        self.break_order = order;
        Ok(())
    }

    /// Takes a seat out of use (TDA 2024 Rule 9: reserved for a player with special needs,
    /// or simply not to be used). Only an empty seat can be locked.
    pub fn lock_seat(&mut self, at: SeatRef) -> DomainResult<()> {
        let table = self.table_mut(at.table)?;
        check_seat_exists(table, at.seat)?;
        if let Some(entry) = table.occupants.get(&at.seat) {
            return Err(DomainError::refused(format!(
                "seat {} at {} is taken by entry {entry}: move the player before locking it",
                at.seat,
                table.label()
            )));
        }
        if !table.locked.insert(at.seat) {
            return Err(DomainError::conflict(format!(
                "seat {} at {} is already locked",
                at.seat,
                table.label()
            )));
        }
        Ok(())
    }

    /// Puts a locked seat back into use.
    pub fn unlock_seat(&mut self, at: SeatRef) -> DomainResult<()> {
        let table = self.table_mut(at.table)?;
        check_seat_exists(table, at.seat)?;
        if !table.locked.remove(&at.seat) {
            return Err(DomainError::refused(format!(
                "seat {} at {} is not locked",
                at.seat,
                table.label()
            )));
        }
        Ok(())
    }

    /// Records where staff put the button for the next hand (`None`: unknown). The seat may be
    /// empty (a dead button) but must exist and be in use.
    pub fn set_button(&mut self, table: TableId, seat: Option<u8>) -> DomainResult<()> {
        let table = self.table_mut(table)?;
        if let Some(seat) = seat {
            check_seat_exists(table, seat)?;
            if table.locked.contains(&seat) {
                return Err(DomainError::refused(format!(
                    "seat {seat} at {} is locked: the button cannot be placed there",
                    table.label()
                )));
            }
        }
        table.button = seat;
        Ok(())
    }

    /// Moves the button on to the next occupied seat after a hand is reported; returns its seat.
    pub fn advance_button(&mut self, table: TableId) -> DomainResult<u8> {
        let table = self.table_mut(table)?;
        let Some(button) = table.known_button() else {
            return Err(DomainError::refused(format!(
                "the button at {} is not known: staff must place it first",
                table.label()
            )));
        };
        let next = table
            .occupied_clockwise_after(button, None)
            .first()
            .copied()
            .ok_or_else(|| {
                DomainError::refused(format!(
                    "nobody sits at {}: the button cannot move",
                    table.label()
                ))
            })?;
        table.button = Some(next);
        Ok(next)
    }

    /// Seats an entry in an open seat (after a draw, or by staff).
    pub fn seat_entry(&mut self, entry: EntryId, at: SeatRef) -> DomainResult<()> {
        if let Some(current) = self.seat_of(entry) {
            return Err(DomainError::conflict(format!(
                "entry {entry} already sits in seat {} at {}",
                current.seat,
                self.label(current.table)
            )));
        }
        let table = self.table_mut(at.table)?;
        check_seat_open(table, at.seat)?;
        table.occupants.insert(at.seat, entry);
        Ok(())
    }

    /// Frees the seat of an entry (busted, disqualified, withdrawn); returns the seat it held.
    pub fn unseat_entry(&mut self, entry: EntryId) -> DomainResult<SeatRef> {
        let at = self
            .seat_of(entry)
            .ok_or_else(|| DomainError::refused(format!("entry {entry} is not seated")))?;
        self.table_mut(at.table)?.occupants.remove(&at.seat);
        Ok(at)
    }

    /// Makes one move. Refused unless the entry sits at `from` and `to` is open.
    pub fn apply_move(&mut self, mv: &Move) -> DomainResult<()> {
        self.apply_moves(std::slice::from_ref(mv))
    }

    /// Makes a set of moves at once, all or nothing: every mover stands up, then every mover
    /// sits down. Needed for a redraw in which one player takes a seat another is leaving
    /// (the final table, RP-9).
    pub fn apply_moves(&mut self, moves: &[Move]) -> DomainResult<()> {
        let mut next = self.clone();
        for mv in moves {
            let table = next.table_mut(mv.from.table)?;
            if table.occupants.get(&mv.from.seat) != Some(&mv.entry) {
                return Err(DomainError::refused(format!(
                    "entry {} does not sit in seat {} at {}: the move is out of date",
                    mv.entry,
                    mv.from.seat,
                    table.label()
                )));
            }
            table.occupants.remove(&mv.from.seat);
        }
        for mv in moves {
            let table = next.table_mut(mv.to.table)?;
            check_seat_open(table, mv.to.seat)?;
            table.occupants.insert(mv.to.seat, mv.entry);
        }
        *self = next;
        Ok(())
    }

    /// Checks the invariants the fields alone cannot enforce: every occupied seat exists and is
    /// in use, no entry sits twice, table ids and numbers are unique, the break order names
    /// tables on the floor. Useful after deserialising a floor from elsewhere.
    pub fn check_integrity(&self) -> DomainResult<()> {
        let mut ids = BTreeSet::new();
        let mut numbers = BTreeSet::new();
        let mut entries = BTreeSet::new();
        for table in &self.tables {
            if !ids.insert(table.id) || !numbers.insert(table.number) {
                return Err(DomainError::conflict(format!(
                    "{} appears twice on the floor",
                    table.label()
                )));
            }
            for (seat, entry) in &table.occupants {
                if !table.is_usable(*seat) {
                    return Err(DomainError::invalid(format!(
                        "entry {entry} sits in seat {seat} at {}, which is not in use",
                        table.label()
                    )));
                }
                if !entries.insert(*entry) {
                    return Err(DomainError::conflict(format!(
                        "entry {entry} sits in two seats"
                    )));
                }
            }
        }
        if let Some(id) = self.break_order.iter().find(|id| !ids.contains(*id)) {
            return Err(DomainError::not_found("table", id));
        }
        Ok(())
    }
}

fn check_seat_exists(table: &Table, seat: u8) -> DomainResult<()> {
    if (1..=table.seat_count).contains(&seat) {
        Ok(())
    } else {
        Err(DomainError::invalid(format!(
            "{} has seats 1 to {}: there is no seat {seat}",
            table.label(),
            table.seat_count
        )))
    }
}

fn check_seat_open(table: &Table, seat: u8) -> DomainResult<()> {
    check_seat_exists(table, seat)?;
    if table.locked.contains(&seat) {
        return Err(DomainError::refused(format!(
            "seat {seat} at {} is locked (not in use)",
            table.label()
        )));
    }
    if let Some(other) = table.occupants.get(&seat) {
        return Err(DomainError::conflict(format!(
            "seat {seat} at {} is already taken by entry {other}",
            table.label()
        )));
    }
    Ok(())
}

/// Draws a random open seat for a new player, a late registrant, an alternate or a re-entry:
/// all draw from the same pool (TDA 2024 Rules 7 and 8-A).
///
/// The pool is the open seats at the tables with the fewest players (among tables with an open
/// seat), so a draw never unbalances the room and never forces a balancing move. The draw has two
/// steps like a break (TDA 2024 Rule 10): a table at random among those, then a seat at random
/// at that table.
pub fn draw_seat(floor: &Floor, entropy: &mut dyn Entropy) -> DomainResult<SeatRef> {
    draw_seat_excluding(floor, None, entropy).ok_or_else(|| {
        DomainError::refused(format!(
            "no open seat: all {} tables are full with {} players; add a table or unlock a seat",
            floor.tables.len(),
            floor.player_count()
        ))
    })
}

fn draw_seat_excluding(
    floor: &Floor,
    excluded: Option<TableId>,
    entropy: &mut dyn Entropy,
) -> Option<SeatRef> {
    let with_room: Vec<&Table> = floor
        .tables
        .iter()
        .filter(|t| Some(t.id) != excluded && !t.open_seats().is_empty())
        .collect();
    let fewest = with_room.iter().map(|t| t.player_count()).min()?;
    let candidates: Vec<&Table> = with_room
        .into_iter()
        .filter(|t| t.player_count() == fewest)
        .collect();
    let table = *pick(&candidates, entropy)?;
    let seat = *pick(&table.open_seats(), entropy)?;
    Some(SeatRef {
        table: table.id,
        seat,
    })
}

fn pick<'a, T>(items: &'a [T], entropy: &mut dyn Entropy) -> Option<&'a T> {
    let n = u64::try_from(items.len()).ok()?;
    let index = usize::try_from(entropy.below(n)).ok()?;
    items.get(index)
}

fn shuffle<T>(items: &mut [T], entropy: &mut dyn Entropy) {
    for i in (1..items.len()).rev() {
        let bound = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        let j = usize::try_from(entropy.below(bound)).unwrap_or(i);
        items.swap(i, j.min(i));
    }
}

/// The moves that bring the tables within the tolerance in force.
///
/// Each move takes the player due to be big blind next at the source table to the worst
/// position at the table with the fewest players (TDA 2024 Rule 11-A); the source table follows
/// the posted policy (Rule 11-C). When a button is unknown a move is still proposed, with
/// `needs_confirmation` saying what staff must check. Moves only go to a table at least two
/// players shorter than the source, so each one narrows the gap; if the short tables have no
/// open seat (locked seats, smaller tables) the plan stops there. Empty tables are not in play
/// and are left alone (see [`Floor::tables_in_play`]).
pub fn balance_plan(floor: &Floor) -> BalancePlan {
    let halt = halted_tables(floor);
    let tolerance = usize::from(floor.tolerance_in_force());
    let mut sim = floor.clone();
    let mut moves = Vec::new();
    // Each move lowers the sum of squared table sizes, so this ends; the bound is a backstop.
    for _ in 0..=floor.player_count() {
        let counts: Vec<usize> = sim.tables_in_play().map(Table::player_count).collect();
        let (Some(&most), Some(&fewest)) = (counts.iter().max(), counts.iter().min()) else {
            break;
        };
        if most - fewest <= tolerance {
            break;
        }
        let Some(short) = short_table(&sim, most) else {
            break;
        };
        let Some(long) = source_table(&sim, short.player_count()) else {
            break;
        };
        let mv = balancing_move(long, short);
        let Some(mv) = mv else { break };
        if sim.apply_move(&mv).is_err() {
            break;
        }
        moves.push(mv);
    }
    BalancePlan { moves, halt }
}

/// TDA 2024 Rule 11-D: tables 3 or more players short of the table with the most players.
fn halted_tables(floor: &Floor) -> Vec<TableId> {
    let most = floor
        .tables_in_play()
        .map(Table::player_count)
        .max()
        .unwrap_or(0);
    floor
        .tables_in_play()
        .filter(|t| t.player_count() + 3 <= most)
        .map(|t| t.id)
        .collect()
}

/// The table with the fewest players that has an open seat and is at least two short of the
/// largest; ties go to the earliest in posted order.
fn short_table(floor: &Floor, most: usize) -> Option<&Table> {
    floor
        .tables_in_play()
        .filter(|t| t.player_count() + 2 <= most && !t.open_seats().is_empty())
        .min_by_key(|t| t.player_count())
}

fn source_table(floor: &Floor, short_count: usize) -> Option<&Table> {
    match floor.policy.source {
        SourceTable::MostPlayers => floor
            .tables
            .iter()
            .rev()
            .max_by_key(|t| t.player_count())
            .filter(|t| t.player_count() >= short_count + 2),
        SourceTable::PostedOrder => floor
            .break_order
            .iter()
            .filter_map(|id| floor.table(*id))
            .chain(floor.tables.iter())
            .find(|t| t.player_count() >= short_count + 2),
    }
}

fn balancing_move(long: &Table, short: &Table) -> Option<Move> {
    let mut confirm = Vec::new();
    let from_seat = match long.big_blind_next() {
        Some(seat) => seat,
        None => {
            let seat = *long.occupants.keys().next()?;
            confirm.push(format!(
                "button unknown at {}: confirm who is big blind next and move that player \
                 instead of seat {seat}",
                long.label()
            ));
            seat
        }
    };
    let entry = *long.occupants.get(&from_seat)?;
    let to_seat = match short.worst_open_seat() {
        Some(seat) => seat,
        None => {
            let seat = *short.open_seats().first()?;
            confirm.push(format!(
                "button unknown at {}: confirm seat {seat} is not the small blind; the player \
                 takes the seat due to post the big blind soonest",
                short.label()
            ));
            seat
        }
    };
    Some(Move {
        entry,
        from: SeatRef {
            table: long.id,
            seat: from_seat,
        },
        to: SeatRef {
            table: short.id,
            seat: to_seat,
        },
        reason: format!(
            "balancing (TDA 2024 Rule 11): {} has {} players, {} has {}",
            long.label(),
            long.player_count(),
            short.label(),
            short.player_count()
        ),
        needs_confirmation: (!confirm.is_empty()).then(|| confirm.join("; ")),
    })
}

/// The next table to break, once its players fit in the open, usable seats of the other tables:
/// the first table in the posted break order (TDA 2024 Rule 10) still on the floor, or, when no
/// listed table remains, the last table in the posted table order.
pub fn table_to_break(floor: &Floor) -> Option<TableId> {
    if floor.tables.len() < 2 {
        return None;
    }
    let next = floor
        .break_order
        .iter()
        .find_map(|id| floor.table(*id))
        .or_else(|| floor.tables.last())?;
    let open_elsewhere: usize = floor
        .tables
        .iter()
        .filter(|t| t.id != next.id)
        .map(|t| t.open_seats().len())
        .sum();
    (next.player_count() <= open_elsewhere).then_some(next.id)
}

/// Reseats every player of a breaking table by random draw (TDA 2024 Rule 10): players are taken
/// in random order and each draws a table at random among the other tables with the fewest
/// players, then a seat at random there. Any open seat can come up, blinds and button included,
/// and filling the shortest tables first keeps the room balanced.
pub fn break_table_plan(
    floor: &Floor,
    table: TableId,
    entropy: &mut dyn Entropy,
) -> DomainResult<Vec<Move>> {
    let breaking = floor.existing_table(table)?;
    if floor.tables.len() < 2 {
        return Err(DomainError::refused(format!(
            "{} is the last table: it cannot break",
            breaking.label()
        )));
    }
    let open_elsewhere: usize = floor
        .tables
        .iter()
        .filter(|t| t.id != table)
        .map(|t| t.open_seats().len())
        .sum();
    if breaking.player_count() > open_elsewhere {
        return Err(DomainError::refused(format!(
            "{} cannot break yet: its {} players need seats but only {} are open at the other tables",
            breaking.label(),
            breaking.player_count(),
            open_elsewhere
        )));
    }
    let mut leaving: Vec<(u8, EntryId)> =
        breaking.occupants.iter().map(|(s, e)| (*s, *e)).collect();
    shuffle(&mut leaving, entropy);
    let reason = format!(
        "{} breaks (TDA 2024 Rule 10): seat drawn at random",
        breaking.label()
    );
    let mut sim = floor.clone();
    let mut moves = Vec::with_capacity(leaving.len());
    for (seat, entry) in leaving {
        let to = draw_seat_excluding(&sim, Some(table), entropy).ok_or_else(|| {
            DomainError::refused(format!(
                "ran out of open seats while breaking {}",
                floor.label(table)
            ))
        })?;
        let mv = Move {
            entry,
            from: SeatRef { table, seat },
            to,
            reason: reason.clone(),
            needs_confirmation: None,
        };
        sim.apply_move(&mv)?;
        moves.push(mv);
    }
    Ok(moves)
}

/// Redraws every remaining player for a seat at the final table (TDA 2024 RP-9). Players who
/// draw the seat they already hold get no move. Apply the plan in one go with
/// [`Floor::apply_moves`]: a player may draw a seat another finalist is leaving. The button is
/// left as it was; staff place it for the first hand at the final table with
/// [`Floor::set_button`].
pub fn final_table_plan(
    floor: &Floor,
    final_table: TableId,
    entropy: &mut dyn Entropy,
) -> DomainResult<Vec<Move>> {
    let table = floor.existing_table(final_table)?;
    let mut seats: Vec<u8> = (1..=table.seat_count)
        .filter(|s| table.is_usable(*s))
        .collect();
    let players: Vec<(SeatRef, EntryId)> = floor
        .tables
        .iter()
        .flat_map(|t| {
            t.occupants.iter().map(|(seat, entry)| {
                (
                    SeatRef {
                        table: t.id,
                        seat: *seat,
                    },
                    *entry,
                )
            })
        })
        .collect();
    if players.len() > seats.len() {
        return Err(DomainError::refused(format!(
            "{} players remain but {} has only {} seats in use: not yet a final table",
            players.len(),
            table.label(),
            seats.len()
        )));
    }
    shuffle(&mut seats, entropy);
    let reason = format!("final table redraw (TDA 2024 RP-9) at {}", table.label());
    Ok(players
        .into_iter()
        .zip(seats)
        .map(|((from, entry), seat)| Move {
            entry,
            from,
            to: SeatRef {
                table: final_table,
                seat,
            },
            reason: reason.clone(),
            needs_confirmation: None,
        })
        .filter(|mv| mv.from != mv.to)
        .collect())
}

/// Whether play goes hand-for-hand (TDA 2024 RP-8): on the bubble, when the next player out
/// finishes just outside the money, and more than one table is still playing. A single table
/// deals one hand at a time anyway. This covers the money bubble only; other hand-for-hand
/// points (a satellite's last seats, a final-table bubble) are the tournament's call.
pub fn hand_for_hand_applies(floor: &Floor, places_paid: u32, remaining: u32) -> bool {
    let tables_playing = floor.tables_in_play().count();
    places_paid > 0 && remaining == places_paid.saturating_add(1) && tables_playing > 1
}

impl Default for Floor {
    fn default() -> Self {
        Floor::new(BalancePolicy::default())
    }
}

impl Floor {
    /// Who sits at `at`, if anyone.
    pub fn occupant(&self, at: SeatRef) -> Option<EntryId> {
        self.table(at.table)
            .and_then(|t| t.occupants.get(&at.seat).copied())
    }
}

impl BalancePolicy {
    /// Refuses a policy the room could not follow.
    pub fn validate(&self) -> DomainResult<()> {
        if self.tolerance == 0 || self.tight_tolerance == 0 {
            return Err(DomainError::invalid(
                "balancing tolerance must be at least 1 player",
            ));
        }
        if self.tight_tolerance > self.tolerance {
            return Err(DomainError::invalid(format!(
                "the tolerance near the end ({}) cannot be looser than before it ({})",
                self.tight_tolerance, self.tolerance
            )));
        }
        if self.tolerance > 5 {
            return Err(DomainError::invalid(format!(
                "tables {} players apart are not balanced: use a tolerance of at most 5",
                self.tolerance
            )));
        }
        Ok(())
    }
}

/// Where the button goes after a hand at `table`: the next occupied seat, if the button is known.
pub fn next_button(table: &Table) -> Option<u8> {
    let mut probe = Floor::default();
    probe.tables.push(table.clone());
    probe.advance_button(table.id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn table_id(n: u32) -> TableId {
        TableId(Uuid::from_u128(u128::from(n)))
    }

    fn entry_id(n: u32) -> EntryId {
        EntryId(Uuid::from_u128(1_000_000 + u128::from(n)))
    }

    fn at(table: u32, seat: u8) -> SeatRef {
        SeatRef {
            table: table_id(table),
            seat,
        }
    }

    /// Tables numbered 1..; `seats[i]` lists the occupied seats of table i+1. Entries are
    /// numbered table*100 + seat so tests can name them.
    fn floor_with(seat_count: u8, seats: &[&[u8]], policy: BalancePolicy) -> Floor {
        let mut floor = Floor::new(policy);
        for (i, occupied) in seats.iter().enumerate() {
            let n = u32::try_from(i).unwrap() + 1;
            floor.add_table(table_id(n), n, seat_count).unwrap();
            for &s in *occupied {
                floor
                    .seat_entry(entry_id(n * 100 + u32::from(s)), at(n, s))
                    .unwrap();
            }
        }
        floor
    }

    fn tight() -> BalancePolicy {
        BalancePolicy {
            tolerance: 1,
            tight_tolerance: 1,
            tight_from_tables: 10,
            source: SourceTable::MostPlayers,
        }
    }

    const FULL9: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8, 9];

    fn counts(floor: &Floor) -> Vec<usize> {
        floor.tables.iter().map(Table::player_count).collect()
    }

    #[test]
    fn rule_7_draw_lands_only_at_the_tables_with_fewest_players() {
        let floor = floor_with(9, &[&[1, 2, 3], &[4, 5], &[1, 2, 3, 4]], tight());
        for seed in 0..100 {
            let seat = draw_seat(&floor, &mut SeededEntropy::new(seed)).unwrap();
            assert_eq!(seat.table, table_id(2));
            assert!(![4, 5].contains(&seat.seat));
        }
    }

    #[test]
    fn rule_7_draw_can_reach_every_open_seat_of_the_pool() {
        let floor = floor_with(9, &[&[1, 2, 3], &[1, 2, 3]], tight());
        let drawn: BTreeSet<SeatRef> = (0..400)
            .map(|seed| draw_seat(&floor, &mut SeededEntropy::new(seed)).unwrap())
            .collect();
        assert_eq!(drawn.len(), 12);
    }

    #[test]
    fn rule_8a_late_entries_and_re_entries_draw_from_the_same_pool_until_full() {
        let mut floor = floor_with(6, &[&[], &[]], tight());
        let mut entropy = SeededEntropy::new(3);
        for n in 0..12 {
            let seat = draw_seat(&floor, &mut entropy).unwrap();
            floor.seat_entry(entry_id(n), seat).unwrap();
            let c = counts(&floor);
            assert!(
                c[0].abs_diff(c[1]) <= 1,
                "a draw unbalanced the room: {c:?}"
            );
        }
        let err = draw_seat(&floor, &mut entropy).unwrap_err();
        assert_eq!(err.code(), "refused");
        assert!(err.to_string().contains("no open seat"), "{err}");
    }

    #[test]
    fn rule_9_locked_seats_are_never_drawn_and_only_empty_seats_lock() {
        let mut floor = floor_with(3, &[&[1]], tight());
        floor.lock_seat(at(1, 2)).unwrap();
        for seed in 0..50 {
            let seat = draw_seat(&floor, &mut SeededEntropy::new(seed)).unwrap();
            assert_eq!(seat, at(1, 3));
        }
        let err = floor.lock_seat(at(1, 1)).unwrap_err();
        assert!(
            err.to_string().contains("seat 1 at table 1 is taken"),
            "{err}"
        );
        assert_eq!(floor.lock_seat(at(1, 2)).unwrap_err().code(), "conflict");
        assert_eq!(
            floor.seat_entry(entry_id(9), at(1, 2)).unwrap_err().code(),
            "refused"
        );
        floor.unlock_seat(at(1, 2)).unwrap();
        floor.seat_entry(entry_id(9), at(1, 2)).unwrap();
    }

    #[test]
    fn a_seat_is_never_given_twice_and_an_entry_never_sits_twice() {
        let mut floor = floor_with(9, &[&[1], &[]], tight());
        let taken = floor.seat_entry(entry_id(5), at(1, 1)).unwrap_err();
        assert!(taken.to_string().contains("already taken"), "{taken}");
        let twice = floor.seat_entry(entry_id(101), at(2, 1)).unwrap_err();
        assert!(twice.to_string().contains("already sits"), "{twice}");
        let no_seat = floor.seat_entry(entry_id(5), at(1, 10)).unwrap_err();
        assert!(no_seat.to_string().contains("no seat 10"), "{no_seat}");
    }

    #[test]
    fn big_blind_next_is_the_second_player_after_the_button() {
        let mut floor = floor_with(9, &[&[1, 2, 3, 5], &[1, 4]], tight());
        floor.set_button(table_id(1), Some(1)).unwrap();
        assert_eq!(floor.table(table_id(1)).unwrap().big_blind_next(), Some(3));
        floor.set_button(table_id(1), Some(9)).unwrap();
        assert_eq!(floor.table(table_id(1)).unwrap().big_blind_next(), Some(2));
        // Heads-up the button is the small blind.
        floor.set_button(table_id(2), Some(1)).unwrap();
        assert_eq!(floor.table(table_id(2)).unwrap().big_blind_next(), Some(4));
    }

    #[test]
    fn the_button_goes_only_on_a_seat_in_use() {
        let mut floor = floor_with(9, &[&[1, 2]], tight());
        floor.lock_seat(at(1, 5)).unwrap();
        let locked = floor.set_button(table_id(1), Some(5)).unwrap_err();
        assert!(locked.to_string().contains("locked"), "{locked}");
        assert_eq!(
            floor.set_button(table_id(1), Some(10)).unwrap_err().code(),
            "invalid"
        );
        // A dead button on an empty seat is allowed.
        floor.set_button(table_id(1), Some(7)).unwrap();
        assert_eq!(floor.table(table_id(1)).unwrap().button, Some(7));
    }

    #[test]
    fn advance_button_moves_to_the_next_occupied_seat() {
        let mut floor = floor_with(9, &[&[2, 5, 9]], tight());
        let err = floor.advance_button(table_id(1)).unwrap_err();
        assert!(err.to_string().contains("not known"), "{err}");
        floor.set_button(table_id(1), Some(5)).unwrap();
        assert_eq!(floor.advance_button(table_id(1)).unwrap(), 9);
        assert_eq!(floor.advance_button(table_id(1)).unwrap(), 2);
    }

    #[test]
    fn rule_11a_the_player_due_big_blind_moves_to_a_single_big_blind() {
        let mut floor = floor_with(9, &[FULL9, &[1, 2, 4, 5, 6, 7, 9]], tight());
        floor.set_button(table_id(1), Some(1)).unwrap();
        floor.set_button(table_id(2), Some(1)).unwrap();
        let plan = balance_plan(&floor);
        assert_eq!(plan.moves.len(), 1);
        let mv = &plan.moves[0];
        assert_eq!(mv.entry, entry_id(103));
        assert_eq!(mv.from, at(1, 3));
        // Seat 3 at table 2 sits right after the small blind: it posts the next big blind.
        assert_eq!(mv.to, at(2, 3));
        assert_eq!(mv.needs_confirmation, None);
        assert!(mv.reason.contains("Rule 11"), "{}", mv.reason);
    }

    #[test]
    fn rule_11a_worst_position_is_never_the_small_blind() {
        // Open seats 2 (would be small blind) and 9 (just before the button).
        let mut floor = floor_with(9, &[FULL9, &[1, 3, 4, 5, 6, 7, 8]], tight());
        floor.set_button(table_id(1), Some(4)).unwrap();
        floor.set_button(table_id(2), Some(1)).unwrap();
        let plan = balance_plan(&floor);
        assert_eq!(plan.moves.len(), 1);
        assert_eq!(plan.moves[0].from, at(1, 6));
        assert_eq!(plan.moves[0].to, at(2, 9));
    }

    #[test]
    fn rule_11a_unknown_buttons_still_give_a_move_that_staff_must_confirm() {
        let floor = floor_with(9, &[FULL9, &[1, 2, 3, 4, 5, 6, 7]], tight());
        let plan = balance_plan(&floor);
        assert_eq!(plan.moves.len(), 1);
        let confirm = plan.moves[0].needs_confirmation.clone().unwrap();
        assert!(confirm.contains("button unknown at table 1"), "{confirm}");
        assert!(confirm.contains("button unknown at table 2"), "{confirm}");
        assert!(confirm.contains("big blind next"), "{confirm}");
    }

    #[test]
    fn rule_11c_most_players_takes_from_the_largest_table_ties_by_posted_order() {
        let floor = floor_with(
            9,
            &[&[1, 2, 3, 4, 5, 6], FULL9, FULL9, &[1, 2, 3, 4, 5, 6, 7]],
            tight(),
        );
        let plan = balance_plan(&floor);
        assert_eq!(plan.moves[0].from.table, table_id(2));
        assert_eq!(plan.moves[0].to.table, table_id(1));
        assert_eq!(plan.moves[1].from.table, table_id(3));
    }

    #[test]
    fn rule_11c_posted_order_takes_from_the_table_due_to_break_next() {
        let mut policy = tight();
        policy.source = SourceTable::PostedOrder;
        let mut floor = floor_with(
            9,
            &[FULL9, &[1, 2, 3, 4, 5, 6, 7, 8], &[1, 2, 3, 4, 5, 6]],
            policy,
        );
        floor
            .set_break_order(vec![table_id(2), table_id(1), table_id(3)])
            .unwrap();
        let plan = balance_plan(&floor);
        assert_eq!(plan.moves[0].from.table, table_id(2));
        assert_eq!(plan.moves[0].to.table, table_id(3));
        let mut after = floor.clone();
        for mv in &plan.moves {
            after.apply_move(mv).unwrap();
        }
        assert_eq!(counts(&after), vec![8, 8, 7]);
    }

    #[test]
    fn rule_11d_play_halts_on_tables_three_or_more_short() {
        let floor = floor_with(
            9,
            &[FULL9, &[1, 2, 3, 4, 5, 6], &[1, 2, 3, 4, 5, 6, 7]],
            tight(),
        );
        let plan = balance_plan(&floor);
        assert_eq!(plan.halt, vec![table_id(2)]);
    }

    #[test]
    fn balancing_brings_tables_within_tolerance_in_the_fewest_moves() {
        let floor = floor_with(9, &[FULL9, FULL9, &[1, 2, 3, 4, 5]], tight());
        let plan = balance_plan(&floor);
        assert_eq!(plan.moves.len(), 2);
        let mut after = floor.clone();
        for mv in &plan.moves {
            after.apply_move(mv).unwrap();
        }
        assert_eq!(counts(&after), vec![8, 8, 7]);
    }

    #[test]
    fn balancing_leaves_an_empty_table_out_of_play() {
        let floor = floor_with(9, &[FULL9, &[1, 2, 3, 4, 5], &[]], tight());
        let plan = balance_plan(&floor);
        assert!(plan.halt == vec![table_id(2)], "{:?}", plan.halt);
        let mut after = floor.clone();
        for mv in &plan.moves {
            after.apply_move(mv).unwrap();
        }
        assert_eq!(counts(&after), vec![7, 7, 0]);
    }

    #[test]
    fn the_tight_tolerance_applies_once_few_tables_remain() {
        let policy = BalancePolicy::default();
        let loose = floor_with(
            9,
            &[FULL9, FULL9, FULL9, FULL9, &[1, 2, 3, 4, 5, 6, 7]],
            policy.clone(),
        );
        assert_eq!(loose.tolerance_in_force(), 2);
        assert!(balance_plan(&loose).moves.is_empty());
        let tight = floor_with(9, &[FULL9, FULL9, FULL9, &[1, 2, 3, 4, 5, 6, 7]], policy);
        assert_eq!(tight.tolerance_in_force(), 1);
        assert_eq!(balance_plan(&tight).moves.len(), 1);
    }

    #[test]
    fn rule_10_the_next_table_in_break_order_breaks_once_its_players_fit() {
        let mut floor = floor_with(9, &[FULL9, &[1, 2, 3, 4, 5, 6, 7], &[1, 2, 3]], tight());
        floor
            .set_break_order(vec![table_id(2), table_id(3), table_id(1)])
            .unwrap();
        // Table 2 has 7 players; only 6 seats are open elsewhere.
        assert_eq!(table_to_break(&floor), None);
        floor.unseat_entry(entry_id(201)).unwrap();
        assert_eq!(table_to_break(&floor), Some(table_id(2)));
        // A locked seat elsewhere is not room.
        floor.lock_seat(at(3, 9)).unwrap();
        assert_eq!(table_to_break(&floor), None);
    }

    #[test]
    fn without_a_break_order_the_last_posted_table_breaks() {
        let floor = floor_with(9, &[&[1, 2, 3, 4], &[1, 2, 3]], tight());
        assert_eq!(table_to_break(&floor), Some(table_id(2)));
    }

    #[test]
    fn rule_10_a_broken_table_is_reseated_at_random_into_any_open_seat_keeping_balance() {
        let floor = floor_with(
            9,
            &[&[1, 2, 3, 4, 5, 6], &[1, 2, 3, 4, 5, 6, 7], &[1, 2, 3, 4]],
            tight(),
        );
        let mut outcomes = BTreeSet::new();
        for seed in 0..30 {
            let moves =
                break_table_plan(&floor, table_id(3), &mut SeededEntropy::new(seed)).unwrap();
            assert_eq!(moves.len(), 4);
            let mut after = floor.clone();
            for mv in &moves {
                assert!(mv.reason.contains("Rule 10"), "{}", mv.reason);
                after.apply_move(mv).unwrap();
            }
            // 17 players at two tables of 9: one of them gets the odd player.
            let mut c = counts(&after);
            assert_eq!(c.pop(), Some(0));
            c.sort_unstable();
            assert_eq!(c, vec![8, 9]);
            outcomes.insert(moves.iter().map(|m| m.to).collect::<Vec<_>>());
        }
        assert!(outcomes.len() > 5, "the draw is not random: {outcomes:?}");
    }

    #[test]
    fn rule_10_a_table_that_does_not_fit_cannot_break() {
        let floor = floor_with(9, &[FULL9, &[1, 2, 3]], tight());
        let err = break_table_plan(&floor, table_id(1), &mut SeededEntropy::new(1)).unwrap_err();
        assert!(err.to_string().contains("cannot break yet"), "{err}");
        let unknown =
            break_table_plan(&floor, table_id(7), &mut SeededEntropy::new(1)).unwrap_err();
        assert_eq!(unknown.code(), "not_found");
    }

    #[test]
    fn rp_9_every_finalist_redraws_for_a_seat_at_the_final_table() {
        let floor = floor_with(9, &[&[1, 2, 3, 4, 5], &[2, 4, 6, 8]], tight());
        let mut layouts = BTreeSet::new();
        for seed in 0..20 {
            let moves =
                final_table_plan(&floor, table_id(1), &mut SeededEntropy::new(seed)).unwrap();
            let mut after = floor.clone();
            after.apply_moves(&moves).unwrap();
            after.check_integrity().unwrap();
            assert_eq!(counts(&after), vec![9, 0]);
            layouts.insert(after.tables[0].occupants.clone());
        }
        assert!(
            layouts.len() > 10,
            "the finalists are not redrawn at random"
        );
        let too_many = floor_with(9, &[FULL9, &[1]], tight());
        let err = final_table_plan(&too_many, table_id(1), &mut SeededEntropy::new(0)).unwrap_err();
        assert!(err.to_string().contains("not yet a final table"), "{err}");
    }

    #[test]
    fn rp_8_hand_for_hand_applies_on_the_bubble_with_more_than_one_table() {
        let two_tables = floor_with(9, &[&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5, 6]], tight());
        assert!(hand_for_hand_applies(&two_tables, 10, 11));
        assert!(!hand_for_hand_applies(&two_tables, 10, 12));
        assert!(!hand_for_hand_applies(&two_tables, 10, 10));
        assert!(!hand_for_hand_applies(&two_tables, 0, 1));
        let one_table = floor_with(9, &[&[1, 2, 3, 4, 5, 6], &[]], tight());
        assert!(!hand_for_hand_applies(&one_table, 5, 6));
    }

    #[test]
    fn a_stale_move_is_refused_and_a_failed_batch_changes_nothing() {
        let mut floor = floor_with(9, &[&[1, 2], &[1]], tight());
        let stale = Move {
            entry: entry_id(101),
            from: at(1, 2),
            to: at(2, 5),
            reason: String::new(),
            needs_confirmation: None,
        };
        let err = floor.apply_move(&stale).unwrap_err();
        assert!(err.to_string().contains("out of date"), "{err}");
        let good = Move {
            from: at(1, 1),
            ..stale.clone()
        };
        let clash = Move {
            entry: entry_id(102),
            from: at(1, 2),
            to: at(2, 1),
            reason: String::new(),
            needs_confirmation: None,
        };
        let before = floor.clone();
        assert!(floor.apply_moves(&[good, clash]).is_err());
        assert_eq!(floor, before);
    }

    #[test]
    fn tables_with_players_cannot_be_removed() {
        let mut floor = floor_with(9, &[&[1], &[]], tight());
        floor
            .set_break_order(vec![table_id(2), table_id(1)])
            .unwrap();
        let err = floor.remove_table(table_id(1)).unwrap_err();
        assert!(err.to_string().contains("still has 1 players"), "{err}");
        floor.remove_table(table_id(2)).unwrap();
        assert_eq!(floor.break_order, vec![table_id(1)]);
        assert_eq!(
            floor.add_table(table_id(3), 1, 9).unwrap_err().code(),
            "conflict"
        );
    }

    #[test]
    fn floor_round_trips_through_json_with_snake_case_policy() {
        let mut floor = floor_with(9, &[&[1, 4], &[2]], tight());
        floor.policy.source = SourceTable::PostedOrder;
        floor.lock_seat(at(2, 9)).unwrap();
        let json = serde_json::to_string(&floor).unwrap();
        assert!(json.contains("\"posted_order\""), "{json}");
        let back: Floor = serde_json::from_str(&json).unwrap();
        assert_eq!(back, floor);
    }

    // ---- properties ----

    #[derive(Debug, Clone)]
    enum Op {
        Draw,
        Bust(usize),
        Balance,
        Break,
        Final,
        Lock(usize, u8),
        Button(usize, u8),
        Advance(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Draw),
            3 => any::<usize>().prop_map(Op::Bust),
            2 => Just(Op::Balance),
            1 => Just(Op::Break),
            1 => Just(Op::Final),
            1 => (any::<usize>(), 1u8..=10).prop_map(|(t, s)| Op::Lock(t, s)),
            1 => (any::<usize>(), 1u8..=10).prop_map(|(t, s)| Op::Button(t, s)),
            1 => any::<usize>().prop_map(Op::Advance),
        ]
    }

    fn all_entries(floor: &Floor) -> BTreeSet<EntryId> {
        floor
            .tables
            .iter()
            .flat_map(|t| t.occupants.values().copied())
            .collect()
    }

    /// A floor of `tables` tables of `seat_count` seats with the given players per table and
    /// buttons (a button index past the seats means unknown).
    fn random_floor(
        seat_count: u8,
        per_table: &[u8],
        buttons: &[u8],
        policy: BalancePolicy,
    ) -> Floor {
        let mut floor = Floor::new(policy);
        let mut next_entry = 0;
        for (i, &players) in per_table.iter().enumerate() {
            let n = u32::try_from(i).unwrap() + 1;
            floor.add_table(table_id(n), n, seat_count).unwrap();
            for s in 1..=players.min(seat_count) {
                floor.seat_entry(entry_id(next_entry), at(n, s)).unwrap();
                next_entry += 1;
            }
            let button = buttons.get(i).copied().filter(|b| *b <= seat_count);
            floor.set_button(table_id(n), button).unwrap();
        }
        floor
    }

    fn policy() -> impl Strategy<Value = BalancePolicy> {
        (1u8..=3, 1u8..=2, 0u32..=6, any::<bool>()).prop_map(|(loose, tight, from, by_order)| {
            BalancePolicy {
                tolerance: loose,
                tight_tolerance: tight,
                tight_from_tables: from,
                source: if by_order {
                    SourceTable::PostedOrder
                } else {
                    SourceTable::MostPlayers
                },
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn no_seat_or_entry_is_ever_doubled_by_any_sequence_of_operations(
            ops in prop::collection::vec(op(), 1..60),
            seed in any::<u64>(),
        ) {
            let mut floor = floor_with(10, &[&[], &[], &[], &[]], BalancePolicy::default());
            floor.set_break_order(vec![table_id(4), table_id(3), table_id(2), table_id(1)]).unwrap();
            let mut entropy = SeededEntropy::new(seed);
            let mut next_entry = 0;
            for op in ops {
                let before = all_entries(&floor);
                match op {
                    Op::Draw => {
                        if let Ok(seat) = draw_seat(&floor, &mut entropy) {
                            floor.seat_entry(entry_id(next_entry), seat).unwrap();
                            next_entry += 1;
                        }
                    }
                    Op::Bust(i) => {
                        if let Some(entry) = before.iter().nth(i % before.len().max(1)) {
                            floor.unseat_entry(*entry).unwrap();
                        }
                    }
                    Op::Balance => {
                        for mv in balance_plan(&floor).moves {
                            floor.apply_move(&mv).unwrap();
                        }
                        prop_assert_eq!(all_entries(&floor), before);
                    }
                    Op::Break => {
                        if let Some(table) = table_to_break(&floor) {
                            let moves = break_table_plan(&floor, table, &mut entropy).unwrap();
                            for mv in &moves {
                                floor.apply_move(mv).unwrap();
                            }
                            prop_assert_eq!(floor.table(table).unwrap().player_count(), 0);
                            floor.remove_table(table).unwrap();
                            prop_assert_eq!(all_entries(&floor), before);
                        }
                    }
                    Op::Final => {
                        if let Some(first) = floor.tables.first().map(|t| t.id) {
                            if let Ok(moves) = final_table_plan(&floor, first, &mut entropy) {
                                floor.apply_moves(&moves).unwrap();
                                prop_assert_eq!(floor.tables[0].player_count(), before.len());
                                prop_assert_eq!(all_entries(&floor), before);
                            }
                        }
                    }
                    Op::Lock(t, s) => {
                        if let Some(id) = floor.tables.get(t % floor.tables.len().max(1)).map(|t| t.id) {
                            let _ = floor.lock_seat(SeatRef { table: id, seat: s });
                        }
                    }
                    Op::Button(t, s) => {
                        if let Some(id) = floor.tables.get(t % floor.tables.len().max(1)).map(|t| t.id) {
                            let _ = floor.set_button(id, Some(s));
                        }
                    }
                    Op::Advance(t) => {
                        if let Some(id) = floor.tables.get(t % floor.tables.len().max(1)).map(|t| t.id) {
                            let _ = floor.advance_button(id);
                        }
                    }
                }
                prop_assert!(floor.check_integrity().is_ok(), "{:?}", floor.check_integrity());
            }
        }

        #[test]
        fn after_a_balance_plan_tables_differ_by_at_most_the_tolerance(
            seat_count in 6u8..=10,
            per_table in prop::collection::vec(0u8..=10, 2..=8),
            buttons in prop::collection::vec(1u8..=12, 8),
            policy in policy(),
        ) {
            let mut floor = random_floor(seat_count, &per_table, &buttons, policy);
            floor.set_break_order(floor.tables.iter().rev().map(|t| t.id).collect()).unwrap();
            let plan = balance_plan(&floor);
            for mv in &plan.moves {
                prop_assert_ne!(mv.from.table, mv.to.table);
                floor.apply_move(mv).unwrap();
            }
            let c: Vec<usize> = floor.tables_in_play().map(Table::player_count).collect();
            let spread = c.iter().max().unwrap_or(&0) - c.iter().min().unwrap_or(&0);
            prop_assert!(spread <= usize::from(floor.tolerance_in_force()), "{:?}", c);
        }

        #[test]
        fn with_locked_seats_balancing_stops_only_when_short_tables_are_full(
            per_table in prop::collection::vec(0u8..=9, 2..=6),
            locks in prop::collection::vec((0usize..6, 1u8..=9), 0..8),
            buttons in prop::collection::vec(1u8..=12, 6),
        ) {
            let mut floor = random_floor(9, &per_table, &buttons, BalancePolicy::default());
            for (t, s) in locks {
                if let Some(id) = floor.tables.get(t % floor.tables.len()).map(|t| t.id) {
                    let _ = floor.lock_seat(SeatRef { table: id, seat: s });
                }
            }
            for mv in balance_plan(&floor).moves {
                floor.apply_move(&mv).unwrap();
            }
            let most = floor.tables.iter().map(Table::player_count).max().unwrap();
            let tolerance = usize::from(floor.tolerance_in_force());
            for t in floor.tables_in_play() {
                prop_assert!(
                    t.player_count() + tolerance >= most || t.open_seats().is_empty(),
                    "table {} has {} players and open seats; the largest has {}",
                    t.number, t.player_count(), most
                );
            }
        }

        #[test]
        fn a_break_plan_reseats_everyone_from_the_broken_table(
            seat_count in 6u8..=10,
            per_table in prop::collection::vec(0u8..=10, 2..=8),
            buttons in prop::collection::vec(1u8..=12, 8),
            seed in any::<u64>(),
        ) {
            let floor = random_floor(seat_count, &per_table, &buttons, BalancePolicy::default());
            let Some(table) = table_to_break(&floor) else { return Ok(()); };
            let leaving: BTreeSet<EntryId> =
                floor.table(table).unwrap().occupants.values().copied().collect();
            let moves = break_table_plan(&floor, table, &mut SeededEntropy::new(seed)).unwrap();
            let moved: BTreeSet<EntryId> = moves.iter().map(|m| m.entry).collect();
            prop_assert_eq!(&moved, &leaving);
            let mut after = floor.clone();
            for mv in &moves {
                after.apply_move(mv).unwrap();
            }
            prop_assert_eq!(after.table(table).unwrap().player_count(), 0);
            prop_assert_eq!(all_entries(&after), all_entries(&floor));
            prop_assert!(after.check_integrity().is_ok());
            // Filling the shortest tables first never widens the gap between the others.
            let spread = |f: &Floor| {
                let c: Vec<usize> = f.tables.iter().filter(|t| t.id != table).map(Table::player_count).collect();
                c.iter().max().unwrap() - c.iter().min().unwrap()
            };
            prop_assert!(spread(&after) <= spread(&floor).max(1));
        }
    }
}
