//! Measures the bridge against stand-in Chromecasts on loopback and prints:
//! - the time from an assignment to its URL arriving at the device (first cast, which connects
//!   and launches; and a change of page, which with DashCast means a relaunch);
//! - memory per casting device (growth of this process's resident set over N casting devices).
//!
//! The stand-in devices answer at once; a real Chromecast adds the seconds it takes to download
//! and start the receiver, which no code of ours can shorten.
//!
//! Run: `npm ci --prefix crates/pvm-cast/tests/fake-chromecast` once, then
//! `cargo run --release -p pvm-cast --example cast_bench [-- <devices>]`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{fast_timings, manual_config, FakeDevices};
use pvm_cast::{Bridge, DeviceState, Wanted, WantedMap};
use serde_json::json;

const ROUNDS: usize = 20;

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// When the device received the message (its own clock, the same machine's), in ms after
/// `started_ms`: the test's reading of the device's reports adds nothing to the figure.
fn arrived_after(report: &serde_json::Value, started_ms: u64) -> Duration {
    let at = report["t"].as_u64().unwrap_or(started_ms);
    Duration::from_millis(at.saturating_sub(started_ms))
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    println!(
        "{name}: n={} median={:.0} ms p90={:.0} ms max={:.0} ms mean={:.1} ms (1 ms resolution)",
        samples.len(),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
        ms(samples[samples.len() - 1]),
        mean
    );
}

fn one(id: &str, url: &str) -> WantedMap {
    WantedMap::from([(
        id.to_owned(),
        Wanted {
            url: url.to_owned(),
            always: false,
        },
    )])
}

#[tokio::main]
async fn main() {
    let devices: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let mut fake = FakeDevices::spawn().await;

    // Latency: first cast (connect, launch, URL) then page changes, on one device.
    let mut first = Vec::new();
    let mut change = Vec::new();
    for round in 0..ROUNDS {
        let id = format!("lat{round}");
        let addr = fake.start(&id, json!({"readyDelayMs": 0})).await;
        let mut timings = fast_timings();
        // A real heartbeat: the measurement must not depend on polling.
        timings.heartbeat = Duration::from_secs(5);
        timings.silent_after = Duration::from_secs(12);
        let mut config = manual_config(&[(id.as_str(), addr)]);
        config.timings = timings;
        let bridge = Bridge::start(config).unwrap();
        let mark = fake.mark();
        let started = now_ms();
        bridge.set_wanted(one(&id, "http://192.0.2.10:8080/display/first"));
        let load = fake.wait_for_url(mark, &id, Duration::from_secs(10)).await;
        first.push(arrived_after(&load, started));

        let mark = fake.mark();
        let started = now_ms();
        bridge.set_wanted(one(&id, "http://192.0.2.10:8080/display/second"));
        let load = fake.wait_for_url(mark, &id, Duration::from_secs(10)).await;
        change.push(arrived_after(&load, started));
        bridge.stop().await;
        fake.act("stop", &id).await;
    }
    summary(
        "assignment -> URL at device, first cast (connect+TLS+launch)",
        first,
    );
    summary(
        "assignment -> URL at device, page change (DashCast relaunch)",
        change,
    );

    // Memory: N devices casting at once.
    let mut addrs = Vec::new();
    for i in 0..devices {
        let id = format!("mem{i}");
        let addr = fake.start(&id, json!({"readyDelayMs": 0})).await;
        addrs.push((id, addr));
    }
    let refs: Vec<(&str, _)> = addrs.iter().map(|(id, a)| (id.as_str(), *a)).collect();
    let mut config = manual_config(&refs);
    config.timings.heartbeat = Duration::from_secs(5);
    config.timings.silent_after = Duration::from_secs(12);
    // Settle the allocator and runtime before the baseline.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    let bridge = Bridge::start(config).unwrap();
    let started = Instant::now();
    bridge.set_wanted(
        addrs
            .iter()
            .map(|(id, _)| {
                (
                    id.clone(),
                    Wanted {
                        url: format!("http://192.0.2.10:8080/display/{id}"),
                        always: false,
                    },
                )
            })
            .collect(),
    );
    let mut statuses = bridge.statuses();
    let all_casting = statuses.wait_for(|s| {
        s.len() == devices
            && s.values()
                .all(|d| matches!(d.state, DeviceState::Casting { .. }))
    });
    if tokio::time::timeout(Duration::from_secs(60), all_casting)
        .await
        .is_err()
    {
        eprintln!("not every device was casting within 60 s");
        std::process::exit(1);
    }
    println!(
        "{devices} devices casting {:.0} ms after the assignment",
        started.elapsed().as_secs_f64() * 1000.0
    );
    drop(statuses);
    // A couple of heartbeats' worth of steady state.
    tokio::time::sleep(Duration::from_secs(1)).await;
    match (before, rss_kib()) {
        (Some(before), Some(after)) => println!(
            "memory: resident set {before} KiB -> {after} KiB, {:.1} KiB per casting device",
            after.saturating_sub(before) as f64 / devices as f64
        ),
        _ => println!("memory: /proc/self/status unavailable"),
    }
    bridge.stop().await;
    fake.shutdown().await;
}
