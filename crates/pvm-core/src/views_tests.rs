//! What the screens show, computed from a venue driven through `decide`/`apply`.

use super::*;
use crate::cash::CashCommand;
use crate::displays::HDMI_DISPLAY_ID;
use crate::ids::TableId;
use crate::testkit::Night;
use crate::time::MINUTE_MS;
use crate::tournament::{BustInput, TournamentCommand, TournamentConfig};
use crate::{Command, EventBody, Money};

fn created(events: &[crate::Event]) -> uuid::Uuid {
    events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::Cash { event } => event.created_id(),
            EventBody::ScreenSaved { screen } => Some(screen.id.0),
            _ => None,
        })
        .expect("the command created something")
}

fn cash(n: &mut Night, command: CashCommand) -> Vec<crate::Event> {
    n.run(Command::Cash { command }).unwrap()
}

fn game(n: &mut Night, game: &str, sb: i64, bb: i64) -> GameId {
    let ev = cash(
        n,
        CashCommand::CreateGame {
            game: game.into(),
            small_blind: Money::units(sb),
            big_blind: Money::units(bb),
            min_buy_in: None,
            max_buy_in: None,
            name: None,
        },
    );
    GameId(created(&ev))
}

fn table(n: &mut Night, number: u32, game_id: GameId) -> TableId {
    let ev = cash(
        n,
        CashCommand::AddTable {
            number,
            seat_count: 9,
            game_id,
        },
    );
    TableId(created(&ev))
}

fn join(n: &mut Night, game_id: GameId, name: &str) {
    cash(
        n,
        CashCommand::JoinWaitlist {
            game_id,
            name: name.into(),
            phone: Some("+353 1 234 5678".into()),
            player_id: None,
        },
    );
}

fn screen(n: &mut Night, name: &str, kind: ScreenKind) -> ScreenId {
    let ev = n
        .run(Command::CreateScreen {
            name: name.into(),
            kind,
        })
        .unwrap();
    ScreenId(created(&ev))
}

fn no_setup() -> SetupInfo {
    SetupInfo::default()
}

fn clock_of(n: &Night) -> ClockScreen {
    clock_screen(&n.state, n.tour(), n.now)
}

#[test]
fn the_clock_at_level_1_shows_the_whole_level_and_every_segment_to_come() {
    let mut n = Night::standard();
    n.field(3);
    let c = clock_of(&n);
    assert_eq!(c.status, "not_started");
    assert!(!c.running);
    assert_eq!(c.time_left, "20:00");
    assert_eq!(c.level_title, "Level 1");
    assert_eq!(c.blinds, "50/100");
    assert_eq!(c.next, "Next: 100/200");
    assert_eq!(c.next_break, "Break in 1:20:00");
    assert_eq!(c.segments.len(), n.tour().structure.items.len());
    assert_eq!(c.segments[0].title, "Level 1");
    assert_eq!(c.segments[0].duration_ms, 20 * MINUTE_MS);
    assert!(c.segments[4].is_break);
    assert_eq!(c.players_left, "3 / 3");
    assert_eq!(c.prize_pool, "€270");
    assert_eq!(c.average_stack, "20,000");
    assert_eq!(
        c.registration,
        "Late registration open until the end of level 6"
    );

    n.t(TournamentCommand::StartClock).unwrap();
    n.wait_minutes(7);
    n.now = n.now.plus_millis(-4_000);
    let c = clock_of(&n);
    assert!(c.running);
    assert_eq!(c.time_left, "13:04");
    assert_eq!(c.remaining_ms, 13 * MINUTE_MS + 4_000);
    // A renderer counting down locally from the segments lands where the node does.
    n.wait_minutes(14);
    let c = clock_of(&n);
    assert_eq!(c.level_title, "Level 2");
    assert_eq!(c.segments[0].title, "Level 2");
    assert_eq!(c.segments.len(), n.tour().structure.items.len() - 1);
    assert_eq!(c.average_stack_bb, "100.0 BB");
}

#[test]
fn the_break_screen_shows_the_break_and_the_structures_colour_up_note() {
    let mut n = Night::standard();
    n.field(2);
    n.t(TournamentCommand::StartClock).unwrap();
    n.run_past_level(8);
    let c = clock_of(&n);
    assert!(c.on_break);
    assert_eq!(c.level_title, "Break");
    assert_eq!(c.next, "Next: 600/1,200 BB ante 1,200");
    // Without a chip plan the structure's own note is shown.
    assert_eq!(c.blinds, "colour up: race off the 25s");
    assert_eq!(c.time_left, "15:00");
}

#[test]
fn the_seating_draw_lists_active_players_alphabetically_with_table_and_seat() {
    let mut n = Night::standard();
    n.t(TournamentCommand::AddTable {
        number: 7,
        seats: 9,
    })
    .unwrap();
    for name in ["zoe Quinn", "Adam Ant", "bob Marley", "Carla Bruni"] {
        let p = n.player(name);
        n.register(p);
    }
    // A tenth seat is not there: the 10th player waits unseated as an alternate.
    let tb = n.tour().floor.tables[0].id;
    for seat in 1..=9 {
        if !n.tour().floor.tables[0].occupants.contains_key(&seat) {
            n.t(TournamentCommand::LockSeat { table_id: tb, seat })
                .unwrap();
        }
    }
    let p = n.player("Dora Alternate");
    n.register(p);
    let busted = n.player("Eve Gone");
    let gone = n.register(busted);
    n.bust(gone).unwrap();
    let s = seating_screen(n.tour());
    let names: Vec<&str> = s.lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Adam Ant",
            "bob Marley",
            "Carla Bruni",
            "Dora Alternate",
            "zoe Quinn"
        ]
    );
    for l in &s.lines {
        if l.name == "Dora Alternate" {
            assert_eq!((l.table.as_str(), l.seat.as_str()), ("–", "–"));
        } else {
            assert_eq!(l.table, "7");
            assert!(l.seat.parse::<u8>().is_ok());
        }
    }
}

#[test]
fn the_payouts_screen_shows_the_pool_places_and_who_finished_where() {
    let mut c = TournamentConfig::freezeout("Payouts", Money::units(100), Money::ZERO, 10_000);
    c.payout_plan = crate::payouts::PayoutPlan::Custom {
        shares_bp: vec![5_000, 3_000, 2_000],
    };
    let mut n = Night::new(c);
    let es = n.field(10);
    n.bust(es[9]).unwrap();
    n.t(TournamentCommand::Bust {
        busts: vec![
            BustInput {
                entry_id: es[8],
                stack: Some(100),
            },
            BustInput {
                entry_id: es[7],
                stack: Some(100),
            },
        ],
        eliminated_by: None,
    })
    .unwrap();
    for e in &es[3..7] {
        n.bust(*e).unwrap();
    }
    n.bust(es[2]).unwrap();
    let p = payouts_screen(&n.state, n.tour());
    assert_eq!(p.prize_pool, "€1,000");
    assert_eq!(p.places_paid, "3 places paid");
    let lines: Vec<(&str, &str, &str)> = p
        .lines
        .iter()
        .map(|l| (l.place.as_str(), l.amount.as_str(), l.name.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("1st", "€500", ""),
            ("2nd", "€300", ""),
            ("3rd", "€200", "Player 02"),
        ]
    );
}

#[test]
fn the_waiting_list_board_lists_running_games_as_waiting_lists_and_nothing_else_as_running() {
    let mut n = Night::standard();
    let nlh = game(&mut n, "NLH", 1, 3);
    let plo = game(&mut n, "PLO", 2, 5);
    let idle = game(&mut n, "NLH", 5, 10);
    let t1 = table(&mut n, 1, nlh);
    let t2 = table(&mut n, 2, plo);
    table(&mut n, 3, idle);
    cash(&mut n, CashCommand::OpenTable { table_id: t1 });
    join(&mut n, nlh, "Ana Martins");
    join(&mut n, nlh, "Bruno Costa");
    join(&mut n, plo, "Carla Dias");
    let board = waiting_list(&n.state, &[], n.now);
    let shown: Vec<(&str, bool, usize)> = board
        .games
        .iter()
        .map(|g| (g.game.as_str(), g.interest_only, g.lines.len()))
        .collect();
    // NLH 1/3 is running; PLO only has an interest list; the idle game is not shown at all.
    assert_eq!(shown, vec![("NLH 1/3", false, 2), ("PLO 2/5", true, 1)]);
    let positions: Vec<u32> = board.games[0].lines.iter().map(|l| l.position).collect();
    assert_eq!(positions, vec![1, 2]);
    assert_eq!(
        board.games[0].lines[0].name, "Ana M.",
        "the privacy setting holds"
    );
    for g in &board.games {
        let running = n
            .state
            .cash
            .games
            .iter()
            .any(|(id, x)| x.name() == g.game && n.state.cash.is_running(*id));
        assert_eq!(!g.interest_only, running, "{} is shown as running", g.game);
    }
    // The PLO table opens: its interest list becomes a waiting list; NLH's table closes once
    // empty and NLH is no longer shown as running.
    cash(&mut n, CashCommand::OpenTable { table_id: t2 });
    cash(&mut n, CashCommand::CloseTable { table_id: t1 });
    let board = waiting_list(&n.state, &[], n.now);
    let shown: Vec<(&str, bool)> = board
        .games
        .iter()
        .map(|g| (g.game.as_str(), g.interest_only))
        .collect();
    assert_eq!(shown, vec![("PLO 2/5", false), ("NLH 1/3", true)]);
    // The tables board lists only running games.
    let tables = tables_board(&n.state, n.now);
    let names: Vec<&str> = tables.lines.iter().map(|l| l.game.as_str()).collect();
    assert_eq!(names, vec!["PLO 2/5"]);
    assert_eq!(tables.lines[0].open_seats, 9);
    // A screen limited to one game shows only it.
    let only = waiting_list(&n.state, &[nlh], n.now);
    assert_eq!(only.games.len(), 1);
    assert!(serde_json::to_string(&only).unwrap().find("+353").is_none());
}

#[test]
fn a_rotation_shows_its_screens_in_order_and_a_display_shows_the_rotation() {
    let mut n = Night::standard();
    n.field(2);
    let tid = n.tid;
    let clock = screen(
        &mut n,
        "Clock",
        ScreenKind::TournamentClock { tournament_id: tid },
    );
    let seats = screen(
        &mut n,
        "Seats",
        ScreenKind::SeatingDraw { tournament_id: tid },
    );
    let rotation = screen(
        &mut n,
        "Lobby",
        ScreenKind::Rotation {
            screens: vec![seats, clock],
            interval_secs: 15,
        },
    );
    n.run(Command::AssignScreen {
        display_id: HDMI_DISPLAY_ID,
        screen_id: Some(rotation),
        always: true,
    })
    .unwrap();
    let view = display_view(&n.state, HDMI_DISPLAY_ID, n.now, &no_setup());
    assert_eq!(view.screen_id, Some(rotation));
    assert_eq!(view.server_time_ms, n.now.as_millis());
    match &view.content {
        ScreenContent::Rotation {
            interval_secs,
            items,
        } => {
            assert_eq!(*interval_secs, 15);
            assert!(matches!(items[0], ScreenContent::SeatingDraw(_)));
            assert!(matches!(items[1], ScreenContent::Clock(_)));
            assert_eq!(items.len(), 2);
        }
        other => panic!("expected a rotation, got {other:?}"),
    }
    // Nested rotations are refused, and a screen in a rotation cannot be deleted.
    let err = n
        .run(Command::CreateScreen {
            name: "Nested".into(),
            kind: ScreenKind::Rotation {
                screens: vec![rotation],
                interval_secs: 15,
            },
        })
        .unwrap_err();
    assert!(err.to_string().contains("cannot be nested"), "{err}");
    let err = n
        .run(Command::DeleteScreen { screen_id: clock })
        .unwrap_err();
    assert!(err.to_string().contains("part of the rotation"), "{err}");
}

#[test]
fn the_setup_screen_never_shows_a_code_it_was_not_given_and_none_once_set_up() {
    let n = Night::standard();
    let waiting = SetupInfo {
        setup_required: true,
        setup_code: None,
        console_urls: vec!["http://pvm.local".into(), "http://192.168.1.20".into()],
        notices: Vec::new(),
        venue_name: None,
    };
    let view = display_view(&n.state, HDMI_DISPLAY_ID, n.now, &waiting);
    let ScreenContent::Setup(s) = &view.content else {
        panic!("setup is required: the setup screen shows");
    };
    assert_eq!(s.setup_code, None);
    assert_eq!(s.console_url, "http://pvm.local");
    assert_eq!(s.other_urls, vec!["http://192.168.1.20".to_string()]);
    assert_eq!(s.qr_payload, "http://pvm.local");

    let with_code = SetupInfo {
        setup_code: Some("483-921".into()),
        ..waiting.clone()
    };
    let view = display_view(&n.state, HDMI_DISPLAY_ID, n.now, &with_code);
    let ScreenContent::Setup(s) = &view.content else {
        panic!("setup screen expected");
    };
    assert_eq!(s.setup_code.as_deref(), Some("483-921"));

    // Set up: a code passed by mistake is never drawn, even on an explicit setup screen.
    let mut n = n;
    let setup_screen_id = screen(&mut n, "Setup", ScreenKind::Setup);
    let done = SetupInfo {
        setup_required: false,
        ..with_code
    };
    let view = screen_view(&n.state, setup_screen_id, n.now, &done);
    let ScreenContent::Setup(s) = &view.content else {
        panic!("setup screen expected");
    };
    assert_eq!(s.setup_code, None);
    assert!(!serde_json::to_string(&view).unwrap().contains("483-921"));
}

#[test]
fn the_setup_screen_welcomes_the_configured_venue_name_until_the_venue_names_itself() {
    let mut n = Night::standard();
    let now = n.now;
    let title = |state: &VenueState, setup: &SetupInfo| {
        let view = display_view(state, HDMI_DISPLAY_ID, now, setup);
        let ScreenContent::Setup(s) = view.content else {
            panic!("setup is required: the setup screen shows");
        };
        s.title
    };
    let unnamed = SetupInfo {
        setup_required: true,
        ..SetupInfo::default()
    };
    assert_eq!(title(&n.state, &unnamed), "Welcome to Poker Room");
    let configured = SetupInfo {
        venue_name: Some("The River Room".into()),
        ..unnamed.clone()
    };
    assert_eq!(title(&n.state, &configured), "Welcome to The River Room");
    let blank = SetupInfo {
        venue_name: Some("  ".into()),
        ..unnamed.clone()
    };
    assert_eq!(title(&n.state, &blank), "Welcome to Poker Room");

    // The name the venue sets in the console is its own choice: it wins over the configured one.
    let settings = crate::venue::VenueSettings {
        name: "Riverside Poker".into(),
        ..n.state.settings.clone()
    };
    n.run(Command::UpdateSettings { settings }).unwrap();
    assert_eq!(title(&n.state, &configured), "Welcome to Riverside Poker");
}

#[test]
fn first_boot_mistakes_show_on_the_setup_screen_wherever_it_is_shown_and_nowhere_else() {
    let mut n = Night::standard();
    let notice = |line, setting: &str, message: &str| SetupNotice {
        setting: Some(setting.into()),
        line: Some(line),
        message: message.into(),
    };
    let mistakes = SetupInfo {
        setup_required: true,
        setup_code: Some("483-921".into()),
        console_urls: vec!["http://pvm.local".into()],
        notices: vec![
            notice(3, "timezone", "timezone `Mars/Olympus` is not a time zone"),
            SetupNotice {
                setting: None,
                line: None,
                message: "pvm.toml is not valid TOML".into(),
            },
            notice(5, "colour", "unknown setting"),
            notice(6, "wifi_country", "`XX` is not a country code"),
            notice(7, "hostname", "hostname `-x` must be letters"),
        ],
        venue_name: None,
    };
    let view = display_view(&n.state, HDMI_DISPLAY_ID, n.now, &mistakes);
    let ScreenContent::Setup(s) = &view.content else {
        panic!("setup is required: the setup screen shows");
    };
    assert_eq!(
        s.notices,
        vec![
            "Line 3: timezone `Mars/Olympus` is not a time zone".to_string(),
            "pvm.toml is not valid TOML".to_string(),
            "Line 5, colour: unknown setting".to_string(),
            "…and 2 more (see System in the console)".to_string(),
        ],
        "the setting is named only where the message does not already, and the list is cut"
    );
    assert!(s.notices_title.contains("pvm.toml"), "{}", s.notices_title);

    // Without mistakes there is no heading either.
    let clean = SetupInfo {
        notices: Vec::new(),
        ..mistakes.clone()
    };
    let view = display_view(&n.state, HDMI_DISPLAY_ID, n.now, &clean);
    let ScreenContent::Setup(s) = &view.content else {
        panic!("setup screen expected");
    };
    assert!(s.notices.is_empty() && s.notices_title.is_empty());

    // Once an admin exists the TV shows the venue's screens, which carry no notices; a setup
    // screen assigned on purpose still lists them, with no code.
    let done = SetupInfo {
        setup_required: false,
        ..mistakes.clone()
    };
    let view = display_view(&n.state, HDMI_DISPLAY_ID, n.now, &done);
    assert!(!matches!(view.content, ScreenContent::Setup(_)));
    assert!(!serde_json::to_string(&view)
        .unwrap()
        .contains("Mars/Olympus"));
    let setup_screen_id = screen(&mut n, "Setup", ScreenKind::Setup);
    let view = screen_view(&n.state, setup_screen_id, n.now, &done);
    let ScreenContent::Setup(s) = &view.content else {
        panic!("setup screen expected");
    };
    assert_eq!(s.setup_code, None);
    assert_eq!(s.notices.len(), 4);
}

#[test]
fn announcements_show_until_they_expire() {
    let mut n = Night::standard();
    n.run(Command::Announce {
        text: "Dinner break at 20:00".into(),
        style: AnnouncementStyle::Ticker,
        duration_secs: Some(60),
    })
    .unwrap();
    let view = display_view(&n.state, HDMI_DISPLAY_ID, n.now, &no_setup());
    assert_eq!(view.announcements.len(), 1);
    assert_eq!(view.announcements[0].text, "Dinner break at 20:00");
    n.wait_minutes(1);
    let view = display_view(&n.state, HDMI_DISPLAY_ID, n.now, &no_setup());
    assert!(view.announcements.is_empty());
}
