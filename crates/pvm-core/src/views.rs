//! View models: what every display draws, computed once in Rust from the state. The Slint
//! kiosk, the web display page and the Chromecasts all render these, so every TV in the room
//! says the same thing. All text is formatted here (see `format`); the only thing a renderer
//! computes itself is the countdown, from `ClockScreen::segments` and its clock offset.

use crate::cash;
use crate::clock::ClockStatus;
use crate::displays::{AnnouncementStyle, ScreenKind};
use crate::format;
use crate::ids::{DisplayId, GameId, ScreenId, TournamentId};
use crate::structure::Item;
use crate::time::Timestamp;
use crate::tournament::{EntryStatus, Tournament, TournamentStatus};
use crate::venue::VenueSettings;
use crate::VenueState;
use serde::{Deserialize, Serialize};

/// What the node knows that is not venue state: shown on the first-boot setup screen.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SetupInfo {
    /// True until the first admin exists.
    pub setup_required: bool,
    /// The one-time setup code (only while setup is required).
    pub setup_code: Option<String>,
    /// Where the console is: `http://pvm.local`, `http://192.168.1.20`…
    pub console_urls: Vec<String>,
    /// Mistakes the appliance's first boot found in the venue's `pvm.toml`: shown wherever the
    /// setup screen is, because the TV is where a venue without a phone on the network looks.
    #[serde(default)]
    pub notices: Vec<SetupNotice>,
    /// The venue's name as the node was configured with it (the appliance's `pvm.toml`
    /// `venue_name`): the setup screen welcomes the venue by it until the venue names itself
    /// in the console.
    #[serde(default)]
    pub venue_name: Option<String>,
}

/// One mistake in `pvm.toml`, as the node read it from pvm-firstboot's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupNotice {
    /// The setting at fault; `None` when the file as a whole is.
    pub setting: Option<String>,
    /// 1-based line in `pvm.toml`, when one is to blame.
    pub line: Option<u64>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brand {
    pub venue_name: String,
    pub background: String,
    pub foreground: String,
    pub accent: String,
    pub logo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementView {
    pub text: String,
    pub style: AnnouncementStyle,
}

/// Everything one display needs to draw one frame, and to keep counting without the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayView {
    pub display_id: Option<DisplayId>,
    pub screen_id: Option<ScreenId>,
    /// The node's clock when this view was computed; renderers correct their own clock with it.
    pub server_time_ms: i64,
    pub brand: Brand,
    pub rotation: u16,
    pub overscan_percent: u8,
    pub announcements: Vec<AnnouncementView>,
    pub content: ScreenContent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScreenContent {
    Clock(Box<ClockScreen>),
    SeatingDraw(SeatingScreen),
    Payouts(PayoutsScreen),
    WaitingList(WaitingListScreen),
    TablesBoard(TablesBoardScreen),
    Setup(SetupScreen),
    /// Several screens in turn. All displays show the same one at the same time: item
    /// `floor(now_ms / 1000 / interval_secs) % items.len()`.
    Rotation {
        interval_secs: u32,
        items: Vec<ScreenContent>,
    },
    /// Nothing assigned, or the screen's subject is gone.
    Message {
        title: String,
        text: String,
    },
}

/// One level or break from the current one on, for counting down locally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSegment {
    /// "Level 6" or "Break".
    pub title: String,
    /// "200/400 ante 400"; for a break, the colour-up note or "".
    pub detail: String,
    pub is_break: bool,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockScreen {
    pub tournament_id: TournamentId,
    pub tournament_name: String,
    /// "not_started", "running", "paused", "finished".
    pub status: String,
    pub running: bool,
    /// Time left in the current segment at `server_time_ms`.
    pub remaining_ms: i64,
    /// "12:04" at `server_time_ms` (renderers recompute it as time passes).
    pub time_left: String,
    /// `segments[0]` is the current level or break, then the rest of the structure.
    pub segments: Vec<ClockSegment>,
    pub on_break: bool,
    pub level_title: String,
    pub blinds: String,
    /// "Next: 300/600 ante 600" or "Next: Break".
    pub next: String,
    /// "Break in 1:04:00", empty when no break is left.
    pub next_break: String,
    pub hand_for_hand: bool,
    pub players_left: String,
    pub entries: String,
    pub reentries: String,
    pub rebuys: String,
    pub addons: String,
    pub average_stack: String,
    pub average_stack_bb: String,
    pub chips_in_play: String,
    pub prize_pool: String,
    /// "Overlay €1,200" when the guarantee is not reached, else "".
    pub overlay: String,
    /// Top payouts: ("1st", "€4,000").
    pub payouts: Vec<(String, String)>,
    /// "Late registration open until the end of level 6" or "Registration closed".
    pub registration: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatingLine {
    pub name: String,
    pub table: String,
    pub seat: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatingScreen {
    pub tournament_name: String,
    /// Alphabetical by name; unseated players show table "–".
    pub lines: Vec<SeatingLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutLine {
    pub place: String,
    pub amount: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutsScreen {
    pub tournament_name: String,
    pub prize_pool: String,
    pub places_paid: String,
    pub lines: Vec<PayoutLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingLine {
    pub position: u32,
    pub name: String,
    pub called: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingGame {
    pub game: String,
    /// Interest list of a game not yet running.
    pub interest_only: bool,
    pub lines: Vec<WaitingLine>,
    /// "about 25 min" or "".
    pub estimated_wait: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingListScreen {
    pub games: Vec<WaitingGame>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablesBoardLine {
    pub game: String,
    pub tables: u32,
    pub open_seats: u32,
    pub waiting: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablesBoardScreen {
    pub lines: Vec<TablesBoardLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupScreen {
    pub title: String,
    pub console_url: String,
    pub other_urls: Vec<String>,
    /// What the QR code encodes.
    pub qr_payload: String,
    pub setup_code: Option<String>,
    pub instructions: String,
    /// What to do about the notices below; empty when there are none.
    #[serde(default)]
    pub notices_title: String,
    /// The first-boot mistakes, one line each, already cut to what fits on a TV.
    #[serde(default)]
    pub notices: Vec<String>,
}

/// At most this many notices are drawn; the rest are counted in one more line. A venue fixes
/// the first and boots again, and the full list is on the console's System page.
pub const MAX_SETUP_NOTICES: usize = 3;

/// The view for a display: its assigned screen, or the setup screen while setup is required,
/// or the best default (the running tournament's clock) when nothing is assigned.
pub fn display_view(
    state: &VenueState,
    display_id: DisplayId,
    now: Timestamp,
    setup: &SetupInfo,
) -> DisplayView {
    let display = state.displays.displays.get(&display_id);
    let screen_id = display.and_then(|d| d.screen);
    let content = if setup.setup_required {
        ScreenContent::Setup(setup_screen(state, setup))
    } else {
        match screen_id.and_then(|id| state.displays.screens.get(&id)) {
            Some(screen) => content_of(state, &screen.kind, now, setup),
            None => default_content(state, now, setup),
        }
    };
    DisplayView {
        display_id: Some(display_id),
        screen_id,
        server_time_ms: now.as_millis(),
        brand: brand(state),
        rotation: display.map(|d| d.rotation).unwrap_or(0),
        overscan_percent: display.map(|d| d.overscan_percent).unwrap_or(0),
        announcements: announcements(state, now),
        content,
    }
}

/// The view of one screen, wherever it is shown (the web display page `/display/<screen>`).
pub fn screen_view(
    state: &VenueState,
    screen_id: ScreenId,
    now: Timestamp,
    setup: &SetupInfo,
) -> DisplayView {
    let content = match state.displays.screens.get(&screen_id) {
        Some(screen) => content_of(state, &screen.kind, now, setup),
        None => ScreenContent::Message {
            title: "Screen not found".into(),
            text: "This screen was deleted. Choose another one in the console.".into(),
        },
    };
    DisplayView {
        display_id: None,
        screen_id: Some(screen_id),
        server_time_ms: now.as_millis(),
        brand: brand(state),
        rotation: 0,
        overscan_percent: 0,
        announcements: announcements(state, now),
        content,
    }
}

fn brand(state: &VenueState) -> Brand {
    let s = &state.settings;
    Brand {
        venue_name: s.name.clone(),
        background: s.theme.background.clone(),
        foreground: s.theme.foreground.clone(),
        accent: s.theme.accent.clone(),
        logo: s.theme.logo.clone(),
    }
}

fn announcements(state: &VenueState, now: Timestamp) -> Vec<AnnouncementView> {
    state
        .displays
        .active_announcements(now)
        .into_iter()
        .map(|a| AnnouncementView {
            text: a.text.clone(),
            style: a.style,
        })
        .collect()
}

fn default_content(state: &VenueState, now: Timestamp, setup: &SetupInfo) -> ScreenContent {
    let live = state
        .tournaments
        .values()
        .rev()
        .find(|t| t.status == TournamentStatus::Running)
        .or_else(|| {
            state
                .tournaments
                .values()
                .rev()
                .find(|t| t.status == TournamentStatus::Scheduled)
        });
    match live {
        Some(t) => ScreenContent::Clock(Box::new(clock_screen(state, t, now))),
        None if !state.cash.games.is_empty() => {
            ScreenContent::WaitingList(waiting_list(state, &[], now))
        }
        None => ScreenContent::Message {
            title: state.settings.name.clone(),
            text: match setup.console_urls.first() {
                Some(url) => {
                    format!("Nothing to show yet. Set up a tournament or a cash game at {url}")
                }
                None => {
                    "Nothing to show yet. Set up a tournament or a cash game in the console.".into()
                }
            },
        },
    }
}

fn content_of(
    state: &VenueState,
    kind: &ScreenKind,
    now: Timestamp,
    setup: &SetupInfo,
) -> ScreenContent {
    let tournament = |id: &TournamentId| state.tournaments.get(id);
    let gone = || ScreenContent::Message {
        title: "Tournament not found".into(),
        text: "The tournament on this screen no longer exists.".into(),
    };
    match kind {
        ScreenKind::TournamentClock { tournament_id } => match tournament(tournament_id) {
            Some(t) => ScreenContent::Clock(Box::new(clock_screen(state, t, now))),
            None => gone(),
        },
        ScreenKind::SeatingDraw { tournament_id } => match tournament(tournament_id) {
            Some(t) => ScreenContent::SeatingDraw(seating_screen(t)),
            None => gone(),
        },
        ScreenKind::Payouts { tournament_id } => match tournament(tournament_id) {
            Some(t) => ScreenContent::Payouts(payouts_screen(state, t)),
            None => gone(),
        },
        ScreenKind::WaitingList { games } => {
            ScreenContent::WaitingList(waiting_list(state, games, now))
        }
        ScreenKind::TablesBoard => ScreenContent::TablesBoard(tables_board(state, now)),
        ScreenKind::Setup => ScreenContent::Setup(setup_screen(state, setup)),
        ScreenKind::Rotation {
            screens,
            interval_secs,
        } => ScreenContent::Rotation {
            interval_secs: *interval_secs,
            items: screens
                .iter()
                .filter_map(|id| state.displays.screens.get(id))
                // Rotations are never nested (the core refuses it); skip one defensively.
                .filter(|s| !matches!(s.kind, ScreenKind::Rotation { .. }))
                .map(|s| content_of(state, &s.kind, now, setup))
                .collect(),
        },
    }
}

fn money(state: &VenueState, m: crate::Money) -> String {
    format::money_in(m, &state.settings.currency)
}

pub fn clock_screen(state: &VenueState, t: &Tournament, now: Timestamp) -> ClockScreen {
    let view = t.clock.view(&t.structure, now);
    let stats = t.stats(now);
    let pool = t.prize_pool();
    let payouts = t.payouts(state.settings.rounding_unit);
    let mut segments = Vec::new();
    for (i, item) in t.structure.items.iter().enumerate().skip(view.item_index) {
        segments.push(segment(t, i, item));
    }
    let (level_title, blinds) = match &view.current {
        Some(item) => {
            let s = segment(t, view.item_index, item);
            (s.title, s.detail)
        }
        None => ("Finished".to_string(), String::new()),
    };
    let next = match &view.next_item {
        Some(Item::Level(l)) => format!("Next: {}", format::blinds(l)),
        Some(Item::Break(_)) => "Next: Break".to_string(),
        None => String::new(),
    };
    let status = match view.status {
        ClockStatus::NotStarted => "not_started",
        ClockStatus::Running => "running",
        ClockStatus::Paused => "paused",
        ClockStatus::Finished => "finished",
    };
    let registration = match t.late_registration_open(now) {
        Ok(()) => match &t.config.late_registration {
            Some(lr) => format!(
                "Late registration open until the end of level {}",
                lr.until_level
            ),
            None => "Registration open".to_string(),
        },
        Err(_) => "Registration closed".to_string(),
    };
    ClockScreen {
        tournament_id: t.id,
        tournament_name: t.config.name.clone(),
        status: status.into(),
        running: view.status == ClockStatus::Running,
        remaining_ms: view.remaining_ms,
        time_left: format::countdown(view.remaining_ms),
        segments,
        on_break: view.on_break,
        level_title,
        blinds,
        next,
        next_break: view
            .next_break_in_ms
            .map(|ms| format!("Break in {}", format::countdown(ms)))
            .unwrap_or_default(),
        hand_for_hand: t.hand_for_hand,
        players_left: format!("{} / {}", stats.players_left, stats.entries),
        entries: format::grouped(u64::from(stats.entries)),
        reentries: format::grouped(u64::from(stats.reentries)),
        rebuys: format::grouped(u64::from(stats.rebuys)),
        addons: format::grouped(u64::from(stats.addons)),
        average_stack: format::chips(stats.average_stack),
        average_stack_bb: stats
            .average_stack_bb_x10
            .map(format::big_blinds_x10)
            .unwrap_or_default(),
        chips_in_play: format::chips(stats.chips_in_play),
        prize_pool: money(state, pool.total),
        overlay: if pool.overlay.as_cents() > 0 {
            format!("Overlay {}", money(state, pool.overlay))
        } else {
            String::new()
        },
        payouts: payouts
            .iter()
            .take(9)
            .enumerate()
            .map(|(i, m)| (format::ordinal(i as u32 + 1), money(state, *m)))
            .collect(),
        registration,
    }
}

fn segment(t: &Tournament, index: usize, item: &Item) -> ClockSegment {
    match item {
        Item::Level(l) => ClockSegment {
            title: t
                .structure
                .level_number(index)
                .map(|n| format!("Level {n}"))
                .unwrap_or_else(|| "Level".into()),
            detail: format::blinds(l),
            is_break: false,
            duration_ms: item.duration_ms(),
        },
        Item::Break(b) => ClockSegment {
            title: "Break".into(),
            // The tournament's chip plan is the truth about which chips go; the structure's own
            // note is shown when there is no plan.
            detail: t
                .config
                .chips
                .as_ref()
                .and_then(|plan| {
                    let after = t.structure.level_number(index.checked_sub(1)?)?;
                    plan.colour_up_note(after)
                })
                .or_else(|| b.colour_up.clone())
                .unwrap_or_default(),
            is_break: true,
            duration_ms: item.duration_ms(),
        },
    }
}

pub fn seating_screen(t: &Tournament) -> SeatingScreen {
    let mut lines: Vec<SeatingLine> = t
        .entries
        .values()
        .filter(|e| e.status == EntryStatus::Active)
        .map(|e| {
            let (table, seat) = match t.floor.seat_of(e.id) {
                Some(s) => (
                    t.floor
                        .table(s.table)
                        .map(|tb| tb.number.to_string())
                        .unwrap_or_default(),
                    s.seat.to_string(),
                ),
                None => ("–".into(), "–".into()),
            };
            SeatingLine {
                name: e.player_name.clone(),
                table,
                seat,
            }
        })
        .collect();
    lines.sort_by_key(|a| a.name.to_lowercase());
    SeatingScreen {
        tournament_name: t.config.name.clone(),
        lines,
    }
}

pub fn payouts_screen(state: &VenueState, t: &Tournament) -> PayoutsScreen {
    let results = t.results(state.settings.rounding_unit);
    let paid = t.payouts(state.settings.rounding_unit).len();
    PayoutsScreen {
        tournament_name: t.config.name.clone(),
        prize_pool: money(state, t.prize_pool().total),
        places_paid: format!("{paid} places paid"),
        lines: results
            .iter()
            .filter(|r| (r.place as usize) <= paid.max(1))
            .map(|r| PayoutLine {
                place: format::ordinal(r.place),
                amount: money(state, r.paid.unwrap_or(r.prize)),
                name: r.player_name.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

pub fn waiting_list(state: &VenueState, only: &[GameId], now: Timestamp) -> WaitingListScreen {
    let games = cash::board(&state.cash, now)
        .into_iter()
        .filter(|g| only.is_empty() || only.contains(&g.game_id))
        .map(|g| WaitingGame {
            game: g.name.clone(),
            interest_only: g.kind == cash::ListKind::InterestList,
            estimated_wait: match g.kind {
                cash::ListKind::InterestList => String::new(),
                cash::ListKind::WaitingList => {
                    cash::estimated_wait_ms(&state.cash, g.game_id, g.entries.len() as u32 + 1, now)
                        .map(|ms| format!("about {} min", (ms + 59_999) / 60_000))
                        .unwrap_or_default()
                }
            },
            lines: g
                .entries
                .iter()
                .map(|e| WaitingLine {
                    position: e.position,
                    name: e.name.clone(),
                    called: e.called_at.is_some(),
                })
                .collect(),
        })
        .collect();
    WaitingListScreen { games }
}

pub fn tables_board(state: &VenueState, now: Timestamp) -> TablesBoardScreen {
    let lines = cash::board(&state.cash, now)
        .into_iter()
        .filter(|g| g.kind != cash::ListKind::InterestList)
        .map(|g| TablesBoardLine {
            game: g.name.clone(),
            tables: g.open_tables,
            open_seats: g.open_seats,
            waiting: g.entries.len() as u32,
        })
        .collect();
    TablesBoardScreen { lines }
}

/// The name the venue gave itself in the console wins; before that (the log still holds the
/// default name) the configured one does, so a fresh box greets the venue by its name.
fn setup_venue_name<'a>(state: &'a VenueState, setup: &'a SetupInfo) -> &'a str {
    let configured = setup
        .venue_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty());
    match configured {
        Some(name) if state.settings.name == VenueSettings::default().name => name,
        _ => &state.settings.name,
    }
}

fn setup_screen(state: &VenueState, setup: &SetupInfo) -> SetupScreen {
    let console_url = setup
        .console_urls
        .first()
        .cloned()
        .unwrap_or_else(|| "http://pvm.local".into());
    SetupScreen {
        title: format!("Welcome to {}", setup_venue_name(state, setup)),
        other_urls: setup.console_urls.iter().skip(1).cloned().collect(),
        qr_payload: console_url.clone(),
        setup_code: if setup.setup_required {
            setup.setup_code.clone()
        } else {
            None
        },
        instructions: if setup.setup_required {
            format!("Open {console_url} on a phone on this network and enter the setup code.")
        } else {
            format!("The console is at {console_url}.")
        },
        console_url,
        notices_title: if setup.notices.is_empty() {
            String::new()
        } else {
            format::setup_notices_title(setup.notices.len())
        },
        notices: setup_notices(&setup.notices),
    }
}

fn setup_notices(notices: &[SetupNotice]) -> Vec<String> {
    let mut lines: Vec<String> = notices
        .iter()
        .take(MAX_SETUP_NOTICES)
        .map(|n| format::setup_notice(n.line, n.setting.as_deref(), &n.message))
        .collect();
    if notices.len() > MAX_SETUP_NOTICES {
        lines.push(format::more_notices(notices.len() - MAX_SETUP_NOTICES));
    }
    lines
}

#[cfg(test)]
#[path = "views_tests.rs"]
mod tests;
