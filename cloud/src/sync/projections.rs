//! Projections of a node's events, computed by folding them with pvm-core's own `apply`
//! (so a bust undone on the node is undone here too, and payouts are the node's payouts),
//! then written from the resulting state for every tournament the events touched.
//! Waiting-list history is the exception: it is a log, one row per list entry an event
//! touched, read from the event with the state as it was just before it.

use std::collections::BTreeSet;

use pvm_core::cash::CashEvent;
use pvm_core::tournament::{EntryStatus, TournamentStatus};
use pvm_core::{Event, EventBody, VenueState};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::ingest::NodeInfo;

/// One row of `cloud_waitlist_history`.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitlistRow {
    pub event_id: Uuid,
    pub entry_id: Uuid,
    pub seq: i64,
    pub game_id: Option<Uuid>,
    pub action: &'static str,
    pub name: Option<String>,
    pub player_id: Option<Uuid>,
    pub at_ms: i64,
}

/// What folding a run of events changed, to be written in the same transaction.
#[derive(Debug, Default)]
pub struct Changes {
    pub tournaments: BTreeSet<pvm_core::ids::TournamentId>,
    pub waitlist: Vec<WaitlistRow>,
}

impl Changes {
    /// Folds one event (log sequence `seq`) into `state`, remembering what it touched.
    pub fn fold(&mut self, state: &mut VenueState, seq: i64, event: &Event) {
        match &event.body {
            EventBody::Tournament { tournament_id, .. } => {
                self.tournaments.insert(*tournament_id);
            }
            EventBody::Cash { event: cash } => {
                self.waitlist.extend(waitlist_rows(state, seq, event, cash));
            }
            // A renamed player shows under the new name in every tournament's results:
            // only entries carry names, and those are copied at registration, so nothing
            // else to refresh.
            _ => {}
        }
        pvm_core::apply(state, event);
    }
}

fn waitlist_rows(
    state: &VenueState,
    seq: i64,
    event: &Event,
    cash: &CashEvent,
) -> Vec<WaitlistRow> {
    let row = |entry: pvm_core::ids::WaitlistEntryId, action: &'static str| {
        let known = state.cash.find_entry(entry).map(|(e, _)| e);
        WaitlistRow {
            event_id: event.id.0,
            entry_id: entry.0,
            seq,
            game_id: known.map(|e| e.game_id.0),
            action,
            name: known.map(|e| e.name.clone()),
            player_id: known.and_then(|e| e.player_id.map(|p| p.0)),
            at_ms: event.at.as_millis(),
        }
    };
    let outcome = |o: &pvm_core::cash::MissedCallOutcome| match o {
        pvm_core::cash::MissedCallOutcome::MovedToEnd => "missed_moved_to_end",
        pvm_core::cash::MissedCallOutcome::Removed => "missed_removed",
    };
    match cash {
        CashEvent::PlayerJoinedWaitlist {
            entry_id,
            game_id,
            name,
            player_id,
            ..
        } => vec![WaitlistRow {
            event_id: event.id.0,
            entry_id: entry_id.0,
            seq,
            game_id: Some(game_id.0),
            action: "joined",
            name: Some(name.clone()),
            player_id: player_id.map(|p| p.0),
            at_ms: event.at.as_millis(),
        }],
        CashEvent::PlayerCalled { entry_id, .. } => vec![row(*entry_id, "called")],
        CashEvent::CallUndone { entry_id } => vec![row(*entry_id, "call_undone")],
        CashEvent::CallExpired {
            entry_id,
            outcome: o,
        } => vec![row(*entry_id, outcome(o))],
        CashEvent::PlayerMarkedNoShow {
            entry_id,
            outcome: o,
        } => {
            vec![row(
                *entry_id,
                if matches!(o, pvm_core::cash::MissedCallOutcome::Removed) {
                    "no_show_removed"
                } else {
                    "no_show_moved_to_end"
                },
            )]
        }
        CashEvent::PlayerRemovedFromWaitlist { entry_id } => vec![row(*entry_id, "removed")],
        CashEvent::PlayerSeated {
            from_entry,
            left_lists,
            ..
        } => from_entry
            .iter()
            .map(|e| row(*e, "seated"))
            .chain(
                left_lists
                    .iter()
                    .filter(|e| Some(**e) != *from_entry)
                    .map(|e| row(*e, "left_on_seating")),
            )
            .collect(),
        CashEvent::PlayerMoved { left_lists, .. } => {
            left_lists.iter().map(|e| row(*e, "left_on_move")).collect()
        }
        CashEvent::GameClosed { game_id } => state
            .cash
            .waitlists
            .get(game_id)
            .map(|list| list.iter().map(|e| row(e.id, "game_closed")).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn ts(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn status_name(status: TournamentStatus) -> &'static str {
    match status {
        TournamentStatus::Scheduled => "scheduled",
        TournamentStatus::Running => "running",
        TournamentStatus::Finished => "finished",
        TournamentStatus::Cancelled => "cancelled",
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Writes the projections for `changes` from `state` (the state after the run).
pub async fn write(
    tx: &Transaction<'_>,
    node: &NodeInfo,
    applied_seq: i64,
    state: &VenueState,
    changes: &Changes,
) -> Result<(), tokio_postgres::Error> {
    let unit = state.settings.rounding_unit;
    for tournament_id in &changes.tournaments {
        let Some(t) = state.tournaments.get(tournament_id) else {
            continue;
        };
        let pool = t.prize_pool();
        let players_left = t
            .entries
            .values()
            .filter(|e| e.status == EntryStatus::Active)
            .count();
        tx.execute(
            "INSERT INTO cloud_tournaments (tournament_id, node_id, venue_id, tenant_id, name, \
               status, created_at, buy_in_cents, entries, reentries, rebuys, addons, \
               players_left, prize_pool_cents, applied_seq) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) \
             ON CONFLICT (tournament_id) DO UPDATE SET name = EXCLUDED.name, \
               status = EXCLUDED.status, buy_in_cents = EXCLUDED.buy_in_cents, \
               entries = EXCLUDED.entries, reentries = EXCLUDED.reentries, \
               rebuys = EXCLUDED.rebuys, addons = EXCLUDED.addons, \
               players_left = EXCLUDED.players_left, \
               prize_pool_cents = EXCLUDED.prize_pool_cents, applied_seq = EXCLUDED.applied_seq",
            &[
                &tournament_id.0,
                &node.node_id,
                &node.venue_id,
                &node.tenant_id,
                &t.config.name,
                &status_name(t.status),
                &ts(t.created_at.as_millis()),
                &t.config.buy_in.as_cents(),
                &int(pool.entries),
                &int(pool.reentries),
                &int(pool.rebuys),
                &int(pool.addons),
                &count(players_left),
                &pool.total.as_cents(),
                &applied_seq,
            ],
        )
        .await?;
        // Rewritten whole: an undone bust or a cancelled deal changes earlier rows.
        tx.execute(
            "DELETE FROM cloud_tournament_entries WHERE tournament_id = $1",
            &[&tournament_id.0],
        )
        .await?;
        tx.execute(
            "DELETE FROM cloud_tournament_results WHERE tournament_id = $1",
            &[&tournament_id.0],
        )
        .await?;
        let entries: Vec<_> = t.entries.values().collect();
        if !entries.is_empty() {
            let ids: Vec<Uuid> = entries.iter().map(|e| e.id.0).collect();
            let players: Vec<Uuid> = entries.iter().map(|e| e.player_id.0).collect();
            let names: Vec<&str> = entries.iter().map(|e| e.player_name.as_str()).collect();
            let numbers: Vec<i32> = entries.iter().map(|e| int(e.number)).collect();
            let reentry: Vec<bool> = entries.iter().map(|e| e.is_reentry).collect();
            let registered: Vec<_> = entries
                .iter()
                .map(|e| ts(e.registered_at.as_millis()))
                .collect();
            let rebuys: Vec<i32> = entries.iter().map(|e| int(e.rebuys)).collect();
            let addon: Vec<bool> = entries.iter().map(|e| e.addon).collect();
            let status: Vec<&str> = entries
                .iter()
                .map(|e| match e.status {
                    EntryStatus::Active => "active",
                    EntryStatus::Busted => "busted",
                })
                .collect();
            let place: Vec<Option<i32>> = entries.iter().map(|e| e.place.map(int)).collect();
            let busted: Vec<_> = entries
                .iter()
                .map(|e| e.busted_at.map(|b| ts(b.as_millis())))
                .collect();
            let bounty: Vec<i64> = entries.iter().map(|e| e.bounty.as_cents()).collect();
            let won: Vec<i64> = entries.iter().map(|e| e.bounties_won.as_cents()).collect();
            tx.execute(
                "INSERT INTO cloud_tournament_entries (tournament_id, entry_id, player_id, \
                   player_name, number, is_reentry, registered_at, rebuys, addon, status, \
                   place, busted_at, bounty_cents, bounties_won_cents) \
                 SELECT $1, * FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::int4[], \
                   $6::bool[], $7::timestamptz[], $8::int4[], $9::bool[], $10::text[], \
                   $11::int4[], $12::timestamptz[], $13::int8[], $14::int8[])",
                &[
                    &tournament_id.0,
                    &ids,
                    &players,
                    &names,
                    &numbers,
                    &reentry,
                    &registered,
                    &rebuys,
                    &addon,
                    &status,
                    &place,
                    &busted,
                    &bounty,
                    &won,
                ],
            )
            .await?;
        }
        let results = t.results(unit);
        if !results.is_empty() {
            let places: Vec<i32> = results.iter().map(|r| int(r.place)).collect();
            let prizes: Vec<i64> = results.iter().map(|r| r.prize.as_cents()).collect();
            let entry_ids: Vec<Option<Uuid>> =
                results.iter().map(|r| r.entry_id.map(|e| e.0)).collect();
            let names: Vec<Option<&str>> =
                results.iter().map(|r| r.player_name.as_deref()).collect();
            let paid: Vec<Option<i64>> = results
                .iter()
                .map(|r| r.paid.map(|p| p.as_cents()))
                .collect();
            let won: Vec<i64> = results.iter().map(|r| r.bounties_won.as_cents()).collect();
            tx.execute(
                "INSERT INTO cloud_tournament_results (tournament_id, place, prize_cents, \
                   entry_id, player_name, paid_cents, bounties_won_cents) \
                 SELECT $1, * FROM UNNEST($2::int4[], $3::int8[], $4::uuid[], $5::text[], \
                   $6::int8[], $7::int8[]) \
                 ON CONFLICT (tournament_id, place) DO NOTHING",
                &[
                    &tournament_id.0,
                    &places,
                    &prizes,
                    &entry_ids,
                    &names,
                    &paid,
                    &won,
                ],
            )
            .await?;
        }
    }
    if !changes.waitlist.is_empty() {
        let w = &changes.waitlist;
        let event_ids: Vec<Uuid> = w.iter().map(|r| r.event_id).collect();
        let entry_ids: Vec<Uuid> = w.iter().map(|r| r.entry_id).collect();
        let seqs: Vec<i64> = w.iter().map(|r| r.seq).collect();
        let games: Vec<Option<Uuid>> = w.iter().map(|r| r.game_id).collect();
        let actions: Vec<&str> = w.iter().map(|r| r.action).collect();
        let names: Vec<Option<&str>> = w.iter().map(|r| r.name.as_deref()).collect();
        let players: Vec<Option<Uuid>> = w.iter().map(|r| r.player_id).collect();
        let at: Vec<_> = w.iter().map(|r| ts(r.at_ms)).collect();
        tx.execute(
            "INSERT INTO cloud_waitlist_history (node_id, venue_id, tenant_id, event_id, \
               entry_id, seq, game_id, action, name, player_id, at) \
             SELECT $1, $2, $3, * FROM UNNEST($4::uuid[], $5::uuid[], $6::int8[], $7::uuid[], \
               $8::text[], $9::text[], $10::uuid[], $11::timestamptz[]) \
             ON CONFLICT (event_id, entry_id) DO NOTHING",
            &[
                &node.node_id,
                &node.venue_id,
                &node.tenant_id,
                &event_ids,
                &entry_ids,
                &seqs,
                &games,
                &actions,
                &names,
                &players,
                &at,
            ],
        )
        .await?;
    }
    Ok(())
}
