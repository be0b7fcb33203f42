//! The down-channel: messages from the cloud to one node, published to its own subject and
//! kept in PVM_DOWN until the node's durable consumer acknowledges them. Each publish waits
//! for JetStream's ack, so a caller that got `Ok` knows the message is stored.

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
    let payload = serde_json::to_vec(&message)?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(pvm_sync::MSG_ID_HEADER, message.id.to_string().as_str());
    js.publish_with_headers(pvm_sync::subjects::down(node_id), headers, payload.into())
        .await
        .map_err(|e| DownError::Publish(e.to_string()))?
        .await
        .map_err(|e| DownError::Publish(e.to_string()))?;
    Ok(message)
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

/// Sends the venue's full player list to each of its nodes. Returns how many nodes.
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
    for node in &nodes {
        publish(
            js,
            *node,
            DownBody::Players {
                players: players.clone(),
            },
        )
        .await?;
    }
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

/// Tells every node on the release's channel about it. Returns how many nodes.
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
    for node in &nodes {
        publish(
            js,
            *node,
            DownBody::ReleaseNotice {
                version: release.version.clone(),
                channel: release.channel.clone(),
                bundle_url: release.bundle_url.clone(),
                notes: release.notes.clone(),
            },
        )
        .await?;
    }
    Ok(nodes.len())
}
