//! A night at the venue for tests: one tournament driven through the public `decide`/`apply`,
//! with a seeded entropy source and a hand-moved clock.

use crate::ids::{EntryId, PlayerId, TournamentId};
use crate::players::PlayerDetails;
use crate::structure::{Structure, Template};
use crate::time::{Timestamp, MINUTE_MS};
use crate::tournament::{
    BustInput, EntryStatus, LateRegistration, ReentryRule, Tournament, TournamentCommand,
    TournamentConfig,
};
use crate::{apply, decide, Command, DomainError, EventBody, Money, SeededEntropy, VenueState};

/// A venue with one tournament and a few players, driven through the public decide/apply.
pub(crate) struct Night {
    pub state: VenueState,
    pub entropy: SeededEntropy,
    pub now: Timestamp,
    pub tid: TournamentId,
}

impl Night {
    pub fn new(config: TournamentConfig) -> Night {
        let mut n = Night {
            state: VenueState::default(),
            entropy: SeededEntropy::new(42),
            now: Timestamp::from_millis(1_800_000_000_000),
            tid: TournamentId(uuid::Uuid::nil()),
        };
        let structure = Structure::template(Template::Standard);
        n.run(Command::CreateTournament { config, structure })
            .unwrap();
        n.tid = *n.state.tournaments.keys().next().unwrap();
        n
    }

    pub fn standard() -> Night {
        let mut c = TournamentConfig::freezeout(
            "Monday Deepstack",
            Money::units(100),
            Money::units(10),
            20_000,
        );
        c.late_registration = Some(LateRegistration {
            until_level: 6,
            through_break: false,
        });
        c.reentry = Some(ReentryRule { max_per_player: 2 });
        Night::new(c)
    }

    pub fn run(&mut self, cmd: Command) -> Result<Vec<crate::Event>, DomainError> {
        let events = decide(&self.state, cmd, self.now, &mut self.entropy)?;
        for e in &events {
            apply(&mut self.state, e);
        }
        Ok(events)
    }

    pub fn t(&mut self, cmd: TournamentCommand) -> Result<Vec<crate::Event>, DomainError> {
        self.run(Command::Tournament {
            tournament_id: self.tid,
            command: cmd,
        })
    }

    pub fn tour(&self) -> &Tournament {
        &self.state.tournaments[&self.tid]
    }

    pub fn player(&mut self, name: &str) -> PlayerId {
        let ev = self
            .run(Command::AddPlayer {
                details: PlayerDetails {
                    name: name.into(),
                    ..Default::default()
                },
            })
            .unwrap();
        match &ev[0].body {
            EventBody::PlayerAdded { player_id, .. } => *player_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn register(&mut self, p: PlayerId) -> EntryId {
        self.t(TournamentCommand::Register { player_id: p })
            .unwrap();
        self.tour()
            .entries_of(p)
            .find(|e| e.status == EntryStatus::Active)
            .unwrap()
            .id
    }

    pub fn field(&mut self, n: usize) -> Vec<EntryId> {
        (0..n)
            .map(|i| {
                let p = self.player(&format!("Player {i:02}"));
                self.register(p)
            })
            .collect()
    }

    pub fn wait_minutes(&mut self, m: i64) {
        self.now = self.now.plus_millis(m * MINUTE_MS);
    }

    pub fn bust(&mut self, e: EntryId) -> Result<Vec<crate::Event>, DomainError> {
        self.t(TournamentCommand::Bust {
            busts: vec![BustInput {
                entry_id: e,
                stack: None,
            }],
            eliminated_by: None,
        })
    }

    pub fn level_minutes(&self, level: u32) -> i64 {
        let s = &self.tour().structure;
        let idx = s.index_of_level(level).unwrap();
        s.item_duration_ms(idx).unwrap() / MINUTE_MS
    }

    /// Runs the clock forward to just after the end of `level` (breaks included).
    pub fn run_past_level(&mut self, level: u32) {
        let s = self.tour().structure.clone();
        let end = s.index_of_level(level).unwrap();
        let total: i64 = (0..=end).map(|i| s.item_duration_ms(i).unwrap()).sum();
        self.now = self.now.plus_millis(total + 1);
    }
}
