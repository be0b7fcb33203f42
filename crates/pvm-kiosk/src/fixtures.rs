//! Sample views of every screen, as the node would send them: the render tests draw them, the
//! bench times them. Values are realistic (a 40-runner €100 freezeout, a cash room with three
//! games), so the pictures show what a venue would see.

use pvm_core::displays::{AnnouncementStyle, HDMI_DISPLAY_ID};
use pvm_core::ids::TournamentId;
use pvm_core::views::*;
use uuid::Uuid;

/// The instant all samples are made at, on the node's clock (a round number of intervals, so
/// rotation arithmetic in tests is easy to follow).
pub const ANCHOR_MS: i64 = 1_800_000_000_000;

pub fn brand() -> Brand {
    Brand {
        venue_name: "Casino Royale Poker Room".into(),
        background: "#0b0f14".into(),
        foreground: "#f2f4f8".into(),
        accent: "#f5b800".into(),
        logo: None,
    }
}

pub fn view(content: ScreenContent) -> DisplayView {
    DisplayView {
        display_id: Some(HDMI_DISPLAY_ID),
        screen_id: None,
        server_time_ms: ANCHOR_MS,
        brand: brand(),
        rotation: 0,
        overscan_percent: 0,
        announcements: Vec::new(),
        content,
    }
}

fn level(n: u32, sb: u64, bb: u64, mins: i64) -> ClockSegment {
    ClockSegment {
        title: format!("Level {n}"),
        detail: format!("{}/{} ante {}", group(sb), group(bb), group(bb)),
        is_break: false,
        duration_ms: mins * 60_000,
    }
}

fn brk(mins: i64, note: &str) -> ClockSegment {
    ClockSegment {
        title: "Break".into(),
        detail: note.into(),
        is_break: true,
        duration_ms: mins * 60_000,
    }
}

fn group(n: u64) -> String {
    pvm_core::format::grouped(n)
}

/// Level 1 of a running freezeout with 12:00 left.
pub fn clock_screen() -> ClockScreen {
    let segments = vec![
        level(1, 100, 200, 20),
        level(2, 200, 400, 20),
        brk(15, "Colour up the T25 chips"),
        level(3, 300, 600, 20),
        level(4, 400, 800, 20),
    ];
    ClockScreen {
        tournament_id: TournamentId(Uuid::from_u128(0x42)),
        tournament_name: "Friday Night €100 Freezeout".into(),
        status: "running".into(),
        running: true,
        remaining_ms: 12 * 60_000,
        time_left: "12:00".into(),
        on_break: false,
        level_title: segments[0].title.clone(),
        blinds: segments[0].detail.clone(),
        next: "Next: 200/400 ante 400".into(),
        next_break: "Break in 32:00".into(),
        segments,
        hand_for_hand: false,
        players_left: "37 / 40".into(),
        entries: "40".into(),
        reentries: "6".into(),
        rebuys: "0".into(),
        addons: "0".into(),
        average_stack: "21,622".into(),
        average_stack_bb: "108 BB".into(),
        chips_in_play: "800,000".into(),
        prize_pool: "€4,000".into(),
        overlay: String::new(),
        payouts: vec![
            ("1st".into(), "€1,600".into()),
            ("2nd".into(), "€1,000".into()),
            ("3rd".into(), "€640".into()),
            ("4th".into(), "€440".into()),
            ("5th".into(), "€320".into()),
        ],
        registration: "Late registration open until the end of level 6".into(),
    }
}

pub fn clock() -> DisplayView {
    view(ScreenContent::Clock(Box::new(clock_screen())))
}

/// The same tournament 3 minutes into its first break.
pub fn break_view() -> DisplayView {
    let mut c = clock_screen();
    c.segments.drain(..2);
    c.remaining_ms = 12 * 60_000;
    c.on_break = true;
    c.level_title = "Break".into();
    c.blinds = c.segments[0].detail.clone();
    c.next = "Next: 300/600 ante 600".into();
    c.next_break = String::new();
    view(ScreenContent::Clock(Box::new(c)))
}

const NAMES: &[&str] = &[
    "Ada Lovelace",
    "Alan Turing",
    "Barbara Liskov",
    "Claude Shannon",
    "Donald Knuth",
    "Edsger Dijkstra",
    "Frances Allen",
    "Grace Hopper",
    "Hedy Lamarr",
    "Ivan Sutherland",
    "John McCarthy",
    "Ken Thompson",
    "Leslie Lamport",
    "Margaret Hamilton",
    "Niklaus Wirth",
    "Ole-Johan Dahl",
    "Peter Naur",
    "Radia Perlman",
    "Shafi Goldwasser",
    "Tim Berners-Lee",
    "Ursula Martin",
    "Vint Cerf",
    "Whitfield Diffie",
    "Xavier Leroy",
    "Yukihiro Matsumoto",
    "Zhores Alferov",
    "Anita Borg",
    "Bjarne Stroustrup",
    "Carl Adam Petri",
    "Dennis Ritchie",
    "Edgar Codd",
    "Fran Allen",
    "Guido van Rossum",
    "Herb Simon",
    "Jean Sammet",
    "Karen Spärck Jones",
    "Linus Torvalds",
    "Marvin Minsky",
    "Nancy Lynch",
    "Robin Milner",
];

pub fn seating() -> DisplayView {
    let mut lines: Vec<SeatingLine> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| SeatingLine {
            name: (*n).into(),
            table: (i % 4 + 1).to_string(),
            seat: (i / 4 % 10 + 1).to_string(),
        })
        .collect();
    lines.sort_by_key(|l| l.name.to_lowercase());
    view(ScreenContent::SeatingDraw(SeatingScreen {
        tournament_name: "Friday Night €100 Freezeout".into(),
        lines,
    }))
}

pub fn payouts() -> DisplayView {
    let amounts = ["€1,600", "€1,000", "€640", "€440", "€320"];
    view(ScreenContent::Payouts(PayoutsScreen {
        tournament_name: "Friday Night €100 Freezeout".into(),
        prize_pool: "€4,000".into(),
        places_paid: "5 places paid".into(),
        lines: amounts
            .iter()
            .enumerate()
            .map(|(i, a)| PayoutLine {
                place: pvm_core::format::ordinal(i as u32 + 1),
                amount: (*a).into(),
                name: if i >= 3 {
                    NAMES[i * 3].into()
                } else {
                    String::new()
                },
            })
            .collect(),
    }))
}

pub fn waiting_list() -> DisplayView {
    let game = |name: &str, from: usize, n: usize, called: usize, wait: &str| WaitingGame {
        game: name.into(),
        interest_only: false,
        estimated_wait: wait.into(),
        lines: (0..n)
            .map(|i| WaitingLine {
                position: i as u32 + 1,
                name: NAMES[from + i].into(),
                called: i < called,
            })
            .collect(),
    };
    let mut plo = game("PLO €1/€2", 12, 3, 0, "");
    plo.interest_only = true;
    view(ScreenContent::WaitingList(WaitingListScreen {
        games: vec![
            game("NLH €1/€2", 0, 7, 2, "about 25 min"),
            game("NLH €2/€5", 20, 4, 1, "about 40 min"),
            plo,
        ],
    }))
}

pub fn tables_board() -> DisplayView {
    view(ScreenContent::TablesBoard(TablesBoardScreen {
        lines: vec![
            TablesBoardLine {
                game: "NLH €1/€2".into(),
                tables: 3,
                open_seats: 0,
                waiting: 7,
            },
            TablesBoardLine {
                game: "NLH €2/€5".into(),
                tables: 1,
                open_seats: 2,
                waiting: 0,
            },
            TablesBoardLine {
                game: "PLO €2/€5".into(),
                tables: 1,
                open_seats: 1,
                waiting: 0,
            },
        ],
    }))
}

pub fn setup() -> DisplayView {
    view(ScreenContent::Setup(SetupScreen {
        title: "Welcome to Casino Royale Poker Room".into(),
        console_url: "http://pvm.local".into(),
        other_urls: vec!["http://192.168.1.20".into()],
        qr_payload: "http://pvm.local".into(),
        setup_code: Some("482-915".into()),
        instructions: "Open http://pvm.local on a phone on this network and enter the setup code."
            .into(),
        notices_title: String::new(),
        notices: Vec::new(),
    }))
}

/// The setup screen of a card whose `pvm.toml` has mistakes, as pvm-core formats them.
pub fn setup_with_notices() -> DisplayView {
    let mut v = setup();
    if let ScreenContent::Setup(s) = &mut v.content {
        s.notices_title =
            "pvm.toml on the SD card has mistakes: fix it on the card and restart".into();
        s.notices = vec![
            "Line 3: timezone `Mars/Olympus` is not a time zone (see /usr/share/zoneinfo)".into(),
            "Line 5, wifi_pass: unknown setting".into(),
        ];
    }
    v
}

pub fn message() -> DisplayView {
    view(ScreenContent::Message {
        title: "Casino Royale Poker Room".into(),
        text: "Nothing to show yet. Set up a tournament or a cash game at http://pvm.local".into(),
    })
}

/// Clock, then the tables board, then the waiting list, 10 s each.
pub fn rotation() -> DisplayView {
    let items = [clock(), tables_board(), waiting_list()]
        .into_iter()
        .map(|v| v.content)
        .collect();
    view(ScreenContent::Rotation {
        interval_secs: 10,
        items,
    })
}

pub fn with_announcement(mut v: DisplayView, text: &str, style: AnnouncementStyle) -> DisplayView {
    v.announcements.push(AnnouncementView {
        text: text.into(),
        style,
    });
    v
}

/// Every screen, named for the PNG files.
pub fn all() -> Vec<(&'static str, DisplayView)> {
    vec![
        ("clock", clock()),
        ("break", break_view()),
        ("seating", seating()),
        ("payouts", payouts()),
        ("waiting-list", waiting_list()),
        ("tables-board", tables_board()),
        ("setup", setup()),
        ("setup-notices", setup_with_notices()),
        ("message", message()),
        ("rotation", rotation()),
        (
            "announcement-overlay",
            with_announcement(
                clock(),
                "Final table draw in 10 minutes at table 1",
                AnnouncementStyle::Overlay,
            ),
        ),
        (
            "announcement-ticker",
            with_announcement(
                clock(),
                "Sunday Deepstack €200 — registration is open at the desk",
                AnnouncementStyle::Ticker,
            ),
        ),
    ]
}
