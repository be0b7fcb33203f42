//! Fires notifications at level and break boundaries (buzzer, log) and sends the periodic
//! housekeeping commands (expiring unanswered waiting-list calls). Nothing here is needed for
//! correctness: the clock is arithmetic, and every display computes its own level from the
//! anchor. If this task stopped, only the buzzer would go quiet.

use crate::engine::{wall_now, EngineHandle};
use pvm_core::clock::ClockStatus;
use pvm_core::ids::TournamentId;
use pvm_core::{Command, VenueState};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// A level or break began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary {
    pub tournament_id: TournamentId,
    pub tournament_name: String,
    /// "Level 7" or "Break".
    pub title: String,
    pub on_break: bool,
}

/// How often the scheduler looks. Boundaries are noticed within this; cheap (a few views).
const TICK: Duration = Duration::from_millis(250);
/// How often unanswered calls are checked.
const EXPIRE_EVERY: Duration = Duration::from_secs(5);

/// Where each running tournament's clock is: the structure item it shows.
pub fn positions(state: &VenueState, now: pvm_core::Timestamp) -> BTreeMap<TournamentId, usize> {
    state
        .tournaments
        .values()
        .filter(|t| t.clock.status == ClockStatus::Running)
        .map(|t| (t.id, t.clock.view(&t.structure, now).item_index))
        .collect()
}

/// Boundaries between two observations: tournaments whose item changed while running.
pub fn boundaries(
    state: &VenueState,
    before: &BTreeMap<TournamentId, usize>,
    after: &BTreeMap<TournamentId, usize>,
) -> Vec<Boundary> {
    after
        .iter()
        .filter(|(id, idx)| before.get(id).is_some_and(|b| b != *idx))
        .filter_map(|(id, idx)| {
            let t = state.tournaments.get(id)?;
            let item = t.structure.items.get(*idx)?;
            let on_break = item.is_break();
            Some(Boundary {
                tournament_id: *id,
                tournament_name: t.config.name.clone(),
                title: match t.structure.level_number(*idx) {
                    Some(n) => format!("Level {n}"),
                    None => "Break".into(),
                },
                on_break,
            })
        })
        .collect()
}

/// Runs until `shutdown` turns true.
pub async fn run<F>(engine: EngineHandle, on_boundary: F, mut shutdown: watch::Receiver<bool>)
where
    F: Fn(&Boundary) + Send + 'static,
{
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last = positions(&engine.state(), wall_now());
    let mut last_expiry = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        let state = engine.state();
        let now = wall_now();
        let current = positions(&state, now);
        for b in boundaries(&state, &last, &current) {
            tracing::info!(tournament = %b.tournament_name, level = %b.title, "level change");
            on_boundary(&b);
        }
        last = current;
        if last_expiry.elapsed() >= EXPIRE_EVERY {
            last_expiry = tokio::time::Instant::now();
            if pvm_core::cash::has_expired_calls(&state.cash, now) {
                let cmd = Command::Cash {
                    command: pvm_core::cash::CashCommand::ExpireCalls {},
                };
                if let Err(e) = engine.execute(cmd).await {
                    tracing::warn!(error = %e, "expiring unanswered waiting-list calls failed");
                }
            }
        }
    }
}
