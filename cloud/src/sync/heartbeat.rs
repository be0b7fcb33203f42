//! Fleet heartbeats: a core NATS queue subscription shared by every cloud instance (each
//! heartbeat handled once) that writes the node's status columns.

use futures::StreamExt as _;
use pvm_sync::Heartbeat;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error("subject is not pvm.up.<node>.heartbeat")]
    Subject,
    #[error("unreadable heartbeat: {0}")]
    Body(#[from] serde_json::Error),
    #[error("heartbeat names node {body} on node {subject}'s subject")]
    WrongNode { subject: Uuid, body: Uuid },
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("subscribe: {0}")]
    Subscribe(String),
}

/// Subscription subject covering every node's heartbeat.
pub const HEARTBEAT_SUBJECTS: &str = "pvm.up.*.heartbeat";

fn subject_node(subject: &str) -> Option<Uuid> {
    let id = subject
        .strip_prefix("pvm.up.")?
        .strip_suffix(".heartbeat")?;
    Uuid::parse_str(id).ok()
}

/// Checks a heartbeat against the subject it came on: NATS permissions make the subject
/// the node's authenticated identity, so a body naming another node is refused.
pub fn check(subject: &str, payload: &[u8]) -> Result<Heartbeat, HeartbeatError> {
    let node = subject_node(subject).ok_or(HeartbeatError::Subject)?;
    let beat: Heartbeat = serde_json::from_slice(payload)?;
    if beat.node_id != node {
        return Err(HeartbeatError::WrongNode {
            subject: node,
            body: beat.node_id,
        });
    }
    Ok(beat)
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Writes one heartbeat into the node's row; returns whether the node is known.
pub async fn record(
    pool: &deadpool_postgres::Pool,
    beat: &Heartbeat,
) -> Result<bool, HeartbeatError> {
    let client = pool.get().await?;
    let update = beat.update.as_ref();
    // A node that reports no update state (older, or not an A/B appliance) clears it, so
    // the fleet never shows a stale one.
    let progress = update
        .and_then(|u| u.progress_pct)
        .map(|p| i16::from(p.min(100)));
    let updated = client
        .execute(
            "UPDATE nodes SET last_heartbeat_at = now(), version = $2, uptime_s = $3, \
               temperature_c = $4, disk_free_bytes = $5, disk_total_bytes = $6, \
               last_synced_seq = $7, last_event_seq = $8, clock_offset_ms = $9, \
               update_state = $10, update_progress_pct = $11, update_target_version = $12, \
               update_error = $13 \
             WHERE id = $1",
            &[
                &beat.node_id,
                &beat.version,
                &clamp(beat.uptime_s),
                &beat.temperature_c,
                &clamp(beat.disk_free_bytes),
                &clamp(beat.disk_total_bytes),
                &clamp(beat.last_synced_seq),
                &clamp(beat.last_event_seq),
                &beat.clock_offset_ms,
                &update.map(|u| u.state.as_str()),
                &progress,
                &update.and_then(|u| u.target_version.as_deref()),
                &update.and_then(|u| u.last_error.as_deref()),
            ],
        )
        .await?;
    Ok(updated == 1)
}

/// Subscribes in the shared queue group and records heartbeats until the task is dropped.
pub async fn run(
    client: async_nats::Client,
    pool: deadpool_postgres::Pool,
) -> Result<(), HeartbeatError> {
    let mut subscription = client
        .queue_subscribe(
            HEARTBEAT_SUBJECTS,
            pvm_sync::HEARTBEAT_QUEUE_GROUP.to_string(),
        )
        .await
        .map_err(|e| HeartbeatError::Subscribe(e.to_string()))?;
    while let Some(message) = subscription.next().await {
        match check(&message.subject, &message.payload) {
            Ok(beat) => match record(&pool, &beat).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(node = %beat.node_id, "heartbeat from an unknown node")
                }
                Err(e) => tracing::warn!(error = %e, "heartbeat not recorded"),
            },
            Err(e) => tracing::warn!(subject = %message.subject, error = %e, "heartbeat refused"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(node: Uuid) -> Vec<u8> {
        serde_json::to_vec(&Heartbeat {
            node_id: node,
            version: "1".into(),
            uptime_s: 1,
            temperature_c: None,
            disk_free_bytes: 1,
            disk_total_bytes: 2,
            last_synced_seq: 0,
            last_event_seq: 0,
            clock_offset_ms: None,
            sent_at_ms: 0,
            update: None,
        })
        .unwrap()
    }

    #[test]
    fn a_heartbeat_naming_another_node_is_refused() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert!(check(&pvm_sync::subjects::up_heartbeat(a), &beat(a)).is_ok());
        assert!(matches!(
            check(&pvm_sync::subjects::up_heartbeat(a), &beat(b)),
            Err(HeartbeatError::WrongNode { .. })
        ));
        assert!(matches!(
            check(&pvm_sync::subjects::up_events(a), &beat(a)),
            Err(HeartbeatError::Subject)
        ));
    }
}
