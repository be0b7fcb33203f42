//! The whole NATS side through the service itself: a node enrols over HTTP, connects with
//! the credentials it was given, publishes its log and heartbeats, and receives its players,
//! commands and release notices on its own down consumer.

mod common;
mod sync_common;

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt as _;
use pvm_sync::{DownBody, DownMessage, EnrolResponse};
use serde_json::json;
use sync_common::*;

const OPERATOR: &str = "ops@example.com";

async fn node_connection(enrolled: &EnrolResponse) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .credentials(&pvm_sync::creds::user_creds(
            &enrolled.nats_user_jwt,
            &enrolled.nats_user_seed,
        ))
        .unwrap()
        .custom_inbox_prefix(&enrolled.inbox_prefix)
        .connect(enrolled.nats_urls[0].as_str())
        .await
        .unwrap()
}

/// The next down message on the node's own consumer.
async fn next_down(consumer: &jetstream::consumer::PullConsumer) -> DownMessage {
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, batch.next()).await {
            message.ack().await.unwrap();
            return serde_json::from_slice(&message.payload).unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "no down message");
        batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_enrolled_node_syncs_its_log_and_hears_from_the_cloud_on_its_own_subject() {
    let nats = AuthNats::start();
    let url = nats.server.url();
    let (creds, seed) = (nats.creds_file(), nats.account_seed_file());
    let cloud = common::Cloud::start_with(move |c| {
        c.nats_url = Some(url);
        c.nats_creds = Some(creds);
        c.nats_account_seed_file = Some(seed);
        c.operator_email = vec![OPERATOR.into()];
    })
    .await;
    let api = &cloud.api;
    let (tenant, _) = api.signup("Casino", "admin@example.com").await;
    let token = api.token("admin@example.com").await;
    let venue = api.venue(&token, &tenant, "Main room").await;
    api.post(
        &format!("/api/v1/tenants/{tenant}/venues/{venue}/players"),
        Some(&token),
        json!({"display_name": "Ann Member", "membership_number": "7"}),
    )
    .await
    .expect(201);
    let new_code = || async {
        api.post(
            &format!("/api/v1/tenants/{tenant}/venues/{venue}/enrolment-codes"),
            Some(&token),
            json!({}),
        )
        .await
        .expect(201)["code"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Enrol; the code is then spent.
    let code = new_code().await;
    let body = api
        .post(
            "/api/v1/enrol",
            None,
            json!({"code": code.to_lowercase(), "hostname": "pi-1", "version": "0.1.0"}),
        )
        .await
        .expect(201);
    let enrolled: EnrolResponse = serde_json::from_value(body).unwrap();
    assert_eq!(enrolled.venue_id.to_string(), venue);
    assert_eq!(enrolled.venue_name, "Main room");
    assert_eq!(
        enrolled.inbox_prefix,
        pvm_sync::subjects::inbox_prefix(enrolled.node_id)
    );
    api.post(
        "/api/v1/enrol",
        None,
        json!({"code": code, "hostname": "pi-2", "version": "0.1.0"}),
    )
    .await
    .expect_error(409, "enrolment_code_used");
    api.post(
        "/api/v1/enrol",
        None,
        json!({"code": "ZZZZ-ZZZZ-ZZZZ", "hostname": "pi-2", "version": "0.1.0"}),
    )
    .await
    .expect_error(404, "enrolment_code_unknown");
    let stale = new_code().await;
    cloud
        .pg
        .psql("UPDATE enrolment_codes SET expires_at = now() - interval '1 minute' WHERE used_at IS NULL")
        .unwrap();
    api.post(
        "/api/v1/enrol",
        None,
        json!({"code": stale, "hostname": "pi-2", "version": "0.1.0"}),
    )
    .await
    .expect_error(410, "enrolment_code_expired");

    // The node publishes its log with its own credentials; the cloud ingests it.
    let node = node_connection(&enrolled).await;
    let node_js = jetstream::new(node.clone());
    let mut log = NodeLog::new(enrolled.node_id, enrolled.venue_id, 5);
    log.tournament("Friday", 4);
    for up in &log.events {
        publish(&node_js, up, true).await;
    }
    let pool = pvm_cloud::db::pool(&cloud.pg.url(), 2).unwrap();
    let n = log.events.len() as i64;
    wait_until(30, "the node's log ingested", || async {
        applied_seq(&pool, enrolled.node_id).await == n
    })
    .await;
    assert_node_matches(&pool, &log).await;

    // Heartbeats fill the fleet columns.
    let beat = pvm_sync::Heartbeat {
        node_id: enrolled.node_id,
        version: "0.1.1".into(),
        uptime_s: 42,
        temperature_c: Some(51.5),
        disk_free_bytes: 1_000,
        disk_total_bytes: 2_000,
        last_synced_seq: n as u64,
        last_event_seq: n as u64,
        clock_offset_ms: Some(-3),
        sent_at_ms: 0,
        update: None,
    };
    node.publish(
        pvm_sync::subjects::up_heartbeat(enrolled.node_id),
        serde_json::to_vec(&beat).unwrap().into(),
    )
    .await
    .unwrap();
    wait_until(10, "the heartbeat recorded", || async {
        scalar(
            &pool,
            "SELECT coalesce(last_event_seq, 0) FROM nodes WHERE id = $1",
            enrolled.node_id,
        )
        .await
            == n
    })
    .await;
    assert_eq!(
        scalar(
            &pool,
            "SELECT uptime_s FROM nodes WHERE id = $1",
            enrolled.node_id
        )
        .await,
        42
    );

    // Down: first the venue's players (sent at enrolment), then a command, a membership
    // change and a release, in that order.
    let consumer: jetstream::consumer::PullConsumer = node_js
        .get_consumer_from_stream(
            pvm_sync::streams::down_durable(enrolled.node_id),
            pvm_sync::streams::DOWN,
        )
        .await
        .unwrap();
    match next_down(&consumer).await.body {
        DownBody::Players { players } => {
            assert_eq!(players.len(), 1);
            assert_eq!(players[0].display_name, "Ann Member");
            assert_eq!(players[0].membership_number.as_deref(), Some("7"));
        }
        other => panic!("expected the players first, got {other:?}"),
    }
    let sent = api
        .post(
            &format!(
                "/api/v1/tenants/{tenant}/nodes/{}/commands",
                enrolled.node_id
            ),
            Some(&token),
            json!({"kind": "resync", "from_seq": 3}),
        )
        .await
        .expect(202);
    let message = next_down(&consumer).await;
    assert_eq!(message.id.to_string(), sent["id"].as_str().unwrap());
    assert_eq!(message.body, DownBody::Resync { from_seq: 3 });

    api.post(
        &format!("/api/v1/tenants/{tenant}/venues/{venue}/players"),
        Some(&token),
        json!({"display_name": "Bob Newcomer"}),
    )
    .await
    .expect(201);
    match next_down(&consumer).await.body {
        DownBody::Players { players } => assert_eq!(players.len(), 2),
        other => panic!("expected the new player list, got {other:?}"),
    }

    api.post(
        "/api/v1/signup",
        None,
        json!({"tenant_name": "Platform", "email": OPERATOR, "password": common::PASSWORD}),
    )
    .await
    .expect(201);
    let ops = api.token(OPERATOR).await;
    api.post(
        "/api/v1/releases",
        Some(&ops),
        json!({"version": "0.2.0", "channel": "stable", "bundle_url": "https://updates.example/0.2.0.raucb",
               "sha256": "a".repeat(64), "notes": "faster"}),
    )
    .await
    .expect(201);
    match next_down(&consumer).await.body {
        DownBody::ReleaseNotice {
            version, channel, ..
        } => {
            assert_eq!(version, "0.2.0");
            assert_eq!(channel, "stable");
        }
        other => panic!("expected a release notice, got {other:?}"),
    }

    // Commands are tenant-checked and need a manager.
    let (other_tenant, _) = api.signup("Rival", "rival@example.com").await;
    let rival = api.token("rival@example.com").await;
    api.post(
        &format!(
            "/api/v1/tenants/{other_tenant}/nodes/{}/commands",
            enrolled.node_id
        ),
        Some(&rival),
        json!({"kind": "reboot", "force": false}),
    )
    .await
    .expect_error(404, "not_found");
    api.add_user(&token, &tenant, "floor@example.com", "floor")
        .await;
    let floor = api.token("floor@example.com").await;
    api.post(
        &format!(
            "/api/v1/tenants/{tenant}/nodes/{}/commands",
            enrolled.node_id
        ),
        Some(&floor),
        json!({"kind": "reboot", "force": false}),
    )
    .await
    .expect_error(403, "forbidden");

    cloud.stop().await;
}

#[tokio::test]
async fn a_heartbeat_naming_another_node_changes_nothing() {
    let nats = AuthNats::start();
    let pg = tokio::task::spawn_blocking(pvm_testpeers::Postgres::start)
        .await
        .unwrap()
        .unwrap();
    let pool = migrated_pool(&pg).await;
    let (_, nodes) = seed_nodes(&pool, 2).await;
    let client = nats.cloud_client().await;
    let listener = tokio::spawn(pvm_cloud::sync::heartbeat::run(
        client.clone(),
        pool.clone(),
    ));
    // Let the queue subscription reach the server before publishing.
    client.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let beat = |node, uptime_s| pvm_sync::Heartbeat {
        node_id: node,
        version: "x".into(),
        uptime_s,
        temperature_c: None,
        disk_free_bytes: 0,
        disk_total_bytes: 0,
        last_synced_seq: 0,
        last_event_seq: 0,
        clock_offset_ms: None,
        sent_at_ms: 0,
        update: None,
    };
    // On A's subject, claiming to be B; then A's own.
    for (subject_node, body) in [(nodes[0], beat(nodes[1], 7)), (nodes[0], beat(nodes[0], 9))] {
        client
            .publish(
                pvm_sync::subjects::up_heartbeat(subject_node),
                serde_json::to_vec(&body).unwrap().into(),
            )
            .await
            .unwrap();
    }
    wait_until(10, "A's heartbeat recorded", || async {
        scalar(
            &pool,
            "SELECT coalesce(uptime_s, 0) FROM nodes WHERE id = $1",
            nodes[0],
        )
        .await
            == 9
    })
    .await;
    assert_eq!(
        scalar(
            &pool,
            "SELECT coalesce(uptime_s, 0) FROM nodes WHERE id = $1",
            nodes[1]
        )
        .await,
        0,
        "B's row must not take a heartbeat sent on A's subject"
    );
    listener.abort();
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
