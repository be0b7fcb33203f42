//! Sync throughput on this machine, with real peers on loopback: PostgreSQL, nats-server
//! with the cloud's decentralized auth, one pvm-cloud instance and a real pvm-node
//! in-process (its link to NATS through a TCP relay that can be cut).
//!
//! 1. Ingestion: a node whose log already holds N events (default 100,000) is paired; the
//!    clock runs from the pairing reply until PostgreSQL has applied them all.
//! 2. Catch-up: the node's link is cut, N more events are written, the link is restored;
//!    the clock runs from the restore until the node's lag is 0 and PostgreSQL has them all.
//!
//! `scripts/bench-sync.sh` runs it in release. `PVM_BENCH_EVENTS` changes N.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/node_common/mod.rs"]
mod node_common;
#[path = "../tests/sync_common/mod.rs"]
mod sync_common;

use node_common::*;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use sync_common::*;
use uuid::Uuid;

async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done().await {
        if start.elapsed() > limit {
            panic!("{what}: not done after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events: usize = std::env::var("PVM_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);

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
    let cloud = common::Cloud::start_with(move |c| {
        c.nats_url = Some(url);
        c.nats_creds = Some(creds);
        c.nats_account_seed_file = Some(account_seed);
        c.public_nats_url = vec![proxy_url];
    })
    .await;
    let cloud_url = format!("http://{}", cloud.app.addr);
    let code = enrolment_code(&cloud.api).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = node_config(dir.path());
    // After the outage the node retries at least once a second (the default backs off to
    // 30 s, which would measure the backoff rather than the catch-up).
    config.cloud.max_backoff_secs = 1;
    let node = pvm_node::node::start_with_auth(config, cheap_auth())
        .await
        .unwrap();
    let admin = NodeApi::first_admin(&node).await;

    let start = Instant::now();
    add_players(&node.engine, "prefill", events).await;
    let fill = start.elapsed();
    println!(
        "node log pre-filled: {events} events in {:.2} s ({:.0} events/s through the engine)",
        fill.as_secs_f64(),
        events as f64 / fill.as_secs_f64()
    );

    let pool = pvm_cloud::db::pool(&cloud.pg.url(), 2).unwrap();
    let status = admin
        .post(
            "/api/v1/system/cloud/enrol",
            json!({"cloud_url": cloud_url, "code": code}),
        )
        .await;
    let node_id: Uuid = status["node_id"].as_str().unwrap().parse().unwrap();
    let last = node.engine.last_seq();
    let published = Instant::now();
    let mut published_at = None;
    let ingest = wait_for("ingestion", Duration::from_secs(600), async || {
        if published_at.is_none() && node.cloud.status().cursor == last {
            published_at = Some(published.elapsed());
        }
        applied_seq(&pool, node_id).await == last as i64
    })
    .await;
    let published_at = published_at.unwrap_or(ingest);
    println!(
        "ingestion node -> NATS -> PostgreSQL: {last} events in {:.2} s = {:.0} events/s \
         (all acknowledged by JetStream after {:.2} s)",
        ingest.as_secs_f64(),
        last as f64 / ingest.as_secs_f64(),
        published_at.as_secs_f64()
    );

    proxy.sever();
    add_players(&node.engine, "offline", events).await;
    let last = node.engine.last_seq();
    let behind = node.cloud.status().lag;
    proxy.restore();
    let catch_up = wait_for("catch-up", Duration::from_secs(600), async || {
        node.cloud.status().lag == 0 && applied_seq(&pool, node_id).await == last as i64
    })
    .await;
    println!(
        "catch-up after an outage: {behind} events behind, lag 0 and all in PostgreSQL \
         {:.2} s after the link came back ({:.0} events/s)",
        catch_up.as_secs_f64(),
        behind as f64 / catch_up.as_secs_f64()
    );

    node.cloud.stop().await;
    let _ = node.stop().await;
    drop(proxy);
    cloud.stop().await;
}
