//! Folding events into state. Total: an event that refers to something unknown, or that
//! would break an invariant (a taken seat, a seat beyond the table), is ignored, because a
//! replayed log must never stop the node.

use super::{
    CashEvent, CashState, CashTable, Game, MissedCallOutcome, SeatOccupant, WaitlistEntry,
};
use crate::ids::WaitlistEntryId;
use crate::time::Timestamp;

/// Apply one event to the state.
pub fn apply(state: &mut CashState, event: &CashEvent) {
    match event {
        CashEvent::GameCreated {
            game_id,
            game,
            small_blind,
            big_blind,
            min_buy_in,
            max_buy_in,
            name,
        } => {
            state.games.entry(*game_id).or_insert_with(|| Game {
                id: *game_id,
                game: game.clone(),
                small_blind: *small_blind,
                big_blind: *big_blind,
                min_buy_in: *min_buy_in,
                max_buy_in: *max_buy_in,
                label: name.clone(),
                closed: false,
                must_move_for: None,
                recent_list_seatings: Vec::new(),
            });
        }
        CashEvent::GameRenamed { game_id, name } => {
            if let Some(game) = state.games.get_mut(game_id) {
                game.label = name.clone();
            }
        }
        CashEvent::GameClosed { game_id } => {
            if let Some(game) = state.games.get_mut(game_id) {
                game.closed = true;
                game.must_move_for = None;
            }
            for game in state.games.values_mut() {
                if game.must_move_for == Some(*game_id) {
                    game.must_move_for = None;
                }
            }
            state.waitlists.remove(game_id);
        }
        CashEvent::MustMoveLinked {
            must_move_game_id,
            main_game_id,
        } => {
            if state.games.contains_key(main_game_id) && must_move_game_id != main_game_id {
                if let Some(game) = state.games.get_mut(must_move_game_id) {
                    game.must_move_for = Some(*main_game_id);
                }
            }
        }
        CashEvent::MustMoveUnlinked { must_move_game_id } => {
            if let Some(game) = state.games.get_mut(must_move_game_id) {
                game.must_move_for = None;
            }
        }
        CashEvent::TableAdded {
            table_id,
            number,
            seat_count,
            game_id,
        } => {
            state.tables.entry(*table_id).or_insert_with(|| CashTable {
                id: *table_id,
                number: *number,
                seat_count: *seat_count,
                game_id: *game_id,
                open: false,
                seats: Default::default(),
            });
        }
        CashEvent::TableGameChanged { table_id, game_id } => {
            if let Some(table) = state.tables.get_mut(table_id) {
                if table.seats.is_empty() {
                    table.game_id = *game_id;
                }
            }
        }
        CashEvent::TableOpened { table_id } => {
            if let Some(table) = state.tables.get_mut(table_id) {
                table.open = true;
            }
        }
        CashEvent::TableClosed { table_id } => {
            if let Some(table) = state.tables.get_mut(table_id) {
                if table.seats.is_empty() {
                    table.open = false;
                }
            }
        }
        CashEvent::PlayerSeated {
            table_id,
            seat,
            name,
            player_id,
            at,
            from_entry,
            left_lists,
        } => {
            let Some(table) = state.tables.get_mut(table_id) else {
                return;
            };
            if !table.open
                || *seat == 0
                || *seat > table.seat_count
                || table.seats.contains_key(seat)
            {
                return;
            }
            table.seats.insert(
                *seat,
                SeatOccupant {
                    name: name.clone(),
                    player_id: *player_id,
                    seated_at: *at,
                    in_game_since: *at,
                },
            );
            if let Some(entry_id) = from_entry {
                if let Some(entry) = remove_entry(state, *entry_id) {
                    record_list_seating(state, &entry, *at);
                }
            }
            for entry_id in left_lists {
                remove_entry(state, *entry_id);
            }
        }
        CashEvent::PlayerUnseated { table_id, seat } => {
            if let Some(table) = state.tables.get_mut(table_id) {
                table.seats.remove(seat);
            }
        }
        CashEvent::PlayerMoved {
            from_table_id,
            from_seat,
            to_table_id,
            to_seat,
            at,
            left_lists,
        } => {
            apply_move(
                state,
                (*from_table_id, *from_seat),
                (*to_table_id, *to_seat),
                *at,
            );
            for entry_id in left_lists {
                remove_entry(state, *entry_id);
            }
        }
        CashEvent::PlayerJoinedWaitlist {
            entry_id,
            game_id,
            name,
            phone,
            player_id,
            at,
        } => {
            if !state.games.contains_key(game_id) || state.find_entry(*entry_id).is_some() {
                return;
            }
            state
                .waitlists
                .entry(*game_id)
                .or_default()
                .push(WaitlistEntry {
                    id: *entry_id,
                    game_id: *game_id,
                    name: name.clone(),
                    phone: phone.clone(),
                    player_id: *player_id,
                    joined_at: *at,
                    called_at: None,
                    missed_calls: 0,
                });
        }
        CashEvent::PlayerCalled { entry_id, at } => {
            if let Some(entry) = entry_mut(state, *entry_id) {
                entry.called_at = Some(*at);
            }
        }
        CashEvent::CallUndone { entry_id } => {
            if let Some(entry) = entry_mut(state, *entry_id) {
                entry.called_at = None;
            }
        }
        CashEvent::CallExpired { entry_id, outcome }
        | CashEvent::PlayerMarkedNoShow { entry_id, outcome } => {
            apply_missed_call(state, *entry_id, *outcome);
        }
        CashEvent::PlayerRemovedFromWaitlist { entry_id } => {
            remove_entry(state, *entry_id);
        }
        CashEvent::SettingsChanged { settings } => {
            state.settings = settings.clone();
            let cap = turnover_cap(state);
            for game in state.games.values_mut() {
                keep_last(&mut game.recent_list_seatings, cap);
            }
        }
    }
}

fn entry_mut(state: &mut CashState, entry_id: WaitlistEntryId) -> Option<&mut WaitlistEntry> {
    state
        .waitlists
        .values_mut()
        .find_map(|list| list.iter_mut().find(|e| e.id == entry_id))
}

/// Takes an entry off its list; the entries behind it move up, so positions stay 1..n.
fn remove_entry(state: &mut CashState, entry_id: WaitlistEntryId) -> Option<WaitlistEntry> {
    let mut removed = None;
    for list in state.waitlists.values_mut() {
        if let Some(i) = list.iter().position(|e| e.id == entry_id) {
            removed = Some(list.remove(i));
            break;
        }
    }
    state.waitlists.retain(|_, list| !list.is_empty());
    removed
}

fn record_list_seating(state: &mut CashState, entry: &WaitlistEntry, at: Timestamp) {
    let cap = turnover_cap(state);
    if let Some(game) = state.games.get_mut(&entry.game_id) {
        game.recent_list_seatings.push(at);
        keep_last(&mut game.recent_list_seatings, cap);
    }
}

fn turnover_cap(state: &CashState) -> usize {
    usize::try_from(state.settings.turnover_sample.max(2)).unwrap_or(2)
}

fn keep_last(seatings: &mut Vec<Timestamp>, cap: usize) {
    let excess = seatings.len().saturating_sub(cap);
    seatings.drain(..excess);
}

fn apply_missed_call(state: &mut CashState, entry_id: WaitlistEntryId, outcome: MissedCallOutcome) {
    let Some(mut entry) = remove_entry(state, entry_id) else {
        return;
    };
    if outcome == MissedCallOutcome::MovedToEnd {
        entry.called_at = None;
        entry.missed_calls = entry.missed_calls.saturating_add(1);
        state
            .waitlists
            .entry(entry.game_id)
            .or_default()
            .push(entry);
    }
}

fn apply_move(
    state: &mut CashState,
    from: (crate::ids::TableId, u8),
    to: (crate::ids::TableId, u8),
    at: Timestamp,
) {
    let (from_table_id, from_seat) = from;
    let (to_table_id, to_seat) = to;
    let Some(from_game) = state.tables.get(&from_table_id).map(|t| t.game_id) else {
        return;
    };
    let Some(to_table) = state.tables.get(&to_table_id) else {
        return;
    };
    let same_seat = from_table_id == to_table_id && from_seat == to_seat;
    if same_seat
        || !to_table.open
        || to_seat == 0
        || to_seat > to_table.seat_count
        || to_table.seats.contains_key(&to_seat)
    {
        return;
    }
    let to_game = to_table.game_id;
    let Some(mut occupant) = state
        .tables
        .get_mut(&from_table_id)
        .and_then(|t| t.seats.remove(&from_seat))
    else {
        return;
    };
    occupant.seated_at = at;
    if from_game != to_game {
        occupant.in_game_since = at;
    }
    if let Some(table) = state.tables.get_mut(&to_table_id) {
        table.seats.insert(to_seat, occupant);
    }
}
