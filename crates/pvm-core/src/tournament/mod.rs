//! One tournament: its structure and clock, entries, re-entries, rebuys, add-ons, busts and
//! finishing places, bounties, prize pool and payouts, deals, and its tables.
//!
//! `decide` checks a [`TournamentCommand`] against the state and returns the events that record
//! it; `apply` folds an event. `apply` is total: it never panics, whatever the event.

mod config;
mod decide;
mod results;

pub use config::{
    AddonRule, BountyKind, ChipPlan, LateRegistration, RebuyRule, ReentryRule, TournamentConfig,
};
pub use decide::decide;
pub use results::{PrizePoolView, ResultLine, Stats};

use crate::clock::Clock;
use crate::ids::{EntryId, PlayerId, TableId, TournamentId};
use crate::money::{Chips, Money};
use crate::seating::{Floor, SeatRef};
use crate::structure::Structure;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    Active,
    Busted,
}

/// One buy-in of one player. A re-entry is a new entry of the same player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: EntryId,
    pub player_id: PlayerId,
    pub player_name: String,
    /// 1, 2, 3… in order of registration.
    pub number: u32,
    pub is_reentry: bool,
    pub registered_at: Timestamp,
    pub rebuys: u32,
    pub addon: bool,
    pub status: EntryStatus,
    /// Finishing place (best place of a shared block) once busted or the winner.
    pub place: Option<u32>,
    /// How many places the entry shares (1 unless tied).
    pub shared_places: u32,
    pub busted_at: Option<Timestamp>,
    pub eliminated_by: Option<EntryId>,
    /// The bounty currently on this entry's head.
    pub bounty: Money,
    /// Bounty money this entry has collected.
    pub bounties_won: Money,
    /// The last chip count staff reported.
    pub chips: Option<Chips>,
}

/// One bust as it was recorded, kept so it can be undone exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BustRecord {
    pub entry_id: EntryId,
    pub place: u32,
    pub shared_places: u32,
    pub seat: Option<SeatRef>,
    pub bounty_before: Money,
}

/// Everything one `Bust` command recorded (one hand).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BustGroup {
    pub busts: Vec<BustRecord>,
    pub eliminated_by: Option<EntryId>,
    /// Bounty money paid to the eliminator and added to their bounty (progressive).
    pub bounty_paid: Money,
    pub bounty_added: Money,
    /// The tournament ended with this hand; the winner.
    pub winner: Option<EntryId>,
}

/// One seat change: `from` → `to` (`None` = not seated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatChange {
    pub entry_id: EntryId,
    pub from: Option<SeatRef>,
    pub to: Option<SeatRef>,
}

/// A deal the remaining players agreed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealRecord {
    pub method: crate::deals::DealMethod,
    pub amounts: BTreeMap<EntryId, Money>,
    /// Played for: goes to the winner on top of the deal.
    pub held_back: Money,
    /// The payout rounding unit the deal was priced with; the payout table keeps it while the
    /// deal stands, so the deal and the places paid before it still add up to the pool.
    #[serde(default)]
    pub rounding_unit: Option<Money>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TournamentStatus {
    /// Set up, registration open, clock not started.
    Scheduled,
    /// The clock has started.
    Running,
    /// One player left (or staff finished it).
    Finished,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tournament {
    pub id: TournamentId,
    pub config: TournamentConfig,
    pub structure: Structure,
    pub clock: Clock,
    pub status: TournamentStatus,
    pub created_at: Timestamp,
    pub entries: BTreeMap<EntryId, Entry>,
    pub floor: Floor,
    pub hand_for_hand: bool,
    /// Hand-for-hand (TDA 2024 RP-8): the tables that have finished the hand being played.
    /// The clock loses its per-hand time once every table in play has finished it.
    #[serde(default)]
    pub hand_for_hand_done: BTreeSet<TableId>,
    pub deal: Option<DealRecord>,
    /// Busts that can be undone, last one on top.
    pub bust_history: Vec<BustGroup>,
    /// Undone busts that can be redone.
    pub bust_redo: Vec<BustGroup>,
    /// Seating changes that can be undone / redone.
    pub seating_history: Vec<Vec<SeatChange>>,
    pub seating_redo: Vec<Vec<SeatChange>>,
}

/// Commands for one tournament. Creation is a venue command (it needs a new id).
// A command lives for one request and is moved, not stored in bulk: boxing the config to even
// out the variants would add an allocation and change what every caller builds.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TournamentCommand {
    UpdateConfig {
        config: TournamentConfig,
    },
    SetStructure {
        structure: Structure,
    },
    StartClock,
    PauseClock,
    ResumeClock,
    NextLevel,
    PreviousLevel,
    /// Positive adds time to the current level or break, negative removes it.
    AddTime {
        seconds: i64,
    },
    SetTimeLeft {
        seconds: i64,
    },
    /// Register a player (a re-entry if they have busted before).
    Register {
        player_id: PlayerId,
    },
    Rebuy {
        entry_id: EntryId,
        /// The player's stack before the rebuy, needed when rebuys have a stack threshold.
        #[serde(default)]
        stack: Option<Chips>,
    },
    Addon {
        entry_id: EntryId,
    },
    /// Players busted on one hand. `stacks` are their stacks at the start of that hand: the
    /// larger stack finishes better; equal stacks share the places.
    Bust {
        busts: Vec<BustInput>,
        #[serde(default)]
        eliminated_by: Option<EntryId>,
    },
    UndoBust,
    RedoBust,
    ReportChips {
        entry_id: EntryId,
        chips: Chips,
    },
    AddTable {
        number: u32,
        seats: u8,
    },
    RemoveTable {
        table_id: TableId,
    },
    LockSeat {
        table_id: TableId,
        seat: u8,
    },
    UnlockSeat {
        table_id: TableId,
        seat: u8,
    },
    SetButton {
        table_id: TableId,
        seat: u8,
    },
    /// A hand finished at this table: the button moves on. In hand-for-hand every table reports
    /// its hand; once all tables in play have, the clock loses its per-hand time (RP-8).
    HandCompleted {
        table_id: TableId,
    },
    /// Seat an entry by random draw (TDA 2024 Rule 7, 8-A).
    DrawSeat {
        entry_id: EntryId,
    },
    /// Seat or move an entry to a chosen seat (staff decision).
    MoveEntry {
        entry_id: EntryId,
        to: SeatRef,
    },
    /// Apply the balancing moves the core proposes (TDA 2024 Rule 11).
    BalanceTables,
    /// Break a table (the next in break order if none is named) and redraw its players (Rule 10).
    BreakTable {
        #[serde(default)]
        table_id: Option<TableId>,
    },
    /// Redraw every remaining player for seats at the final table (RP-9).
    FinalTable {
        table_id: TableId,
    },
    SetBalancePolicy {
        policy: crate::seating::BalancePolicy,
    },
    SetBreakOrder {
        tables: Vec<TableId>,
    },
    UndoSeating,
    RedoSeating,
    SetHandForHand {
        on: bool,
    },
    /// Record a deal among the remaining players, computed by the core from their stacks.
    MakeDeal {
        method: crate::deals::DealMethod,
        stacks: Vec<DealStack>,
        #[serde(default)]
        hold_back: Money,
    },
    CancelDeal,
    Finish,
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BustInput {
    pub entry_id: EntryId,
    /// Stack at the start of the hand; needed only when several players bust on one hand.
    #[serde(default)]
    pub stack: Option<Chips>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealStack {
    pub entry_id: EntryId,
    pub chips: Chips,
}

/// Facts about one tournament, in the past tense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TournamentEvent {
    Created {
        config: TournamentConfig,
        structure: Structure,
    },
    ConfigUpdated {
        config: TournamentConfig,
    },
    StructureChanged {
        structure: Structure,
        /// The clock re-anchored to the new structure (same level, same time left where possible).
        clock: Clock,
    },
    /// Any clock action: the event carries the new anchor, so replay never re-computes time.
    ClockChanged {
        action: ClockAction,
        clock: Clock,
    },
    EntryRegistered {
        entry_id: EntryId,
        player_id: PlayerId,
        player_name: String,
        number: u32,
        is_reentry: bool,
        bounty: Money,
    },
    RebuyTaken {
        entry_id: EntryId,
        rebuy_number: u32,
    },
    AddonTaken {
        entry_id: EntryId,
    },
    PlayersBusted {
        group: BustGroup,
    },
    BustUndone {
        group: BustGroup,
    },
    BustRedone {
        group: BustGroup,
    },
    ChipsReported {
        entry_id: EntryId,
        chips: Chips,
    },
    TableAdded {
        table_id: TableId,
        number: u32,
        seats: u8,
    },
    TableRemoved {
        table_id: TableId,
    },
    SeatLocked {
        table_id: TableId,
        seat: u8,
    },
    SeatUnlocked {
        table_id: TableId,
        seat: u8,
    },
    ButtonSet {
        table_id: TableId,
        seat: u8,
    },
    /// Players changed seats. `reason` is what the room is told ("balancing: table 3 → 5").
    SeatsChanged {
        changes: Vec<SeatChange>,
        reason: String,
        #[serde(default)]
        undoable: bool,
    },
    SeatingUndone {
        changes: Vec<SeatChange>,
    },
    SeatingRedone {
        changes: Vec<SeatChange>,
    },
    BalancePolicySet {
        policy: crate::seating::BalancePolicy,
    },
    BreakOrderSet {
        tables: Vec<TableId>,
    },
    HandForHandSet {
        on: bool,
    },
    /// A table finished a hand-for-hand hand; `tables_done` are the tables that have finished
    /// the current hand (empty again once every table has, when the clock loses its time).
    HandForHandProgress {
        tables_done: Vec<TableId>,
    },
    DealMade {
        deal: DealRecord,
    },
    DealCancelled,
    Finished,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockAction {
    Start,
    Pause,
    Resume,
    Next,
    Previous,
    AddTime,
    SetTimeLeft,
    HandForHand,
    Finish,
}

impl TournamentEvent {
    /// Stable name for the event log's `type` column.
    pub fn kind(&self) -> &'static str {
        match self {
            TournamentEvent::Created { .. } => "tournament.created",
            TournamentEvent::ConfigUpdated { .. } => "tournament.config_updated",
            TournamentEvent::StructureChanged { .. } => "tournament.structure_changed",
            TournamentEvent::ClockChanged { .. } => "tournament.clock_changed",
            TournamentEvent::EntryRegistered { .. } => "tournament.entry_registered",
            TournamentEvent::RebuyTaken { .. } => "tournament.rebuy_taken",
            TournamentEvent::AddonTaken { .. } => "tournament.addon_taken",
            TournamentEvent::PlayersBusted { .. } => "tournament.players_busted",
            TournamentEvent::BustUndone { .. } => "tournament.bust_undone",
            TournamentEvent::BustRedone { .. } => "tournament.bust_redone",
            TournamentEvent::ChipsReported { .. } => "tournament.chips_reported",
            TournamentEvent::TableAdded { .. } => "tournament.table_added",
            TournamentEvent::TableRemoved { .. } => "tournament.table_removed",
            TournamentEvent::SeatLocked { .. } => "tournament.seat_locked",
            TournamentEvent::SeatUnlocked { .. } => "tournament.seat_unlocked",
            TournamentEvent::ButtonSet { .. } => "tournament.button_set",
            TournamentEvent::SeatsChanged { .. } => "tournament.seats_changed",
            TournamentEvent::SeatingUndone { .. } => "tournament.seating_undone",
            TournamentEvent::SeatingRedone { .. } => "tournament.seating_redone",
            TournamentEvent::BalancePolicySet { .. } => "tournament.balance_policy_set",
            TournamentEvent::BreakOrderSet { .. } => "tournament.break_order_set",
            TournamentEvent::HandForHandSet { .. } => "tournament.hand_for_hand_set",
            TournamentEvent::HandForHandProgress { .. } => "tournament.hand_for_hand_progress",
            TournamentEvent::DealMade { .. } => "tournament.deal_made",
            TournamentEvent::DealCancelled => "tournament.deal_cancelled",
            TournamentEvent::Finished => "tournament.finished",
            TournamentEvent::Cancelled => "tournament.cancelled",
        }
    }
}

impl Tournament {
    /// The state right after `Created`.
    pub fn new(
        id: TournamentId,
        config: TournamentConfig,
        structure: Structure,
        created_at: Timestamp,
    ) -> Self {
        Tournament {
            id,
            config,
            structure,
            clock: Clock::new(),
            status: TournamentStatus::Scheduled,
            created_at,
            entries: BTreeMap::new(),
            floor: Floor::default(),
            hand_for_hand: false,
            hand_for_hand_done: BTreeSet::new(),
            deal: None,
            bust_history: Vec::new(),
            bust_redo: Vec::new(),
            seating_history: Vec::new(),
            seating_redo: Vec::new(),
        }
    }

    pub fn active_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .values()
            .filter(|e| e.status == EntryStatus::Active)
    }

    pub fn active_count(&self) -> u32 {
        self.active_entries().count() as u32
    }

    pub fn entries_of(&self, player: PlayerId) -> impl Iterator<Item = &Entry> {
        self.entries.values().filter(move |e| e.player_id == player)
    }

    /// Folds one event. Total: events naming unknown entries or tables change nothing.
    pub fn apply(&mut self, event: &TournamentEvent, at: Timestamp) {
        match event {
            TournamentEvent::Created { config, structure } => {
                self.config = config.clone();
                self.structure = structure.clone();
            }
            TournamentEvent::ConfigUpdated { config } => self.config = config.clone(),
            TournamentEvent::StructureChanged { structure, clock } => {
                self.structure = structure.clone();
                self.clock = clock.clone();
            }
            TournamentEvent::ClockChanged { action, clock } => {
                self.clock = clock.clone();
                match action {
                    ClockAction::Start if self.status == TournamentStatus::Scheduled => {
                        self.status = TournamentStatus::Running;
                    }
                    ClockAction::Finish => self.status = TournamentStatus::Finished,
                    _ => {}
                }
            }
            TournamentEvent::EntryRegistered {
                entry_id,
                player_id,
                player_name,
                number,
                is_reentry,
                bounty,
            } => {
                // A late entry joins the field below everyone already out: each busted entry
                // finishes one place lower, so places stay distinct and count the whole field.
                for e in self.entries.values_mut() {
                    if e.status == EntryStatus::Busted {
                        if let Some(p) = e.place.as_mut() {
                            *p = p.saturating_add(1);
                        }
                    }
                }
                self.entries.insert(
                    *entry_id,
                    Entry {
                        id: *entry_id,
                        player_id: *player_id,
                        player_name: player_name.clone(),
                        number: *number,
                        is_reentry: *is_reentry,
                        registered_at: at,
                        rebuys: 0,
                        addon: false,
                        status: EntryStatus::Active,
                        place: None,
                        shared_places: 1,
                        busted_at: None,
                        eliminated_by: None,
                        bounty: *bounty,
                        bounties_won: Money::ZERO,
                        chips: None,
                    },
                );
            }
            TournamentEvent::RebuyTaken {
                entry_id,
                rebuy_number,
            } => {
                if let Some(e) = self.entries.get_mut(entry_id) {
                    e.rebuys = *rebuy_number;
                }
            }
            TournamentEvent::AddonTaken { entry_id } => {
                if let Some(e) = self.entries.get_mut(entry_id) {
                    e.addon = true;
                }
            }
            TournamentEvent::PlayersBusted { group } | TournamentEvent::BustRedone { group } => {
                self.apply_bust(group, at);
                if matches!(event, TournamentEvent::PlayersBusted { .. }) {
                    self.bust_redo.clear();
                } else {
                    self.bust_redo.pop();
                }
                self.bust_history.push(group.clone());
            }
            TournamentEvent::BustUndone { group } => {
                self.undo_bust(group);
                self.bust_history.pop();
                self.bust_redo.push(group.clone());
            }
            TournamentEvent::ChipsReported { entry_id, chips } => {
                if let Some(e) = self.entries.get_mut(entry_id) {
                    e.chips = Some(*chips);
                }
            }
            TournamentEvent::TableAdded {
                table_id,
                number,
                seats,
            } => {
                let _ = self.floor.add_table(*table_id, *number, *seats);
            }
            TournamentEvent::TableRemoved { table_id } => {
                let _ = self.floor.remove_table(*table_id);
            }
            TournamentEvent::SeatLocked { table_id, seat } => {
                let _ = self.floor.lock_seat(SeatRef {
                    table: *table_id,
                    seat: *seat,
                });
            }
            TournamentEvent::SeatUnlocked { table_id, seat } => {
                let _ = self.floor.unlock_seat(SeatRef {
                    table: *table_id,
                    seat: *seat,
                });
            }
            TournamentEvent::ButtonSet { table_id, seat } => {
                let _ = self.floor.set_button(*table_id, Some(*seat));
            }
            TournamentEvent::SeatsChanged {
                changes, undoable, ..
            } => {
                self.apply_seat_changes(changes);
                if *undoable {
                    self.seating_history.push(changes.clone());
                    self.seating_redo.clear();
                }
            }
            TournamentEvent::SeatingUndone { changes } => {
                self.apply_seat_changes(&inverse(changes));
                self.seating_history.pop();
                self.seating_redo.push(changes.clone());
            }
            TournamentEvent::SeatingRedone { changes } => {
                self.apply_seat_changes(changes);
                self.seating_redo.pop();
                self.seating_history.push(changes.clone());
            }
            TournamentEvent::BalancePolicySet { policy } => self.floor.policy = policy.clone(),
            TournamentEvent::BreakOrderSet { tables } => {
                let _ = self.floor.set_break_order(tables.clone());
            }
            TournamentEvent::HandForHandSet { on } => {
                self.hand_for_hand = *on;
                self.hand_for_hand_done.clear();
            }
            TournamentEvent::HandForHandProgress { tables_done } => {
                self.hand_for_hand_done = tables_done.iter().copied().collect();
            }
            TournamentEvent::DealMade { deal } => self.deal = Some(deal.clone()),
            TournamentEvent::DealCancelled => self.deal = None,
            TournamentEvent::Finished => self.status = TournamentStatus::Finished,
            TournamentEvent::Cancelled => self.status = TournamentStatus::Cancelled,
        }
    }

    /// Frees `at` if `entry` sits there (a stale change leaves the floor as it is).
    fn vacate(&mut self, at: SeatRef, entry: EntryId) {
        if self.floor.occupant(at) == Some(entry) {
            let _ = self.floor.unseat_entry(entry);
        }
    }

    fn occupy(&mut self, at: SeatRef, entry: EntryId) {
        let _ = self.floor.seat_entry(entry, at);
    }

    fn apply_seat_changes(&mut self, changes: &[SeatChange]) {
        // Vacate first, then fill, so swaps and chains of moves never collide.
        for c in changes {
            if let Some(from) = c.from {
                self.vacate(from, c.entry_id);
            }
        }
        for c in changes {
            if let Some(to) = c.to {
                self.occupy(to, c.entry_id);
            }
        }
    }

    fn apply_bust(&mut self, group: &BustGroup, at: Timestamp) {
        for b in &group.busts {
            if let Some(e) = self.entries.get_mut(&b.entry_id) {
                e.status = EntryStatus::Busted;
                e.place = Some(b.place);
                e.shared_places = b.shared_places;
                e.busted_at = Some(at);
                e.eliminated_by = group.eliminated_by;
            }
            // A busted player holds no seat, wherever the log says they last sat.
            if let Some(seat) = b.seat {
                self.vacate(seat, b.entry_id);
            }
            if self.floor.seat_of(b.entry_id).is_some() {
                let _ = self.floor.unseat_entry(b.entry_id);
            }
        }
        if let Some(by) = group.eliminated_by {
            if let Some(k) = self.entries.get_mut(&by) {
                k.bounties_won += group.bounty_paid;
                k.bounty += group.bounty_added;
            }
        }
        if let Some(w) = group.winner {
            if let Some(e) = self.entries.get_mut(&w) {
                e.place = Some(1);
                e.shared_places = 1;
            }
            self.status = TournamentStatus::Finished;
        }
    }

    fn undo_bust(&mut self, group: &BustGroup) {
        if let Some(by) = group.eliminated_by {
            if let Some(k) = self.entries.get_mut(&by) {
                k.bounties_won -= group.bounty_paid;
                k.bounty -= group.bounty_added;
            }
        }
        if let Some(w) = group.winner {
            if let Some(e) = self.entries.get_mut(&w) {
                e.place = None;
            }
            if self.status == TournamentStatus::Finished {
                self.status = if self.clock.status == crate::clock::ClockStatus::NotStarted {
                    TournamentStatus::Scheduled
                } else {
                    TournamentStatus::Running
                };
            }
        }
        for b in &group.busts {
            if let Some(e) = self.entries.get_mut(&b.entry_id) {
                e.status = EntryStatus::Active;
                e.place = None;
                e.shared_places = 1;
                e.busted_at = None;
                e.eliminated_by = None;
                e.bounty = b.bounty_before;
            }
            // Back to the old seat if nobody took it meanwhile; otherwise staff reseat them.
            if let Some(seat) = b.seat {
                if self.floor.occupant(seat).is_none() {
                    self.occupy(seat, b.entry_id);
                }
            }
        }
    }
}

pub(crate) fn inverse(changes: &[SeatChange]) -> Vec<SeatChange> {
    changes
        .iter()
        .map(|c| SeatChange {
            entry_id: c.entry_id,
            from: c.to,
            to: c.from,
        })
        .collect()
}

#[cfg(test)]
mod floor_tests;
#[cfg(test)]
mod tests;
