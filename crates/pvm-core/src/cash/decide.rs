//! Checking commands. Every refusal names the game, table, seat or person and says why.

use super::{
    board::must_move_queue, game_name, normalized_name, CashCommand, CashEvent, CashState,
    CashTable, Game, MissedCallOutcome, MissedCallPolicy, Person, WaitlistEntry, WaitlistSettings,
};
use crate::entropy::Entropy;
use crate::error::{DomainError, DomainResult};
use crate::ids::{GameId, PlayerId, TableId, WaitlistEntryId};
use crate::money::Money;
use crate::time::{Timestamp, MINUTE_MS, SECOND_MS};

const MAX_NAME_CHARS: usize = 40;
const MAX_GAME_TYPE_CHARS: usize = 20;
const MAX_PHONE_CHARS: usize = 24;
const MIN_SEATS: u8 = 2;
const MAX_SEATS: u8 = 12;
const MAX_CALL_RESPONSE_MS: i64 = 120 * MINUTE_MS;
const MAX_TURNOVER_SAMPLE: u32 = 50;

/// Check a command against the state; the events to record, or why it is refused.
pub fn decide(
    state: &CashState,
    cmd: CashCommand,
    now: Timestamp,
    entropy: &mut dyn Entropy,
) -> DomainResult<Vec<CashEvent>> {
    match cmd {
        CashCommand::CreateGame {
            game,
            small_blind,
            big_blind,
            min_buy_in,
            max_buy_in,
            name,
        } => create_game(
            state,
            GameSpec {
                game,
                small_blind,
                big_blind,
                min_buy_in,
                max_buy_in,
                name,
            },
            now,
            entropy,
        ),
        CashCommand::RenameGame { game_id, name } => {
            let game = open_game(state, game_id)?;
            let name = name.map(|n| clean_name(&n, "game name")).transpose()?;
            let new_name = name
                .clone()
                .unwrap_or_else(|| game_name(&game.game, game.small_blind, game.big_blind));
            refuse_duplicate_game_name(state, &new_name, Some(game_id))?;
            Ok(vec![CashEvent::GameRenamed { game_id, name }])
        }
        CashCommand::CloseGame { game_id } => {
            let game = known_game(state, game_id)?;
            if game.closed {
                return Err(DomainError::refused(format!(
                    "game {} is already closed",
                    game.name()
                )));
            }
            if let Some(table) = open_tables_of(state, game_id).next() {
                return Err(DomainError::refused(format!(
                    "game {} still has table {} open; close its tables first",
                    game.name(),
                    table.number
                )));
            }
            Ok(vec![CashEvent::GameClosed { game_id }])
        }
        CashCommand::LinkMustMove {
            must_move_game_id,
            main_game_id,
        } => link_must_move(state, must_move_game_id, main_game_id),
        CashCommand::UnlinkMustMove { must_move_game_id } => {
            let game = known_game(state, must_move_game_id)?;
            if game.must_move_for.is_none() {
                return Err(DomainError::refused(format!(
                    "{} is not a must-move game",
                    game.name()
                )));
            }
            Ok(vec![CashEvent::MustMoveUnlinked { must_move_game_id }])
        }
        CashCommand::AddTable {
            number,
            seat_count,
            game_id,
        } => {
            if number == 0 {
                return Err(DomainError::invalid("table numbers start at 1"));
            }
            if !(MIN_SEATS..=MAX_SEATS).contains(&seat_count) {
                return Err(DomainError::invalid(format!(
                    "a table has {MIN_SEATS} to {MAX_SEATS} seats, not {seat_count}"
                )));
            }
            if state.tables.values().any(|t| t.number == number) {
                return Err(DomainError::conflict(format!(
                    "table {number} already exists"
                )));
            }
            open_game(state, game_id)?;
            Ok(vec![CashEvent::TableAdded {
                table_id: TableId::generate(now, entropy),
                number,
                seat_count,
                game_id,
            }])
        }
        CashCommand::ChangeTableGame { table_id, game_id } => {
            let table = known_table(state, table_id)?;
            if table.open {
                return Err(DomainError::refused(format!(
                    "table {} is open; close it before changing its game",
                    table.number
                )));
            }
            let game = open_game(state, game_id)?;
            if table.game_id == game_id {
                return Err(DomainError::refused(format!(
                    "table {} already deals {}",
                    table.number,
                    game.name()
                )));
            }
            Ok(vec![CashEvent::TableGameChanged { table_id, game_id }])
        }
        CashCommand::OpenTable { table_id } => {
            let table = known_table(state, table_id)?;
            if table.open {
                return Err(DomainError::refused(format!(
                    "table {} is already open",
                    table.number
                )));
            }
            open_game(state, table.game_id)?;
            Ok(vec![CashEvent::TableOpened { table_id }])
        }
        CashCommand::CloseTable { table_id } => {
            let table = known_table(state, table_id)?;
            if !table.open {
                return Err(DomainError::refused(format!(
                    "table {} is already closed",
                    table.number
                )));
            }
            let seated = table.seats.len();
            if seated > 0 {
                return Err(DomainError::refused(format!(
                    "table {} still has {} seated; unseat or move {} first",
                    table.number,
                    plural(seated, "player", "players"),
                    if seated == 1 { "them" } else { "everyone" }
                )));
            }
            Ok(vec![CashEvent::TableClosed { table_id }])
        }
        CashCommand::SeatPlayer {
            table_id,
            seat,
            name,
            player_id,
        } => {
            let name = clean_name(&name, "player's name")?;
            let person = Person {
                name: &name,
                player_id,
            };
            let table = open_table(state, table_id)?;
            refuse_if_seated(state, &person, &name)?;
            let seat = choose_seat(table, seat)?;
            Ok(vec![CashEvent::PlayerSeated {
                table_id,
                seat,
                left_lists: lists_left_on_seating(state, &person, table.game_id, None),
                name,
                player_id,
                at: now,
                from_entry: None,
            }])
        }
        CashCommand::SeatFromWaitlist {
            entry_id,
            table_id,
            seat,
        } => seat_from_waitlist(state, entry_id, table_id, seat, now),
        CashCommand::UnseatPlayer { table_id, seat } => {
            let table = known_table(state, table_id)?;
            if !table.seats.contains_key(&seat) {
                return Err(DomainError::refused(format!(
                    "seat {seat} at table {} is empty",
                    table.number
                )));
            }
            Ok(vec![CashEvent::PlayerUnseated { table_id, seat }])
        }
        CashCommand::MovePlayer {
            from_table_id,
            from_seat,
            to_table_id,
            to_seat,
        } => move_player(state, (from_table_id, from_seat), to_table_id, to_seat, now),
        CashCommand::JoinWaitlist {
            game_id,
            name,
            phone,
            player_id,
        } => join_waitlist(state, game_id, name, phone, player_id, now, entropy),
        CashCommand::CallPlayer { entry_id } => {
            let (entry, _) = known_entry(state, entry_id)?;
            let game_name = state.game_name_of(entry.game_id);
            if !state.is_running(entry.game_id) {
                return Err(DomainError::refused(format!(
                    "{game_name} has no open table, so its list is an interest list; open a table before calling {}",
                    entry.name
                )));
            }
            if let Some(called_at) = entry.called_at {
                return Err(DomainError::refused(format!(
                    "{} was already called for {game_name} {}",
                    entry.name,
                    ago(now, called_at)
                )));
            }
            Ok(vec![CashEvent::PlayerCalled { entry_id, at: now }])
        }
        CashCommand::UndoCall { entry_id } => {
            let (entry, _) = known_entry(state, entry_id)?;
            if entry.called_at.is_none() {
                return Err(DomainError::refused(format!(
                    "{} has not been called for {}",
                    entry.name,
                    state.game_name_of(entry.game_id)
                )));
            }
            Ok(vec![CashEvent::CallUndone { entry_id }])
        }
        CashCommand::RemoveFromWaitlist { entry_id } => {
            known_entry(state, entry_id)?;
            Ok(vec![CashEvent::PlayerRemovedFromWaitlist { entry_id }])
        }
        CashCommand::MarkNoShow { entry_id } => {
            let (entry, _) = known_entry(state, entry_id)?;
            if entry.called_at.is_none() {
                return Err(DomainError::refused(format!(
                    "{} has not been called for {}, so cannot be a no-show",
                    entry.name,
                    state.game_name_of(entry.game_id)
                )));
            }
            Ok(vec![CashEvent::PlayerMarkedNoShow {
                entry_id,
                outcome: missed_call_outcome(&state.settings),
            }])
        }
        CashCommand::ExpireCalls {} => Ok(expire_calls(state, now)),
        CashCommand::ChangeSettings { settings } => {
            if settings.call_response_ms < SECOND_MS
                || settings.call_response_ms > MAX_CALL_RESPONSE_MS
            {
                return Err(DomainError::invalid(format!(
                    "the call response time must be between 1 second and {} minutes",
                    MAX_CALL_RESPONSE_MS / MINUTE_MS
                )));
            }
            if !(2..=MAX_TURNOVER_SAMPLE).contains(&settings.turnover_sample) {
                return Err(DomainError::invalid(format!(
                    "the wait estimate needs between 2 and {MAX_TURNOVER_SAMPLE} recent seatings, not {}",
                    settings.turnover_sample
                )));
            }
            Ok(vec![CashEvent::SettingsChanged { settings }])
        }
    }
}

struct GameSpec {
    game: String,
    small_blind: Money,
    big_blind: Money,
    min_buy_in: Option<Money>,
    max_buy_in: Option<Money>,
    name: Option<String>,
}

fn create_game(
    state: &CashState,
    spec: GameSpec,
    now: Timestamp,
    entropy: &mut dyn Entropy,
) -> DomainResult<Vec<CashEvent>> {
    let game = spec.game.split_whitespace().collect::<Vec<_>>().join(" ");
    if game.is_empty() {
        return Err(DomainError::invalid(
            "the game type is missing (for example NLH or PLO)",
        ));
    }
    if game.chars().count() > MAX_GAME_TYPE_CHARS {
        return Err(DomainError::invalid(format!(
            "the game type \"{game}\" is longer than {MAX_GAME_TYPE_CHARS} characters"
        )));
    }
    if spec.small_blind <= Money::ZERO {
        return Err(DomainError::invalid("the small blind must be more than 0"));
    }
    if spec.big_blind < spec.small_blind {
        return Err(DomainError::invalid(format!(
            "the big blind ({}) is smaller than the small blind ({})",
            super::format_amount(spec.big_blind),
            super::format_amount(spec.small_blind)
        )));
    }
    for (label, amount) in [("minimum", spec.min_buy_in), ("maximum", spec.max_buy_in)] {
        if let Some(amount) = amount {
            if amount <= Money::ZERO {
                return Err(DomainError::invalid(format!(
                    "the {label} buy-in must be more than 0"
                )));
            }
        }
    }
    if let (Some(min), Some(max)) = (spec.min_buy_in, spec.max_buy_in) {
        if min > max {
            return Err(DomainError::invalid(format!(
                "the minimum buy-in ({}) is more than the maximum ({})",
                super::format_amount(min),
                super::format_amount(max)
            )));
        }
    }
    let name = spec.name.map(|n| clean_name(&n, "game name")).transpose()?;
    let shown = name
        .clone()
        .unwrap_or_else(|| game_name(&game, spec.small_blind, spec.big_blind));
    refuse_duplicate_game_name(state, &shown, None)?;
    Ok(vec![CashEvent::GameCreated {
        game_id: GameId::generate(now, entropy),
        game,
        small_blind: spec.small_blind,
        big_blind: spec.big_blind,
        min_buy_in: spec.min_buy_in,
        max_buy_in: spec.max_buy_in,
        name,
    }])
}

fn link_must_move(
    state: &CashState,
    must_move_game_id: GameId,
    main_game_id: GameId,
) -> DomainResult<Vec<CashEvent>> {
    let must_move = open_game(state, must_move_game_id)?;
    let main = open_game(state, main_game_id)?;
    if must_move_game_id == main_game_id {
        return Err(DomainError::invalid(format!(
            "{} cannot be its own must-move game",
            main.name()
        )));
    }
    if let Some(current) = must_move.must_move_for {
        return Err(DomainError::conflict(format!(
            "{} is already the must-move game for {}",
            must_move.name(),
            state.game_name_of(current)
        )));
    }
    if let Some(main_of_main) = main.must_move_for {
        return Err(DomainError::refused(format!(
            "{} is itself a must-move game for {}; link must-move games to a main game",
            main.name(),
            state.game_name_of(main_of_main)
        )));
    }
    // One must-move game per main game and no chains: the order in which players move in
    // stays a single queue the floor can read off the board.
    if let Some(fed) = state
        .games
        .values()
        .find(|g| g.must_move_for == Some(must_move_game_id))
    {
        return Err(DomainError::refused(format!(
            "{} is the main game of must-move game {}; it cannot also be a must-move game",
            must_move.name(),
            fed.name()
        )));
    }
    if let Some(existing) = state
        .games
        .values()
        .find(|g| g.must_move_for == Some(main_game_id))
    {
        return Err(DomainError::conflict(format!(
            "{} already has must-move game {}",
            main.name(),
            existing.name()
        )));
    }
    Ok(vec![CashEvent::MustMoveLinked {
        must_move_game_id,
        main_game_id,
    }])
}

fn seat_from_waitlist(
    state: &CashState,
    entry_id: WaitlistEntryId,
    table_id: TableId,
    seat: Option<u8>,
    now: Timestamp,
) -> DomainResult<Vec<CashEvent>> {
    let (entry, _) = known_entry(state, entry_id)?;
    let table = open_table(state, table_id)?;
    let list_game = state.game_name_of(entry.game_id);
    let table_game = known_game(state, table.game_id)?;
    let feeds_must_move = table_game.must_move_for == Some(entry.game_id);
    if table.game_id != entry.game_id && !feeds_must_move {
        return Err(DomainError::refused(format!(
            "{} is on the {list_game} list; table {} deals {}",
            entry.name,
            table.number,
            table_game.name()
        )));
    }
    if table.game_id == entry.game_id {
        // A main-game seat goes to the must-move player waiting longest; the list feeds
        // the must-move game instead.
        if let Some(first) = must_move_queue(state, entry.game_id).first() {
            return Err(DomainError::refused(format!(
                "a must-move player moves into {list_game} first: {} (table {}, seat {}) has waited longest",
                first.name, first.table_number, first.seat
            )));
        }
    }
    let person = Person {
        name: &entry.name,
        player_id: entry.player_id,
    };
    refuse_if_seated(state, &person, &entry.name)?;
    let seat = choose_seat(table, seat)?;
    Ok(vec![CashEvent::PlayerSeated {
        table_id,
        seat,
        name: entry.name.clone(),
        player_id: entry.player_id,
        at: now,
        from_entry: Some(entry_id),
        left_lists: lists_left_on_seating(state, &person, table.game_id, Some(entry_id)),
    }])
}

fn move_player(
    state: &CashState,
    (from_table_id, from_seat): (TableId, u8),
    to_table_id: TableId,
    to_seat: Option<u8>,
    now: Timestamp,
) -> DomainResult<Vec<CashEvent>> {
    let from_table = known_table(state, from_table_id)?;
    let occupant = from_table.seats.get(&from_seat).ok_or_else(|| {
        DomainError::refused(format!(
            "seat {from_seat} at table {} is empty",
            from_table.number
        ))
    })?;
    let to_table = open_table(state, to_table_id)?;
    let from_game = known_game(state, from_table.game_id)?;
    let to_game = known_game(state, to_table.game_id)?;
    if from_game.id != to_game.id {
        if from_game.must_move_for != Some(to_game.id) {
            return Err(DomainError::refused(format!(
                "{} plays {}; table {} deals {}",
                occupant.name,
                from_game.name(),
                to_table.number,
                to_game.name()
            )));
        }
        let queue = must_move_queue(state, to_game.id);
        if let Some(first) = queue.first() {
            if first.table_id != from_table_id || first.seat != from_seat {
                return Err(DomainError::refused(format!(
                    "{} (table {}, seat {}) has waited longer in {} and moves to {} first",
                    first.name,
                    first.table_number,
                    first.seat,
                    from_game.name(),
                    to_game.name()
                )));
            }
        }
    }
    let to_seat = choose_seat(to_table, to_seat)?;
    let person = Person {
        name: &occupant.name,
        player_id: occupant.player_id,
    };
    Ok(vec![CashEvent::PlayerMoved {
        from_table_id,
        from_seat,
        to_table_id,
        to_seat,
        at: now,
        left_lists: state
            .list(to_game.id)
            .iter()
            .filter(|e| person.is(&e.name, e.player_id))
            .map(|e| e.id)
            .collect(),
    }])
}

fn join_waitlist(
    state: &CashState,
    game_id: GameId,
    name: String,
    phone: Option<String>,
    player_id: Option<PlayerId>,
    now: Timestamp,
    entropy: &mut dyn Entropy,
) -> DomainResult<Vec<CashEvent>> {
    let game = open_game(state, game_id)?;
    let name = clean_name(&name, "player's name")?;
    let phone = phone.map(|p| clean_phone(&p)).transpose()?.flatten();
    let person = Person {
        name: &name,
        player_id,
    };
    if let Some((position, entry)) = state
        .list(game_id)
        .iter()
        .enumerate()
        .find(|(_, e)| person.is(&e.name, e.player_id))
    {
        return Err(DomainError::conflict(format!(
            "{} is already on the {} list at position {}",
            entry.name,
            game.name(),
            position + 1
        )));
    }
    if let Some((table, seat)) = state.seat_of(person.name, person.player_id) {
        if table.game_id == game_id {
            return Err(DomainError::refused(format!(
                "{name} is already playing {} at table {}, seat {seat}",
                game.name(),
                table.number
            )));
        }
    }
    Ok(vec![CashEvent::PlayerJoinedWaitlist {
        entry_id: WaitlistEntryId::generate(now, entropy),
        game_id,
        name,
        phone,
        player_id,
        at: now,
    }])
}

fn expire_calls(state: &CashState, now: Timestamp) -> Vec<CashEvent> {
    let outcome = missed_call_outcome(&state.settings);
    // Lists in game order and entries in list order, so players moved to the end keep their
    // relative order.
    state
        .waitlists
        .values()
        .flatten()
        .filter(|e| {
            e.called_at
                .is_some_and(|at| now.millis_since(at) >= state.settings.call_response_ms)
        })
        .map(|e| CashEvent::CallExpired {
            entry_id: e.id,
            outcome,
        })
        .collect()
}

fn missed_call_outcome(settings: &WaitlistSettings) -> MissedCallOutcome {
    match settings.on_missed_call {
        MissedCallPolicy::MoveToEnd => MissedCallOutcome::MovedToEnd,
        MissedCallPolicy::Remove => MissedCallOutcome::Removed,
    }
}

/// The entries a seating takes off lists: the person's place on the list of the game they
/// now play, and, when the venue wants it, their places on every other list.
fn lists_left_on_seating(
    state: &CashState,
    person: &Person<'_>,
    seated_game: GameId,
    seated_entry: Option<WaitlistEntryId>,
) -> Vec<WaitlistEntryId> {
    state
        .waitlists
        .iter()
        .filter(|(game_id, _)| state.settings.seat_removes_other_lists || **game_id == seated_game)
        .flat_map(|(_, list)| list.iter())
        .filter(|e| Some(e.id) != seated_entry && person.is(&e.name, e.player_id))
        .map(|e| e.id)
        .collect()
}

fn known_game(state: &CashState, game_id: GameId) -> DomainResult<&Game> {
    state
        .games
        .get(&game_id)
        .ok_or_else(|| DomainError::not_found("game", game_id))
}

fn open_game(state: &CashState, game_id: GameId) -> DomainResult<&Game> {
    let game = known_game(state, game_id)?;
    if game.closed {
        return Err(DomainError::refused(format!(
            "game {} is closed",
            game.name()
        )));
    }
    Ok(game)
}

fn known_table(state: &CashState, table_id: TableId) -> DomainResult<&CashTable> {
    state
        .tables
        .get(&table_id)
        .ok_or_else(|| DomainError::not_found("table", table_id))
}

fn open_table(state: &CashState, table_id: TableId) -> DomainResult<&CashTable> {
    let table = known_table(state, table_id)?;
    if !table.open {
        return Err(DomainError::refused(format!(
            "table {} is closed",
            table.number
        )));
    }
    Ok(table)
}

fn open_tables_of(state: &CashState, game_id: GameId) -> impl Iterator<Item = &CashTable> {
    state
        .tables
        .values()
        .filter(move |t| t.open && t.game_id == game_id)
}

fn known_entry(
    state: &CashState,
    entry_id: WaitlistEntryId,
) -> DomainResult<(&WaitlistEntry, usize)> {
    state
        .find_entry(entry_id)
        .ok_or_else(|| DomainError::not_found("waiting list entry", entry_id))
}

fn refuse_if_seated(state: &CashState, person: &Person<'_>, name: &str) -> DomainResult<()> {
    match state.seat_of(person.name, person.player_id) {
        Some((table, seat)) => Err(DomainError::refused(format!(
            "{name} is already seated at table {}, seat {seat}",
            table.number
        ))),
        None => Ok(()),
    }
}

fn choose_seat(table: &CashTable, seat: Option<u8>) -> DomainResult<u8> {
    match seat {
        None => table.first_free_seat().ok_or_else(|| {
            DomainError::refused(format!("table {} has no open seat", table.number))
        }),
        Some(seat) if seat == 0 || seat > table.seat_count => Err(DomainError::invalid(format!(
            "table {} has seats 1 to {}; there is no seat {seat}",
            table.number, table.seat_count
        ))),
        Some(seat) => match table.seats.get(&seat) {
            Some(occupant) => Err(DomainError::refused(format!(
                "seat {seat} at table {} is taken by {}",
                table.number, occupant.name
            ))),
            None => Ok(seat),
        },
    }
}

fn refuse_duplicate_game_name(
    state: &CashState,
    name: &str,
    except: Option<GameId>,
) -> DomainResult<()> {
    let wanted = normalized_name(name);
    match state
        .games
        .values()
        .find(|g| !g.closed && Some(g.id) != except && normalized_name(&g.name()) == wanted)
    {
        Some(g) => Err(DomainError::conflict(format!(
            "a game named {} is already spread",
            g.name()
        ))),
        None => Ok(()),
    }
}

/// Trims and collapses spaces; refuses empty and overlong names.
fn clean_name(raw: &str, what: &str) -> DomainResult<String> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(DomainError::invalid(format!("the {what} is empty")));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(DomainError::invalid(format!(
            "the {what} \"{name}\" is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name)
}

/// A blank phone means none; otherwise digits with the usual separators.
fn clean_phone(raw: &str) -> DomainResult<Option<String>> {
    let phone = raw.trim();
    if phone.is_empty() {
        return Ok(None);
    }
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.');
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if !phone.chars().all(allowed) || digits < 3 || phone.chars().count() > MAX_PHONE_CHARS {
        return Err(DomainError::invalid(format!(
            "\"{phone}\" is not a phone number"
        )));
    }
    Ok(Some(phone.to_string()))
}

fn ago(now: Timestamp, then: Timestamp) -> String {
    let ms = now.millis_since(then).max(0);
    if ms < MINUTE_MS {
        "less than a minute ago".to_string()
    } else {
        format!(
            "{} ago",
            plural(
                usize::try_from(ms / MINUTE_MS).unwrap_or(0),
                "minute",
                "minutes"
            )
        )
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
