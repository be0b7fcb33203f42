//! What survives a stop: the same state after a restart on the same data directory (the clock
//! where it should be), damaged or foreign log files refused untouched, and a graceful stop
//! that keeps every command it acknowledged.

mod common;

use common::{Api, TestNode};
use pvm_node::node::{self, EVENT_LOG_FILE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Instant;

/// The tournament detail without what depends on the moment it is read.
fn timeless(mut d: Value) -> Value {
    let o = d.as_object_mut().unwrap();
    o.remove("server_time_ms");
    o.remove("clock");
    o.remove("stats");
    d
}

async fn detail(api: &Api, t: &str) -> Value {
    api.get(&format!("/api/v1/tournaments/{t}")).await.ok()
}

#[tokio::test]
async fn a_restarted_node_has_the_same_state_and_the_clock_resumes_where_it_should() {
    let mut node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let running = common::create_tournament(&admin, common::config("Running")).await;
    let paused = common::create_tournament(&admin, common::config("Paused")).await;
    for t in [&running, &paused] {
        let tp = format!("/api/v1/tournaments/{t}");
        admin
            .post(&format!("{tp}/tables"), json!({"number": 1, "seats": 9}))
            .await
            .ok();
        let mut entries = Vec::new();
        for name in ["Ann", "Ben", "Cat", "Dan"] {
            entries.push(common::register_new(&admin, t, name).await);
        }
        admin.act(&format!("{tp}/clock/start")).await.ok();
        admin.act(&format!("{tp}/clock/next")).await.ok();
        admin
            .post(&format!("{tp}/clock/set-time"), json!({"seconds": 600}))
            .await
            .ok();
        admin
            .post(
                &format!("{tp}/busts"),
                json!({"busts": [{"entry_id": entries[3]}]}),
            )
            .await
            .ok();
    }
    admin
        .act(&format!("/api/v1/tournaments/{paused}/clock/pause"))
        .await
        .ok();
    admin
        .post(
            "/api/v1/cash/games",
            json!({"game": "NLH", "small_blind": 100, "big_blind": 300}),
        )
        .await
        .ok();

    let seq = admin.seq().await;
    let before_running = detail(&admin, &running).await;
    let before_paused = detail(&admin, &paused).await;
    let cash = admin.get("/api/v1/cash").await.ok();
    let players = admin.get("/api/v1/players").await.ok();
    let stopped_at = Instant::now();
    node.restart().await;
    let down_ms = stopped_at.elapsed().as_millis() as i64;

    // The session survives the restart (accounts are on disk too).
    let admin = Api::new(&node.base, admin.token.clone());
    assert_eq!(admin.seq().await, seq);
    let after_running = detail(&admin, &running).await;
    let after_paused = detail(&admin, &paused).await;
    assert_eq!(
        timeless(after_running.clone()),
        timeless(before_running.clone())
    );
    assert_eq!(
        timeless(after_paused.clone()),
        timeless(before_paused.clone())
    );
    assert_eq!(admin.get("/api/v1/cash").await.ok(), cash);
    assert_eq!(admin.get("/api/v1/players").await.ok(), players);

    // The paused clock has exactly the time it had; the running one kept running.
    assert_eq!(after_paused["clock"], before_paused["clock"]);
    assert_eq!(after_running["clock"]["level_number"], 2);
    assert_eq!(after_running["clock"]["status"], "running");
    let left_before = before_running["clock"]["remaining_ms"].as_i64().unwrap();
    let left_after = after_running["clock"]["remaining_ms"].as_i64().unwrap();
    let read_gap = after_running["server_time_ms"].as_i64().unwrap()
        - before_running["server_time_ms"].as_i64().unwrap();
    assert!(read_gap >= down_ms);
    assert_eq!(
        left_before - left_after,
        read_gap,
        "the running clock lost exactly the wall time between the two reads"
    );

    // And it keeps working: a command after the restart continues the log.
    let r = admin
        .act(&format!("/api/v1/tournaments/{paused}/clock/resume"))
        .await
        .ok();
    assert_eq!(r["seq"], seq + 1);
    node.stop().await;
}

/// A real event log with some history in it, closed cleanly.
async fn a_real_log() -> TestNode {
    let mut node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let t = common::create_tournament(&admin, common::config("History")).await;
    for i in 0..150 {
        common::register_new(&admin, &t, &format!("Player {i:03} with a longish name")).await;
    }
    node.stop().await;
    node
}

#[tokio::test]
async fn a_damaged_event_log_keeps_the_node_serving_reads_refuses_changes_and_is_left_byte_identical(
) {
    let mut node = a_real_log().await;
    let path = node.data_dir().join(EVENT_LOG_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 64 * 1024, "log is {} bytes", bytes.len());
    let page = 4096;
    let middle = (bytes.len() / 2) / page * page;
    for (i, b) in bytes[middle..middle + 2 * page].iter_mut().enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();

    // Exiting would only have systemd start the node into the same check again and again:
    // it stays up, on the state it loaded, and says what is wrong.
    node.restart().await;
    let anon = node.anonymous();
    let h = anon.get("/healthz").await;
    assert_eq!(h.status, StatusCode::SERVICE_UNAVAILABLE, "{}", h.text);
    assert_eq!(h.body["integrity"], "failed", "{}", h.text);
    assert_eq!(h.body["status"], "database_damaged", "{}", h.text);
    let problem = h.body["database_problem"].as_str().unwrap();
    assert!(problem.contains(&path.display().to_string()), "{problem}");
    assert!(problem.contains("damaged"), "{problem}");
    let api_health = anon.get("/api/v1/system/health").await.ok();
    assert_eq!(api_health["integrity"], "failed");

    let admin = node.login(common::ADMIN).await;
    let list = admin.get("/api/v1/tournaments").await.ok();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let seq = node.running().engine.last_seq();
    let r = admin
        .post("/api/v1/players", json!({"name": "Too late"}))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "database_damaged", "{}", r.text);
    assert!(r.text.contains("nothing can be recorded"), "{}", r.text);
    assert_eq!(node.running().engine.last_seq(), seq);

    node.stop().await;
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the damaged file was changed"
    );
}

#[tokio::test]
async fn a_foreign_file_in_place_of_the_log_is_refused_by_name_and_left_byte_identical() {
    // Another program's SQLite database (here: the node's own accounts file) and plain text.
    let node = a_real_log().await;
    let dir = node.data_dir();
    let path = dir.join(EVENT_LOG_FILE);
    let other_db = std::fs::read(dir.join("accounts.db")).unwrap();
    for foreign in [other_db, b"name,chips\nAnn,20000\n".repeat(200)] {
        std::fs::write(&path, &foreign).unwrap();
        let _ = std::fs::remove_file(dir.join("events.db-wal"));
        let _ = std::fs::remove_file(dir.join("events.db-shm"));
        let err = match node::start(common::test_config(&dir)).await {
            Ok(n) => {
                n.stop().await.unwrap();
                panic!("a foreign file was opened as the log");
            }
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("not a PVM event store"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            foreign,
            "the foreign file was changed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_keeps_every_command_it_acknowledged() {
    let mut node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let mut calls = Vec::new();
    for i in 0..500 {
        let api = admin.clone();
        calls.push(tokio::spawn(async move {
            let resp = api
                .http
                .post(format!("{}/api/v1/players", api.base))
                .bearer_auth(api.token.as_deref().unwrap())
                .json(&json!({"name": format!("Rush {i}")}))
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => {
                    let body: Value = r.json().await.unwrap();
                    Ok(body["created_id"].as_str().unwrap().to_string())
                }
                Ok(r) => Err(r.status().to_string()),
                Err(e) => Err(e.to_string()),
            }
        }));
    }
    // Stop while commands are still arriving and waiting for the writer.
    while node.running().engine.last_seq() < 20 {
        tokio::task::yield_now().await;
    }
    node.stop().await;
    let mut acknowledged = Vec::new();
    let mut failed = Vec::new();
    for c in calls {
        match c.await.unwrap() {
            Ok(id) => acknowledged.push(id),
            Err(e) => failed.push(e),
        }
    }
    println!(
        "graceful stop: {} acknowledged, {} not ({:?})",
        acknowledged.len(),
        failed.len(),
        failed.first()
    );
    assert!(acknowledged.len() >= 20);
    // Nothing answered with a server error: refused calls are 503 or never connected.
    assert!(
        failed
            .iter()
            .all(|e| !e.starts_with('5')
                || e.starts_with(&StatusCode::SERVICE_UNAVAILABLE.to_string())),
        "{failed:?}"
    );

    node.restart().await;
    let admin = Api::new(&node.base, admin.token.clone());
    let players = admin.get("/api/v1/players?limit=1000").await.ok();
    let stored: std::collections::BTreeSet<&str> = players
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    for id in &acknowledged {
        assert!(
            stored.contains(id.as_str()),
            "acknowledged player {id} lost"
        );
    }
    node.stop().await;
}
