//! The update state in the fleet view, end to end: a real pvm-node on an A/B machine made of
//! stand-in files (no firmware: the boot selector is `pvm_ota::FileBootloader`, as in the
//! node's own update tests) is paired with the cloud (PostgreSQL, nats-server with the
//! cloud's auth) and starts fetching a bundle from a server that stalls half-way. Its
//! heartbeats carry the download's state and progress into the tenant's fleet API; when
//! the server gives up, the failure and its reason follow.

mod common;
mod node_common;
mod sync_common;

use node_common::*;
use pvm_node::update::config::FirmwareKind;
use serde_json::{json, Value};
use std::time::Duration;
use sync_common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const OPERATOR: &str = "ops@example.com";
/// The bundle's announced length; half of it is sent, then the server waits.
const BUNDLE_LEN: usize = 8 << 20;

/// Serves one request: headers promising `BUNDLE_LEN` bytes, half of them, then nothing
/// until `hang_up` fires, when it closes the connection mid-body.
async fn stalling_server(hang_up: tokio::sync::oneshot::Receiver<()>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {BUNDLE_LEN}\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&vec![0x5a; BUNDLE_LEN / 2]).await.unwrap();
        socket.flush().await.unwrap();
        let _ = hang_up.await;
        drop(socket);
    });
    format!("http://{addr}/pvm-2.0.0.pvmb")
}

/// An A/B machine of plain files: autoboot.txt naming slot A, four empty slot files, a
/// boot selector, and no trusted keys (nothing gets as far as a signature here).
fn ab_machine(root: &std::path::Path, c: &mut pvm_node::config::NodeConfig) {
    for d in ["p1", "keys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for p in ["p2", "p3", "p4", "p5"] {
        std::fs::write(root.join(p), b"").unwrap();
    }
    pvm_ota::Autoboot {
        normal: 2,
        tryboot: 2,
    }
    .write(&root.join("p1/autoboot.txt"))
    .unwrap();
    pvm_ota::FileBootloader::new(root.join("fw"), 2).unwrap();
    let u = &mut c.update;
    u.keys_dir = root.join("keys");
    u.autoboot = root.join("p1/autoboot.txt");
    u.boot_a = root.join("p2");
    u.boot_b = root.join("p3");
    u.system_a = root.join("p4");
    u.system_b = root.join("p5");
    u.firmware = FirmwareKind::Files(root.join("fw"));
    u.version_file = root.join("version");
    u.kiosk_frame_file = None;
    u.reboot_request = Some(root.join("reboot-request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_downloading_an_update_shows_its_state_and_progress_in_the_fleet_api() {
    let nats = AuthNats::start();
    let cloud = cloud_on_auth_nats(&nats, OPERATOR).await;
    let api = &cloud.api;
    let venue = CloudVenue::create(api).await;
    let code = venue.enrolment_code(api).await;

    let dir = tempfile::tempdir().unwrap();
    let machine = tempfile::tempdir().unwrap();
    let mut config = node_config(dir.path());
    ab_machine(machine.path(), &mut config);
    let node = pvm_node::node::start_with_auth(config, cheap_auth())
        .await
        .unwrap();
    let admin = NodeApi::first_admin(&node).await;
    assert_eq!(admin.get("/api/v1/system/update").await["managed"], true);
    let cloud_url = format!("http://{}", cloud.app.addr);
    let paired = admin
        .post(
            "/api/v1/system/cloud/enrol",
            json!({"cloud_url": cloud_url, "code": code}),
        )
        .await;
    let node_id = paired["node_id"].as_str().unwrap().to_string();

    // Before any update, the fleet shows the agent idle.
    let fleet_node = || async {
        let nodes = api
            .get(
                &format!("/api/v1/tenants/{}/nodes", venue.tenant),
                Some(&venue.token),
            )
            .await
            .expect(200);
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == node_id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    };
    wait_until(30, "the idle update state in the fleet", || async {
        fleet_node().await["update"]["state"] == "idle"
    })
    .await;

    let (hang_up, hung_up) = tokio::sync::oneshot::channel();
    let bundle_url = stalling_server(hung_up).await;
    admin
        .post("/api/v1/system/update/fetch", json!({"url": bundle_url}))
        .await;
    wait_until(30, "the download and its progress in the fleet", || async {
        let n = fleet_node().await;
        n["update"]["state"] == "downloading"
            && n["update"]["progress_pct"]
                .as_i64()
                .is_some_and(|p| (25..=50).contains(&p))
    })
    .await;
    let n = fleet_node().await;
    assert!(n["update"]["last_error"].is_null(), "{n}");

    // The server hangs up mid-body: the node's next heartbeats say the update failed, and why.
    hang_up.send(()).unwrap();
    wait_until(30, "the failed download in the fleet", || async {
        fleet_node().await["update"]["state"] == "failed"
    })
    .await;
    let n = fleet_node().await;
    assert!(n["update"]["progress_pct"].is_null(), "{n}");
    assert!(
        n["update"]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{n}"
    );

    // The fleet API documents the field.
    let doc = api.get("/api/v1/openapi.json", None).await.expect(200);
    let update = &doc["components"]["schemas"]["NodeUpdate"]["properties"];
    for field in ["state", "progress_pct", "target_version", "last_error"] {
        assert!(
            update.get(field).is_some(),
            "NodeUpdate.{field} in {update}"
        );
    }

    node.cloud.stop().await;
    node.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
}
