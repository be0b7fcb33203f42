//! The NATS side of the service: enrolment with NATS credentials, event ingestion into
//! PostgreSQL with projections, fleet heartbeats and the down channel.
//!
//! - [`nats_auth`]: the operator/account/user JWTs (decentralized auth) and `nats-init`.
//! - [`streams`]: PVM_UP, PVM_DOWN and their consumers, created idempotently.
//! - [`enrol`]: `POST /api/v1/enrol`, the one route a node calls over HTTP.
//! - [`ingest`] + [`projections`]: PVM_UP → PostgreSQL, exactly once, per-node order.
//! - [`heartbeat`]: node status columns from heartbeats.
//! - [`down`] + [`commands`]: messages to nodes (commands, release notices, players).
//!
//! The accounts side calls only the hooks here: [`MIGRATIONS`], [`routes`], [`start`],
//! and [`notify_release`] / [`notify_players_changed`] after the changes they announce.

pub mod commands;
pub mod down;
pub mod enrol;
pub mod heartbeat;
pub mod ingest;
pub mod nats_auth;
pub mod projections;
pub mod streams;

use crate::db::Migration;
use crate::state::CloudState;
use utoipa_axum::router::OpenApiRouter;

/// The sync side's migrations (versions 0100 and up), applied after the accounts side's.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 100,
        name: "sync",
        sql: include_str!("../../migrations/0100_sync.sql"),
    },
    Migration {
        version: 101,
        name: "sync_rejected_outbox",
        sql: include_str!("../../migrations/0101_sync_rejected_outbox.sql"),
    },
    Migration {
        version: 110,
        name: "node_update_status",
        sql: include_str!("../../migrations/0110_node_update_status.sql"),
    },
    Migration {
        version: 111,
        name: "sync_events_lean",
        sql: include_str!("../../migrations/0111_sync_events_lean.sql"),
    },
];

/// The sync side's routes, merged into the API router.
pub fn routes() -> OpenApiRouter<CloudState> {
    OpenApiRouter::new()
        .merge(enrol::routes())
        .merge(commands::routes())
}

/// Starts ingestion and the heartbeat listener when this instance has NATS. The tasks end
/// when `stopping` turns true (dropping them mid-batch is safe: see [`ingest`]).
pub fn start(
    state: &CloudState,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(client) = state.nats.clone() else {
        tracing::info!("no NATS configured: sync ingestion and heartbeats are off");
        return Vec::new();
    };
    let pool = state.pool.clone();
    let js = async_nats::jetstream::new(client.clone());
    let ingest = until_stopped(stopping.clone(), async move {
        let mut backoff = std::time::Duration::from_millis(200);
        loop {
            match ingest::Ingestor::new(pool.clone(), &js, ingest::IngestConfig::default()).await {
                Ok(ingestor) => return ingestor.run().await,
                Err(e) => {
                    // NATS may still be coming up: keep trying, the API serves meanwhile.
                    tracing::warn!(error = %e, "ingest consumer not ready");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
                }
            }
        }
    });
    let pool = state.pool.clone();
    let js = async_nats::jetstream::new(client.clone());
    let outbox = until_stopped(stopping.clone(), async move {
        let mut tick = tokio::time::interval(down::OUTBOX_RETRY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match down::deliver_pending(&pool, &js).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(messages = n, "down-messages delivered from the outbox"),
                Err(e) => tracing::warn!(error = %e, "down-messages still pending in the outbox"),
            }
        }
    });
    let pool = state.pool.clone();
    let heartbeats = until_stopped(stopping, async move {
        loop {
            if let Err(e) = heartbeat::run(client.clone(), pool.clone()).await {
                tracing::warn!(error = %e, "heartbeat listener stopped");
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    vec![ingest, outbox, heartbeats]
}

fn until_stopped(
    mut stopping: tokio::sync::watch::Receiver<bool>,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => {}
            _ = task => {}
        }
    })
}

/// After a release is published: tells the nodes on its channel (in the background,
/// through the outbox: a notice JetStream did not take is retried every
/// [`down::OUTBOX_RETRY`] until it is stored).
pub fn notify_release(state: &CloudState, release: down::ReleaseInfo) {
    let Some(client) = state.nats.clone() else {
        return;
    };
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let js = async_nats::jetstream::new(client);
        match down::publish_release_notice(&pool, &js, &release).await {
            Ok(n) => tracing::info!(version = %release.version, nodes = n, "release notice sent"),
            Err(e) => {
                tracing::warn!(version = %release.version, error = %e, "release notice not sent yet; retried from the outbox")
            }
        }
    });
}

/// After a venue's memberships changed: sends its nodes the full player list (in the
/// background, like [`notify_release`]).
pub fn notify_players_changed(state: &CloudState, venue_id: uuid::Uuid) {
    let Some(client) = state.nats.clone() else {
        return;
    };
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let js = async_nats::jetstream::new(client);
        if let Err(e) = down::publish_players_snapshot(&pool, &js, venue_id).await {
            tracing::warn!(%venue_id, error = %e, "players snapshot not sent yet; retried from the outbox");
        }
    });
}
