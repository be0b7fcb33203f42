//! Discovery with a real mDNS advertisement: an independent mdns-sd responder advertises a
//! `_googlecast._tcp` service for a stand-in device. Both sides are pinned to the loopback
//! interface, so nothing is announced to any real network.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};
use pvm_cast::discovery::SERVICE_TYPE;
use pvm_cast::{Bridge, BridgeConfig, DeviceState, DiscoveryConfig, Wanted, WantedMap};
use serde_json::json;

/// Unique per run, so parallel runs on one host never collide.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{}x{nanos}", std::process::id())
}

#[tokio::test]
async fn an_advertised_chromecast_is_found_by_its_txt_id_and_cast_to() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("lobby", json!({})).await;

    let device_id = unique("castid");
    let responder = ServiceDaemon::new().unwrap();
    responder.disable_interface(IfKind::All).unwrap();
    responder.enable_interface("lo").unwrap();
    let txt = HashMap::from([
        ("id".to_owned(), device_id.clone()),
        ("fn".to_owned(), "Lobby TV".to_owned()),
        ("md".to_owned(), "Chromecast Ultra".to_owned()),
    ]);
    let info = ServiceInfo::new(
        SERVICE_TYPE,
        &unique("Chromecast-"),
        &format!("{}.local.", unique("cc")),
        "127.0.0.1",
        addr.port(),
        txt,
    )
    .unwrap();
    responder.register(info).unwrap();

    let bridge = Bridge::start(BridgeConfig {
        timings: fast_timings(),
        discovery: Some(DiscoveryConfig {
            interfaces: vec!["lo".to_owned()],
        }),
        ..BridgeConfig::default()
    })
    .unwrap();

    let seen = wait_status(&bridge, &device_id, Duration::from_secs(15), |s| {
        s.state == DeviceState::Discovered
    })
    .await;
    assert_eq!(seen.name.as_deref(), Some("Lobby TV"));
    assert_eq!(seen.model.as_deref(), Some("Chromecast Ultra"));
    assert_eq!(seen.addr, Some(addr));

    let url = "http://192.0.2.10:8080/display/lobby";
    bridge.set_wanted(WantedMap::from([(
        device_id.clone(),
        Wanted {
            url: url.to_owned(),
            always: false,
        },
    )]));
    let load = fake.wait_for_url(0, "lobby", Duration::from_secs(5)).await;
    assert_eq!(load["data"]["url"], url);
    wait_status(&bridge, &device_id, Duration::from_secs(5), |s| {
        matches!(s.state, DeviceState::Casting { .. })
    })
    .await;

    bridge.stop().await;
    let _ = responder.shutdown();
    fake.shutdown().await;
}
