//! Screens are data. A screen spec names what to show; a display (the HDMI TV, a Chromecast)
//! is assigned a screen. The assignment is venue state, so it survives reboots and syncs.

use crate::error::{DomainError, DomainResult};
use crate::ids::{AnnouncementId, DisplayId, GameId, ScreenId, TournamentId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What a screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScreenKind {
    /// Clock, blinds, stats, prize pool; switches to the break screen during breaks.
    TournamentClock { tournament_id: TournamentId },
    /// Players alphabetically with their table and seat.
    SeatingDraw { tournament_id: TournamentId },
    /// The payout table and results so far.
    Payouts { tournament_id: TournamentId },
    /// Running games with their waiting lists. Empty `games` means every running game.
    WaitingList {
        #[serde(default)]
        games: Vec<GameId>,
    },
    /// Open seats per running cash game.
    TablesBoard,
    /// Several screens in turn.
    Rotation {
        screens: Vec<ScreenId>,
        interval_secs: u32,
    },
    /// The first-boot screen: console URL, QR code, setup code.
    Setup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screen {
    pub id: ScreenId,
    pub name: String,
    pub kind: ScreenKind,
}

/// Where a picture goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DisplayKind {
    /// The TV on the Pi's HDMI port, drawn by the kiosk.
    Hdmi,
    /// A Chromecast, keyed by the stable `id` from its mDNS TXT record.
    Chromecast { device_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Display {
    pub id: DisplayId,
    pub name: String,
    pub kind: DisplayKind,
    pub screen: Option<ScreenId>,
    /// Take the device over even when someone else is casting to it.
    pub always: bool,
    /// 0, 90, 180 or 270 degrees (portrait TVs).
    pub rotation: u16,
    /// Margin kept clear on each side, in percent of the width/height (old TVs crop edges).
    pub overscan_percent: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnouncementStyle {
    /// A large box over the screen.
    Overlay,
    /// A line scrolling along the bottom.
    Ticker,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub id: AnnouncementId,
    pub text: String,
    pub style: AnnouncementStyle,
    pub created_at: Timestamp,
    /// Shown until then; `None` until cleared.
    pub until: Option<Timestamp>,
}

impl Announcement {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|u| now < u)
    }
}

/// The HDMI output exists on every node; its id is fixed so that the kiosk can find it.
pub const HDMI_DISPLAY_ID: DisplayId =
    DisplayId(Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001));

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayState {
    pub screens: BTreeMap<ScreenId, Screen>,
    pub displays: BTreeMap<DisplayId, Display>,
    pub announcements: BTreeMap<AnnouncementId, Announcement>,
}

impl Default for DisplayState {
    fn default() -> Self {
        let mut displays = BTreeMap::new();
        displays.insert(
            HDMI_DISPLAY_ID,
            Display {
                id: HDMI_DISPLAY_ID,
                name: "HDMI".into(),
                kind: DisplayKind::Hdmi,
                screen: None,
                always: true,
                rotation: 0,
                overscan_percent: 0,
            },
        );
        DisplayState {
            screens: BTreeMap::new(),
            displays,
            announcements: BTreeMap::new(),
        }
    }
}

impl DisplayState {
    pub fn screen(&self, id: ScreenId) -> DomainResult<&Screen> {
        self.screens
            .get(&id)
            .ok_or_else(|| DomainError::not_found("screen", id))
    }

    pub fn display(&self, id: DisplayId) -> DomainResult<&Display> {
        self.displays
            .get(&id)
            .ok_or_else(|| DomainError::not_found("display", id))
    }

    pub fn chromecast(&self, device_id: &str) -> Option<&Display> {
        self.displays.values().find(
            |d| matches!(&d.kind, DisplayKind::Chromecast { device_id: dev } if dev == device_id),
        )
    }

    pub fn active_announcements(&self, now: Timestamp) -> Vec<&Announcement> {
        self.announcements
            .values()
            .filter(|a| a.is_active(now))
            .collect()
    }
}

pub fn validate_screen_name(name: &str) -> DomainResult<String> {
    let n = name.trim();
    if n.is_empty() {
        return Err(DomainError::invalid("a screen needs a name"));
    }
    if n.chars().count() > 60 {
        return Err(DomainError::invalid(
            "screen names are at most 60 characters",
        ));
    }
    Ok(n.to_string())
}

pub fn validate_display_layout(rotation: u16, overscan_percent: u8) -> DomainResult<()> {
    if ![0, 90, 180, 270].contains(&rotation) {
        return Err(DomainError::invalid(format!(
            "rotation {rotation} is not one of 0, 90, 180, 270"
        )));
    }
    if overscan_percent > 10 {
        return Err(DomainError::invalid(format!(
            "overscan margin {overscan_percent}% is more than the 10% any TV needs"
        )));
    }
    Ok(())
}

pub fn validate_announcement_text(text: &str) -> DomainResult<String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DomainError::invalid("an announcement needs some text"));
    }
    if t.chars().count() > 280 {
        return Err(DomainError::invalid(
            "announcements are at most 280 characters: screens must stay readable",
        ));
    }
    Ok(t.to_string())
}
