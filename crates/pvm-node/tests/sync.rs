//! The node's side of cloud sync against a real nats-server (pvm-testpeers): the test plays
//! the cloud's part only as far as NATS goes — it creates the contract's streams and the
//! node's down consumer, writes the pairing file the enrolment would have written, reads
//! the stream and publishes down-messages. The server runs without authentication here
//! (the cloud's JWT auth is exercised by the end-to-end test); the node still connects with
//! a JWT and signs the nonce exactly as it does against the cloud.
//!
//! Only the reboot itself is faked: a recording `Rebooter` (the test says so where used).

mod common;

use async_nats::jetstream::{self, consumer, stream};
use common::{test_auth, test_config, Api, TestNode};
use futures::StreamExt;
use pvm_core::players::PlayerDetails;
use pvm_core::Command;
use pvm_node::node::{self, NodeHooks};
use pvm_node::sync::pairing::{self, Pairing};
use pvm_node::sync::Rebooter;
use pvm_store::Store;
use pvm_sync::{streams, subjects, CloudPlayer, DownBody, DownMessage, EnrolResponse, UpEvent};
use pvm_testpeers::NatsServer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The cloud's side of NATS for one node: the contract's streams and the node's consumer.
async fn cloud_streams(nats: &NatsServer, node_id: Uuid) -> jetstream::Context {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    js.get_or_create_stream(stream::Config {
        name: streams::UP.into(),
        subjects: vec![streams::UP_SUBJECTS.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.get_or_create_stream(stream::Config {
        name: streams::DOWN.into(),
        subjects: vec![streams::DOWN_SUBJECTS.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.get_stream(streams::DOWN)
        .await
        .unwrap()
        .get_or_create_consumer(
            &streams::down_durable(node_id),
            consumer::pull::Config {
                durable_name: Some(streams::down_durable(node_id)),
                filter_subject: subjects::down(node_id),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    js
}

/// A pairing as the cloud's enrolment would return it, pointing at `nats_url`.
fn pairing_for(nats_url: &str, node_id: Uuid) -> Pairing {
    let key = nkeys::KeyPair::new_user();
    Pairing {
        cloud_url: "http://127.0.0.1:9".into(),
        paired_at_ms: 1,
        enrolment: EnrolResponse {
            node_id,
            venue_id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            venue_name: "Test room".into(),
            nats_urls: vec![nats_url.to_string()],
            nats_user_jwt: "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig".into(),
            nats_user_seed: key.seed().unwrap(),
            inbox_prefix: subjects::inbox_prefix(node_id),
        },
    }
}

fn sync_config(dir: &std::path::Path) -> pvm_node::config::NodeConfig {
    let mut c = test_config(dir);
    c.cloud.heartbeat_interval_secs = 1;
    c.cloud.batch_size = 200;
    c.cloud.ack_timeout_ms = 1500;
    c.cloud.max_backoff_secs = 1;
    c
}

/// Records reboot requests instead of rebooting the machine running the tests.
#[derive(Default)]
struct RecordingRebooter(AtomicUsize);

impl Rebooter for RecordingRebooter {
    fn reboot(&self) -> Result<(), String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn start(dir: tempfile::TempDir, rebooter: Arc<RecordingRebooter>) -> TestNode {
    let config = sync_config(dir.path());
    let running = node::start_with_hooks(config, test_auth(), NodeHooks { rebooter })
        .await
        .expect("node starts");
    let base = format!("http://{}", running.addr);
    TestNode {
        node: Some(running),
        dir,
        base,
    }
}

async fn restart(node: &mut TestNode, rebooter: Arc<RecordingRebooter>) {
    node.stop().await;
    let config = sync_config(node.dir.path());
    let running = node::start_with_hooks(config, test_auth(), NodeHooks { rebooter })
        .await
        .expect("node restarts");
    node.base = format!("http://{}", running.addr);
    node.node = Some(running);
}

/// Records `n` events (one player each), many commands at a time so they share commits.
async fn add_events(node: &TestNode, n: usize) {
    let engine = node.running().engine.clone();
    let mut done = 0;
    while done < n {
        let chunk = (n - done).min(256);
        let futures = (0..chunk).map(|i| {
            let engine = engine.clone();
            async move {
                engine
                    .execute(Command::AddPlayer {
                        details: PlayerDetails {
                            name: format!("Player {}", done + i),
                            ..Default::default()
                        },
                    })
                    .await
                    .unwrap();
            }
        });
        futures::future::join_all(futures).await;
        done += chunk;
    }
}

fn cloud_status(node: &TestNode) -> pvm_node::sync::CloudStatus {
    node.running().cloud.status()
}

async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_caught_up(node: &TestNode, limit: Duration) {
    let last = node.running().engine.last_seq();
    wait_until(&format!("the cursor reaches {last}"), limit, || {
        cloud_status(node).cursor == last
    })
    .await;
}

/// Every message in the up stream, in stream order, checked for the contract's headers.
/// (Read by stream sequence: the stream holds only this test's node.)
async fn stream_contents(js: &jetstream::Context, node_id: Uuid) -> Vec<UpEvent> {
    let stream = js.get_stream(streams::UP).await.unwrap();
    let state = stream.get_info().await.unwrap().state;
    let mut out = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        if state.messages == 0 {
            break;
        }
        let m = stream.get_raw_message(sequence).await.unwrap();
        assert_eq!(m.subject.as_str(), subjects::up_events(node_id));
        let event: UpEvent = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            m.headers.get(pvm_sync::MSG_ID_HEADER).unwrap().as_str(),
            event.event.id.0.to_string()
        );
        assert_eq!(
            m.headers.get(pvm_sync::SEQ_HEADER).unwrap().as_str(),
            event.seq.to_string()
        );
        out.push(event);
    }
    out
}

/// The node's log as (seq, id), read from its SQLite file.
fn log_of(node: &TestNode) -> Vec<(u64, Uuid)> {
    let store = Store::open_reader(&node.dir.path().join("events.db")).unwrap();
    store
        .events_since(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.id))
        .collect()
}

/// The stream holds exactly the node's log: every event once, in sequence order.
async fn assert_stream_is_log(js: &jetstream::Context, node: &TestNode, node_id: Uuid) {
    let log = log_of(node);
    let stream: Vec<(u64, Uuid)> = stream_contents(js, node_id)
        .await
        .into_iter()
        .map(|e| (e.seq, e.event.id.0))
        .collect();
    assert_eq!(stream.len(), log.len(), "each event once");
    assert_eq!(stream, log, "same events, same order");
}

async fn paired_node(nats: &NatsServer) -> (TestNode, Uuid, Arc<RecordingRebooter>) {
    let dir = tempfile::tempdir().unwrap();
    let node_id = Uuid::now_v7();
    pairing::save(dir.path(), &pairing_for(&nats.url(), node_id)).unwrap();
    let rebooter = Arc::new(RecordingRebooter::default());
    (start(dir, rebooter.clone()).await, node_id, rebooter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_in_order_exactly_once_with_id_and_seq_headers() {
    let nats = NatsServer::start().unwrap();
    let node_id = Uuid::now_v7();
    let js = cloud_streams(&nats, node_id).await;
    let dir = tempfile::tempdir().unwrap();
    pairing::save(dir.path(), &pairing_for(&nats.url(), node_id)).unwrap();
    let mut node = start(dir, Arc::default()).await;
    add_events(&node, 1200).await;
    wait_caught_up(&node, Duration::from_secs(30)).await;
    // Events recorded while idle wake the publisher too.
    add_events(&node, 5).await;
    wait_caught_up(&node, Duration::from_secs(10)).await;
    assert_stream_is_log(&js, &node, node_id).await;
    let status = cloud_status(&node);
    assert!(status.connected && status.lag == 0 && status.last_success_ms.is_some());

    // The cursor is durable: a restarted node publishes nothing again.
    node.stop().await;
    let store = Store::open_reader(&node.dir.path().join("events.db")).unwrap();
    assert_eq!(
        store
            .sync_cursor(&pvm_node::sync::cursor_name(node_id))
            .unwrap(),
        1205
    );
    restart(&mut node, Arc::default()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cloud_status(&node).cursor, 1205);
    assert_stream_is_log(&js, &node, node_id).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_killed_and_restarted_mid_stream_resumes_from_the_cursor_without_duplicates() {
    let mut nats = NatsServer::start().unwrap();
    let (mut node, node_id, _) = paired_node(&nats).await;
    cloud_streams(&nats, node_id).await;
    for round in 0..3 {
        add_events(&node, 1500).await;
        // Cut the server while the publisher is (most likely) mid-batch.
        tokio::time::sleep(Duration::from_millis(20 + 40 * round)).await;
        nats.kill();
        add_events(&node, 300).await;
        wait_until(
            "the node notices the outage",
            Duration::from_secs(10),
            || !cloud_status(&node).connected,
        )
        .await;
        assert!(cloud_status(&node).lag > 0, "events wait for the cloud");
        nats.restart().unwrap();
    }
    wait_caught_up(&node, Duration::from_secs(60)).await;
    let status = cloud_status(&node);
    assert!(status.errors_total > 0 && status.last_error.is_some());
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    assert_stream_is_log(&js, &node, node_id).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_mid_sync_resumes_where_its_cursor_was() {
    let nats = NatsServer::start().unwrap();
    let node_id = Uuid::now_v7();
    let js = cloud_streams(&nats, node_id).await;
    // Recorded while unpaired: nothing leaves the node.
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir, Arc::default()).await;
    add_events(&node, 6000).await;
    node.stop().await;
    pairing::save(node.dir.path(), &pairing_for(&nats.url(), node_id)).unwrap();
    let rebooter: Arc<RecordingRebooter> = Arc::default();
    restart(&mut node, rebooter.clone()).await;
    wait_until("sync has started", Duration::from_secs(30), || {
        cloud_status(&node).cursor > 0
    })
    .await;
    let before_stop = cloud_status(&node).cursor;
    assert!(
        before_stop < 6000,
        "stopped mid-sync (cursor {before_stop})"
    );
    restart(&mut node, rebooter).await;
    // What was acknowledged before the stop is not sent again.
    assert!(cloud_status(&node).cursor >= before_stop);
    wait_caught_up(&node, Duration::from_secs(60)).await;
    assert_stream_is_log(&js, &node, node_id).await;
    node.stop().await;
}

async fn send_down(js: &jetstream::Context, node_id: Uuid, message: &DownMessage) {
    js.publish(
        subjects::down(node_id),
        serde_json::to_vec(message).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_message_makes_the_node_publish_again_from_the_asked_event() {
    let nats = NatsServer::start().unwrap();
    let (node, node_id, _) = paired_node(&nats).await;
    let js = cloud_streams(&nats, node_id).await;
    add_events(&node, 300).await;
    wait_caught_up(&node, Duration::from_secs(30)).await;

    // Watch the subject itself: the stream would drop the re-sent copies as duplicates.
    let watcher = async_nats::connect(nats.url()).await.unwrap();
    let mut seen = watcher
        .subscribe(subjects::up_events(node_id))
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    let resync = DownMessage {
        id: Uuid::now_v7(),
        issued_at_ms: 1,
        body: DownBody::Resync { from_seq: 101 },
    };
    send_down(&js, node_id, &resync).await;
    let mut seqs = Vec::new();
    while seqs.len() < 200 {
        let m = tokio::time::timeout(Duration::from_secs(20), seen.next())
            .await
            .expect("re-sent events arrive")
            .unwrap();
        let e: UpEvent = serde_json::from_slice(&m.payload).unwrap();
        seqs.push(e.seq);
    }
    assert_eq!(seqs, (101..=300).collect::<Vec<u64>>());
    wait_caught_up(&node, Duration::from_secs(10)).await;
    let status = cloud_status(&node);
    let report = status.last_down_message.expect("the resync is reported");
    assert_eq!(report.kind, "resync");
    // JetStream still holds each event once: the re-sent ones carried the same ids.
    assert_stream_is_log(&js, &node, node_id).await;
    let mut node = node;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_messages_delivered_twice_are_applied_once() {
    let nats = NatsServer::start().unwrap();
    let (mut node, node_id, rebooter) = paired_node(&nats).await;
    let js = cloud_streams(&nats, node_id).await;
    let (ann, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let players = DownMessage {
        id: Uuid::now_v7(),
        issued_at_ms: 1,
        body: DownBody::Players {
            players: vec![
                CloudPlayer {
                    player_id: ann,
                    display_name: "Ann Cloud".into(),
                    membership_number: Some("17".into()),
                    active: true,
                },
                CloudPlayer {
                    player_id: bob,
                    display_name: "Bob Gone".into(),
                    membership_number: None,
                    active: false,
                },
            ],
        },
    };
    let reboot = DownMessage {
        id: Uuid::now_v7(),
        issued_at_ms: 2,
        body: DownBody::Reboot { force: false },
    };
    // The cloud (or a redelivery) sends each twice.
    for m in [&players, &reboot, &players, &reboot] {
        send_down(&js, node_id, m).await;
    }
    wait_until("the reboot is asked for", Duration::from_secs(20), || {
        rebooter.0.load(Ordering::SeqCst) > 0
    })
    .await;
    let pending_checked = || async {
        let info = js
            .get_stream(streams::DOWN)
            .await
            .unwrap()
            .consumer_info(streams::down_durable(node_id))
            .await
            .unwrap();
        info.num_pending == 0 && info.num_ack_pending == 0
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pending_checked().await {
        assert!(Instant::now() < deadline, "every down-message acknowledged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Test double: the machine is not rebooted; the recording rebooter counts requests.
    assert_eq!(rebooter.0.load(Ordering::SeqCst), 1, "rebooted once");
    let state = node.running().engine.state();
    let names: Vec<&str> = state.players.values().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["Ann Cloud"], "added once; inactive not added");

    // The same list again under a new id, with Ann renamed: reconciled, not duplicated.
    let renamed = DownMessage {
        id: Uuid::now_v7(),
        issued_at_ms: 3,
        body: DownBody::Players {
            players: vec![CloudPlayer {
                player_id: ann,
                display_name: "Ann Renamed".into(),
                membership_number: Some("17".into()),
                active: true,
            }],
        },
    };
    send_down(&js, node_id, &renamed).await;
    wait_until("the rename is applied", Duration::from_secs(20), || {
        let s = node.running().engine.state();
        s.players.len() == 1 && s.players.values().all(|p| p.name == "Ann Renamed")
    })
    .await;
    // The ledger survives a restart: a redelivery after it is still not applied again.
    let rebooter2: Arc<RecordingRebooter> = Arc::default();
    restart(&mut node, rebooter2.clone()).await;
    send_down(&js, node_id, &reboot).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pending_checked().await {
        assert!(Instant::now() < deadline, "redelivery acknowledged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rebooter2.0.load(Ordering::SeqCst), 0);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_is_refused_while_a_clock_runs_unless_forced_and_notices_are_kept() {
    let nats = NatsServer::start().unwrap();
    let (mut node, node_id, rebooter) = paired_node(&nats).await;
    let js = cloud_streams(&nats, node_id).await;
    let admin = node.setup_admin().await;
    let t = admin
        .post(
            "/api/v1/tournaments",
            json!({"config": common::config("Friday"), "template": "turbo"}),
        )
        .await;
    let tid = t.created();
    let player = admin
        .post("/api/v1/players", json!({"name": "Vera"}))
        .await
        .created();
    admin
        .post(
            &format!("/api/v1/tournaments/{tid}/entries"),
            json!({"player_id": player}),
        )
        .await
        .ok();
    let started = admin
        .act(&format!("/api/v1/tournaments/{tid}/clock/start"))
        .await;
    assert!(started.status.is_success(), "clock start: {}", started.text);
    send_down(
        &js,
        node_id,
        &DownMessage {
            id: Uuid::now_v7(),
            issued_at_ms: 1,
            body: DownBody::Reboot { force: false },
        },
    )
    .await;
    wait_until("the refusal is reported", Duration::from_secs(20), || {
        cloud_status(&node)
            .last_down_message
            .is_some_and(|d| d.outcome.starts_with("refused"))
    })
    .await;
    assert_eq!(rebooter.0.load(Ordering::SeqCst), 0);
    send_down(
        &js,
        node_id,
        &DownMessage {
            id: Uuid::now_v7(),
            issued_at_ms: 2,
            body: DownBody::ReleaseNotice {
                version: "1.2.3".into(),
                channel: "stable".into(),
                bundle_url: "https://example.invalid/b.raucb".into(),
                notes: "fixes".into(),
            },
        },
    )
    .await;
    send_down(
        &js,
        node_id,
        &DownMessage {
            id: Uuid::now_v7(),
            issued_at_ms: 3,
            body: DownBody::Reboot { force: true },
        },
    )
    .await;
    wait_until("the forced reboot", Duration::from_secs(20), || {
        rebooter.0.load(Ordering::SeqCst) == 1
    })
    .await;
    let status = admin.get("/api/v1/system/cloud").await.ok();
    assert_eq!(status["release_notice"]["version"], "1.2.3");
    // Kept across a restart, for the update agent.
    restart(&mut node, Arc::default()).await;
    assert_eq!(
        cloud_status(&node).release_notice.map(|n| n.version),
        Some("1.2.3".to_string())
    );
    node.stop().await;
}

/// Client connections the server has, from its monitoring endpoint.
async fn connections(monitor_port: u16) -> u64 {
    let v: Value = reqwest::get(format!("http://127.0.0.1:{monitor_port}/connz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["num_connections"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaired_node_never_connects_and_unpairing_disconnects() {
    let monitor = pvm_testpeers::free_port().unwrap();
    let nats = NatsServer::start_with_config(&format!("http: \"127.0.0.1:{monitor}\"")).unwrap();
    let node_id = Uuid::now_v7();
    cloud_streams(&nats, node_id).await;
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir, Arc::default()).await;
    let admin = node.setup_admin().await;
    add_events(&node, 10).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(connections(monitor).await, 0);
    let status = admin.get("/api/v1/system/cloud").await.ok();
    assert_eq!(status["paired"], false);
    assert_eq!(status["connected"], false);
    assert_eq!(status["lag"], 0);
    node.stop().await;

    // Paired, it connects; unpaired through the API, it lets go and forgets the pairing.
    pairing::save(node.dir.path(), &pairing_for(&nats.url(), node_id)).unwrap();
    restart(&mut node, Arc::default()).await;
    wait_caught_up(&node, Duration::from_secs(20)).await;
    assert_eq!(connections(monitor).await, 1);
    let admin = node.login(common::ADMIN).await;
    let after = admin
        .send(reqwest::Method::DELETE, "/api/v1/system/cloud", None)
        .await
        .ok();
    assert_eq!(after["paired"], false);
    assert!(!node.dir.path().join("cloud.json").exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    while connections(monitor).await != 0 {
        assert!(
            Instant::now() < deadline,
            "connection closed after unpairing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_metrics_show_lag_and_the_last_error_while_the_cloud_is_away() {
    let mut nats = NatsServer::start().unwrap();
    let (mut node, node_id, _) = paired_node(&nats).await;
    cloud_streams(&nats, node_id).await;
    nats.kill();
    add_events(&node, 25).await;
    wait_until("an error is recorded", Duration::from_secs(20), || {
        cloud_status(&node).last_error.is_some()
    })
    .await;
    let admin = node.setup_admin().await;
    let status = admin.get("/api/v1/system/cloud").await.ok();
    assert_eq!(status["paired"], true);
    assert_eq!(status["connected"], false);
    assert_eq!(status["node_id"], node_id.to_string());
    assert_eq!(status["venue_name"], "Test room");
    assert_eq!(status["lag"], 25);
    assert_eq!(status["cursor"], 0);
    assert!(
        status["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{status}"
    );
    assert!(
        !status.to_string().contains("nats_user_seed"),
        "no credentials"
    );
    let metrics = reqwest::get(format!("{}/metrics", node.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pvm_sync_lag_events 25\n"), "{metrics}");
    assert!(metrics.contains("pvm_sync_acked_seq 0\n"), "{metrics}");
    let errors = metric_value(&metrics, "pvm_sync_errors_total");
    assert!(errors >= 1.0, "{metrics}");

    nats.restart().unwrap();
    wait_caught_up(&node, Duration::from_secs(30)).await;
    let metrics = reqwest::get(format!("{}/metrics", node.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pvm_sync_lag_events 0\n"), "{metrics}");
    assert!(metrics.contains("pvm_sync_acked_seq 25\n"), "{metrics}");
    assert!(metric_value(&metrics, "pvm_sync_last_success_timestamp_seconds") > 1.6e9);
    // Floor staff do not see or change the pairing.
    let floor = node.user(&admin, "floor1", "floor").await;
    floor
        .get("/api/v1/system/cloud")
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    node.stop().await;
}

fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_errors_are_clear_and_leave_the_node_unpaired() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir, Arc::default()).await;
    let admin = node.setup_admin().await;
    let closed = pvm_testpeers::free_port().unwrap();
    let r = admin
        .post(
            "/api/v1/system/cloud/enrol",
            json!({"cloud_url": format!("http://127.0.0.1:{closed}"), "code": "ABCD-1234"}),
        )
        .await;
    let message = r.error(StatusCode::BAD_GATEWAY, "cloud_unreachable");
    assert!(message.contains("cannot be reached"), "{message}");
    let r = admin
        .post(
            "/api/v1/system/cloud/enrol",
            json!({"cloud_url": "ftp://nowhere", "code": "ABCD-1234"}),
        )
        .await;
    r.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let floor = node.user(&admin, "floor1", "floor").await;
    floor
        .post(
            "/api/v1/system/cloud/enrol",
            json!({"cloud_url": "http://127.0.0.1:1", "code": "x"}),
        )
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    Api::new(&node.base, None)
        .post(
            "/api/v1/system/cloud/enrol",
            json!({"cloud_url": "http://127.0.0.1:1", "code": "x"}),
        )
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(!node.dir.path().join("cloud.json").exists());
    assert_eq!(
        admin.get("/api/v1/system/cloud").await.ok()["paired"],
        false
    );
    node.stop().await;
}
