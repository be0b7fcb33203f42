//! What the room's screens show about cash games, and the queries behind it: estimated
//! waits and the must-move order. Pure functions of state and `now`.

use super::{CashState, Game, NameDisplay};
use crate::ids::{GameId, PlayerId, TableId, WaitlistEntryId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Whether a game's list is a waiting list (a table is open) or an interest list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// At least one table is open: the list is called in order.
    WaitingList,
    /// No table is open yet: names of people who would play.
    InterestList,
}

/// One game on the waiting-list board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameBoard {
    pub game_id: GameId,
    pub name: String,
    pub kind: ListKind,
    pub open_tables: u32,
    pub open_seats: u32,
    /// The main game's name when this is a must-move game.
    pub must_move_for: Option<String>,
    pub entries: Vec<BoardEntry>,
}

/// One line of a list on the board. Never carries a phone number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardEntry {
    pub entry_id: WaitlistEntryId,
    /// 1-based.
    pub position: u32,
    /// The name as the venue's privacy setting allows.
    pub name: String,
    pub called_at: Option<Timestamp>,
    pub called_for_ms: Option<i64>,
    pub estimated_wait_ms: Option<i64>,
}

/// A player in a must-move game, in the order they move to the main game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MustMoveCandidate {
    pub must_move_game_id: GameId,
    pub table_id: TableId,
    pub table_number: u32,
    pub seat: u8,
    pub name: String,
    pub player_id: Option<PlayerId>,
    pub in_game_since: Timestamp,
}

/// The board: running games with their waiting lists, then games that only have an
/// interest list. Closed games and idle games with nobody interested are left out.
pub fn board(state: &CashState, now: Timestamp) -> Vec<GameBoard> {
    let mut games: Vec<&Game> = state.games.values().filter(|g| !g.closed).collect();
    games.sort_by(|a, b| {
        (&a.game, a.big_blind, a.small_blind, a.name()).cmp(&(
            &b.game,
            b.big_blind,
            b.small_blind,
            b.name(),
        ))
    });
    let mut running = Vec::new();
    let mut interest = Vec::new();
    for game in games {
        let open_tables: Vec<_> = state
            .tables
            .values()
            .filter(|t| t.open && t.game_id == game.id)
            .collect();
        let list = state.list(game.id);
        let kind = if open_tables.is_empty() {
            if list.is_empty() {
                continue;
            }
            ListKind::InterestList
        } else {
            ListKind::WaitingList
        };
        let entries = list
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
                BoardEntry {
                    entry_id: e.id,
                    position,
                    name: display_name(&e.name, state.settings.board_names),
                    called_at: e.called_at,
                    called_for_ms: e.called_at.map(|at| now.millis_since(at).max(0)),
                    estimated_wait_ms: match kind {
                        ListKind::WaitingList => estimated_wait_ms(state, game.id, position, now),
                        ListKind::InterestList => None,
                    },
                }
            })
            .collect();
        let open_seats: usize = open_tables
            .iter()
            .map(|t| usize::from(t.seat_count).saturating_sub(t.seats.len()))
            .sum();
        let line = GameBoard {
            game_id: game.id,
            name: game.name(),
            kind,
            open_tables: u32::try_from(open_tables.len()).unwrap_or(u32::MAX),
            open_seats: u32::try_from(open_seats).unwrap_or(u32::MAX),
            must_move_for: game.must_move_for.map(|main| state.game_name_of(main)),
            entries,
        };
        match kind {
            ListKind::WaitingList => running.push(line),
            ListKind::InterestList => interest.push(line),
        }
    }
    running.extend(interest);
    running
}

/// How long the player at `position` can expect to wait: the mean interval between the
/// game's recent seatings from its list, times the position. When the list has stalled
/// for longer than that mean, the open interval counts too, so a quiet game's estimate
/// grows instead of promising seats that are not coming. `None` with fewer than two
/// recorded seatings.
pub fn estimated_wait_ms(
    state: &CashState,
    game_id: GameId,
    position: u32,
    now: Timestamp,
) -> Option<i64> {
    let seatings = &state.games.get(&game_id)?.recent_list_seatings;
    let (first, last) = (seatings.first()?, seatings.last()?);
    let intervals = i64::try_from(seatings.len().checked_sub(1)?).ok()?;
    if intervals == 0 {
        return None;
    }
    let span = last.millis_since(*first).max(0);
    let mean = span / intervals;
    let open_interval = now.millis_since(*last).max(0);
    let mean = if open_interval > mean {
        span.saturating_add(open_interval) / (intervals + 1)
    } else {
        mean
    };
    Some(mean.saturating_mul(i64::from(position)))
}

/// The players in the must-move game(s) feeding `main_game_id`, the one who has been in the
/// must-move game longest first (ties by table number, then seat).
pub fn must_move_queue(state: &CashState, main_game_id: GameId) -> Vec<MustMoveCandidate> {
    let mut queue: Vec<MustMoveCandidate> = state
        .tables
        .values()
        .filter(|t| {
            state
                .games
                .get(&t.game_id)
                .is_some_and(|g| g.must_move_for == Some(main_game_id))
        })
        .flat_map(|t| {
            t.seats.iter().map(move |(seat, o)| MustMoveCandidate {
                must_move_game_id: t.game_id,
                table_id: t.id,
                table_number: t.number,
                seat: *seat,
                name: o.name.clone(),
                player_id: o.player_id,
                in_game_since: o.in_game_since,
            })
        })
        .collect();
    queue.sort_by_key(|c| (c.in_game_since, c.table_number, c.seat));
    queue
}

/// A name as public screens may show it.
pub fn display_name(name: &str, mode: NameDisplay) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let initial = |w: &str| {
        w.chars()
            .next()
            .map(|c| c.to_uppercase().collect::<String>())
            .unwrap_or_default()
    };
    match (mode, words.as_slice()) {
        (NameDisplay::Full, _) | (NameDisplay::FirstNameInitial, [_] | []) => words.join(" "),
        (NameDisplay::FirstNameInitial, [first, .., last]) => {
            format!("{first} {}.", initial(last))
        }
        (NameDisplay::Initials, _) => words.iter().map(|w| format!("{}.", initial(w))).collect(),
    }
}

/// Is any called player past the response time at `now`? The node's scheduler asks this
/// before sending `ExpireCalls`, so an idle room writes no events.
pub fn has_expired_calls(state: &CashState, now: Timestamp) -> bool {
    state.waitlists.values().flatten().any(|e| {
        e.called_at
            .is_some_and(|at| now.millis_since(at) >= state.settings.call_response_ms)
    })
}
