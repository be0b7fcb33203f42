//! The down channel end to end under the cloud's real NATS decentralized auth: a real
//! pvm-node, paired through its own API (its NATS credentials come from a real enrolment),
//! receives the venue's players, a resync command and a release notice, each applied on the
//! node. The release is published while nats-server is down: the cloud keeps it in its
//! outbox and delivers it once NATS is back, instead of losing it.

mod common;
mod node_common;
mod sync_common;

use node_common::*;
use serde_json::json;
use std::time::Duration;
use sync_common::*;
use uuid::Uuid;

const OPERATOR: &str = "ops@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_node_applies_players_resync_and_a_release_pushed_while_nats_was_down() {
    let mut nats = AuthNats::start();
    let cloud = cloud_on_auth_nats(&nats, OPERATOR).await;
    let api = &cloud.api;
    let venue = CloudVenue::create(api).await;
    let token = &venue.token;
    // The member exists before enrolment, so pairing is what sends it to the node.
    api.post(
        &venue.path("/players"),
        Some(token),
        json!({"display_name": "Ann Member", "membership_number": "7"}),
    )
    .await
    .expect(201);
    let code = venue.enrolment_code(api).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = node_config(dir.path());
    config.cloud.max_backoff_secs = 1;
    let node = pvm_node::node::start_with_auth(config, cheap_auth())
        .await
        .unwrap();
    let admin = NodeApi::first_admin(&node).await;
    add_players(&node.engine, "local", 5).await;
    let status = admin
        .post(
            "/api/v1/system/cloud/enrol",
            json!({"cloud_url": format!("http://{}", cloud.app.addr), "code": code}),
        )
        .await;
    assert_eq!(status["paired"], true, "{status}");
    let node_id: Uuid = status["node_id"].as_str().unwrap().parse().unwrap();

    // Enrolment sends the venue's players: the node, on its own credentials, applies them.
    wait_until(30, "the cloud's member on the node", || async {
        node.engine
            .state()
            .players
            .values()
            .any(|p| p.name == "Ann Member")
    })
    .await;
    let pool = pvm_cloud::db::pool(&cloud.pg.url(), 2).unwrap();
    let last = node.engine.last_seq() as i64;
    wait_until(30, "the node's log ingested", || async {
        applied_seq(&pool, node_id).await == last
    })
    .await;

    // A resync command: the node re-sends from seq 2 and reports it applied it.
    let sent = api
        .post(
            &format!("/api/v1/tenants/{}/nodes/{node_id}/commands", venue.tenant),
            Some(token),
            json!({"kind": "resync", "from_seq": 2}),
        )
        .await
        .expect(202);
    let resync_id = sent["id"].as_str().unwrap().to_string();
    wait_until(30, "the resync applied on the node", || async {
        node.cloud
            .status()
            .last_down_message
            .is_some_and(|d| d.id.to_string() == resync_id && d.outcome.starts_with("applied"))
    })
    .await;
    wait_until(30, "the node caught up again after the resync", || async {
        node.cloud.status().lag == 0
    })
    .await;

    // A release published while NATS is down is kept, not lost.
    api.post(
        "/api/v1/signup",
        None,
        json!({"tenant_name": "Platform", "email": OPERATOR, "password": common::PASSWORD}),
    )
    .await
    .expect(201);
    let ops = api.token(OPERATOR).await;
    nats.server.kill();
    api.post(
        "/api/v1/releases",
        Some(&ops),
        json!({"version": "0.3.0", "channel": "stable",
               "bundle_url": "https://updates.example/0.3.0.raucb",
               "sha256": "b".repeat(64), "notes": "outbox"}),
    )
    .await
    .expect(201);
    wait_until(20, "the notice waiting in the outbox", || async {
        pvm_cloud::sync::down::pending_count(&pool).await.unwrap() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(node.cloud.status().release_notice.is_none());
    nats.server.restart().unwrap();
    wait_until(60, "the release notice on the node", || async {
        node.cloud
            .status()
            .release_notice
            .is_some_and(|n| n.version == "0.3.0")
    })
    .await;
    assert_eq!(
        pvm_cloud::sync::down::pending_count(&pool).await.unwrap(),
        0
    );
    // The resync re-sent events the cloud had: PostgreSQL still holds the log once.
    let last = node.engine.last_seq() as i64;
    wait_until(30, "every event stored once", || async {
        applied_seq(&pool, node_id).await == last
    })
    .await;
    let stored = scalar(
        &pool,
        "SELECT count(*) FROM sync_events WHERE node_id = $1",
        node_id,
    )
    .await;
    assert_eq!(stored, last);

    node.cloud.stop().await;
    node.stop().await.unwrap();
    cloud.stop().await;
}
