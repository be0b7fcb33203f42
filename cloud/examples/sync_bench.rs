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
//!
//! Conditions, printed with the figures: PostgreSQL runs durable as in production (`fsync` and
//! `synchronous_commit` on: `Postgres::start_durable`, unlike the tests' cluster), so every
//! batch the ingest commits before it acknowledges costs its fsync. nats-server keeps its
//! defaults (JetStream file store). The
//! node, the cloud and the load run in this process; PostgreSQL and nats-server are its
//! children, so the CPU seconds printed per phase cover the whole pipeline on this machine.

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

/// Ingestion target of issue #7, events per second.
const TARGET_EVENTS_PER_S: f64 = 20_000.0;

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// CPU seconds (user + system) used so far by this process and by its descendants that are
/// still running (PostgreSQL's backends, nats-server), split as (this process, postgres,
/// nats-server, other).
fn cpu_seconds() -> [f64; 4] {
    let tick = 100.0; // USER_HZ on Linux
    let me = std::process::id();
    let mut parent_of = std::collections::HashMap::new();
    let mut info = std::collections::HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces: split after it.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = stat[open + 1..close].to_string();
            let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
            let num = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            // After the name: state(0) ppid(1) ... utime(11) stime(12).
            parent_of.insert(pid, num(1) as u32);
            info.insert(pid, (name, (num(11) + num(12)) / tick));
        }
    }
    let mut out = [0.0; 4];
    for (pid, (name, cpu)) in &info {
        let mut at = *pid;
        let mut ours = false;
        for _ in 0..16 {
            if at == me {
                ours = true;
                break;
            }
            match parent_of.get(&at) {
                Some(&p) if p != 0 => at = p,
                _ => break,
            }
        }
        if !ours {
            continue;
        }
        let slot = if *pid == me {
            0
        } else if name.starts_with("postgres") {
            1
        } else if name.starts_with("nats-server") {
            2
        } else {
            3
        };
        out[slot] += cpu;
    }
    out
}

fn cpu_report(before: [f64; 4], events: u64) -> String {
    let after = cpu_seconds();
    let d: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    let total: f64 = d.iter().sum();
    format!(
        "CPU {:.2} s = {:.0} us/event (node+cloud process {:.2} s, postgres {:.2} s, \
         nats-server {:.2} s)",
        total,
        total * 1e6 / events.max(1) as f64,
        d[0],
        d[1],
        d[2]
    )
}

/// Deliveries of the cloud's ingest consumer so far, and how many were redeliveries (each
/// one a batch stored twice: a cost the figures should show, not hide).
async fn deliveries(js: &async_nats::jetstream::Context) -> String {
    let consumer: Result<async_nats::jetstream::consumer::PullConsumer, _> = js
        .get_consumer_from_stream(pvm_sync::streams::UP_INGEST_DURABLE, pvm_sync::streams::UP)
        .await;
    match consumer {
        Ok(mut c) => match c.info().await {
            Ok(i) => format!(
                "ingest consumer: {} deliveries, {} redelivered",
                i.delivered.consumer_sequence, i.num_redelivered
            ),
            Err(e) => format!("ingest consumer info: {e}"),
        },
        Err(e) => format!("ingest consumer: {e}"),
    }
}

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
    let cloud = common::Cloud::start_durable_with(move |c| {
        c.nats_url = Some(url);
        c.nats_creds = Some(creds);
        c.nats_account_seed_file = Some(account_seed);
        c.public_nats_url = vec![proxy_url];
    })
    .await;
    let settings = cloud
        .pg
        .psql("SELECT current_setting('fsync') || ' ' || current_setting('synchronous_commit')")
        .unwrap();
    println!(
        "conditions: {} build, PostgreSQL fsync/synchronous_commit = {}, load before: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        settings.trim().replace(' ', "/"),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
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
    let js = async_nats::jetstream::new(nats.cloud_client().await);
    let status = admin
        .post(
            "/api/v1/system/cloud/enrol",
            json!({"cloud_url": cloud_url, "code": code}),
        )
        .await;
    let node_id: Uuid = status["node_id"].as_str().unwrap().parse().unwrap();
    let last = node.engine.last_seq();
    let cpu = cpu_seconds();
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
    let rate = last as f64 / ingest.as_secs_f64();
    println!(
        "ingestion node -> NATS -> PostgreSQL: {last} events in {:.2} s = {rate:.0} events/s \
         (target >= {TARGET_EVENTS_PER_S:.0}: {}; all acknowledged by JetStream after {:.2} s)",
        ingest.as_secs_f64(),
        verdict(rate >= TARGET_EVENTS_PER_S),
        published_at.as_secs_f64()
    );
    println!("  {}", cpu_report(cpu, last));
    println!("  {}", deliveries(&js).await);

    proxy.sever();
    add_players(&node.engine, "offline", events).await;
    let last = node.engine.last_seq();
    let behind = node.cloud.status().lag;
    let cpu = cpu_seconds();
    proxy.restore();
    let restored = Instant::now();
    let mut sent_at = None;
    let catch_up = wait_for("catch-up", Duration::from_secs(600), async || {
        let lag = node.cloud.status().lag;
        if sent_at.is_none() && lag == 0 {
            sent_at = Some(restored.elapsed());
        }
        lag == 0 && applied_seq(&pool, node_id).await == last as i64
    })
    .await;
    let sent_at = sent_at.unwrap_or(catch_up);
    let rate = behind as f64 / catch_up.as_secs_f64();
    println!(
        "catch-up after an outage: {behind} events behind, lag 0 and all in PostgreSQL \
         {:.2} s after the link came back ({rate:.0} events/s; target >= \
         {TARGET_EVENTS_PER_S:.0} events/s, i.e. <= {:.1} s: {}; the node's lag was 0 after \
         {:.2} s)",
        catch_up.as_secs_f64(),
        behind as f64 / TARGET_EVENTS_PER_S,
        verdict(rate >= TARGET_EVENTS_PER_S),
        sent_at.as_secs_f64()
    );
    println!("  {}", cpu_report(cpu, behind));
    println!("  {}", deliveries(&js).await);

    node.cloud.stop().await;
    let _ = node.stop().await;
    drop(proxy);
    cloud.stop().await;
}
