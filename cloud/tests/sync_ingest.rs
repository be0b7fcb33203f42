//! Ingestion from PVM_UP into PostgreSQL on a real nats-server and a real PostgreSQL:
//! exactly once, per-node order, projections equal to what pvm-core computes from the log.

mod sync_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use pvm_cloud::sync::ingest::{IngestConfig, Ingestor};
use sync_common::*;
use uuid::Uuid;

fn test_config() -> IngestConfig {
    IngestConfig {
        batch_size: 50,
        gather: Duration::from_millis(20),
        snapshot_every: 25,
        max_ack_pending: 10_000,
        ack_wait: Duration::from_secs(2),
    }
}

async fn start_pg() -> pvm_testpeers::Postgres {
    tokio::task::spawn_blocking(pvm_testpeers::Postgres::start)
        .await
        .unwrap()
        .unwrap()
}

async fn stop_pg(pg: pvm_testpeers::Postgres) {
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

#[tokio::test]
async fn duplicated_and_reordered_events_land_once_and_projections_wait_for_the_gap() {
    let nats = AuthNats::start();
    let pg = start_pg().await;
    let pool = migrated_pool(&pg).await;
    let (venue, nodes) = seed_nodes(&pool, 1).await;
    let mut log = NodeLog::new(nodes[0], venue, 1);
    log.tournament("Monday", 5);
    log.waitlist(4);
    assert!(log.events.len() > 20);

    let client = nats.cloud_client().await;
    let js = jetstream::new(client.clone());
    let ingestor = Ingestor::new(pool.clone(), &js, test_config())
        .await
        .unwrap();
    let task = tokio::spawn(ingestor.run());

    // Seq 1, then 3 before 2 is held back: everything but seq 2 arrives, some twice
    // (without a message id, so JetStream keeps both copies and only PostgreSQL can dedup).
    let events = log.events.clone();
    publish(&js, &events[0], true).await;
    for up in events.iter().skip(2) {
        publish(&js, up, true).await;
        if up.seq % 3 == 0 {
            publish(&js, up, false).await;
        }
    }
    let n = events.len() as i64;
    wait_until(20, "all but seq 2 stored", || async {
        scalar(
            &pool,
            "SELECT count(*) FROM sync_events WHERE node_id = $1",
            log.node_id,
        )
        .await
            == n - 1
    })
    .await;
    assert_eq!(
        applied_seq(&pool, log.node_id).await,
        1,
        "projections stop before the missing seq 2"
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM cloud_tournament_entries e JOIN cloud_tournaments t \
             USING (tournament_id) WHERE t.node_id = $1",
            log.node_id
        )
        .await,
        0,
        "no entry is projected while an earlier event is missing"
    );

    // Seq 2 arrives (twice): the whole run is applied.
    publish(&js, &events[1], true).await;
    publish(&js, &events[1], false).await;
    wait_until(20, "every event applied", || async {
        applied_seq(&pool, log.node_id).await == n
    })
    .await;
    assert_node_matches(&pool, &log).await;
    let history = scalar(
        &pool,
        "SELECT count(*) FROM cloud_waitlist_history WHERE node_id = $1",
        log.node_id,
    )
    .await;
    // 4 joins, 1 call, 1 seating, 1 removal.
    assert_eq!(history, 7);

    task.abort();
    stop_pg(pg).await;
}

#[tokio::test]
async fn a_batch_committed_but_never_acknowledged_is_redelivered_and_stored_once() {
    let nats = AuthNats::start();
    let pg = start_pg().await;
    let pool = migrated_pool(&pg).await;
    let (venue, nodes) = seed_nodes(&pool, 1).await;
    let mut log = NodeLog::new(nodes[0], venue, 2);
    log.tournament("Tuesday", 6);
    let client = nats.cloud_client().await;
    let js = jetstream::new(client.clone());

    let first = Ingestor::new(pool.clone(), &js, test_config())
        .await
        .unwrap();
    for up in &log.events {
        publish(&js, up, true).await;
    }
    // The first instance stores a batch and dies before acknowledging it.
    let batch = first.next_batch().await.unwrap();
    let stored = first.store(batch).await.unwrap();
    assert!(stored.stored_events > 0);
    drop(stored);
    drop(first);
    let after_crash = scalar(
        &pool,
        "SELECT count(*) FROM sync_events WHERE node_id = $1",
        log.node_id,
    )
    .await;
    assert!(after_crash > 0);

    // A new instance on the same durable gets the redelivery (after ack_wait) and the rest.
    let second = Ingestor::new(pool.clone(), &js, test_config())
        .await
        .unwrap();
    let task = tokio::spawn(second.run());
    let n = log.events.len() as i64;
    wait_until(30, "every event applied after the restart", || async {
        applied_seq(&pool, log.node_id).await == n
    })
    .await;
    assert_node_matches(&pool, &log).await;
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream(pvm_sync::streams::UP_INGEST_DURABLE, pvm_sync::streams::UP)
        .await
        .unwrap();
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
    let info = consumer.info().await.unwrap();
    assert!(
        info.delivered.consumer_sequence > n as u64,
        "the unacknowledged batch must have been delivered again"
    );
    task.abort();
    stop_pg(pg).await;
}

#[tokio::test]
async fn two_instances_sharing_the_durable_store_every_nodes_log_once_in_order() {
    let nats = AuthNats::start();
    let pg = start_pg().await;
    let pool = migrated_pool(&pg).await;
    let (venue, nodes) = seed_nodes(&pool, 3).await;
    let mut logs: Vec<NodeLog> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| NodeLog::new(*n, venue, 10 + i as u64))
        .collect();
    for (i, log) in logs.iter_mut().enumerate() {
        for round in 0..3 {
            log.tournament(&format!("Node {i} round {round}"), 8);
            log.waitlist(5);
        }
    }

    let mut tasks = Vec::new();
    let mut counters = Vec::new();
    for _ in 0..2 {
        // Each instance has its own NATS connection and its own database pool.
        let client = nats.cloud_client().await;
        let js = jetstream::new(client);
        let pool = pvm_cloud::db::pool(&pg.url(), 4).unwrap();
        let ingestor = Ingestor::new(pool, &js, test_config()).await.unwrap();
        let stored = Arc::new(AtomicUsize::new(0));
        counters.push(stored.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok(batch) = ingestor.next_batch().await else {
                    continue;
                };
                if let Ok(done) = ingestor.store(batch).await {
                    stored.fetch_add(done.stored_events, Ordering::SeqCst);
                    let _ = done.acknowledge().await;
                }
            }
        }));
    }

    // The nodes publish concurrently, interleaved on the stream.
    let client = nats.cloud_client().await;
    let js = jetstream::new(client);
    let longest = logs.iter().map(|l| l.events.len()).max().unwrap();
    for i in 0..longest {
        for log in &logs {
            if let Some(up) = log.events.get(i) {
                publish(&js, up, true).await;
            }
        }
    }
    for log in &logs {
        let n = log.events.len() as i64;
        wait_until(60, "every node's log applied", || async {
            applied_seq(&pool, log.node_id).await == n
        })
        .await;
        assert_node_matches(&pool, log).await;
    }
    let total: usize = logs.iter().map(|l| l.events.len()).sum();
    let stored: Vec<usize> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert!(
        stored.iter().all(|s| *s > 0),
        "both instances must have taken part: {stored:?}"
    );
    assert!(stored.iter().sum::<usize>() >= total);
    for task in tasks {
        task.abort();
    }
    stop_pg(pg).await;
}

#[tokio::test]
async fn unreadable_and_misattributed_messages_are_dead_lettered_once() {
    let nats = AuthNats::start();
    let pg = start_pg().await;
    let pool = migrated_pool(&pg).await;
    let (venue, nodes) = seed_nodes(&pool, 2).await;
    let client = nats.cloud_client().await;
    let js = jetstream::new(client.clone());
    let ingestor = Ingestor::new(pool.clone(), &js, test_config())
        .await
        .unwrap();
    let task = tokio::spawn(ingestor.run());

    let (a, b) = (nodes[0], nodes[1]);
    // Garbage on A's subject.
    js.publish(pvm_sync::subjects::up_events(a), "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    // B's event on A's subject.
    let mut log_b = NodeLog::new(b, venue, 3);
    log_b.waitlist(1);
    let mut wrong = log_b.events[0].clone();
    let payload = serde_json::to_vec(&wrong).unwrap();
    js.publish(pvm_sync::subjects::up_events(a), payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
    // A node that was never enrolled.
    let stranger = Uuid::now_v7();
    wrong.node_id = stranger;
    publish(&js, &wrong, true).await;
    // And one good event, to see the ingestor kept going.
    let mut log_a = NodeLog::new(a, venue, 4);
    log_a.waitlist(1);
    publish(&js, &log_a.events[0], true).await;

    wait_until(20, "the good event applied", || async {
        applied_seq(&pool, a).await == 1
    })
    .await;
    let client_pg = pool.get().await.unwrap();
    let dead: i64 = client_pg
        .query_one("SELECT count(*) FROM sync_dead_letters", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(dead, 3);
    let stored: i64 = client_pg
        .query_one("SELECT count(*) FROM sync_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
    // Terminated, not redelivered: still three after another ack wait.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let dead: i64 = client_pg
        .query_one("SELECT count(*) FROM sync_dead_letters", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(dead, 3);
    task.abort();
    stop_pg(pg).await;
}

/// Pulls and stores batches by hand until `n` events of `node` are applied.
async fn ingest_until(ingestor: &Ingestor, pool: &deadpool_postgres::Pool, node: Uuid, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while applied_seq(pool, node).await < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not applied in time"
        );
        let batch = ingestor.next_batch().await.unwrap();
        ingestor
            .store(batch)
            .await
            .unwrap()
            .acknowledge()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_instance_whose_cached_state_is_stale_reloads_it_after_another_instance_ingested() {
    let nats = AuthNats::start();
    let pg = start_pg().await;
    let pool = migrated_pool(&pg).await;
    let (venue, nodes) = seed_nodes(&pool, 1).await;
    let mut log = NodeLog::new(nodes[0], venue, 3);
    // One tournament cut in three: its last projection, written by A, is right only if A
    // folded the middle third (B's) too.
    log.tournament("Split", 12);
    let early = log.events.len() / 3;
    let middle = 2 * log.events.len() / 3;
    let client = nats.cloud_client().await;
    let js = jetstream::new(client);
    let a = Ingestor::new(pool.clone(), &js, test_config())
        .await
        .unwrap();
    let b = Ingestor::new(pool.clone(), &js, test_config())
        .await
        .unwrap();

    // A folds the first part and caches the state; B folds the middle part while A is idle,
    // so A's cache is behind the watermark when the rest comes to A.
    for up in &log.events[..early] {
        publish(&js, up, true).await;
    }
    ingest_until(&a, &pool, log.node_id, early as i64).await;
    for up in &log.events[early..middle] {
        publish(&js, up, true).await;
    }
    ingest_until(&b, &pool, log.node_id, middle as i64).await;
    for up in &log.events[middle..] {
        publish(&js, up, true).await;
    }
    let reloads_before = pvm_cloud::sync::ingest::state_reloads_total();
    ingest_until(&a, &pool, log.node_id, log.events.len() as i64).await;
    assert!(
        pvm_cloud::sync::ingest::state_reloads_total() > reloads_before,
        "A must have rebuilt the state rather than fold onto its stale copy"
    );
    // Had A folded onto its stale state, the tournament would lack the middle third.
    assert_node_matches(&pool, &log).await;
    stop_pg(pg).await;
}

#[tokio::test]
async fn a_reused_sequence_is_recorded_as_rejected_and_duplicates_in_a_batch_are_stored_once() {
    let nats = AuthNats::start();
    let pg = start_pg().await;
    let pool = migrated_pool(&pg).await;
    let (venue, nodes) = seed_nodes(&pool, 1).await;
    let mut log = NodeLog::new(nodes[0], venue, 4);
    log.tournament("Thursday", 5);
    let n = log.events.len();
    let client = nats.cloud_client().await;
    let js = jetstream::new(client);
    let ingestor = Ingestor::new(pool.clone(), &js, test_config())
        .await
        .unwrap();

    // The first half is stored. Then one batch carries the second half with every event
    // twice (no message id: JetStream keeps both copies), a redelivered copy of an already
    // stored event, and two impostors: seq 3 (stored) and the seq of an event of this very
    // batch, each under a new id.
    let half = n / 2;
    for up in &log.events[..half] {
        publish(&js, up, true).await;
    }
    ingest_until(&ingestor, &pool, log.node_id, half as i64).await;
    let mut impostor_stored = log.events[2].clone();
    impostor_stored.event.id = pvm_core::ids::EventId(Uuid::now_v7());
    let mut impostor_batch = log.events[half + 1].clone();
    impostor_batch.event.id = pvm_core::ids::EventId(Uuid::now_v7());
    publish(&js, &log.events[0], false).await;
    publish(&js, &impostor_stored, false).await;
    for up in &log.events[half..] {
        publish(&js, up, false).await;
        publish(&js, up, false).await;
    }
    publish(&js, &impostor_batch, false).await;
    let rejected_before = pvm_cloud::sync::ingest::rejected_total();
    // Until every message is stored (the last impostor comes after the whole log).
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream(pvm_sync::streams::UP_INGEST_DURABLE, pvm_sync::streams::UP)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info = consumer.info().await.unwrap();
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ingested in time"
        );
        if let Ok(batch) = tokio::time::timeout(Duration::from_secs(1), ingestor.next_batch()).await
        {
            let stored = ingestor.store(batch.unwrap()).await.unwrap();
            stored.acknowledge().await.unwrap();
        }
    }
    assert_eq!(applied_seq(&pool, log.node_id).await, n as i64);

    // The log is the node's, once each, with the projections from it.
    assert_node_matches(&pool, &log).await;
    let client = pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT seq, event_id, existing_event_id FROM sync_rejected_events \
             WHERE node_id = $1 ORDER BY seq",
            &[&log.node_id],
        )
        .await
        .unwrap();
    let rejected: Vec<(i64, Uuid, Option<Uuid>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (
                3,
                impostor_stored.event.id.0,
                Some(log.events[2].event.id.0)
            ),
            (
                impostor_batch.seq as i64,
                impostor_batch.event.id.0,
                Some(log.events[half + 1].event.id.0)
            ),
        ]
    );
    assert_eq!(
        pvm_cloud::sync::ingest::rejected_total() - rejected_before,
        2
    );
    drop(client);
    stop_pg(pg).await;
}

#[tokio::test]
async fn a_batch_mixing_new_and_stored_events_falls_back_from_copy_and_stores_each_once() {
    let nats = AuthNats::start();
    let pg = start_pg().await;
    let pool = migrated_pool(&pg).await;
    let (venue, nodes) = seed_nodes(&pool, 1).await;
    let mut log = NodeLog::new(nodes[0], venue, 11);
    log.tournament("Copy", 6);
    let n = log.events.len();
    assert!(n > 8, "the log must outgrow the first batch ({n} events)");
    let client = nats.cloud_client().await;
    let js = jetstream::new(client.clone());
    let ingestor = Ingestor::new(
        pool.clone(),
        &js,
        IngestConfig {
            batch_size: 5,
            ..test_config()
        },
    )
    .await
    .unwrap();

    // A batch of new events only: the COPY path.
    for up in &log.events[..5] {
        publish(&js, up, true).await;
    }
    ingest_until(&ingestor, &pool, log.node_id, 5).await;
    assert_eq!(
        ingestor.copy_fallbacks(),
        0,
        "new events must go in by COPY"
    );

    // Event 3 published again without a message id (JetStream cannot drop it), in the
    // middle of new events: the next batch holds both.
    publish(&js, &log.events[5], true).await;
    publish(&js, &log.events[2], false).await;
    for up in &log.events[6..] {
        publish(&js, up, true).await;
    }
    ingest_until(&ingestor, &pool, log.node_id, n as i64).await;
    assert!(
        ingestor.copy_fallbacks() >= 1,
        "the batch holding event 3 again must have been stored by the skipping insert"
    );
    assert_node_matches(&pool, &log).await;
    let rejected = scalar(
        &pool,
        "SELECT count(*) FROM sync_rejected_events WHERE node_id = $1",
        log.node_id,
    )
    .await;
    assert_eq!(rejected, 0, "a re-published event is not a rejected one");
    stop_pg(pg).await;
}
