//! The tournament's rules: which commands are allowed, and what they record.

use super::config::window_end_index;
use super::*;
use crate::clock::{ClockStatus, ClockView};
use crate::entropy::Entropy;
use crate::error::{DomainError, DomainResult};

/// Just what registration needs to know of a player.
struct Named<'a> {
    name: &'a str,
}
use crate::seating::{self, Move};
use crate::time::SECOND_MS;

type Events = DomainResult<Vec<TournamentEvent>>;

/// Checks `cmd` against the tournament `t` at `now`; returns the events that record it.
/// `player_name` looks a player up in the venue's registry (for registration); `venue_unit` is
/// the venue's payout rounding unit (a deal is priced on the payouts the room is shown).
pub fn decide(
    t: &Tournament,
    player_name: &dyn Fn(PlayerId) -> Option<String>,
    venue_unit: Money,
    cmd: TournamentCommand,
    now: Timestamp,
    entropy: &mut dyn Entropy,
) -> Events {
    use TournamentCommand as C;
    if matches!(t.status, TournamentStatus::Cancelled) {
        return Err(DomainError::refused(format!(
            "{} was cancelled; nothing more can be recorded",
            t.config.name
        )));
    }
    let finished = t.status == TournamentStatus::Finished;
    let allowed_when_finished = matches!(cmd, C::UndoBust | C::RedoBust);
    if finished && !allowed_when_finished {
        return Err(DomainError::refused(format!(
            "{} has finished; undo the last bust to reopen it",
            t.config.name
        )));
    }
    if let Some(deal) = &t.deal {
        refuse_what_a_deal_forbids(t, deal, &cmd)?;
    }
    match cmd {
        C::UpdateConfig { config } => update_config(t, config),
        C::SetStructure { structure } => set_structure(t, structure, now),
        C::StartClock => clock(t, ClockAction::Start, t.clock.start(&t.structure, now)),
        C::PauseClock => clock(t, ClockAction::Pause, t.clock.pause(&t.structure, now)),
        C::ResumeClock => clock(t, ClockAction::Resume, t.clock.resume(&t.structure, now)),
        C::NextLevel => clock(t, ClockAction::Next, t.clock.next_item(&t.structure, now)),
        C::PreviousLevel => clock(
            t,
            ClockAction::Previous,
            t.clock.previous_item(&t.structure, now),
        ),
        C::AddTime { seconds } => {
            let ms = checked_secs(seconds)?;
            clock(
                t,
                ClockAction::AddTime,
                t.clock.add_time(&t.structure, ms, now),
            )
        }
        C::SetTimeLeft { seconds } => {
            let ms = checked_secs(seconds)?;
            clock(
                t,
                ClockAction::SetTimeLeft,
                t.clock.set_remaining(&t.structure, ms, now),
            )
        }
        C::Register { player_id } => register(t, player_name, player_id, now, entropy),
        C::Rebuy { entry_id, stack } => rebuy(t, entry_id, stack, now),
        C::Addon { entry_id } => addon(t, entry_id, now),
        C::Bust {
            busts,
            eliminated_by,
        } => bust(t, &busts, eliminated_by),
        C::UndoBust => match t.bust_history.last() {
            Some(g) => Ok(vec![TournamentEvent::BustUndone { group: g.clone() }]),
            None => Err(DomainError::refused("there is no bust to undo")),
        },
        C::RedoBust => match t.bust_redo.last() {
            Some(g) => {
                for b in &g.busts {
                    if entry(t, b.entry_id)?.status != EntryStatus::Active {
                        return Err(DomainError::refused(format!(
                            "cannot redo: {} is no longer active",
                            entry(t, b.entry_id)?.player_name
                        )));
                    }
                }
                // The players may have been reseated since the undo: record where they sit now,
                // so the redo frees those seats and a later undo returns them there.
                // Entries registered since the undo push the places down: the group takes the
                // places at the bottom of the players now left, in the same order.
                let mut group = g.clone();
                let k = group.busts.len() as u32;
                let first = t.active_count().saturating_sub(k) + 1;
                let old_first = group.busts.iter().map(|b| b.place).min().unwrap_or(first);
                for b in &mut group.busts {
                    b.seat = t.floor.seat_of(b.entry_id);
                    b.place = b.place - old_first + first;
                }
                let busted: std::collections::BTreeSet<EntryId> =
                    group.busts.iter().map(|b| b.entry_id).collect();
                group.winner = if t.active_count().saturating_sub(k) == 1 {
                    t.active_entries()
                        .find(|e| !busted.contains(&e.id))
                        .map(|e| e.id)
                } else {
                    None
                };
                Ok(vec![TournamentEvent::BustRedone { group }])
            }
            None => Err(DomainError::refused("there is no undone bust to redo")),
        },
        C::ReportChips { entry_id, chips } => {
            let e = active_entry(t, entry_id)?;
            if chips == 0 {
                return Err(DomainError::invalid(format!(
                    "a count of 0 chips for {} means a bust: record the bust instead",
                    e.player_name
                )));
            }
            Ok(vec![TournamentEvent::ChipsReported { entry_id, chips }])
        }
        C::AddTable { number, seats } => {
            if !(2..=12).contains(&seats) {
                return Err(DomainError::invalid(format!(
                    "a table has 2 to 12 seats, not {seats}"
                )));
            }
            if number == 0 {
                return Err(DomainError::invalid("table numbers start at 1"));
            }
            if t.floor.tables.iter().any(|tb| tb.number == number) {
                return Err(DomainError::conflict(format!(
                    "table {number} already exists"
                )));
            }
            Ok(vec![TournamentEvent::TableAdded {
                table_id: TableId::generate(now, entropy),
                number,
                seats,
            }])
        }
        C::RemoveTable { table_id } => {
            let tb = table(t, table_id)?;
            if !tb.occupants.is_empty() {
                return Err(DomainError::refused(format!(
                    "table {} still has {} players: break it first",
                    tb.number,
                    tb.occupants.len()
                )));
            }
            Ok(vec![TournamentEvent::TableRemoved { table_id }])
        }
        C::LockSeat { table_id, seat } => {
            let tb = table(t, table_id)?;
            check_seat(tb, seat)?;
            if tb.occupants.contains_key(&seat) {
                return Err(DomainError::refused(format!(
                    "seat {seat} at table {} is occupied: move the player first",
                    tb.number
                )));
            }
            if tb.locked.contains(&seat) {
                return Err(DomainError::refused(format!(
                    "seat {seat} at table {} is already locked",
                    tb.number
                )));
            }
            Ok(vec![TournamentEvent::SeatLocked { table_id, seat }])
        }
        C::UnlockSeat { table_id, seat } => {
            let tb = table(t, table_id)?;
            check_seat(tb, seat)?;
            if !tb.locked.contains(&seat) {
                return Err(DomainError::refused(format!(
                    "seat {seat} at table {} is not locked",
                    tb.number
                )));
            }
            Ok(vec![TournamentEvent::SeatUnlocked { table_id, seat }])
        }
        C::SetButton { table_id, seat } => {
            let tb = table(t, table_id)?;
            check_seat(tb, seat)?;
            Ok(vec![TournamentEvent::ButtonSet { table_id, seat }])
        }
        C::HandCompleted { table_id } => hand_completed(t, table_id, now),
        C::DrawSeat { entry_id } => {
            let e = active_entry(t, entry_id)?;
            if let Some(seat) = t.floor.seat_of(entry_id) {
                return Err(DomainError::refused(format!(
                    "{} is already seated at {}",
                    e.player_name,
                    describe_seat(t, seat)
                )));
            }
            let to = seating::draw_seat(&t.floor, entropy)?;
            Ok(vec![seats_changed(
                vec![SeatChange {
                    entry_id,
                    from: None,
                    to: Some(to),
                }],
                format!("{} drew {}", e.player_name, describe_seat(t, to)),
                true,
            )])
        }
        C::MoveEntry { entry_id, to } => {
            let e = active_entry(t, entry_id)?;
            let tb = table(t, to.table)?;
            check_seat(tb, to.seat)?;
            if tb.locked.contains(&to.seat) {
                return Err(DomainError::refused(format!(
                    "seat {} at table {} is locked",
                    to.seat, tb.number
                )));
            }
            if let Some(other) = tb.occupants.get(&to.seat) {
                return Err(DomainError::refused(format!(
                    "seat {} at table {} is taken by {}",
                    to.seat,
                    tb.number,
                    name_of(t, *other)
                )));
            }
            let from = t.floor.seat_of(entry_id);
            Ok(vec![seats_changed(
                vec![SeatChange {
                    entry_id,
                    from,
                    to: Some(to),
                }],
                format!("{} moved to {}", e.player_name, describe_seat(t, to)),
                true,
            )])
        }
        C::BalanceTables => {
            let plan = seating::balance_plan(&t.floor);
            if plan.moves.is_empty() {
                return Err(DomainError::refused(
                    "the tables are already balanced: no move is needed",
                ));
            }
            Ok(vec![moves_event(t, &plan.moves, "balancing")])
        }
        C::BreakTable { table_id } => {
            let id = match table_id {
                Some(id) => id,
                None => seating::table_to_break(&t.floor).ok_or_else(|| {
                    DomainError::refused(
                        "no table needs breaking: the players do not fit at one table fewer",
                    )
                })?,
            };
            let number = table(t, id)?.number;
            let moves = seating::break_table_plan(&t.floor, id, entropy)?;
            Ok(vec![moves_event(
                t,
                &moves,
                &format!("table {number} breaks"),
            )])
        }
        C::FinalTable { table_id } => {
            table(t, table_id)?;
            let moves = seating::final_table_plan(&t.floor, table_id, entropy)?;
            Ok(vec![moves_event(t, &moves, "final table draw")])
        }
        C::SetBalancePolicy { policy } => {
            policy.validate()?;
            Ok(vec![TournamentEvent::BalancePolicySet { policy }])
        }
        C::SetBreakOrder { tables } => {
            for id in &tables {
                table(t, *id)?;
            }
            let mut seen = std::collections::BTreeSet::new();
            if !tables.iter().all(|id| seen.insert(*id)) {
                return Err(DomainError::invalid("the break order names a table twice"));
            }
            Ok(vec![TournamentEvent::BreakOrderSet { tables }])
        }
        C::UndoSeating => match t.seating_history.last() {
            Some(changes) => {
                check_changes_possible(t, &inverse(changes), "undo")?;
                Ok(vec![TournamentEvent::SeatingUndone {
                    changes: changes.clone(),
                }])
            }
            None => Err(DomainError::refused("there is no seating change to undo")),
        },
        C::RedoSeating => match t.seating_redo.last() {
            Some(changes) => {
                check_changes_possible(t, changes, "redo")?;
                Ok(vec![TournamentEvent::SeatingRedone {
                    changes: changes.clone(),
                }])
            }
            None => Err(DomainError::refused(
                "there is no undone seating change to redo",
            )),
        },
        C::SetHandForHand { on } => {
            if on == t.hand_for_hand {
                return Err(DomainError::refused(if on {
                    "hand-for-hand is already on"
                } else {
                    "hand-for-hand is already off"
                }));
            }
            Ok(vec![TournamentEvent::HandForHandSet { on }])
        }
        C::MakeDeal {
            method,
            stacks,
            hold_back,
        } => make_deal(t, method, &stacks, hold_back, venue_unit),
        C::CancelDeal => {
            if t.deal.is_none() {
                return Err(DomainError::refused("there is no deal to cancel"));
            }
            Ok(vec![TournamentEvent::DealCancelled])
        }
        C::Finish => {
            let mut events = Vec::new();
            if t.clock.status != ClockStatus::Finished && t.clock.status != ClockStatus::NotStarted
            {
                events.push(TournamentEvent::ClockChanged {
                    action: ClockAction::Finish,
                    clock: t.clock.finish(&t.structure, now),
                });
            }
            events.push(TournamentEvent::Finished);
            Ok(events)
        }
        C::Cancel => Ok(vec![TournamentEvent::Cancelled]),
    }
}

fn checked_secs(seconds: i64) -> DomainResult<i64> {
    if seconds.abs() > 24 * 3600 {
        return Err(DomainError::invalid(format!(
            "{seconds} seconds is more than a day"
        )));
    }
    Ok(seconds * SECOND_MS)
}

fn clock(t: &Tournament, action: ClockAction, next: DomainResult<Clock>) -> Events {
    let clock = next?;
    if action == ClockAction::Start && t.entries.is_empty() {
        return Err(DomainError::refused(format!(
            "{} has no entries yet: register players before starting the clock",
            t.config.name
        )));
    }
    Ok(vec![TournamentEvent::ClockChanged { action, clock }])
}

fn update_config(t: &Tournament, config: TournamentConfig) -> Events {
    config.validate(&t.structure)?;
    if !t.entries.is_empty() {
        let old = &t.config;
        if old.buy_in != config.buy_in
            || old.fee != config.fee
            || old.bounty != config.bounty
            || old.bounty_kind != config.bounty_kind
            || old.starting_stack != config.starting_stack
        {
            return Err(DomainError::refused(format!(
                "{} already has {} entries: buy-in, fee, bounty and starting stack can no longer change",
                t.config.name,
                t.entries.len()
            )));
        }
    }
    Ok(vec![TournamentEvent::ConfigUpdated { config }])
}

fn set_structure(t: &Tournament, structure: Structure, now: Timestamp) -> Events {
    structure.validate()?;
    t.config.validate(&structure)?;
    if t.clock.status != ClockStatus::NotStarted {
        let view = t.clock.view(&t.structure, now);
        if view.item_index >= structure.items.len() {
            return Err(DomainError::refused(format!(
                "the clock is at {}, which the new structure does not have",
                t.structure
                    .describe_item(view.item_index)
                    .unwrap_or_else(|| format!("item {}", view.item_index + 1))
            )));
        }
    }
    // Keep the clock where it is: same item, same elapsed time (clamped by the clock itself).
    let clock = t.clock.normalized(&t.structure, now);
    Ok(vec![TournamentEvent::StructureChanged { structure, clock }])
}

fn clock_view(t: &Tournament, now: Timestamp) -> ClockView {
    t.clock.view(&t.structure, now)
}

/// `None` if late registration is open, else why it is closed.
pub(crate) fn late_registration_closed(t: &Tournament, now: Timestamp) -> Option<String> {
    let view = clock_view(t, now);
    if view.status == ClockStatus::NotStarted {
        return None;
    }
    if view.status == ClockStatus::Finished {
        return Some("the clock has finished".into());
    }
    match &t.config.late_registration {
        None => Some("this tournament has no late registration and the clock has started".into()),
        Some(lr) => {
            let end = window_end_index(&t.structure, lr.until_level, lr.through_break);
            if view.item_index > end {
                Some(
                    if lr.through_break
                        && end != t.structure.index_of_level(lr.until_level).unwrap_or(end)
                    {
                        format!(
                            "late registration closed at the end of the break after level {}",
                            lr.until_level
                        )
                    } else {
                        format!(
                            "late registration closed at the end of level {}",
                            lr.until_level
                        )
                    },
                )
            } else {
                None
            }
        }
    }
}

fn register(
    t: &Tournament,
    player_name: &dyn Fn(PlayerId) -> Option<String>,
    player_id: PlayerId,
    now: Timestamp,
    entropy: &mut dyn Entropy,
) -> Events {
    let name = player_name(player_id).ok_or_else(|| DomainError::not_found("player", player_id))?;
    let player = Named { name: &name };
    let previous: Vec<&Entry> = t.entries_of(player_id).collect();
    if let Some(live) = previous.iter().find(|e| e.status == EntryStatus::Active) {
        return Err(DomainError::conflict(format!(
            "{} already has a live entry (#{})",
            player.name, live.number
        )));
    }
    if let Some(why) = late_registration_closed(t, now) {
        return Err(DomainError::refused(if previous.is_empty() {
            format!("cannot register {}: {why}", player.name)
        } else {
            format!("cannot re-enter {}: {why}", player.name)
        }));
    }
    let is_reentry = !previous.is_empty();
    if is_reentry {
        match &t.config.reentry {
            None => {
                return Err(DomainError::refused(format!(
                    "{} has busted and {} does not allow re-entry",
                    player.name, t.config.name
                )))
            }
            Some(rule) => {
                let used = previous.len() as u32 - 1;
                if used >= rule.max_per_player {
                    return Err(DomainError::refused(format!(
                        "{} has used all {} re-entries",
                        player.name, rule.max_per_player
                    )));
                }
            }
        }
    }
    if let Some(cap) = t.config.max_entries {
        if t.entries.len() as u32 >= cap {
            return Err(DomainError::refused(format!(
                "{} is full: the cap is {cap} entries",
                t.config.name
            )));
        }
    }
    let entry_id = EntryId::generate(now, entropy);
    let mut events = vec![TournamentEvent::EntryRegistered {
        entry_id,
        player_id,
        player_name: name.clone(),
        number: t.entries.len() as u32 + 1,
        is_reentry,
        bounty: t.config.bounty,
    }];
    // Late entries, alternates and re-entries draw from the same seat pool (TDA 2024 Rule 8-A).
    // With no open seat the entry waits unseated, as an alternate.
    if !t.floor.tables.is_empty() {
        if let Ok(to) = seating::draw_seat(&t.floor, entropy) {
            events.push(seats_changed(
                vec![SeatChange {
                    entry_id,
                    from: None,
                    to: Some(to),
                }],
                format!("{} drew {}", player.name, describe_seat(t, to)),
                false,
            ));
        }
    }
    Ok(events)
}

fn rebuy(t: &Tournament, entry_id: EntryId, stack: Option<Chips>, now: Timestamp) -> Events {
    let e = active_entry(t, entry_id)?;
    let rule = t
        .config
        .rebuy
        .ok_or_else(|| DomainError::refused(format!("{} has no rebuys", t.config.name)))?;
    let view = clock_view(t, now);
    if view.status == ClockStatus::NotStarted {
        return Err(DomainError::refused("rebuys start when the clock starts"));
    }
    let end = window_end_index(&t.structure, rule.until_level, false);
    if view.item_index > end || view.status == ClockStatus::Finished {
        return Err(DomainError::refused(format!(
            "the rebuy period ended at the end of level {}",
            rule.until_level
        )));
    }
    if let Some(max) = rule.max_per_entry {
        if e.rebuys >= max {
            return Err(DomainError::refused(format!(
                "{} has used all {max} rebuys",
                e.player_name
            )));
        }
    }
    if let Some(threshold) = rule.max_stack {
        match stack.or(e.chips) {
            None => {
                return Err(DomainError::invalid(format!(
                    "rebuys are allowed at or below {} chips: give {}'s current stack",
                    crate::format::chips(threshold),
                    e.player_name
                )))
            }
            Some(s) if s > threshold => {
                return Err(DomainError::refused(format!(
                    "{} has {} chips; rebuys are allowed at or below {}",
                    e.player_name,
                    crate::format::chips(s),
                    crate::format::chips(threshold)
                )))
            }
            Some(_) => {}
        }
    }
    Ok(vec![TournamentEvent::RebuyTaken {
        entry_id,
        rebuy_number: e.rebuys + 1,
    }])
}

fn addon(t: &Tournament, entry_id: EntryId, now: Timestamp) -> Events {
    let e = active_entry(t, entry_id)?;
    let rule = t
        .config
        .addon
        .ok_or_else(|| DomainError::refused(format!("{} has no add-on", t.config.name)))?;
    if e.addon {
        return Err(DomainError::refused(format!(
            "{} has already taken the add-on",
            e.player_name
        )));
    }
    let view = clock_view(t, now);
    let start = t
        .structure
        .index_of_level(rule.from_level)
        .unwrap_or(usize::MAX);
    let end = window_end_index(&t.structure, rule.until_level, true);
    let open = view.status != ClockStatus::NotStarted
        && view.status != ClockStatus::Finished
        && view.item_index >= start
        && view.item_index <= end;
    if !open {
        let when = if view.status == ClockStatus::NotStarted || view.item_index < start {
            "has not opened yet"
        } else {
            "has closed"
        };
        return Err(DomainError::refused(format!(
            "the add-on window (level {} to the break after level {}) {when}",
            rule.from_level, rule.until_level
        )));
    }
    Ok(vec![TournamentEvent::AddonTaken { entry_id }])
}

fn bust(t: &Tournament, busts: &[BustInput], eliminated_by: Option<EntryId>) -> Events {
    if busts.is_empty() {
        return Err(DomainError::invalid("name at least one player who busted"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for b in busts {
        active_entry(t, b.entry_id)?;
        if !seen.insert(b.entry_id) {
            return Err(DomainError::invalid(format!(
                "{} is named twice in one bust",
                name_of(t, b.entry_id)
            )));
        }
    }
    if let Some(by) = eliminated_by {
        let k = active_entry(t, by)?;
        if seen.contains(&by) {
            return Err(DomainError::invalid(format!(
                "{} cannot eliminate themselves",
                k.player_name
            )));
        }
    }
    let remaining = t.active_count();
    let k = busts.len() as u32;
    if k >= remaining {
        return Err(DomainError::refused(format!(
            "{remaining} players are left: at least one must survive the hand"
        )));
    }
    // Places remaining-k+1 ..= remaining are handed out, best to the biggest starting stack.
    // During hand-for-hand, players busting at different tables on the same hand tie
    // (TDA 2024 RP-8): their stacks do not matter. Two or more at one table are still placed
    // by their starting stacks (TDA 2024 Rule 20), and then every stack is needed.
    let tables: Vec<Option<TableId>> = busts
        .iter()
        .map(|b| t.floor.seat_of(b.entry_id).map(|s| s.table))
        .collect();
    let distinct: std::collections::BTreeSet<TableId> = tables.iter().flatten().copied().collect();
    let all_at_different_tables =
        tables.iter().all(Option::is_some) && distinct.len() == k as usize;
    let all_tie = t.hand_for_hand && distinct.len() > 1;
    if k > 1
        && busts.iter().any(|b| b.stack.is_none())
        && !(t.hand_for_hand && all_at_different_tables)
    {
        return Err(DomainError::invalid(
            "several players busted on one hand: give each one's stack at the start of the hand so places can be decided",
        ));
    }
    let mut ordered: Vec<BustInput> = busts.to_vec();
    ordered.sort_by_key(|b| std::cmp::Reverse(b.stack.unwrap_or(0)));
    let mut records = Vec::with_capacity(busts.len());
    let mut next_place = remaining - k + 1;
    let mut i = 0;
    while i < ordered.len() {
        let mut j = i + 1;
        while j < ordered.len() && (all_tie || ordered[j].stack == ordered[i].stack) {
            j += 1;
        }
        let shared = (j - i) as u32;
        for b in &ordered[i..j] {
            records.push(BustRecord {
                entry_id: b.entry_id,
                place: next_place,
                shared_places: shared,
                seat: t.floor.seat_of(b.entry_id),
                bounty_before: t
                    .entries
                    .get(&b.entry_id)
                    .map(|e| e.bounty)
                    .unwrap_or_default(),
            });
        }
        next_place += shared;
        i = j;
    }
    let (bounty_paid, bounty_added) = match (t.config.bounty_kind, eliminated_by) {
        (BountyKind::None, _) | (_, None) => (Money::ZERO, Money::ZERO),
        (BountyKind::Fixed, Some(_)) => {
            (records.iter().map(|r| r.bounty_before).sum(), Money::ZERO)
        }
        (BountyKind::Progressive, Some(_)) => {
            let total: Money = records.iter().map(|r| r.bounty_before).sum();
            // Half (rounded down to the cent) is paid out; the rest goes onto the eliminator's head.
            let paid = Money::cents(total.as_cents() / 2);
            (paid, total - paid)
        }
    };
    let winner = if remaining - k == 1 {
        t.active_entries()
            .find(|e| !seen.contains(&e.id))
            .map(|e| e.id)
    } else {
        None
    };
    let mut events = vec![TournamentEvent::PlayersBusted {
        group: BustGroup {
            busts: records,
            eliminated_by,
            bounty_paid,
            bounty_added,
            winner,
        },
    }];
    if winner.is_some() && t.clock.status != ClockStatus::NotStarted {
        // The winner's clock stops with the last hand; the exact instant is the event's time.
        events.push(TournamentEvent::ClockChanged {
            action: ClockAction::Finish,
            clock: Clock {
                status: ClockStatus::Finished,
                ..t.clock.clone()
            },
        });
    }
    Ok(events)
}

fn hand_completed(t: &Tournament, table_id: TableId, now: Timestamp) -> Events {
    let tb = table(t, table_id)?;
    let mut events = Vec::new();
    if let Some(next) = seating::next_button(tb) {
        events.push(TournamentEvent::ButtonSet {
            table_id,
            seat: next,
        });
    }
    if t.hand_for_hand {
        events.extend(hand_for_hand_progress(t, tb, now)?);
    }
    if events.is_empty() {
        return Err(DomainError::refused(format!(
            "table {} has no button set: set the button first",
            tb.number
        )));
    }
    Ok(events)
}

/// Hand-for-hand (TDA 2024 RP-8): every table plays one hand and waits for the others. The
/// hand is over when every table in play has reported it; then, and only then, the clock
/// loses the configured time per hand, however many tables there are. The loss stops at the
/// end of the current level: it never eats into the next one.
fn hand_for_hand_progress(t: &Tournament, tb: &crate::seating::Table, now: Timestamp) -> Events {
    let in_play: std::collections::BTreeSet<TableId> =
        t.floor.tables_in_play().map(|x| x.id).collect();
    if !in_play.contains(&tb.id) {
        return Err(DomainError::refused(format!(
            "table {} has no players: it plays no hand",
            tb.number
        )));
    }
    let mut done: std::collections::BTreeSet<TableId> = t
        .hand_for_hand_done
        .intersection(&in_play)
        .copied()
        .collect();
    let mut hands = 0i64;
    if done == in_play {
        // Every table still playing had finished (the others broke meanwhile): that hand is over.
        hands += 1;
        done.clear();
    }
    if done.contains(&tb.id) {
        let waiting: Vec<String> = t
            .floor
            .tables_in_play()
            .filter(|x| !done.contains(&x.id))
            .map(|x| x.number.to_string())
            .collect();
        return Err(DomainError::refused(format!(
            "hand-for-hand: table {} has already finished this hand; waiting for table {}",
            tb.number,
            waiting.join(", ")
        )));
    }
    done.insert(tb.id);
    if done.is_superset(&in_play) {
        hands += 1;
        done.clear();
    }
    let mut events = vec![TournamentEvent::HandForHandProgress {
        tables_done: done.into_iter().collect(),
    }];
    let per_hand = i64::from(t.config.hand_for_hand_secs_per_hand) * SECOND_MS;
    if hands > 0 && per_hand > 0 && t.clock.status == ClockStatus::Running {
        let remaining = t.clock.view(&t.structure, now).remaining_ms;
        if remaining > 0 {
            let left = (remaining - per_hand * hands).max(0);
            if let Ok(c) = t.clock.set_remaining(&t.structure, left, now) {
                events.push(TournamentEvent::ClockChanged {
                    action: ClockAction::HandForHand,
                    clock: c,
                });
            }
        }
    }
    Ok(events)
}

/// A deal shares out the prizes of the players left when it was made. Anything that would
/// change those prizes or that field (a new entry, a rebuy or add-on, a bust from before the
/// deal undone, another payout plan) would leave the deal paying a different pool than the
/// one the room has, so it waits until the deal is cancelled.
fn refuse_what_a_deal_forbids(
    t: &Tournament,
    deal: &DealRecord,
    cmd: &TournamentCommand,
) -> DomainResult<()> {
    use TournamentCommand as C;
    let what = match cmd {
        C::Register { .. } => "registering",
        C::Rebuy { .. } => "a rebuy",
        C::Addon { .. } => "an add-on",
        C::UndoBust => match t.bust_history.last() {
            Some(g)
                if g.busts
                    .iter()
                    .any(|b| !deal.amounts.contains_key(&b.entry_id)) =>
            {
                "undoing a bust from before the deal"
            }
            _ => return Ok(()),
        },
        C::UpdateConfig { config }
            if config.guarantee != t.config.guarantee
                || config.payout_plan != t.config.payout_plan
                || config.rounding_unit != t.config.rounding_unit =>
        {
            "changing the payouts"
        }
        _ => return Ok(()),
    };
    Err(DomainError::refused(format!(
        "a deal was made among the last {} players: cancel it before {what}",
        deal.amounts.len()
    )))
}

fn make_deal(
    t: &Tournament,
    method: crate::deals::DealMethod,
    stacks: &[DealStack],
    hold_back: Money,
    venue_unit: Money,
) -> Events {
    let active: Vec<&Entry> = t.active_entries().collect();
    if active.len() < 2 {
        return Err(DomainError::refused(
            "a deal needs at least two players left",
        ));
    }
    if stacks.len() != active.len() {
        return Err(DomainError::invalid(format!(
            "{} players are left; give a stack for each of them ({} given)",
            active.len(),
            stacks.len()
        )));
    }
    for s in stacks {
        active_entry(t, s.entry_id)?;
    }
    let payouts = results::payout_amounts(t, venue_unit);
    let remaining = active.len();
    let prizes: Vec<Money> = (1..=remaining)
        .map(|place| payouts.get(place - 1).copied().unwrap_or(Money::ZERO))
        .collect();
    let req = crate::deals::DealRequest {
        prizes,
        stacks: stacks.iter().map(|s| s.chips).collect(),
        hold_back,
        method: method.clone(),
        rounding_unit: Money::cents(1),
    };
    let deal = crate::deals::propose(&req)?;
    let amounts = stacks
        .iter()
        .zip(deal.payouts.iter())
        .map(|(s, m)| (s.entry_id, *m))
        .collect();
    Ok(vec![TournamentEvent::DealMade {
        deal: DealRecord {
            method,
            amounts,
            held_back: deal.held_back,
            rounding_unit: Some(t.config.rounding_unit.unwrap_or(venue_unit)),
        },
    }])
}

fn moves_event(t: &Tournament, moves: &[Move], reason: &str) -> TournamentEvent {
    let changes: Vec<SeatChange> = moves
        .iter()
        .map(|m| SeatChange {
            entry_id: m.entry,
            from: Some(m.from),
            to: Some(m.to),
        })
        .collect();
    let detail: Vec<String> = moves
        .iter()
        .map(|m| {
            // What staff must check (an unknown button, TDA 2024 Rule 11-A) travels with the
            // move, so the room sees it wherever the change is shown.
            let confirm = m
                .needs_confirmation
                .as_ref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            format!(
                "{}: {} → {}{confirm}",
                name_of(t, m.entry),
                describe_seat(t, m.from),
                describe_seat(t, m.to)
            )
        })
        .collect();
    seats_changed(changes, format!("{reason}: {}", detail.join("; ")), true)
}

fn seats_changed(changes: Vec<SeatChange>, reason: String, undoable: bool) -> TournamentEvent {
    TournamentEvent::SeatsChanged {
        changes,
        reason,
        undoable,
    }
}

/// Undo/redo may only run if every target seat is free (or freed by the same change).
fn check_changes_possible(t: &Tournament, changes: &[SeatChange], what: &str) -> DomainResult<()> {
    let leaving: std::collections::BTreeSet<SeatRef> =
        changes.iter().filter_map(|c| c.from).collect();
    for c in changes {
        if let Some(from) = c.from {
            if t.floor.occupant(from) != Some(c.entry_id) {
                return Err(DomainError::refused(format!(
                    "cannot {what}: {} is no longer at {}",
                    name_of(t, c.entry_id),
                    describe_seat(t, from)
                )));
            }
        } else if t.floor.seat_of(c.entry_id).is_some() {
            return Err(DomainError::refused(format!(
                "cannot {what}: {} has been seated since",
                name_of(t, c.entry_id)
            )));
        }
        if let Some(to) = c.to {
            if t.floor.table(to.table).is_none() {
                return Err(DomainError::refused(format!(
                    "cannot {what}: the table has been removed"
                )));
            }
            if let Some(o) = t.floor.occupant(to) {
                if !leaving.contains(&to) {
                    return Err(DomainError::refused(format!(
                        "cannot {what}: {} is taken by {}",
                        describe_seat(t, to),
                        name_of(t, o)
                    )));
                }
            }
        }
        if let Some(e) = t.entries.get(&c.entry_id) {
            if e.status != EntryStatus::Active && c.to.is_some() {
                return Err(DomainError::refused(format!(
                    "cannot {what}: {} has busted",
                    e.player_name
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn entry(t: &Tournament, id: EntryId) -> DomainResult<&Entry> {
    t.entries
        .get(&id)
        .ok_or_else(|| DomainError::not_found("entry", id))
}

fn active_entry(t: &Tournament, id: EntryId) -> DomainResult<&Entry> {
    let e = entry(t, id)?;
    if e.status != EntryStatus::Active {
        return Err(DomainError::refused(format!(
            "{} (entry #{}) has already busted",
            e.player_name, e.number
        )));
    }
    Ok(e)
}

fn table(t: &Tournament, id: TableId) -> DomainResult<&crate::seating::Table> {
    t.floor
        .table(id)
        .ok_or_else(|| DomainError::not_found("table", id))
}

fn check_seat(tb: &crate::seating::Table, seat: u8) -> DomainResult<()> {
    if seat == 0 || seat > tb.seat_count {
        return Err(DomainError::invalid(format!(
            "table {} has seats 1 to {}, not {seat}",
            tb.number, tb.seat_count
        )));
    }
    Ok(())
}

fn name_of(t: &Tournament, id: EntryId) -> String {
    t.entries
        .get(&id)
        .map(|e| e.player_name.clone())
        .unwrap_or_else(|| format!("entry {id}"))
}

pub(crate) fn describe_seat(t: &Tournament, s: SeatRef) -> String {
    match t.floor.table(s.table) {
        Some(tb) => format!("table {} seat {}", tb.number, s.seat),
        None => format!("seat {}", s.seat),
    }
}
