//! Partition test: a real pvm-node syncing 10,000+ events to the cloud through a TCP proxy
//! the test controls, while the link is cut at random (seeded) moments many times, the
//! cloud's instance (and with it the ingest consumer) is replaced mid-batch and the node is
//! restarted mid-sync on the same data dir. At the end PostgreSQL holds exactly the node's
//! events: the same ids and seqs, each once, in the order of the node's SQLite log.
//!
//! Longer soak: `PVM_PARTITION_EVENTS=100000 PVM_PARTITION_CUTS=40` (and
//! `PVM_PARTITION_SEED` to vary the moments).

mod common;
mod node_common;
mod sync_common;

use node_common::*;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use sync_common::*;
use uuid::Uuid;

/// A small seeded generator (SplitMix64): the cut moments are reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn partition_node_config(dir: &std::path::Path) -> pvm_node::config::NodeConfig {
    let mut c = node_config(dir);
    // Reconnect quickly after each cut (the test's time is the point, not the backoff).
    c.cloud.max_backoff_secs = 1;
    c.cloud.ack_timeout_ms = 2_000;
    c
}

/// The node's whole log as (id, seq), in the log's own order.
fn node_log(dir: &std::path::Path) -> Vec<(Uuid, i64)> {
    let store = pvm_store::Store::open_reader(&dir.join(pvm_node::node::EVENT_LOG_FILE)).unwrap();
    store
        .events_since(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.seq as i64))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_and_restarts_during_ten_thousand_events_leave_postgresql_with_exactly_the_nodes_log()
{
    let total = env_or("PVM_PARTITION_EVENTS", 10_000).max(1) as usize;
    let cuts = env_or("PVM_PARTITION_CUTS", 7).max(1) as usize;
    let seed = env_or("PVM_PARTITION_SEED", 20_261_127);
    let mut rng = Rng(seed);
    let started = Instant::now();

    let nats = AuthNats::start();
    let nats_addr: SocketAddr = nats
        .server
        .url()
        .trim_start_matches("nats://")
        .parse()
        .unwrap();
    let proxy = Proxy::start(nats_addr).await;
    let url = nats.server.url();
    let (creds, account_seed) = (nats.creds_file(), nats.account_seed_file());
    let proxy_url = proxy.url();
    // The cloud talks to nats-server directly; only the node goes through the proxy.
    let common::Cloud { pg, app, api } = common::Cloud::start_with(move |c| {
        c.nats_url = Some(url);
        c.nats_creds = Some(creds);
        c.nats_account_seed_file = Some(account_seed);
        c.public_nats_url = vec![proxy_url];
    })
    .await;
    let cloud_config = (*app.state.config).clone();
    let cloud_url = format!("http://{}", app.addr);
    let code = enrolment_code(&api).await;
    let mut app = Some(app);

    let dir = tempfile::tempdir().unwrap();
    let mut node = pvm_node::node::start_with_auth(partition_node_config(dir.path()), cheap_auth())
        .await
        .unwrap();
    let admin = NodeApi::first_admin(&node).await;
    let status = admin
        .post(
            "/api/v1/system/cloud/enrol",
            json!({"cloud_url": cloud_url, "code": code}),
        )
        .await;
    let node_id: Uuid = status["node_id"].as_str().unwrap().parse().unwrap();

    // The schedule: the events come in batches; each cut starts at a random batch in its own
    // share of the run and lasts 1..=half that share (the node keeps writing meanwhile); the
    // cloud is replaced and the node restarted at random batches of their own.
    let batches = (cuts * 3).max(total.div_ceil(250));
    let batch = total.div_ceil(batches);
    let share = batches / cuts;
    let mut cut_starts = Vec::new();
    for i in 0..cuts {
        let start = i * share + rng.below((share / 2).max(1) as u64) as usize;
        let length = 1 + rng.below((share / 2).max(1) as u64) as usize;
        cut_starts.push((start, length));
    }
    let cloud_restart_at = rng.below(batches as u64) as usize;
    let node_restart_at = rng.below(batches as u64) as usize;
    eprintln!(
        "seed {seed}: {total} events in {batches} batches of {batch}; cuts (batch, length) \
         {cut_starts:?}; cloud replaced at batch {cloud_restart_at}, node restarted at \
         batch {node_restart_at}"
    );

    let pool = pvm_cloud::db::pool(&pg.url(), 2).unwrap();
    let mut restore_at = None;
    let mut resumed_from = 0;
    let mut severed = 0;
    let mut produced = 0;
    for b in 0..batches {
        let n = batch.min(total - produced.min(total));
        let restore_now = restore_at == Some(b);
        let cut = cut_starts
            .iter()
            .find(|(start, _)| *start == b)
            .map(|&(_, length)| length);
        // Each action lands at a random moment while the batch is being written and synced.
        let delay = Duration::from_millis(rng.below(150));
        let tag = format!("batch {b}");
        tokio::join!(add_players(&node.engine, &tag, n), async {
            tokio::time::sleep(delay).await;
            if restore_now {
                proxy.restore();
                restore_at = None;
                resumed_from = node.cloud.status().cursor;
            }
            if let Some(length) = cut {
                if restore_at.is_none() {
                    // Cut only once the sync has moved again since the last cut, so
                    // every cut interrupts a running sync, not a reconnecting one.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while node.cloud.status().cursor <= resumed_from && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    tokio::time::sleep(delay / 3).await;
                    proxy.sever();
                    severed += 1;
                    restore_at = Some(b + length);
                    let s = node.cloud.status();
                    eprintln!("cut at cursor {} of {}", s.cursor, s.last_event_seq);
                }
            }
        },);
        produced += n;
        if b == cloud_restart_at {
            let running = app.take().unwrap();
            let delay = Duration::from_millis(rng.below(150));
            tokio::join!(add_players(&node.engine, "cloud stopping", batch), async {
                tokio::time::sleep(delay).await;
                let before = applied_seq(&pool, node_id).await;
                running.stop().await;
                eprintln!(
                    "cloud stopped with {before} of {} applied",
                    node.engine.last_seq()
                );
            },);
            // Events keep arriving in the stream while no instance consumes them.
            add_players(&node.engine, "no cloud", batch).await;
            produced += 2 * batch;
            app = Some(
                pvm_cloud::start(cloud_config.clone(), common::test_keys())
                    .await
                    .unwrap(),
            );
        }
        if b == node_restart_at {
            // A backlog built while cut off, then the node stopped part-way through it.
            let was_up = restore_at.is_none();
            proxy.sever();
            add_players(&node.engine, "before restart", batch).await;
            produced += batch;
            if was_up {
                proxy.restore();
            }
            let cursor = node.cloud.status().cursor;
            let target = cursor + rng.below(node.engine.last_seq() - cursor);
            let deadline = Instant::now() + Duration::from_secs(3);
            while was_up && node.cloud.status().cursor < target && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let s = node.cloud.status();
            eprintln!(
                "node restarted with cursor {} of {} (lag {})",
                s.cursor, s.last_event_seq, s.lag
            );
            node.cloud.stop().await;
            node.stop().await.unwrap();
            node = pvm_node::node::start_with_auth(partition_node_config(dir.path()), cheap_auth())
                .await
                .unwrap();
        }
    }
    proxy.restore();
    assert_eq!(severed, cuts, "every scheduled cut happened");
    eprintln!(
        "{} events written, {severed} cuts, in {:?}",
        node.engine.last_seq(),
        started.elapsed()
    );

    let last = node.engine.last_seq();
    assert!(last as usize >= total);
    wait_until(120, "the node's log ingested and its lag at 0", || async {
        applied_seq(&pool, node_id).await == last as i64 && node.cloud.status().lag == 0
    })
    .await;
    eprintln!("caught up after {:?}", started.elapsed());

    let log = node_log(dir.path());
    assert_eq!(log.len() as u64, last);
    let client = pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT id, seq FROM sync_events WHERE node_id = $1 ORDER BY seq",
            &[&node_id],
        )
        .await
        .unwrap();
    let stored: Vec<(Uuid, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        stored.len(),
        log.len(),
        "PostgreSQL holds a different number of events"
    );
    assert!(
        stored == log,
        "PostgreSQL's events differ from the node's log"
    );
    let total_rows: i64 = client
        .query_one("SELECT count(*) FROM sync_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        total_rows as usize,
        log.len(),
        "events stored more than once"
    );

    node.cloud.stop().await;
    node.stop().await.unwrap();
    if let Some(app) = app {
        app.stop().await;
    }
    drop(proxy);
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
