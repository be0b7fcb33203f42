//! End to end with a real pvm-node: PostgreSQL, nats-server with the cloud's generated
//! decentralized auth, pvm-cloud, and a node started in-process on loopback. An operator
//! signs up, creates a venue and an enrolment code; the node's admin pairs the node through
//! the node's own API; a tournament runs through the node's API; its events land in
//! PostgreSQL exactly as they are in the node's SQLite log, with the projections.

mod common;
mod node_common;
mod sync_common;

use node_common::*;
use serde_json::{json, Value};
use std::time::Duration;
use sync_common::*;
use uuid::Uuid;

const OPERATOR: &str = "ops@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_paired_through_its_api_syncs_a_tournament_into_postgresql() {
    let nats = AuthNats::start();
    let cloud = cloud_on_auth_nats(&nats, OPERATOR).await;
    let api = &cloud.api;
    let venue = CloudVenue::create(api).await;
    let code = venue.enrolment_code(api).await;

    let dir = tempfile::tempdir().unwrap();
    let node = pvm_node::node::start_with_auth(node_config(dir.path()), cheap_auth())
        .await
        .unwrap();
    let base = format!("http://{}", node.addr);
    let anon = NodeApi {
        base: base.clone(),
        token: None,
        http: reqwest::Client::new(),
    };
    let setup = anon
        .post(
            "/api/v1/setup",
            json!({"setup_code": node.setup_code.clone().unwrap(),
                   "username": "boss", "password": "correct horse battery staple"}),
        )
        .await;
    let admin = NodeApi {
        base,
        token: Some(setup["token"].as_str().unwrap().to_string()),
        http: reqwest::Client::new(),
    };

    // A wrong code is refused by the cloud, clearly; the right one pairs.
    let cloud_url = format!("http://{}", cloud.app.addr);
    let res = admin
        .http
        .post(format!("{}/api/v1/system/cloud/enrol", admin.base))
        .bearer_auth(admin.token.as_ref().unwrap())
        .json(&json!({"cloud_url": cloud_url, "code": "ZZZZ-ZZZZ-ZZZZ"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "enrolment_refused");
    let status = admin
        .post(
            "/api/v1/system/cloud/enrol",
            json!({"cloud_url": cloud_url, "code": code}),
        )
        .await;
    assert_eq!(status["paired"], true);
    assert_eq!(status["venue_name"], "Main room");
    let node_id: Uuid = status["node_id"].as_str().unwrap().parse().unwrap();

    // A tournament through the node's API.
    let t = admin
        .post(
            "/api/v1/tournaments",
            json!({"config": tournament_config("Friday"), "template": "turbo"}),
        )
        .await["created_id"]
        .as_str()
        .unwrap()
        .to_string();
    for name in ["Ann", "Bob", "Cid"] {
        let p = admin.post("/api/v1/players", json!({"name": name})).await["created_id"]
            .as_str()
            .unwrap()
            .to_string();
        admin
            .post(
                &format!("/api/v1/tournaments/{t}/entries"),
                json!({"player_id": p}),
            )
            .await;
    }
    admin
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/tournaments/{t}/clock/start"),
            None,
        )
        .await;

    let last = node.engine.last_seq();
    let pool = pvm_cloud::db::pool(&cloud.pg.url(), 2).unwrap();
    wait_until(60, "the node's log ingested", || async {
        applied_seq(&pool, node_id).await == last as i64
    })
    .await;

    // PostgreSQL holds exactly the node's log, and the tournament's projection.
    let store =
        pvm_store::Store::open_reader(&dir.path().join(pvm_node::node::EVENT_LOG_FILE)).unwrap();
    let log: Vec<(Uuid, i64)> = store
        .events_since(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.seq as i64))
        .collect();
    let client = pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT id, seq FROM sync_events WHERE node_id = $1 ORDER BY seq",
            &[&node_id],
        )
        .await
        .unwrap();
    let stored: Vec<(Uuid, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored, log);
    let tid: Uuid = t.parse().unwrap();
    let row = client
        .query_one(
            "SELECT name, entries FROM cloud_tournaments WHERE tournament_id = $1",
            &[&tid],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Friday");
    assert_eq!(row.get::<_, i32>(1), 3);

    // Heartbeats reach the fleet.
    wait_until(20, "a heartbeat recorded", || async {
        scalar(
            &pool,
            "SELECT coalesce(last_event_seq, 0) FROM nodes WHERE id = $1",
            node_id,
        )
        .await
            == last as i64
    })
    .await;
    let status = admin.get("/api/v1/system/cloud").await;
    assert_eq!(status["lag"], 0);
    assert_eq!(status["connected"], true);
    node.cloud.stop().await;
    node.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// A freezeout's settings as the node's API takes them (as in pvm-node's tests).
fn tournament_config(name: &str) -> Value {
    json!({
        "name": name,
        "buy_in": 10000,
        "fee": 1000,
        "starting_stack": 20000,
        "late_registration": {"until_level": 2},
    })
}
