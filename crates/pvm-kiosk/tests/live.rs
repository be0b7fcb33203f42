//! The kiosk's WebSocket client against a real node started in-process on loopback: it gets
//! the HDMI view, follows an assignment change, keeps counting and says "reconnecting" while
//! the node is down, and catches up when it returns. The UI side is the real presenter drawing
//! headless, so what is asserted is what the TV would show. Updates arrive as patches to the
//! view held, so every view drawn after the first was rebuilt from patches.

use pvm_core::displays::{ScreenKind, HDMI_DISPLAY_ID};
use pvm_core::players::PlayerDetails;
use pvm_core::structure::{Structure, Template};
use pvm_core::tournament::{TournamentCommand, TournamentConfig};
use pvm_core::views::ScreenContent;
use pvm_core::{Command, Money};
use pvm_kiosk::client::{self, ClientConfig, LiveState};
use pvm_kiosk::headless;
use pvm_kiosk::ui::{Kiosk, Presenter};
use pvm_node::auth::{NewUserRequest, Role};
use pvm_node::config::NodeConfig;
use pvm_node::node::{self, RunningNode};
use slint::platform::software_renderer::RepaintBufferType;
use slint::ComponentHandle;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn config(dir: &Path, listen: SocketAddr) -> NodeConfig {
    let mut c = NodeConfig {
        data_dir: dir.to_path_buf(),
        listen,
        ..Default::default()
    };
    // Loopback only: no time servers, no multicast announcements.
    c.time.ntp_servers.clear();
    c.mdns.enabled = false;
    c
}

/// A node started in-process on loopback, in the test's own runtime. Stopping it closes its
/// WebSocket sessions too, so to the kiosk it goes away as a stopped node process would.
async fn start_node(dir: &Path, listen: SocketAddr) -> RunningNode {
    node::start(config(dir, listen)).await.unwrap()
}

async fn wait_for(
    rx: &mut watch::Receiver<LiveState>,
    what: &str,
    f: impl FnMut(&LiveState) -> bool,
) -> LiveState {
    let found = match tokio::time::timeout(Duration::from_secs(20), rx.wait_for(f)).await {
        Ok(Ok(s)) => Some(s.clone()),
        _ => None,
    };
    match found {
        Some(s) => s,
        None => panic!(
            "timed out waiting for {what}; last state: {:?}",
            *rx.borrow()
        ),
    }
}

/// Applies the client's latest state to the presenter as the app does, and renders.
fn draw(p: &mut Presenter, frame: &mut headless::Frame, live: &LiveState, version: &mut u64) {
    if live.version != *version {
        if let Some(v) = &live.view {
            p.set_view(Rc::new((**v).clone()), live.version);
        }
        *version = live.version;
    }
    p.set_reconnecting(!live.connected);
    p.tick(live.server_now().expect("an offset once connected"));
    frame.render();
}

/// "1:02:03" or "19:58" in seconds.
fn secs(countdown: &str) -> i64 {
    countdown
        .split(':')
        .fold(0, |acc, part| acc * 60 + part.parse::<i64>().unwrap())
}

fn screen_kind(live: &LiveState) -> &'static str {
    match live.view.as_ref().map(|v| &v.content) {
        Some(ScreenContent::Clock(_)) => "clock",
        Some(ScreenContent::TablesBoard(_)) => "tables",
        Some(ScreenContent::Setup(_)) => "setup",
        Some(ScreenContent::Message { .. }) => "message",
        Some(_) => "other",
        None => "none",
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_kiosk_follows_the_hdmi_view_counts_through_a_node_restart_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let addr = node.addr;

    let mut frame = headless::frame(1280, 720, 0, RepaintBufferType::ReusedBuffer).unwrap();
    let mut p = Presenter::new(frame.window.clone_strong());
    let mut shown_version = 0;

    let mut cfg = ClientConfig::new(format!("ws://{addr}/api/v1/ws"), HDMI_DISPLAY_ID);
    cfg.min_backoff = Duration::from_millis(50);
    cfg.max_backoff = Duration::from_millis(400);
    cfg.ping_every = Duration::from_millis(500);
    let (mut rx, task) = client::spawn(cfg);

    // Before the first admin exists, the TV shows the setup screen with the code.
    let live = wait_for(&mut rx, "the setup screen", |s| screen_kind(s) == "setup").await;
    draw(&mut p, &mut frame, &live, &mut shown_version);
    assert_eq!(frame.window.global::<Kiosk>().get_screen(), "setup");
    let code = node
        .setup_code
        .clone()
        .expect("a fresh node has a setup code");
    assert_eq!(
        frame.window.global::<Kiosk>().get_setup_code(),
        code.as_str()
    );

    node.auth
        .complete_setup(
            &code,
            NewUserRequest {
                username: "admin".into(),
                display_name: String::new(),
                role: Role::Admin,
                password: "correct horse battery staple".into(),
            },
            None,
        )
        .unwrap();

    // A running tournament and two screens; HDMI shows the clock.
    let structure = Structure::template(Template::Standard);
    let first_level_ms = structure.items[0].duration_ms();
    node.engine
        .execute(Command::CreateTournament {
            config: TournamentConfig::freezeout(
                "Kiosk Cup",
                Money::units(100),
                Money::units(10),
                20_000,
            ),
            structure,
        })
        .await
        .unwrap();
    let tid = *node.engine.state().tournaments.keys().next().unwrap();
    for name in ["Ada Lovelace", "Alan Turing"] {
        node.engine
            .execute(Command::RegisterNewPlayer {
                tournament_id: tid,
                details: PlayerDetails {
                    name: name.into(),
                    nickname: None,
                    phone: None,
                    email: None,
                },
            })
            .await
            .unwrap();
    }
    node.engine
        .execute(Command::Tournament {
            tournament_id: tid,
            command: TournamentCommand::StartClock,
        })
        .await
        .unwrap();
    for (name, kind) in [
        ("Clock", ScreenKind::TournamentClock { tournament_id: tid }),
        ("Tables", ScreenKind::TablesBoard),
    ] {
        node.engine
            .execute(Command::CreateScreen {
                name: name.into(),
                kind,
            })
            .await
            .unwrap();
    }
    let screen_id = |name: &str| {
        node.engine
            .state()
            .displays
            .screens
            .values()
            .find(|s| s.name == name)
            .map(|s| s.id)
            .unwrap()
    };
    let (clock_screen, tables_screen) = (screen_id("Clock"), screen_id("Tables"));
    let assign = |screen| Command::AssignScreen {
        display_id: HDMI_DISPLAY_ID,
        screen_id: Some(screen),
        always: false,
    };
    node.engine.execute(assign(clock_screen)).await.unwrap();
    let live = wait_for(&mut rx, "the clock screen", |s| {
        s.view.as_ref().and_then(|v| v.screen_id) == Some(clock_screen) && screen_kind(s) == "clock"
    })
    .await;
    draw(&mut p, &mut frame, &live, &mut shown_version);
    let win = frame.window.clone_strong();
    let k = || win.global::<Kiosk>();
    assert_eq!(k().get_screen(), "clock");
    assert_eq!(k().get_tournament_name(), "Kiosk Cup");
    assert_eq!(k().get_level_title(), "Level 1");
    assert!(!k().get_reconnecting());
    let first = secs(&frame.window.get_shown_clock());
    assert!(
        first <= first_level_ms / 1000 && first > 0,
        "{first} s counts down from the level's {first_level_ms} ms"
    );

    // The console reassigns HDMI: the TV follows.
    let started = Instant::now();
    node.engine.execute(assign(tables_screen)).await.unwrap();
    let live = wait_for(&mut rx, "the tables board", |s| screen_kind(s) == "tables").await;
    println!(
        "assignment change reached the kiosk in {:?}",
        started.elapsed()
    );
    draw(&mut p, &mut frame, &live, &mut shown_version);
    assert_eq!(
        k().get_screen(),
        "message",
        "no cash game runs: the board says so"
    );
    node.engine.execute(assign(clock_screen)).await.unwrap();
    let live = wait_for(&mut rx, "the clock again", |s| screen_kind(s) == "clock").await;
    draw(&mut p, &mut frame, &live, &mut shown_version);
    assert_eq!(k().get_screen(), "clock");
    // The node sent those changes as patches to the view the kiosk held.
    assert!(live.patched > 0, "every update came whole: {live:?}");

    // The node goes away: the TV keeps counting and shows the mark.
    node.stop().await.unwrap();
    let live = wait_for(&mut rx, "the link to drop", |s| !s.connected).await;
    draw(&mut p, &mut frame, &live, &mut shown_version);
    assert!(k().get_reconnecting());
    let at_drop = secs(&frame.window.get_shown_clock());
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let live = rx.borrow().clone();
    assert!(!live.connected);
    draw(&mut p, &mut frame, &live, &mut shown_version);
    let later = secs(&frame.window.get_shown_clock());
    assert!(
        later < at_drop,
        "still counting without the node: {at_drop} s then {later} s"
    );
    assert_eq!(k().get_screen(), "clock");

    // It comes back on the same address: the kiosk reconnects with since= and catches up.
    let seq_before = live.seq;
    let node = start_node(dir.path(), addr).await;
    let live = wait_for(&mut rx, "the link to return", |s| {
        s.connected && s.version > live.version
    })
    .await;
    assert!(
        live.seq >= seq_before,
        "resumed from {seq_before}, now at {}",
        live.seq
    );
    assert!(live.connections >= 2);
    draw(&mut p, &mut frame, &live, &mut shown_version);
    assert!(!k().get_reconnecting());
    assert_eq!(k().get_screen(), "clock");
    let back = secs(&frame.window.get_shown_clock());
    assert!(
        back <= later,
        "the clock did not jump back: {later} s then {back} s"
    );

    task.abort();
    node.stop().await.unwrap();
}
