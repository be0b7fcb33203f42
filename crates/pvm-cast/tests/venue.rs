//! From venue state to the TV: a Chromecast display assigned a screen in pvm-core's state
//! (through `decide`/`apply`, as the node's engine does) reaches the stand-in device as that
//! screen's display URL, and unassigning it stops the receiver.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use pvm_cast::{Bridge, DeviceState};
use pvm_core::displays::ScreenKind;
use pvm_core::{apply, decide, Command, EventBody, SeededEntropy, Timestamp, VenueState};
use serde_json::json;
use tokio::sync::watch;

const SECS: Duration = Duration::from_secs(5);

fn run(state: &mut VenueState, command: Command, entropy: &mut SeededEntropy) -> Vec<EventBody> {
    let events = decide(state, command, Timestamp(1_790_000_000_000), entropy).unwrap();
    for event in &events {
        apply(state, event);
    }
    events.into_iter().map(|e| e.body).collect()
}

#[tokio::test]
async fn a_screen_assigned_in_venue_state_is_cast_and_unassigning_stops_it() {
    let mut fake = FakeDevices::spawn().await;
    let addr = fake.start("bar-tv", json!({})).await;

    let mut entropy = SeededEntropy::new(7);
    let mut state = VenueState::default();
    let screen_id = match run(
        &mut state,
        Command::CreateScreen {
            name: "Tables".into(),
            kind: ScreenKind::TablesBoard,
        },
        &mut entropy,
    )
    .as_slice()
    {
        [EventBody::ScreenSaved { screen }] => screen.id,
        other => panic!("unexpected events {other:?}"),
    };
    let display_id = match run(
        &mut state,
        Command::AddChromecast {
            device_id: "bar-tv".into(),
            name: "Bar".into(),
        },
        &mut entropy,
    )
    .as_slice()
    {
        [EventBody::DisplayAdded { display }] => display.id,
        other => panic!("unexpected events {other:?}"),
    };
    let (states, states_rx) = watch::channel(Arc::new(state.clone()));

    let bridge = Bridge::start(manual_config(&[("bar-tv", addr)])).unwrap();
    let follower = bridge.follow_venue(states_rx, "http://192.0.2.10:8080".into());
    wait_status(&bridge, "bar-tv", SECS, |s| {
        s.state == DeviceState::Discovered
    })
    .await;

    run(
        &mut state,
        Command::AssignScreen {
            display_id,
            screen_id: Some(screen_id),
            always: false,
        },
        &mut entropy,
    );
    states.send(Arc::new(state.clone())).unwrap();
    let load = fake.wait_for_url(0, "bar-tv", SECS).await;
    assert_eq!(
        load["data"]["url"],
        format!("http://192.0.2.10:8080/display/{screen_id}")
    );
    wait_status(&bridge, "bar-tv", SECS, |s| {
        matches!(s.state, DeviceState::Casting { .. })
    })
    .await;

    let mark = fake.mark();
    run(
        &mut state,
        Command::AssignScreen {
            display_id,
            screen_id: None,
            always: false,
        },
        &mut entropy,
    );
    states.send(Arc::new(state)).unwrap();
    fake.wait_for(mark, SECS, |e| {
        is_received(e, "bar-tv", RECEIVER_NS, "STOP")
    })
    .await;
    wait_status(&bridge, "bar-tv", SECS, |s| {
        s.state == DeviceState::Discovered
    })
    .await;

    drop(states);
    tokio::time::timeout(SECS, follower).await.unwrap().unwrap();
    bridge.stop().await;
    fake.shutdown().await;
}
