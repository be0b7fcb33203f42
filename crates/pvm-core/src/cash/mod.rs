//! Cash games: games and stakes, cash tables and their seats, interest lists, waiting lists
//! and must-move games.
//!
//! An event-sourced sub-aggregate: [`decide`] checks a [`CashCommand`] against a
//! [`CashState`] and returns [`CashEvent`]s; [`apply`] folds them. The venue's top-level
//! aggregate wraps both. A game's list is one ordered queue: while no table of the game is
//! open it is shown as an *interest list*, and the moment a table opens the same queue, in
//! the same order, is the waiting list.

mod apply;
mod board;
mod decide;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use apply::apply;
pub use board::{
    board, display_name, estimated_wait_ms, has_expired_calls, must_move_queue, BoardEntry,
    GameBoard, ListKind, MustMoveCandidate,
};
pub use decide::decide;

use crate::ids::{GameId, PlayerId, TableId, WaitlistEntryId};
use crate::money::Money;
use crate::time::{Timestamp, MINUTE_MS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything the cash side of the room knows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CashState {
    pub games: BTreeMap<GameId, Game>,
    pub tables: BTreeMap<TableId, CashTable>,
    /// One ordered list per game; position is index + 1, so positions are contiguous by
    /// construction.
    pub waitlists: BTreeMap<GameId, Vec<WaitlistEntry>>,
    pub settings: WaitlistSettings,
}

/// A cash game: game type and stakes, e.g. "NLH 1/3".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Game {
    pub id: GameId,
    /// The game type as the room writes it: "NLH", "PLO", "Mixed".
    pub game: String,
    pub small_blind: Money,
    pub big_blind: Money,
    pub min_buy_in: Option<Money>,
    pub max_buy_in: Option<Money>,
    /// A name chosen by the floor; when absent the name is built from game and stakes.
    pub label: Option<String>,
    pub closed: bool,
    /// Set when this is a must-move game feeding the given main game.
    pub must_move_for: Option<GameId>,
    /// When players were seated from this game's list, oldest first, capped at
    /// [`WaitlistSettings::turnover_sample`]: the history behind the estimated wait.
    pub recent_list_seatings: Vec<Timestamp>,
}

impl Game {
    /// The name shown everywhere: the floor's label, or e.g. "NLH 1/3".
    pub fn name(&self) -> String {
        match &self.label {
            Some(label) => label.clone(),
            None => game_name(&self.game, self.small_blind, self.big_blind),
        }
    }
}

/// The one place a game's name is formatted from its type and blinds: "NLH 1/3",
/// "PLO 0.50/1".
pub fn game_name(game: &str, small_blind: Money, big_blind: Money) -> String {
    format!(
        "{} {}/{}",
        game.trim(),
        format_amount(small_blind),
        format_amount(big_blind)
    )
}

/// Whole units without decimals ("5"), otherwise two decimals ("0.50"), as stakes are
/// written on a poker room's board.
pub fn format_amount(amount: Money) -> String {
    let cents = amount.as_cents();
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let (units, cents) = (abs / 100, abs % 100);
    if cents == 0 {
        format!("{sign}{units}")
    } else {
        format!("{sign}{units}.{cents:02}")
    }
}

/// A physical table dealing a cash game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashTable {
    pub id: TableId,
    /// The number painted on the table; unique in the room.
    pub number: u32,
    pub seat_count: u8,
    pub game_id: GameId,
    pub open: bool,
    /// Seat number (1-based) to the person in it. A map, so one seat can never hold two.
    pub seats: BTreeMap<u8, SeatOccupant>,
}

impl CashTable {
    /// The lowest free seat, if any.
    pub fn first_free_seat(&self) -> Option<u8> {
        (1..=self.seat_count).find(|s| !self.seats.contains_key(s))
    }
}

/// Who sits in a cash seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatOccupant {
    pub name: String,
    pub player_id: Option<PlayerId>,
    pub seated_at: Timestamp,
    /// When the player started in the game this seat deals (kept across table changes in the
    /// same game): must-move players move to the main game in this order.
    pub in_game_since: Timestamp,
}

/// One person's place on one game's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistEntry {
    pub id: WaitlistEntryId,
    pub game_id: GameId,
    pub name: String,
    pub phone: Option<String>,
    pub player_id: Option<PlayerId>,
    pub joined_at: Timestamp,
    /// When the player was last called and has not answered yet.
    pub called_at: Option<Timestamp>,
    /// Calls not answered in time (expired or marked no-show).
    pub missed_calls: u32,
}

/// What happens to a called player who does not come in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedCallPolicy {
    /// The player goes to the end of the list.
    MoveToEnd,
    /// The player is taken off the list.
    Remove,
}

/// What a missed call did to the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedCallOutcome {
    /// Back to the end of the list.
    MovedToEnd,
    /// Off the list.
    Removed,
}

/// How names appear on public screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameDisplay {
    /// "Ana Martins"
    Full,
    /// "Ana M."
    FirstNameInitial,
    /// "A.M."
    Initials,
}

/// Venue settings for lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistSettings {
    /// How long a called player has to come to the table.
    pub call_response_ms: i64,
    pub on_missed_call: MissedCallPolicy,
    /// Seating a player also takes them off every other game's list.
    pub seat_removes_other_lists: bool,
    /// How many recent seatings from a list feed the estimated wait (at least 2).
    pub turnover_sample: u32,
    pub board_names: NameDisplay,
}

impl Default for WaitlistSettings {
    fn default() -> Self {
        WaitlistSettings {
            call_response_ms: 5 * MINUTE_MS,
            on_missed_call: MissedCallPolicy::MoveToEnd,
            seat_removes_other_lists: true,
            turnover_sample: 5,
            board_names: NameDisplay::FirstNameInitial,
        }
    }
}

/// A request to change the cash side of the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CashCommand {
    /// Spread a new game. `name` overrides the name built from game and stakes.
    CreateGame {
        game: String,
        small_blind: Money,
        big_blind: Money,
        min_buy_in: Option<Money>,
        max_buy_in: Option<Money>,
        name: Option<String>,
    },
    /// Give a game a name of the floor's choosing; `None` goes back to "NLH 1/3" style.
    RenameGame {
        game_id: GameId,
        name: Option<String>,
    },
    /// Stop spreading a game for good; its list is dropped. Its tables must be closed.
    CloseGame { game_id: GameId },
    /// Make `must_move_game_id` a must-move game feeding `main_game_id`.
    LinkMustMove {
        must_move_game_id: GameId,
        main_game_id: GameId,
    },
    /// Make a must-move game an ordinary game again.
    UnlinkMustMove { must_move_game_id: GameId },
    /// Put a (closed) table in the room dealing `game_id`.
    AddTable {
        number: u32,
        seat_count: u8,
        game_id: GameId,
    },
    /// Change the game a closed table will deal.
    ChangeTableGame { table_id: TableId, game_id: GameId },
    /// Open a table: its game is then running and its list a waiting list.
    OpenTable { table_id: TableId },
    /// Close an empty table.
    CloseTable { table_id: TableId },
    /// Seat a walk-in. `seat: None` takes the lowest free seat. A floor decision: not
    /// checked against the list or the must-move order.
    SeatPlayer {
        table_id: TableId,
        seat: Option<u8>,
        name: String,
        player_id: Option<PlayerId>,
    },
    /// Seat someone from a list, at a table of that game or of its must-move game.
    SeatFromWaitlist {
        entry_id: WaitlistEntryId,
        table_id: TableId,
        seat: Option<u8>,
    },
    /// A player leaves their seat.
    UnseatPlayer { table_id: TableId, seat: u8 },
    /// Table or seat change within a game, or a must-move player moving to the main game.
    MovePlayer {
        from_table_id: TableId,
        from_seat: u8,
        to_table_id: TableId,
        to_seat: Option<u8>,
    },
    /// Put a person on a game's list (an interest list while the game is not running).
    JoinWaitlist {
        game_id: GameId,
        name: String,
        phone: Option<String>,
        player_id: Option<PlayerId>,
    },
    /// Page a player: their seat is ready.
    CallPlayer { entry_id: WaitlistEntryId },
    /// Take a call back (called by mistake, or the seat went to someone else).
    UndoCall { entry_id: WaitlistEntryId },
    /// Take a person off a list at their or the floor's request.
    RemoveFromWaitlist { entry_id: WaitlistEntryId },
    /// The floor gives up on a called player before the response time runs out.
    MarkNoShow { entry_id: WaitlistEntryId },
    /// Sent periodically by the scheduler: calls older than the response time miss.
    ExpireCalls {},
    /// Replace the venue's list settings.
    ChangeSettings { settings: WaitlistSettings },
}

/// A fact about the cash side of the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CashEvent {
    /// A game was spread.
    GameCreated {
        game_id: GameId,
        game: String,
        small_blind: Money,
        big_blind: Money,
        min_buy_in: Option<Money>,
        max_buy_in: Option<Money>,
        name: Option<String>,
    },
    /// A game's name was changed (`None`: back to the name built from game and stakes).
    GameRenamed {
        game_id: GameId,
        name: Option<String>,
    },
    /// A game was closed for good and its list dropped.
    GameClosed { game_id: GameId },
    /// A game became the must-move game feeding a main game.
    MustMoveLinked {
        must_move_game_id: GameId,
        main_game_id: GameId,
    },
    /// A must-move game became an ordinary game.
    MustMoveUnlinked { must_move_game_id: GameId },
    /// A table was put in the room, closed.
    TableAdded {
        table_id: TableId,
        number: u32,
        seat_count: u8,
        game_id: GameId,
    },
    /// A closed table was given another game.
    TableGameChanged { table_id: TableId, game_id: GameId },
    /// A table opened.
    TableOpened { table_id: TableId },
    /// A table closed.
    TableClosed { table_id: TableId },
    /// `from_entry` is the list entry seated, if any; `left_lists` are entries the seating
    /// took off lists (the same person's other places), decided once so replay is exact.
    PlayerSeated {
        table_id: TableId,
        seat: u8,
        name: String,
        player_id: Option<PlayerId>,
        at: Timestamp,
        from_entry: Option<WaitlistEntryId>,
        left_lists: Vec<WaitlistEntryId>,
    },
    /// A player left their seat.
    PlayerUnseated { table_id: TableId, seat: u8 },
    /// A player changed seat or table, or moved from a must-move game to the main game.
    PlayerMoved {
        from_table_id: TableId,
        from_seat: u8,
        to_table_id: TableId,
        to_seat: u8,
        at: Timestamp,
        left_lists: Vec<WaitlistEntryId>,
    },
    /// A person joined the end of a game's list.
    PlayerJoinedWaitlist {
        entry_id: WaitlistEntryId,
        game_id: GameId,
        name: String,
        phone: Option<String>,
        player_id: Option<PlayerId>,
        at: Timestamp,
    },
    /// A player was called to a seat.
    PlayerCalled {
        entry_id: WaitlistEntryId,
        at: Timestamp,
    },
    /// A call was taken back.
    CallUndone { entry_id: WaitlistEntryId },
    /// A call ran past the response time.
    CallExpired {
        entry_id: WaitlistEntryId,
        outcome: MissedCallOutcome,
    },
    /// The floor marked a called player as not coming.
    PlayerMarkedNoShow {
        entry_id: WaitlistEntryId,
        outcome: MissedCallOutcome,
    },
    /// A person was taken off a list.
    PlayerRemovedFromWaitlist { entry_id: WaitlistEntryId },
    /// The venue's list settings changed.
    SettingsChanged { settings: WaitlistSettings },
}

impl CashEvent {
    /// A stable name for the event log.
    /// The id of what this event created, if it created something.
    pub fn created_id(&self) -> Option<uuid::Uuid> {
        match self {
            CashEvent::GameCreated { game_id, .. } => Some(game_id.0),
            CashEvent::TableAdded { table_id, .. } => Some(table_id.0),
            CashEvent::PlayerJoinedWaitlist { entry_id, .. } => Some(entry_id.0),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            CashEvent::GameCreated { .. } => "cash.game_created",
            CashEvent::GameRenamed { .. } => "cash.game_renamed",
            CashEvent::GameClosed { .. } => "cash.game_closed",
            CashEvent::MustMoveLinked { .. } => "cash.must_move_linked",
            CashEvent::MustMoveUnlinked { .. } => "cash.must_move_unlinked",
            CashEvent::TableAdded { .. } => "cash.table_added",
            CashEvent::TableGameChanged { .. } => "cash.table_game_changed",
            CashEvent::TableOpened { .. } => "cash.table_opened",
            CashEvent::TableClosed { .. } => "cash.table_closed",
            CashEvent::PlayerSeated { .. } => "cash.player_seated",
            CashEvent::PlayerUnseated { .. } => "cash.player_unseated",
            CashEvent::PlayerMoved { .. } => "cash.player_moved",
            CashEvent::PlayerJoinedWaitlist { .. } => "cash.player_joined_waitlist",
            CashEvent::PlayerCalled { .. } => "cash.player_called",
            CashEvent::CallUndone { .. } => "cash.call_undone",
            CashEvent::CallExpired { .. } => "cash.call_expired",
            CashEvent::PlayerMarkedNoShow { .. } => "cash.player_marked_no_show",
            CashEvent::PlayerRemovedFromWaitlist { .. } => "cash.player_removed_from_waitlist",
            CashEvent::SettingsChanged { .. } => "cash.settings_changed",
        }
    }
}

impl CashState {
    /// A game is running while at least one of its tables is open.
    pub fn is_running(&self, game_id: GameId) -> bool {
        self.tables.values().any(|t| t.open && t.game_id == game_id)
    }

    /// The game's list in order (empty if it has none).
    pub fn list(&self, game_id: GameId) -> &[WaitlistEntry] {
        self.waitlists
            .get(&game_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// A list entry and its 1-based position.
    pub fn find_entry(&self, entry_id: WaitlistEntryId) -> Option<(&WaitlistEntry, usize)> {
        self.waitlists.values().find_map(|list| {
            list.iter()
                .position(|e| e.id == entry_id)
                .and_then(|i| list.get(i).map(|e| (e, i + 1)))
        })
    }

    /// The 1-based position of an entry on its list.
    pub fn position(&self, entry_id: WaitlistEntryId) -> Option<usize> {
        self.find_entry(entry_id).map(|(_, p)| p)
    }

    /// Where a person sits, if anywhere: (table, seat). Same-person rules as for lists: the
    /// player id when both records have one, otherwise the name.
    pub fn seat_of(&self, name: &str, player_id: Option<PlayerId>) -> Option<(&CashTable, u8)> {
        let person = Person { name, player_id };
        self.tables.values().find_map(|t| {
            t.seats
                .iter()
                .find(|(_, o)| person.is(&o.name, o.player_id))
                .map(|(s, _)| (t, *s))
        })
    }

    fn game_name_of(&self, game_id: GameId) -> String {
        self.games
            .get(&game_id)
            .map(Game::name)
            .unwrap_or_else(|| format!("game {game_id}"))
    }
}

/// Who a command is about, for "is this the same person?" checks. Two records are the same
/// person when both carry a player id and the ids match; when either has no id, the names
/// decide (ignoring case and spacing), so a walk-in "ana" is not listed twice beside "Ana".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Person<'a> {
    pub name: &'a str,
    pub player_id: Option<PlayerId>,
}

impl Person<'_> {
    /// Whether the record (name, player id) is this person.
    pub(crate) fn is(&self, name: &str, player_id: Option<PlayerId>) -> bool {
        match (self.player_id, player_id) {
            (Some(a), Some(b)) => a == b,
            _ => normalized_name(self.name) == normalized_name(name),
        }
    }
}

/// Lower case with runs of whitespace collapsed: how names are compared.
pub fn normalized_name(name: &str) -> String {
    name.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}
