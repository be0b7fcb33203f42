//! The Chromecast bridge inside a running node: an assignment made through the node's API reaches
//! a stand-in Chromecast (the npm `castv2` Server over TLS on loopback, an independent CASTV2
//! implementation) as a LAUNCH plus the display page's URL, and the device's state shows in the
//! API and the metrics.

#[path = "../../pvm-cast/tests/common/mod.rs"]
mod cast_common;
mod common;

use cast_common::{is_received, FakeDevices, RECEIVER_NS};
use common::{config, create_tournament, test_config, TestNode};
use pvm_node::config::CastDeviceConfig;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_made_through_the_api_is_cast_to_the_chromecast() {
    let mut devices = FakeDevices::spawn().await;
    let addr = devices.start("bar-tv", json!({})).await;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.cast.enabled = true;
    cfg.cast.discovery = false;
    cfg.cast.devices = vec![CastDeviceConfig {
        id: "bar-tv".into(),
        name: "Bar TV".into(),
        addr,
    }];
    cfg.public_url = Some("http://127.0.0.1:9".into());
    let node = TestNode::start_with(dir, cfg).await;
    let admin = node.setup_admin().await;

    let tid = create_tournament(&admin, config("Cast Night")).await;
    let screen = admin
        .post(
            "/api/v1/screens",
            json!({"name": "Clock", "kind": {"type": "tournament_clock", "tournament_id": tid}}),
        )
        .await
        .created();
    let display = admin
        .post(
            "/api/v1/displays",
            json!({"device_id": "bar-tv", "name": "Bar TV"}),
        )
        .await
        .created();
    let mark = devices.mark();
    admin
        .put(
            &format!("/api/v1/displays/{display}/screen"),
            json!({"screen_id": screen}),
        )
        .await
        .ok();

    devices
        .wait_for(mark, Duration::from_secs(15), |e| {
            is_received(e, "bar-tv", RECEIVER_NS, "LAUNCH")
        })
        .await;
    let url = devices
        .wait_for_url(mark, "bar-tv", Duration::from_secs(15))
        .await;
    assert_eq!(
        url["data"]["url"],
        format!("http://127.0.0.1:9/display/{screen}"),
        "{url}"
    );

    let status = admin.get("/api/v1/displays/chromecasts").await.ok();
    assert_eq!(status["enabled"], true);
    assert!(status["devices"]["bar-tv"].is_object(), "{status}");
    let metrics = reqwest::get(format!("{}/metrics", node.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pvm_cast_devices"), "{metrics}");
    let receiver = reqwest::get(format!("{}/cast/receiver.html", node.base))
        .await
        .unwrap();
    assert_eq!(receiver.status(), 200);
    devices.shutdown().await;
}
