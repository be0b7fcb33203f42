//! The pipelined ingest loop (pull, store and acknowledge running concurrently) on a real
//! nats-server and a real PostgreSQL: a batch whose commit fails is not acknowledged, the
//! projections stop before it, and once PostgreSQL accepts it again the failed batch is
//! redelivered and every event lands exactly once, in order.

mod sync_common;

use std::time::Duration;

use async_nats::jetstream;
use pvm_cloud::sync::ingest::{IngestConfig, Ingestor};
use sync_common::*;

#[tokio::test]
async fn a_batch_whose_commit_fails_is_not_acknowledged_and_is_applied_once_after_redelivery() {
    let nats = AuthNats::start();
    let pg = tokio::task::spawn_blocking(pvm_testpeers::Postgres::start)
        .await
        .unwrap()
        .unwrap();
    let pool = migrated_pool(&pg).await;
    let (venue, nodes) = seed_nodes(&pool, 1).await;
    let mut log = NodeLog::new(nodes[0], venue, 7);
    log.tournament("Pipeline", 8);
    log.waitlist(5);
    let n = log.events.len() as i64;
    assert!(n >= 30, "the log must span several batches ({n} events)");
    let poisoned = n / 2;

    // PostgreSQL refuses the event at `poisoned` (a real failure of the insert, not a fake):
    // every batch holding it fails to commit until the constraint goes.
    pg.psql(&format!(
        "ALTER TABLE sync_events ADD CONSTRAINT pipeline_poison CHECK (seq <> {poisoned}) \
         NOT VALID"
    ))
    .unwrap();

    let client = nats.cloud_client().await;
    let js = jetstream::new(client.clone());
    let config = IngestConfig {
        batch_size: 10,
        gather: Duration::from_millis(5),
        snapshot_every: 25,
        max_ack_pending: 10_000,
        ack_wait: Duration::from_secs(2),
    };
    let ingestor = Ingestor::new(pool.clone(), &js, config).await.unwrap();
    let task = tokio::spawn(ingestor.run());
    for up in &log.events {
        publish(&js, up, true).await;
    }

    // The batches before the refused event's batch are applied; the projections then stop
    // short of it (its whole batch is refused, and redelivered, again and again).
    wait_until(30, "the first batches applied", || async {
        applied_seq(&pool, log.node_id).await > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let applied = applied_seq(&pool, log.node_id).await;
    assert!(
        applied < poisoned,
        "applied {applied} past the refused event {poisoned}"
    );
    let refused_stored = scalar(
        &pool,
        &format!("SELECT count(*) FROM sync_events WHERE node_id = $1 AND seq = {poisoned}"),
        log.node_id,
    )
    .await;
    assert_eq!(refused_stored, 0);
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream(pvm_sync::streams::UP_INGEST_DURABLE, pvm_sync::streams::UP)
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert!(
        info.num_ack_pending > 0 || info.num_pending > 0,
        "the refused event must still be unacknowledged: {info:?}"
    );

    pg.psql("ALTER TABLE sync_events DROP CONSTRAINT pipeline_poison")
        .unwrap();
    wait_until(30, "every event applied after the redelivery", || async {
        applied_seq(&pool, log.node_id).await == n
    })
    .await;
    assert_node_matches(&pool, &log).await;
    wait_until(20, "every delivery acknowledged", || {
        let mut consumer = consumer.clone();
        async move {
            consumer
                .info()
                .await
                .map(|i| i.num_ack_pending == 0 && i.num_pending == 0)
                .unwrap_or(false)
        }
    })
    .await;
    task.abort();
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
