//! The whole venue as one state, with the one `decide` and the one `apply` that everything
//! goes through. A venue runs several tournaments and cash games at once.

use crate::cash::{self, CashCommand, CashEvent, CashState};
use crate::displays::{
    self, Announcement, AnnouncementStyle, Display, DisplayKind, DisplayState, Screen, ScreenKind,
};
use crate::entropy::Entropy;
use crate::error::{DomainError, DomainResult};
use crate::ids::{AnnouncementId, DisplayId, EventId, PlayerId, ScreenId, TournamentId};
use crate::players::{Player, PlayerDetails};
use crate::structure::Structure;
use crate::time::Timestamp;
use crate::tournament::{self, Tournament, TournamentCommand, TournamentConfig, TournamentEvent};
use crate::venue::VenueSettings;
use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Version of the event schema written by this build. `apply` reads every version up to it.
pub const SCHEMA_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VenueState {
    pub settings: VenueSettings,
    /// Players and tournaments are kept in persistent maps of `Arc`s, so that a copy of the
    /// state (the node makes one per group commit, to publish it while readers still hold the
    /// previous one) shares the whole history instead of copying it: a copy is a pointer, and
    /// a change copies one path of the map's tree and the one player or tournament it changes
    /// (`Arc::make_mut`). With the plain `BTreeMap`s they were before, the copy grew with the
    /// history: 1.3 ms per commit for the 42,000 players of a million events. Reading
    /// through them is plain auto-deref.
    #[serde(with = "shared_map")]
    pub players: OrdMap<PlayerId, Arc<Player>>,
    #[serde(with = "shared_map")]
    pub tournaments: OrdMap<TournamentId, Arc<Tournament>>,
    pub cash: CashState,
    pub displays: DisplayState,
    /// Events folded so far (the log sequence of the last one, on a node).
    pub applied: u64,
}

/// Serde for the `Arc`-valued maps: the same JSON as plain values, so snapshots and API answers
/// keep their shape (serde's own `rc` feature would do it too, but for the whole workspace).
mod shared_map {
    use imbl::OrdMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    pub fn serialize<K, V, S>(map: &OrdMap<K, Arc<V>>, serializer: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Ord + Clone,
        V: Serialize,
        S: Serializer,
    {
        serializer.collect_map(map.iter().map(|(k, v)| (k, &**v)))
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<OrdMap<K, Arc<V>>, D::Error>
    where
        K: Deserialize<'de> + Ord + Clone,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let plain = BTreeMap::<K, V>::deserialize(deserializer)?;
        Ok(plain.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// Everything staff can ask the venue to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    UpdateSettings {
        settings: VenueSettings,
    },
    AddPlayer {
        details: PlayerDetails,
    },
    UpdatePlayer {
        player_id: PlayerId,
        details: PlayerDetails,
    },
    CreateTournament {
        config: TournamentConfig,
        structure: Structure,
    },
    /// Add a new player and register them in one step (all or nothing).
    RegisterNewPlayer {
        tournament_id: TournamentId,
        details: PlayerDetails,
    },
    Tournament {
        tournament_id: TournamentId,
        command: TournamentCommand,
    },
    Cash {
        command: CashCommand,
    },
    CreateScreen {
        name: String,
        kind: ScreenKind,
    },
    UpdateScreen {
        screen_id: ScreenId,
        name: String,
        kind: ScreenKind,
    },
    DeleteScreen {
        screen_id: ScreenId,
    },
    /// Add a Chromecast (found by discovery or typed in by IP) as a display.
    AddChromecast {
        device_id: String,
        name: String,
    },
    RemoveDisplay {
        display_id: DisplayId,
    },
    AssignScreen {
        display_id: DisplayId,
        screen_id: Option<ScreenId>,
        #[serde(default)]
        always: bool,
    },
    SetDisplayLayout {
        display_id: DisplayId,
        rotation: u16,
        overscan_percent: u8,
    },
    Announce {
        text: String,
        style: AnnouncementStyle,
        /// Shown for this long; `None` until cleared.
        #[serde(default)]
        duration_secs: Option<u32>,
    },
    ClearAnnouncement {
        announcement_id: AnnouncementId,
    },
}

/// What happened, in the past tense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    SettingsUpdated {
        settings: VenueSettings,
    },
    PlayerAdded {
        player_id: PlayerId,
        details: PlayerDetails,
    },
    PlayerUpdated {
        player_id: PlayerId,
        details: PlayerDetails,
    },
    Tournament {
        tournament_id: TournamentId,
        event: TournamentEvent,
    },
    Cash {
        event: CashEvent,
    },
    ScreenSaved {
        screen: Screen,
    },
    ScreenDeleted {
        screen_id: ScreenId,
    },
    DisplayAdded {
        display: Display,
    },
    DisplayRemoved {
        display_id: DisplayId,
    },
    ScreenAssigned {
        display_id: DisplayId,
        screen_id: Option<ScreenId>,
        always: bool,
    },
    DisplayLayoutSet {
        display_id: DisplayId,
        rotation: u16,
        overscan_percent: u8,
    },
    Announced {
        announcement: Announcement,
    },
    AnnouncementCleared {
        announcement_id: AnnouncementId,
    },
}

/// One event as it is stored and synced: a UUIDv7 id, the schema version, the wall time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema: u16,
    pub id: EventId,
    pub at: Timestamp,
    pub body: EventBody,
}

impl Event {
    /// The stream this event belongs to in the log (`venue`, `player`, `tournament/<id>`, …).
    pub fn stream(&self) -> String {
        match &self.body {
            EventBody::SettingsUpdated { .. } => "venue".into(),
            EventBody::PlayerAdded { .. } | EventBody::PlayerUpdated { .. } => "players".into(),
            EventBody::Tournament { tournament_id, .. } => format!("tournament/{tournament_id}"),
            EventBody::Cash { .. } => "cash".into(),
            _ => "displays".into(),
        }
    }

    /// A stable dotted name for the log's `type` column.
    pub fn kind(&self) -> &'static str {
        match &self.body {
            EventBody::SettingsUpdated { .. } => "venue.settings_updated",
            EventBody::PlayerAdded { .. } => "player.added",
            EventBody::PlayerUpdated { .. } => "player.updated",
            EventBody::Tournament { event, .. } => event.kind(),
            EventBody::Cash { event } => event.kind(),
            EventBody::ScreenSaved { .. } => "display.screen_saved",
            EventBody::ScreenDeleted { .. } => "display.screen_deleted",
            EventBody::DisplayAdded { .. } => "display.added",
            EventBody::DisplayRemoved { .. } => "display.removed",
            EventBody::ScreenAssigned { .. } => "display.screen_assigned",
            EventBody::DisplayLayoutSet { .. } => "display.layout_set",
            EventBody::Announced { .. } => "display.announced",
            EventBody::AnnouncementCleared { .. } => "display.announcement_cleared",
        }
    }
}

/// Checks `command` against `state` at `now` and returns the events that record it.
/// Nothing is changed: the caller makes the events durable, then folds them with [`apply`].
pub fn decide(
    state: &VenueState,
    command: Command,
    now: Timestamp,
    entropy: &mut dyn Entropy,
) -> DomainResult<Vec<Event>> {
    let bodies = decide_bodies(state, command, now, entropy)?;
    Ok(bodies
        .into_iter()
        .map(|body| Event {
            schema: SCHEMA_VERSION,
            id: EventId::generate(now, entropy),
            at: now,
            body,
        })
        .collect())
}

fn decide_bodies(
    state: &VenueState,
    command: Command,
    now: Timestamp,
    entropy: &mut dyn Entropy,
) -> DomainResult<Vec<EventBody>> {
    use Command as C;
    match command {
        C::UpdateSettings { settings } => {
            settings.validate()?;
            Ok(vec![EventBody::SettingsUpdated { settings }])
        }
        C::AddPlayer { details } => {
            let details = details.normalized()?;
            Ok(vec![EventBody::PlayerAdded {
                player_id: PlayerId::generate(now, entropy),
                details,
            }])
        }
        C::UpdatePlayer { player_id, details } => {
            player(state, player_id)?;
            Ok(vec![EventBody::PlayerUpdated {
                player_id,
                details: details.normalized()?,
            }])
        }
        C::CreateTournament { config, structure } => {
            structure.validate()?;
            config.validate(&structure)?;
            let tournament_id = TournamentId::generate(now, entropy);
            Ok(vec![EventBody::Tournament {
                tournament_id,
                event: TournamentEvent::Created { config, structure },
            }])
        }
        C::Tournament {
            tournament_id,
            command,
        } => {
            let t = state
                .tournaments
                .get(&tournament_id)
                .ok_or_else(|| DomainError::not_found("tournament", tournament_id))?;
            let names = |id: PlayerId| state.players.get(&id).map(|p| p.name.clone());
            let unit = state.settings.rounding_unit;
            let events = tournament::decide(t, &names, unit, command, now, entropy)?;
            Ok(events
                .into_iter()
                .map(|event| EventBody::Tournament {
                    tournament_id,
                    event,
                })
                .collect())
        }
        C::RegisterNewPlayer {
            tournament_id,
            details,
        } => {
            let t = state
                .tournaments
                .get(&tournament_id)
                .ok_or_else(|| DomainError::not_found("tournament", tournament_id))?;
            let details = details.normalized()?;
            let player_id = PlayerId::generate(now, entropy);
            let new_name = details.name.clone();
            let names = |id: PlayerId| {
                if id == player_id {
                    Some(new_name.clone())
                } else {
                    state.players.get(&id).map(|p| p.name.clone())
                }
            };
            let events = tournament::decide(
                t,
                &names,
                state.settings.rounding_unit,
                TournamentCommand::Register { player_id },
                now,
                entropy,
            )?;
            let mut bodies = vec![EventBody::PlayerAdded { player_id, details }];
            bodies.extend(events.into_iter().map(|event| EventBody::Tournament {
                tournament_id,
                event,
            }));
            Ok(bodies)
        }
        C::Cash { command } => Ok(cash::decide(&state.cash, command, now, entropy)?
            .into_iter()
            .map(|event| EventBody::Cash { event })
            .collect()),
        C::CreateScreen { name, kind } => {
            let name = displays::validate_screen_name(&name)?;
            check_screen_kind(state, &kind, None)?;
            Ok(vec![EventBody::ScreenSaved {
                screen: Screen {
                    id: ScreenId::generate(now, entropy),
                    name,
                    kind,
                },
            }])
        }
        C::UpdateScreen {
            screen_id,
            name,
            kind,
        } => {
            state.displays.screen(screen_id)?;
            let name = displays::validate_screen_name(&name)?;
            check_screen_kind(state, &kind, Some(screen_id))?;
            Ok(vec![EventBody::ScreenSaved {
                screen: Screen {
                    id: screen_id,
                    name,
                    kind,
                },
            }])
        }
        C::DeleteScreen { screen_id } => {
            let screen = state.displays.screen(screen_id)?;
            if let Some(d) = state
                .displays
                .displays
                .values()
                .find(|d| d.screen == Some(screen_id))
            {
                return Err(DomainError::refused(format!(
                    "screen {:?} is showing on {}: assign another screen there first",
                    screen.name, d.name
                )));
            }
            if let Some(r) = state.displays.screens.values().find(|s| {
                matches!(&s.kind, ScreenKind::Rotation { screens, .. } if screens.contains(&screen_id))
            }) {
                return Err(DomainError::refused(format!(
                    "screen {:?} is part of the rotation {:?}",
                    screen.name, r.name
                )));
            }
            Ok(vec![EventBody::ScreenDeleted { screen_id }])
        }
        C::AddChromecast { device_id, name } => {
            let device_id = device_id.trim().to_string();
            if device_id.is_empty() {
                return Err(DomainError::invalid("a Chromecast needs its device id"));
            }
            if let Some(d) = state.displays.chromecast(&device_id) {
                return Err(DomainError::conflict(format!(
                    "this Chromecast is already a display ({})",
                    d.name
                )));
            }
            let name = displays::validate_screen_name(&name)?;
            Ok(vec![EventBody::DisplayAdded {
                display: Display {
                    id: DisplayId::generate(now, entropy),
                    name,
                    kind: DisplayKind::Chromecast { device_id },
                    screen: None,
                    always: false,
                    rotation: 0,
                    overscan_percent: 0,
                },
            }])
        }
        C::RemoveDisplay { display_id } => {
            let d = state.displays.display(display_id)?;
            if d.kind == DisplayKind::Hdmi {
                return Err(DomainError::refused(
                    "the HDMI output is part of the node and cannot be removed",
                ));
            }
            Ok(vec![EventBody::DisplayRemoved { display_id }])
        }
        C::AssignScreen {
            display_id,
            screen_id,
            always,
        } => {
            state.displays.display(display_id)?;
            if let Some(s) = screen_id {
                state.displays.screen(s)?;
            }
            Ok(vec![EventBody::ScreenAssigned {
                display_id,
                screen_id,
                always,
            }])
        }
        C::SetDisplayLayout {
            display_id,
            rotation,
            overscan_percent,
        } => {
            state.displays.display(display_id)?;
            displays::validate_display_layout(rotation, overscan_percent)?;
            Ok(vec![EventBody::DisplayLayoutSet {
                display_id,
                rotation,
                overscan_percent,
            }])
        }
        C::Announce {
            text,
            style,
            duration_secs,
        } => {
            let text = displays::validate_announcement_text(&text)?;
            if duration_secs == Some(0) {
                return Err(DomainError::invalid(
                    "an announcement shown for 0 seconds would never be seen",
                ));
            }
            Ok(vec![EventBody::Announced {
                announcement: Announcement {
                    id: AnnouncementId::generate(now, entropy),
                    text,
                    style,
                    created_at: now,
                    until: duration_secs.map(|s| now.plus_millis(i64::from(s) * 1000)),
                },
            }])
        }
        C::ClearAnnouncement { announcement_id } => {
            if !state.displays.announcements.contains_key(&announcement_id) {
                return Err(DomainError::not_found("announcement", announcement_id));
            }
            Ok(vec![EventBody::AnnouncementCleared { announcement_id }])
        }
    }
}

fn player(state: &VenueState, id: PlayerId) -> DomainResult<&Player> {
    state
        .players
        .get(&id)
        .map(|p| &**p)
        .ok_or_else(|| DomainError::not_found("player", id))
}

fn check_screen_kind(
    state: &VenueState,
    kind: &ScreenKind,
    editing: Option<ScreenId>,
) -> DomainResult<()> {
    let tournament = |id: &TournamentId| {
        state
            .tournaments
            .get(id)
            .map(|_| ())
            .ok_or_else(|| DomainError::not_found("tournament", id))
    };
    match kind {
        ScreenKind::TournamentClock { tournament_id }
        | ScreenKind::SeatingDraw { tournament_id }
        | ScreenKind::Payouts { tournament_id } => tournament(tournament_id),
        ScreenKind::WaitingList { games } => {
            for g in games {
                if !state.cash.games.contains_key(g) {
                    return Err(DomainError::not_found("game", g));
                }
            }
            Ok(())
        }
        ScreenKind::TablesBoard | ScreenKind::Setup => Ok(()),
        ScreenKind::Rotation {
            screens,
            interval_secs,
        } => {
            if screens.is_empty() {
                return Err(DomainError::invalid("a rotation needs at least one screen"));
            }
            if !(5..=3600).contains(interval_secs) {
                return Err(DomainError::invalid(format!(
                    "a rotation shows each screen for 5 to 3600 seconds, not {interval_secs}"
                )));
            }
            for s in screens {
                if Some(*s) == editing {
                    return Err(DomainError::invalid("a rotation cannot contain itself"));
                }
                let inner = state.displays.screen(*s)?;
                if matches!(inner.kind, ScreenKind::Rotation { .. }) {
                    return Err(DomainError::invalid(format!(
                        "screen {:?} is itself a rotation; rotations cannot be nested",
                        inner.name
                    )));
                }
            }
            Ok(())
        }
    }
}

/// Folds one event into the state. Total: it never panics, whatever the event; an event that
/// names something unknown changes nothing.
pub fn apply(state: &mut VenueState, event: &Event) {
    state.applied += 1;
    match &event.body {
        EventBody::SettingsUpdated { settings } => state.settings = settings.clone(),
        EventBody::PlayerAdded { player_id, details } => {
            state.players.insert(
                *player_id,
                Arc::new(Player {
                    id: *player_id,
                    name: details.name.clone(),
                    nickname: details.nickname.clone(),
                    phone: details.phone.clone(),
                    email: details.email.clone(),
                    created_at: event.at,
                }),
            );
        }
        EventBody::PlayerUpdated { player_id, details } => {
            if let Some(p) = state.players.get_mut(player_id) {
                let p = Arc::make_mut(p);
                p.name = details.name.clone();
                p.nickname = details.nickname.clone();
                p.phone = details.phone.clone();
                p.email = details.email.clone();
            }
        }
        EventBody::Tournament {
            tournament_id,
            event: tev,
        } => {
            if let TournamentEvent::Created { config, structure } = tev {
                state.tournaments.insert(
                    *tournament_id,
                    Arc::new(Tournament::new(
                        *tournament_id,
                        config.clone(),
                        structure.clone(),
                        event.at,
                    )),
                );
            } else if let Some(t) = state.tournaments.get_mut(tournament_id) {
                Arc::make_mut(t).apply(tev, event.at);
            }
        }
        EventBody::Cash { event: cev } => cash::apply(&mut state.cash, cev),
        EventBody::ScreenSaved { screen } => {
            state.displays.screens.insert(screen.id, screen.clone());
        }
        EventBody::ScreenDeleted { screen_id } => {
            state.displays.screens.remove(screen_id);
        }
        EventBody::DisplayAdded { display } => {
            state.displays.displays.insert(display.id, display.clone());
        }
        EventBody::DisplayRemoved { display_id } => {
            state.displays.displays.remove(display_id);
        }
        EventBody::ScreenAssigned {
            display_id,
            screen_id,
            always,
        } => {
            if let Some(d) = state.displays.displays.get_mut(display_id) {
                d.screen = *screen_id;
                d.always = *always;
            }
        }
        EventBody::DisplayLayoutSet {
            display_id,
            rotation,
            overscan_percent,
        } => {
            if let Some(d) = state.displays.displays.get_mut(display_id) {
                d.rotation = *rotation;
                d.overscan_percent = *overscan_percent;
            }
        }
        EventBody::Announced { announcement } => {
            state
                .displays
                .announcements
                .insert(announcement.id, announcement.clone());
        }
        EventBody::AnnouncementCleared { announcement_id } => {
            state.displays.announcements.remove(announcement_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::money::Money;
    use crate::structure::Template;

    fn run(state: &mut VenueState, command: Command, entropy: &mut SeededEntropy) {
        let now = Timestamp::from_millis(1_800_000_000_000);
        for event in decide(state, command, now, entropy).expect("an accepted command") {
            apply(state, &event);
        }
    }

    fn tournament(name: &str) -> Command {
        Command::CreateTournament {
            config: TournamentConfig::freezeout(name, Money::units(100), Money::units(10), 10_000),
            structure: Structure::template(Template::ALL[0]),
        }
    }

    /// The node's writer copies the venue for every commit group: the copy must share the
    /// history (players, other tournaments) and a change must reach only the copy.
    #[test]
    fn a_copy_of_the_venue_shares_all_it_does_not_change() {
        let mut entropy = SeededEntropy::new(7);
        let mut state = VenueState::default();
        for i in 0..500 {
            let details = PlayerDetails {
                name: format!("Player {i}"),
                ..Default::default()
            };
            run(&mut state, Command::AddPlayer { details }, &mut entropy);
        }
        run(&mut state, tournament("Monday"), &mut entropy);
        run(&mut state, tournament("Tuesday"), &mut entropy);
        let ids: Vec<TournamentId> = state.tournaments.keys().copied().collect();
        let (changed, untouched) = (ids[0], ids[1]);

        let mut copy = state.clone();
        let player_id = *state.players.keys().next().expect("players");
        let register = Command::Tournament {
            tournament_id: changed,
            command: TournamentCommand::Register { player_id },
        };
        run(&mut copy, register, &mut entropy);

        assert!(
            copy.players.ptr_eq(&state.players),
            "the players were copied"
        );
        assert!(Arc::ptr_eq(
            &copy.tournaments[&untouched],
            &state.tournaments[&untouched]
        ));
        assert!(!Arc::ptr_eq(
            &copy.tournaments[&changed],
            &state.tournaments[&changed]
        ));
        assert_eq!(copy.tournaments[&changed].entries.len(), 1);
        assert!(
            state.tournaments[&changed].entries.is_empty(),
            "the change reached the original"
        );
    }
}
