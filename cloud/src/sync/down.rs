//! The down-channel: messages from the cloud to one node, published to its own subject and
//! kept in PVM_DOWN until the node's durable consumer acknowledges them. Each publish waits
//! for JetStream's ack, so a caller that got `Ok` knows the message is stored.
//!
//! Release notices and players snapshots are not sent straight away but through the
//! `sync_down_outbox` table: [`enqueue`] writes them in PostgreSQL, [`deliver_pending`]
//! publishes what is pending, oldest first, and marks each as sent once JetStream stored
//! it. Every instance runs [`deliver_pending`] again every [`OUTBOX_RETRY`], so a push made
//! while NATS was unreachable goes out when it is back, even from another instance.

use async_nats::jetstream;
use pvm_sync::{CloudPlayer, DownBody, DownMessage};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum DownError {
    #[error("publish to the node: {0}")]
    Publish(String),
    #[error("encode: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How often each instance publishes what is still pending in the outbox.
pub const OUTBOX_RETRY: std::time::Duration = std::time::Duration::from_secs(5);
/// Outbox rows published per round.
const OUTBOX_PAGE: i64 = 200;
/// Advisory lock key: one instance at a time delivers the outbox, so messages to a node
/// leave in the order they were written (a newer players snapshot never lands first).
const OUTBOX_LOCK: i64 = 0x0050_766d_446f_776e;

/// Publishes one message to `node_id` and waits for JetStream to store it. The message id
/// doubles as `Nats-Msg-Id`, so a retried publish is stored once.
pub async fn publish(
    js: &jetstream::Context,
    node_id: Uuid,
    body: DownBody,
) -> Result<DownMessage, DownError> {
    let message = DownMessage {
        id: Uuid::now_v7(),
        issued_at_ms: now_ms(),
        body,
    };
    publish_message(js, node_id, &message).await?;
    Ok(message)
}

async fn publish_message(
    js: &jetstream::Context,
    node_id: Uuid,
    message: &DownMessage,
) -> Result<(), DownError> {
    let payload = serde_json::to_vec(message)?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(pvm_sync::MSG_ID_HEADER, message.id.to_string().as_str());
    js.publish_with_headers(pvm_sync::subjects::down(node_id), headers, payload.into())
        .await
        .map_err(|e| DownError::Publish(e.to_string()))?
        .await
        .map_err(|e| DownError::Publish(e.to_string()))?;
    Ok(())
}

/// Writes a message for each of `nodes` into the outbox (delivered by [`deliver_pending`]).
pub async fn enqueue(
    client: &deadpool_postgres::Client,
    nodes: &[Uuid],
    body: &DownBody,
) -> Result<(), DownError> {
    for node in nodes {
        let message = DownMessage {
            id: Uuid::now_v7(),
            issued_at_ms: now_ms(),
            body: body.clone(),
        };
        client
            .execute(
                "INSERT INTO sync_down_outbox (id, node_id, message) VALUES ($1, $2, $3)",
                &[&message.id, node, &serde_json::to_value(&message)?],
            )
            .await?;
    }
    Ok(())
}

/// Publishes the outbox's pending messages, oldest first, marking each sent once
/// JetStream has stored it; stops at the first failure (the rest wait for the next round,
/// keeping their order). Returns how many it sent; 0 while another instance is at it.
pub async fn deliver_pending(
    pool: &deadpool_postgres::Pool,
    js: &jetstream::Context,
) -> Result<usize, DownError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&OUTBOX_LOCK])
        .await?
        .get(0);
    if !locked {
        return Ok(0);
    }
    let rows = tx
        .query(
            "SELECT id, node_id, message FROM sync_down_outbox WHERE sent_at IS NULL \
             ORDER BY created_at, id LIMIT $1",
            &[&OUTBOX_PAGE],
        )
        .await?;
    let mut sent = 0;
    let mut failure = None;
    for row in rows {
        let id: Uuid = row.get(0);
        let node_id: Uuid = row.get(1);
        let outcome = match serde_json::from_value::<DownMessage>(row.get(2)) {
            Ok(message) => publish_message(js, node_id, &message).await,
            Err(e) => Err(DownError::Encode(e)),
        };
        match outcome {
            Ok(()) => {
                tx.execute(
                    "UPDATE sync_down_outbox SET sent_at = now(), attempts = attempts + 1, \
                     last_error = NULL WHERE id = $1",
                    &[&id],
                )
                .await?;
                sent += 1;
            }
            Err(e) => {
                tx.execute(
                    "UPDATE sync_down_outbox SET attempts = attempts + 1, last_error = $2 \
                     WHERE id = $1",
                    &[&id, &e.to_string()],
                )
                .await?;
                failure = Some(e);
                break;
            }
        }
    }
    tx.commit().await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}

/// Messages written to the outbox and not yet stored by JetStream.
pub async fn pending_count(pool: &deadpool_postgres::Pool) -> Result<i64, DownError> {
    let client = pool.get().await?;
    Ok(client
        .query_one(
            "SELECT count(*) FROM sync_down_outbox WHERE sent_at IS NULL",
            &[],
        )
        .await?
        .get(0))
}

/// The venue's players as the cloud knows them (every membership, active or not).
pub async fn venue_players(
    client: &deadpool_postgres::Client,
    venue_id: Uuid,
) -> Result<Vec<CloudPlayer>, DownError> {
    let rows = client
        .query(
            "SELECT p.id, p.display_name, m.membership_number, m.active \
             FROM venue_memberships m JOIN players p ON p.id = m.player_id \
             WHERE m.venue_id = $1 ORDER BY p.display_name, p.id",
            &[&venue_id],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| CloudPlayer {
            player_id: r.get(0),
            display_name: r.get(1),
            membership_number: r.get(2),
            active: r.get(3),
        })
        .collect())
}

/// Queues the venue's full player list for each of its nodes and delivers the outbox.
/// Returns how many nodes; an `Err` after the queueing only delays the delivery.
pub async fn publish_players_snapshot(
    pool: &deadpool_postgres::Pool,
    js: &jetstream::Context,
    venue_id: Uuid,
) -> Result<usize, DownError> {
    let client = pool.get().await?;
    let players = venue_players(&client, venue_id).await?;
    let nodes: Vec<Uuid> = client
        .query("SELECT id FROM nodes WHERE venue_id = $1", &[&venue_id])
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    enqueue(&client, &nodes, &DownBody::Players { players }).await?;
    drop(client);
    deliver_pending(pool, js).await?;
    Ok(nodes.len())
}

/// A published release, as the notice carries it.
#[derive(Debug, Clone)]
pub struct ReleaseInfo {
    pub version: String,
    pub channel: String,
    pub bundle_url: String,
    pub notes: String,
}

/// Queues a notice of the release for every node on its channel and delivers the outbox.
/// Returns how many nodes; an `Err` after the queueing only delays the delivery.
pub async fn publish_release_notice(
    pool: &deadpool_postgres::Pool,
    js: &jetstream::Context,
    release: &ReleaseInfo,
) -> Result<usize, DownError> {
    let client = pool.get().await?;
    let nodes: Vec<Uuid> = client
        .query(
            "SELECT id FROM nodes WHERE channel = $1",
            &[&release.channel],
        )
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let body = DownBody::ReleaseNotice {
        version: release.version.clone(),
        channel: release.channel.clone(),
        bundle_url: release.bundle_url.clone(),
        notes: release.notes.clone(),
    };
    enqueue(&client, &nodes, &body).await?;
    drop(client);
    deliver_pending(pool, js).await?;
    Ok(nodes.len())
}
