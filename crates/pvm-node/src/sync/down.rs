//! Down-messages: pulled from the node's durable consumer on the cloud's `PVM_DOWN` stream
//! and applied at most once each.
//!
//! Order for each message: look it up in the ledger (applied before → just acknowledge);
//! apply it; record it in the ledger; acknowledge. A crash before the ledger write means a
//! redelivery applies it again, which each kind tolerates (a resync re-sends what the cloud
//! dedups; players reconcile to the same result; a reboot only happens after the record).

use super::pairing::Pairing;
use super::session::{Ledger, SessionError};
use super::{now_ms, Context, DownReport, ReleaseNotice, RELEASE_NOTICE_META};
use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt;
use pvm_core::clock::ClockStatus;
use pvm_core::ids::PlayerId;
use pvm_core::players::PlayerDetails;
use pvm_core::Command;
use pvm_store::AppliedDown;
use pvm_sync::{streams, CloudPlayer, DownBody, DownMessage};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Wait before pulling again after the consumer failed (e.g. not created yet by the cloud).
const RETRY: Duration = Duration::from_secs(2);

/// Pulls and applies down-messages for as long as the session lasts.
pub(crate) async fn consume_loop(
    ctx: &Arc<Context>,
    pairing: &Pairing,
    ledger: &Ledger,
    js: &jetstream::Context,
) -> Result<(), SessionError> {
    loop {
        if let Err(e) = consume(ctx, pairing, ledger, js).await {
            ctx.shared.record_error(&e);
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn consume(
    ctx: &Arc<Context>,
    pairing: &Pairing,
    ledger: &Ledger,
    js: &jetstream::Context,
) -> Result<(), SessionError> {
    let durable = streams::down_durable(pairing.enrolment.node_id);
    let consumer: PullConsumer = js
        .get_consumer_from_stream(&durable, streams::DOWN)
        .await
        .map_err(|e| SessionError::Down(format!("consumer {durable}: {e}")))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| SessionError::Down(e.to_string()))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| SessionError::Down(e.to_string()))?;
        let parsed: DownMessage = match serde_json::from_slice(&message.payload) {
            Ok(m) => m,
            Err(e) => {
                // Redelivering it would fail the same way forever: drop it, loudly.
                ctx.shared.record_error(format!(
                    "a down-message is not readable and was dropped: {e}"
                ));
                let _ = message
                    .ack_with(jetstream::AckKind::Term)
                    .await
                    .map_err(|e| SessionError::Down(e.to_string()));
                continue;
            }
        };
        let reboot = handle(ctx, ledger, &parsed).await?;
        message
            .ack()
            .await
            .map_err(|e| SessionError::Down(format!("acknowledging: {e}")))?;
        if reboot {
            tracing::warn!(id = %parsed.id, "rebooting at the cloud's request");
            if let Err(e) = ctx.rebooter.reboot() {
                ctx.shared
                    .record_error(format!("the cloud asked for a reboot, which failed: {e}"));
            }
        }
    }
    Err(SessionError::Down(
        "the consumer's message stream ended".into(),
    ))
}

/// Applies one message unless the ledger has it. Returns whether to reboot once it is
/// acknowledged (a reboot before the acknowledgement would find it again after boot).
async fn handle(
    ctx: &Arc<Context>,
    ledger: &Ledger,
    message: &DownMessage,
) -> Result<bool, SessionError> {
    let id = message.id;
    if let Some(done) = ledger.with(move |s| s.applied_down_message(id)).await? {
        tracing::debug!(%id, kind = %done.kind, "down-message already applied; acknowledging again");
        return Ok(false);
    }
    let (kind, outcome, reboot) = match &message.body {
        DownBody::Resync { from_seq } => {
            let to = from_seq.saturating_sub(1);
            rewind(ctx, to).await?;
            (
                "resync",
                format!("applied: re-sending from event {from_seq}"),
                false,
            )
        }
        DownBody::Reboot { force } => {
            let running = ctx
                .engine
                .state()
                .tournaments
                .values()
                .filter(|t| t.clock.status == ClockStatus::Running)
                .count();
            if running > 0 && !force {
                (
                    "reboot",
                    format!("refused: {running} tournament clock(s) running"),
                    false,
                )
            } else {
                ("reboot", "applied: rebooting".to_string(), true)
            }
        }
        DownBody::ReleaseNotice {
            version,
            channel,
            bundle_url,
            notes,
        } => {
            let notice = ReleaseNotice {
                version: version.clone(),
                channel: channel.clone(),
                bundle_url: bundle_url.clone(),
                notes: notes.clone(),
                received_at_ms: now_ms(),
            };
            let json =
                serde_json::to_string(&notice).map_err(|e| SessionError::Down(e.to_string()))?;
            ledger
                .with(move |s| s.meta_set(RELEASE_NOTICE_META, &json))
                .await?;
            ctx.shared.set_release_notice(notice);
            (
                "release_notice",
                format!("applied: release {version} noted"),
                false,
            )
        }
        DownBody::Players { players } => {
            let summary = reconcile_players(ctx, ledger, players).await?;
            ("players", format!("applied: {summary}"), false)
        }
    };
    let at_ms = now_ms();
    let record = AppliedDown {
        kind: kind.to_string(),
        outcome: outcome.clone(),
        applied_at_ms: at_ms,
    };
    ledger
        .with(move |s| s.record_down_message(id, &record))
        .await?;
    tracing::info!(%id, kind, %outcome, "down-message");
    ctx.shared.set_last_down(DownReport {
        id,
        kind: kind.to_string(),
        outcome,
        at_ms,
    });
    Ok(reboot)
}

/// Hands the rewind to the publisher and waits until it has saved the earlier cursor.
async fn rewind(ctx: &Arc<Context>, to: u64) -> Result<(), SessionError> {
    let mut done = ctx.shared.rewound.subscribe();
    let before = *done.borrow_and_update();
    ctx.shared.request_rewind(to);
    // The publisher takes it between batches: at most one batch's acks away.
    let limit = ctx.settings.ack_timeout * 2 + Duration::from_secs(5);
    let taken = tokio::time::timeout(limit, async {
        done.wait_for(|n| *n > before).await.is_ok()
    })
    .await;
    match taken {
        Ok(true) => Ok(()),
        _ => Err(SessionError::Down(
            "the publisher did not take the resync in time; it will be retried".into(),
        )),
    }
}

/// Called by the publisher once a requested rewind is saved.
pub(crate) fn rewind_done(ctx: &Context) {
    ctx.shared.rewound.send_modify(|n| *n += 1);
}

/// Brings the venue's players in line with the cloud's list, through ordinary commands.
/// A cloud player already mapped is updated if its name changed; an unmapped one adopts an
/// unmapped local player of exactly the same name (the venue knew them before the cloud
/// did, or a crash came between adding them and saving the map) or is added. Inactive
/// memberships add nobody; local players are never removed (the log keeps history).
async fn reconcile_players(
    ctx: &Arc<Context>,
    ledger: &Ledger,
    players: &[CloudPlayer],
) -> Result<String, SessionError> {
    let (mut added, mut updated, mut unchanged, mut skipped) = (0, 0, 0, 0);
    let map = ledger.with(|s| s.player_map()).await?;
    let mut mapped_locals: BTreeSet<Uuid> = map.iter().map(|(_, l)| *l).collect();
    for cloud in players {
        let details = match (PlayerDetails {
            name: cloud.display_name.clone(),
            ..PlayerDetails::default()
        })
        .normalized()
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(player = %cloud.player_id, error = %e, "cloud player not taken");
                skipped += 1;
                continue;
            }
        };
        let cloud_id = cloud.player_id;
        let state = ctx.engine.state();
        let mapped = map.iter().find(|(c, _)| *c == cloud_id).map(|(_, l)| *l);
        if let Some(local) = mapped.and_then(|l| state.players.get(&PlayerId(l))) {
            if local.name == details.name {
                unchanged += 1;
                continue;
            }
            let keep = PlayerDetails {
                name: details.name,
                nickname: local.nickname.clone(),
                phone: local.phone.clone(),
                email: local.email.clone(),
            };
            ctx.engine
                .execute(Command::UpdatePlayer {
                    player_id: local.id,
                    details: keep,
                })
                .await
                .map_err(|e| SessionError::Down(format!("updating a player: {e}")))?;
            updated += 1;
            continue;
        }
        if !cloud.active {
            skipped += 1;
            continue;
        }
        let twin = state
            .players
            .values()
            .find(|p| p.name == details.name && !mapped_locals.contains(&p.id.0))
            .map(|p| p.id.0);
        let local = match twin {
            Some(id) => {
                unchanged += 1;
                id
            }
            None => {
                let outcome = ctx
                    .engine
                    .execute(Command::AddPlayer { details })
                    .await
                    .map_err(|e| SessionError::Down(format!("adding a player: {e}")))?;
                let created = outcome.events.iter().find_map(|c| match &c.event.body {
                    pvm_core::EventBody::PlayerAdded { player_id, .. } => Some(player_id.0),
                    _ => None,
                });
                let Some(id) = created else {
                    return Err(SessionError::Down(
                        "adding a player recorded no player".into(),
                    ));
                };
                added += 1;
                id
            }
        };
        mapped_locals.insert(local);
        ledger.with(move |s| s.map_player(cloud_id, local)).await?;
    }
    Ok(format!(
        "{added} added, {updated} updated, {unchanged} unchanged, {skipped} skipped"
    ))
}
