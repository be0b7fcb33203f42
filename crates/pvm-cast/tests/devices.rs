//! The bridge against stand-in Chromecasts: an independent CASTV2 implementation (npm `castv2`)
//! over TLS on loopback, which answers CONNECT, PING, GET_STATUS, LAUNCH and STOP and reports
//! everything it receives.

mod common;

use std::time::{Duration, Instant};

use common::*;
use pvm_cast::{Bridge, DeviceState, ReceiverApp, Wanted, WantedMap};
use serde_json::json;

const SECS: Duration = Duration::from_secs(5);

fn wanted(id: &str, url: &str, always: bool) -> WantedMap {
    WantedMap::from([(
        id.to_owned(),
        Wanted {
            url: url.to_owned(),
            always,
        },
    )])
}

fn is_casting(url: &str) -> impl Fn(&pvm_cast::DeviceStatus) -> bool + '_ {
    move |s| matches!(&s.state, DeviceState::Casting { url: u, .. } if u == url)
}

#[tokio::test]
async fn an_assignment_reaches_the_device_as_a_launch_then_the_url() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({"readyDelayMs": 300})).await;
    let bridge = Bridge::start(manual_config(&[("tv1", addr)])).unwrap();
    let url = "http://192.0.2.10:8080/display/0190-screen";
    bridge.set_wanted(wanted("tv1", url, false));

    let load = fake.wait_for_url(0, "tv1", SECS).await;
    assert_eq!(load["data"]["url"], url);
    assert_eq!(load["data"]["force"], true);

    let events = fake.events_since(0);
    let pos = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        events.iter().position(pred).expect("event present")
    };
    let connect =
        pos(&|e| is_received(e, "tv1", CONNECTION_NS, "CONNECT") && e["dst"] == "receiver-0");
    let launch = pos(&|e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH"));
    let launched = &events[pos(&|e| e["event"] == "launched")];
    let transport = launched["transportId"].as_str().unwrap();
    let app_connect =
        pos(&|e| is_received(e, "tv1", CONNECTION_NS, "CONNECT") && e["dst"] == transport);
    let url_at = pos(&|e| e["event"] == "received" && e["ns"] == DASHCAST_NS);
    assert!(connect < launch && launch < app_connect && app_connect < url_at);
    assert_eq!(events[launch]["data"]["appId"], "84912283");
    assert_eq!(
        load["dst"], transport,
        "the URL goes to the app's transport"
    );

    let status = wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    assert_eq!(status.name.as_deref(), Some("TV tv1"));
    assert_eq!(status.failures, 0);
    bridge.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn heartbeats_continue_and_the_receiver_is_left_running() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({})).await;
    let bridge = Bridge::start(manual_config(&[("tv1", addr)])).unwrap();
    let url = "http://192.0.2.10:8080/display/a";
    bridge.set_wanted(wanted("tv1", url, false));
    let casting = wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    // Every report of the first cast is in before the mark: they precede this one.
    fake.wait_for_url(0, "tv1", SECS).await;

    let mark = fake.mark();
    // Five heartbeat periods, well past `silent_after`.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let pings = fake.count(mark, |e| is_received(e, "tv1", HEARTBEAT_NS, "PING"));
    assert!(
        pings >= 4,
        "only {pings} PINGs in 1.5 s at a 200 ms heartbeat"
    );
    assert_eq!(
        fake.count(mark, |e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH")),
        0,
        "a healthy receiver is not relaunched"
    );
    let still = bridge.statuses().borrow()["tv1"].clone();
    assert_eq!(still.state, casting.state, "casting since the same moment");
    bridge.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn a_device_restart_leads_to_a_recast_within_seconds() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({})).await;
    let bridge = Bridge::start(manual_config(&[("tv1", addr)])).unwrap();
    let url = "http://192.0.2.10:8080/display/a";
    bridge.set_wanted(wanted("tv1", url, false));
    wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    // Every report of the first cast is in before the mark: they precede this one.
    fake.wait_for_url(0, "tv1", SECS).await;

    let mark = fake.mark();
    let started = Instant::now();
    fake.act("restart", "tv1").await;
    wait_status(&bridge, "tv1", SECS, |s| {
        matches!(s.state, DeviceState::Lost { .. })
    })
    .await;
    fake.wait_for(mark, SECS, |e| e["event"] == "launched")
        .await;
    let load = fake.wait_for_url(mark, "tv1", SECS).await;
    assert_eq!(load["data"]["url"], url);
    wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    eprintln!("re-cast {:?} after the restart", started.elapsed());
    bridge.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn a_stopped_receiver_is_relaunched() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({})).await;
    let bridge = Bridge::start(manual_config(&[("tv1", addr)])).unwrap();
    let url = "http://192.0.2.10:8080/display/a";
    bridge.set_wanted(wanted("tv1", url, false));
    wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    // Every report of the first cast is in before the mark: they precede this one.
    fake.wait_for_url(0, "tv1", SECS).await;

    let mark = fake.mark();
    fake.act("stopApp", "tv1").await;
    fake.wait_for(mark, SECS, |e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH"))
        .await;
    let load = fake.wait_for_url(mark, "tv1", SECS).await;
    assert_eq!(load["data"]["url"], url);
    wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    bridge.stop().await;
    fake.shutdown().await;
}

fn casting_failures(bridge: &pvm_cast::BridgeHandle, id: &str) -> u32 {
    bridge.statuses().borrow()[id].failures
}

#[tokio::test]
async fn a_receiver_that_keeps_stopping_is_relaunched_with_backoff() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({})).await;
    let mut config = manual_config(&[("tv1", addr)]);
    config.timings.retry_min = Duration::from_millis(300);
    // Casting must hold this long to clear the failure count: longer than this test's
    // stop/relaunch cycles take on a loaded machine.
    config.timings.retry_max = Duration::from_secs(10);
    let bridge = Bridge::start(config).unwrap();
    let mut states = bridge.statuses();
    let history = tokio::spawn(async move {
        let mut seen = Vec::new();
        while states.changed().await.is_ok() {
            if let Some(s) = states.borrow_and_update().get("tv1") {
                seen.push(s.state.clone());
            }
        }
        seen
    });
    let url = "http://192.0.2.10:8080/display/a";
    bridge.set_wanted(wanted("tv1", url, false));

    let mut relaunch_after = Vec::new();
    for launch in 1..=3 {
        // Each launch gets its own transport (web-1, web-2, …) from the stand-in device.
        let transport = format!("web-{launch}");
        fake.wait_for(0, SECS, |e| {
            e["event"] == "received" && e["ns"] == DASHCAST_NS && e["dst"] == transport.as_str()
        })
        .await;
        wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
        let mark = fake.mark();
        fake.act("stopApp", "tv1").await;
        let stopped = fake
            .wait_for(mark, SECS, |e| e["event"] == "appStopped")
            .await;
        let relaunched = fake
            .wait_for(mark, SECS, |e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH"))
            .await;
        // Timed on the device's clock: what the test observes can lag under load.
        let ms = relaunched["t"].as_u64().unwrap() - stopped["t"].as_u64().unwrap();
        relaunch_after.push(Duration::from_millis(ms));
    }
    wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    // The first stop is re-cast at once; the third waits out backoff(2) = 2 × retry_min.
    assert!(
        relaunch_after[2] >= Duration::from_millis(600),
        "{relaunch_after:?}"
    );
    bridge.stop().await;
    let history = history.await.unwrap();
    assert!(
        history.contains(&DeviceState::Error {
            reason: "the receiver keeps stopping".into()
        }),
        "{history:#?}"
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn stopping_the_bridge_leaves_the_receivers_running() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({})).await;
    let bridge = Bridge::start(manual_config(&[("tv1", addr)])).unwrap();
    let url = "http://192.0.2.10:8080/display/a";
    bridge.set_wanted(wanted("tv1", url, false));
    wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    bridge.stop().await;
    fake.wait_for(0, SECS, |e| e["event"] == "disconnect").await;
    assert_eq!(
        fake.count(0, |e| is_received(e, "tv1", RECEIVER_NS, "STOP")),
        0
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn a_silent_device_is_lost_and_its_still_running_receiver_left_alone_when_it_answers() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({})).await;
    let bridge = Bridge::start(manual_config(&[("tv1", addr)])).unwrap();
    let url = "http://192.0.2.10:8080/display/a";
    bridge.set_wanted(wanted("tv1", url, false));
    wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    fake.wait_for_url(0, "tv1", SECS).await;

    fake.command(json!({"cmd": "silence", "device": "tv1", "on": true}))
        .await;
    let lost = wait_status(&bridge, "tv1", SECS, |s| {
        matches!(s.state, DeviceState::Lost { .. })
    })
    .await;
    let DeviceState::Lost { reason, .. } = &lost.state else {
        unreachable!()
    };
    assert!(reason.contains("silent"), "{reason}");

    let mark = fake.mark();
    fake.command(json!({"cmd": "silence", "device": "tv1", "on": false}))
        .await;
    fake.wait_for(mark, SECS, |e| {
        is_received(e, "tv1", CONNECTION_NS, "CONNECT") && e["dst"] == "receiver-0"
    })
    .await;
    wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    // A few polls later: the receiver that kept showing the page was neither relaunched nor
    // reloaded.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        fake.count(mark, |e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH")),
        0
    );
    assert_eq!(
        fake.count(mark, |e| e["event"] == "received" && e["ns"] == DASHCAST_NS),
        0
    );
    bridge.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn a_launch_error_gives_the_devices_reason_and_is_retried_with_backoff() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({"launchError": "NOT_FOUND"})).await;
    let bridge = Bridge::start(manual_config(&[("tv1", addr)])).unwrap();
    let url = "http://192.0.2.10:8080/display/a";
    bridge.set_wanted(wanted("tv1", url, false));

    let failed = wait_status(&bridge, "tv1", SECS, |s| {
        matches!(s.state, DeviceState::Error { .. }) && s.failures >= 3
    })
    .await;
    assert_eq!(
        failed.state,
        DeviceState::Error {
            reason: "LAUNCH_ERROR: NOT_FOUND".into()
        }
    );
    // Three failures at 100, 200, 400 ms: the retries slow down instead of hammering the TV.
    let launches = fake.count(0, |e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH"));
    assert!(launches <= 6, "{launches} launches");

    let mark = fake.mark();
    fake.command(json!({"cmd": "set", "device": "tv1", "launchError": null}))
        .await;
    fake.wait_for_url(mark, "tv1", SECS).await;
    let casting = wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    assert!(
        casting.failures > 0,
        "the count clears only after casting holds"
    );
    bridge.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn someone_elses_cast_is_left_alone_unless_the_assignment_says_always() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({})).await;
    fake.command(
        json!({"cmd": "otherApp", "device": "tv1", "appId": "233637DE", "displayName": "YouTube"}),
    )
    .await;
    let bridge = Bridge::start(manual_config(&[("tv1", addr)])).unwrap();
    let url = "http://192.0.2.10:8080/display/a";
    bridge.set_wanted(wanted("tv1", url, false));

    let busy = wait_status(&bridge, "tv1", SECS, |s| {
        matches!(s.state, DeviceState::Busy { .. })
    })
    .await;
    assert_eq!(
        busy.state,
        DeviceState::Busy {
            app: "YouTube".into()
        }
    );
    // Several status polls later, still hands off.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        fake.count(0, |e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH")),
        0
    );

    bridge.set_wanted(wanted("tv1", url, true));
    fake.wait_for(0, SECS, |e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH"))
        .await;
    wait_status(&bridge, "tv1", SECS, is_casting(url)).await;
    bridge.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn with_dashcast_a_new_url_relaunches_the_receiver_that_navigated_away() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({})).await;
    let bridge = Bridge::start(manual_config(&[("tv1", addr)])).unwrap();
    let first = "http://192.0.2.10:8080/display/a";
    bridge.set_wanted(wanted("tv1", first, false));
    wait_status(&bridge, "tv1", SECS, is_casting(first)).await;
    let first_load = fake.wait_for_url(0, "tv1", SECS).await;

    let mark = fake.mark();
    let second = "http://192.0.2.10:8080/display/b";
    bridge.set_wanted(wanted("tv1", second, false));
    let load = fake.wait_for_url(mark, "tv1", SECS).await;
    assert_eq!(load["data"]["url"], second);
    assert_ne!(load["dst"], first_load["dst"], "sent to the new launch");
    wait_status(&bridge, "tv1", SECS, is_casting(second)).await;
    assert_eq!(
        fake.count(mark, |e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH")),
        1
    );
    assert_eq!(
        fake.count(mark, |e| is_received(e, "tv1", RECEIVER_NS, "STOP")),
        1,
        "the old receiver is stopped before the new launch"
    );
    assert_eq!(
        casting_failures(&bridge, "tv1"),
        0,
        "a page change is no failure"
    );
    bridge.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn a_receiver_that_stays_up_takes_a_new_url_in_place_and_is_stopped_when_unassigned() {
    const NS: &str = "urn:x-cast:org.pvm.display";
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("tv1", json!({"appNamespace": NS})).await;
    let mut config = manual_config(&[("tv1", addr)]);
    config.receiver = ReceiverApp {
        app_id: "5EC0DE01".into(),
        namespace: NS.into(),
        relaunch_to_change_url: false,
    };
    let bridge = Bridge::start(config).unwrap();
    let first = "http://192.0.2.10:8080/display/a";
    bridge.set_wanted(wanted("tv1", first, false));
    wait_status(&bridge, "tv1", SECS, is_casting(first)).await;
    let launch = fake
        .wait_for(0, SECS, |e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH"))
        .await;
    assert_eq!(launch["data"]["appId"], "5EC0DE01");
    let first_load = fake.wait_for_app_message(0, "tv1", NS, SECS).await;

    let mark = fake.mark();
    let second = "http://192.0.2.10:8080/display/b";
    bridge.set_wanted(wanted("tv1", second, false));
    let load = fake.wait_for_app_message(mark, "tv1", NS, SECS).await;
    assert_eq!(load["data"]["url"], second);
    assert_eq!(
        load["dst"], first_load["dst"],
        "same receiver, same transport"
    );
    wait_status(&bridge, "tv1", SECS, is_casting(second)).await;
    assert_eq!(
        fake.count(mark, |e| is_received(e, "tv1", RECEIVER_NS, "LAUNCH")),
        0
    );

    bridge.set_wanted(WantedMap::new());
    let stop = fake
        .wait_for(mark, SECS, |e| is_received(e, "tv1", RECEIVER_NS, "STOP"))
        .await;
    assert!(stop["data"]["sessionId"]
        .as_str()
        .unwrap()
        .starts_with("session-tv1-"));
    wait_status(&bridge, "tv1", SECS, |s| s.state == DeviceState::Discovered).await;
    bridge.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn an_assigned_device_that_is_nowhere_is_reported_not_found() {
    let bridge = Bridge::start(manual_config(&[])).unwrap();
    bridge.set_wanted(wanted("ghost", "http://192.0.2.10:8080/display/a", false));
    wait_status(&bridge, "ghost", SECS, |s| s.state == DeviceState::NotFound).await;
    bridge.set_wanted(WantedMap::new());
    let mut statuses = bridge.statuses();
    tokio::time::timeout(SECS, statuses.wait_for(|s| s.is_empty()))
        .await
        .unwrap()
        .unwrap();
    bridge.stop().await;
}

#[tokio::test]
async fn twenty_devices_at_once_each_show_their_own_screen() {
    let mut fake = FakeDevices::spawn().await;
    let mut devices = Vec::new();
    for i in 0..20 {
        let id = format!("tv{i:02}");
        let addr = fake.start(&id, json!({})).await;
        devices.push((id, addr));
    }
    let refs: Vec<(&str, _)> = devices.iter().map(|(id, a)| (id.as_str(), *a)).collect();
    let bridge = Bridge::start(manual_config(&refs)).unwrap();
    let wanted: WantedMap = devices
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
        .collect();
    let started = Instant::now();
    bridge.set_wanted(wanted);
    for (id, _) in &devices {
        let url = format!("http://192.0.2.10:8080/display/{id}");
        wait_status(&bridge, id, Duration::from_secs(15), is_casting(&url)).await;
        let load = fake.wait_for_url(0, id, SECS).await;
        assert_eq!(load["data"]["url"], url.as_str());
    }
    eprintln!("20 devices casting after {:?}", started.elapsed());
    bridge.stop().await;
    fake.shutdown().await;
}
