//! NATS decentralized auth against a real nats-server: a node's credentials publish its own
//! events (and get JetStream acks) and pull its own down consumer, and nothing of another
//! node's.

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt as _;
use pvm_cloud::sync::nats_auth::{IssuedUser, Trust};
use pvm_cloud::sync::streams;
use pvm_sync::subjects;
use tokio::sync::mpsc;
use uuid::Uuid;

struct NodeConn {
    client: async_nats::Client,
    errors: mpsc::UnboundedReceiver<String>,
}

async fn connect_node(url: &str, user: &IssuedUser, node: Uuid) -> NodeConn {
    let (tx, errors) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        .credentials(&user.creds())
        .unwrap()
        .custom_inbox_prefix(subjects::inbox_prefix(node))
        .request_timeout(Some(Duration::from_secs(2)))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(url)
        .await
        .unwrap();
    NodeConn { client, errors }
}

/// Waits for the server to report a permissions violation naming `subject`.
async fn expect_violation(conn: &mut NodeConn, subject: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, conn.errors.recv()).await {
            Ok(Some(text)) if text.contains("Permissions Violation") && text.contains(subject) => {
                return
            }
            Ok(Some(_)) => continue,
            _ => panic!("no permissions violation reported for {subject}"),
        }
    }
}

fn up_payload(node: Uuid) -> String {
    format!("{{\"node\":\"{node}\"}}")
}

#[tokio::test]
async fn a_nodes_credentials_reach_its_own_subjects_and_none_of_another_nodes() {
    let trust = Trust::generate();
    let nats =
        pvm_testpeers::NatsServer::start_with_config(&trust.server_config().unwrap()).unwrap();
    let issuer = trust.user_issuer().unwrap();
    let cloud_user = issuer.issue_service_user("test-cloud").unwrap();
    let cloud = async_nats::ConnectOptions::new()
        .credentials(&cloud_user.creds())
        .unwrap()
        .connect(nats.url())
        .await
        .unwrap();
    let cloud_js = jetstream::new(cloud.clone());
    streams::ensure_streams(&cloud_js).await.unwrap();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    streams::ensure_node_consumer(&cloud_js, a).await.unwrap();
    streams::ensure_node_consumer(&cloud_js, b).await.unwrap();
    // One message waiting for each node.
    for node in [a, b] {
        cloud_js
            .publish(subjects::down(node), format!("for {node}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let mut node_a = connect_node(&nats.url(), &issuer.issue_node_user(a).unwrap(), a).await;
    let js_a = jetstream::new(node_a.client.clone());

    // Its own events: stored, acknowledged by JetStream.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(pvm_sync::MSG_ID_HEADER, Uuid::now_v7().to_string().as_str());
    let ack = js_a
        .publish_with_headers(subjects::up_events(a), headers, up_payload(a).into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.stream, pvm_sync::streams::UP);
    // Its heartbeat subject (core NATS) too: no violation follows.
    node_a
        .client
        .publish(subjects::up_heartbeat(a), "{}".into())
        .await
        .unwrap();

    // Its own down consumer: found, pulled, acknowledged.
    let own: jetstream::consumer::PullConsumer = js_a
        .get_consumer_from_stream(pvm_sync::streams::down_durable(a), pvm_sync::streams::DOWN)
        .await
        .unwrap();
    let mut batch = own
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let message = batch.next().await.unwrap().unwrap();
    assert_eq!(message.payload.as_ref(), format!("for {a}").as_bytes());
    message.double_ack().await.unwrap();

    // Another node's event subject: no ack, a violation, nothing stored for B.
    let refused = js_a
        .publish(subjects::up_events(b), up_payload(b).into())
        .await
        .unwrap()
        .await;
    assert!(
        refused.is_err(),
        "publishing B's events must not be acknowledged"
    );
    expect_violation(&mut node_a, &subjects::up_events(b)).await;
    let mut up = cloud_js.get_stream(pvm_sync::streams::UP).await.unwrap();
    assert!(up
        .get_last_raw_message_by_subject(&subjects::up_events(b))
        .await
        .is_err());
    assert_eq!(up.info().await.unwrap().state.messages, 1);

    // Another node's inbox and down subject cannot be subscribed to.
    let _inbox = node_a
        .client
        .subscribe(format!("{}.>", subjects::inbox_prefix(b)))
        .await
        .unwrap();
    expect_violation(&mut node_a, &subjects::inbox_prefix(b)).await;
    let _down = node_a.client.subscribe(subjects::down(b)).await.unwrap();
    expect_violation(&mut node_a, &subjects::down(b)).await;

    // Another node's consumer can be neither looked up nor pulled.
    let durable_b = pvm_sync::streams::down_durable(b);
    let lookup = js_a
        .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
            durable_b.clone(),
            pvm_sync::streams::DOWN,
        )
        .await;
    assert!(lookup.is_err());
    expect_violation(
        &mut node_a,
        &format!("$JS.API.CONSUMER.INFO.PVM_DOWN.{durable_b}"),
    )
    .await;
    let next = format!("$JS.API.CONSUMER.MSG.NEXT.PVM_DOWN.{durable_b}");
    let pulled = node_a
        .client
        .request(next.clone(), "{\"batch\":1,\"no_wait\":true}".into())
        .await;
    assert!(pulled.is_err());
    expect_violation(&mut node_a, &next).await;
    // Nor the stream API at large.
    assert!(js_a.get_stream(pvm_sync::streams::DOWN).await.is_err());

    // B's message is still waiting for B.
    let mut consumer_b: jetstream::consumer::PullConsumer = cloud_js
        .get_consumer_from_stream(durable_b, pvm_sync::streams::DOWN)
        .await
        .unwrap();
    assert_eq!(consumer_b.info().await.unwrap().num_pending, 1);
}

#[tokio::test]
async fn credentials_signed_by_another_account_key_are_refused() {
    let trust = Trust::generate();
    let nats =
        pvm_testpeers::NatsServer::start_with_config(&trust.server_config().unwrap()).unwrap();
    let stranger = Trust::generate().user_issuer().unwrap();
    let node = Uuid::now_v7();
    let user = stranger.issue_node_user(node).unwrap();
    let connected = async_nats::ConnectOptions::new()
        .credentials(&user.creds())
        .unwrap()
        .connect(nats.url())
        .await;
    assert!(
        connected.is_err(),
        "a JWT from an untrusted account must not connect"
    );
}
