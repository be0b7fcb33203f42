//! Every screen drawn headless by Slint's software renderer (the renderer the Pi uses) into
//! memory, written as PNGs under `$PVM_TEST_OUTPUT` (default `target/test-output/kiosk`), and
//! checked through the properties the UI shows and the pixels it drew.
//!
//! Slint's platform is per thread: each test installs its own and owns one window.

use pvm_core::displays::AnnouncementStyle;
use pvm_core::views::ScreenContent;
use pvm_kiosk::fixtures::{self, ANCHOR_MS};
use pvm_kiosk::headless::{self, Frame};
use pvm_kiosk::ui::{self, Kiosk, Presenter};
use slint::platform::software_renderer::RepaintBufferType;
use slint::{ComponentHandle, Model};
use std::path::PathBuf;
use std::rc::Rc;

const BG: (u8, u8, u8) = (0x0b, 0x0f, 0x14);
const ACCENT: (u8, u8, u8) = (0xf5, 0xb8, 0x00);

fn out_dir() -> PathBuf {
    let dir = std::env::var_os("PVM_TEST_OUTPUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-output/kiosk")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn setup(width: u32, height: u32) -> (Frame, Presenter) {
    let frame = headless::frame(width, height, 0, RepaintBufferType::ReusedBuffer).unwrap();
    let presenter = Presenter::new(frame.window.clone_strong());
    (frame, presenter)
}

fn show(
    frame: &mut Frame,
    p: &mut Presenter,
    view: pvm_core::views::DisplayView,
    version: u64,
    now: i64,
) {
    p.set_view(Rc::new(view), version);
    p.tick(now);
    frame.invalidate();
    frame.render();
}

fn g(frame: &Frame) -> Kiosk<'_> {
    frame.window.global::<Kiosk>()
}

/// Not blank: more than a handful of colours, and a fair share of the frame drawn on.
fn assert_not_blank(frame: &Frame, name: &str) {
    let colours = frame.distinct_colours();
    let ink = frame.ink_share(BG);
    assert!(
        colours > 8,
        "{name}: only {colours} colours, the frame looks blank"
    );
    assert!(
        ink > 0.01,
        "{name}: only {:.3}% of the frame is drawn on",
        ink * 100.0
    );
}

#[test]
fn every_screen_renders_at_1080p_and_4k_with_its_content() {
    let (mut frame, _) = setup(1920, 1080);
    let dir = out_dir();
    let mut version = 0;
    for (w, h) in [(1920, 1080), (3840, 2160)] {
        frame.resize(w, h, 0);
        for (name, view) in fixtures::all() {
            version += 1;
            // A fresh presenter: going from one sample tournament's level to another's would
            // rightly show the level-change banner, which is not the screen under test.
            let mut p = Presenter::new(frame.window.clone_strong());
            show(&mut frame, &mut p, view.clone(), version, ANCHOR_MS);
            let path = dir.join(format!("{name}-{w}x{h}.png"));
            frame.write_png(&path).unwrap();
            assert_not_blank(&frame, name);
            let k = g(&frame);
            assert!(
                !k.get_level_change(),
                "{name}: the screen itself is shown, no banner over it"
            );
            let screen = k.get_screen().to_string();
            match &view.content {
                ScreenContent::Clock(c) if c.on_break => {
                    assert_eq!(screen, "break", "{name}");
                    assert_eq!(k.get_clock_time(), "12:00");
                    assert_eq!(k.get_colour_up(), "Colour up the T25 chips");
                }
                ScreenContent::Clock(_) => {
                    assert_eq!(screen, "clock", "{name}");
                    assert_eq!(frame.window.get_shown_clock(), "12:00");
                    assert_eq!(k.get_level_title(), "Level 1");
                    assert_eq!(k.get_blinds(), "100/200 ante 200");
                    assert_eq!(k.get_next(), "Next: 200/400 ante 400");
                    assert_eq!(k.get_next_break(), "Break in 32:00");
                    assert_eq!(k.get_prize_pool(), "€4,000");
                    assert_eq!(k.get_top_payouts().row_count(), 5);
                }
                ScreenContent::SeatingDraw(s) => {
                    assert_eq!(screen, "seating");
                    let rows = ui::shown_rows(&frame.window);
                    assert_eq!(rows[0].a, s.lines[0].name.as_str());
                    assert!(rows.len() < s.lines.len(), "40 names page at this size");
                    assert!(
                        k.get_list_subtitle().contains("page 1 of"),
                        "{}",
                        k.get_list_subtitle()
                    );
                }
                ScreenContent::Payouts(_) => {
                    assert_eq!(screen, "payouts");
                    let rows = ui::shown_rows(&frame.window);
                    assert_eq!(rows.len(), 5);
                    assert_eq!(rows[0].b, "€1,600");
                }
                ScreenContent::WaitingList(_) => {
                    assert_eq!(screen, "waiting");
                    let games = k.get_waiting_games();
                    assert_eq!(games.row_count(), 3);
                    let first = games.row_data(0).unwrap();
                    let called: Vec<bool> = (0..first.rows.row_count())
                        .map(|i| first.rows.row_data(i).unwrap().highlight)
                        .collect();
                    assert_eq!(called, [true, true, false, false, false, false, false]);
                    // The called players' rows are painted in the accent colour.
                    let accent = frame
                        .pixels
                        .iter()
                        .filter(|px| (px.r, px.g, px.b) == ACCENT)
                        .count();
                    assert!(
                        accent > 1000,
                        "called players are highlighted ({accent} accent pixels)"
                    );
                }
                ScreenContent::TablesBoard(_) => {
                    assert_eq!(screen, "tables");
                    assert_eq!(ui::shown_rows(&frame.window)[1].c, "2");
                }
                ScreenContent::Setup(_) => {
                    assert_eq!(screen, "setup");
                    assert_eq!(k.get_setup_code(), "482-915");
                    assert_eq!(k.get_setup_url(), "http://pvm.local");
                    let qr = k.get_qr().size();
                    assert!(qr.width >= 21 + 8, "a QR code image is set ({qr:?})");
                    // The QR sits on a white card: plenty of pure white and pure black.
                    let white = frame
                        .pixels
                        .iter()
                        .filter(|px| (px.r, px.g, px.b) == (255, 255, 255))
                        .count();
                    let black = frame
                        .pixels
                        .iter()
                        .filter(|px| (px.r, px.g, px.b) == (0, 0, 0))
                        .count();
                    assert!(
                        white > 10_000 && black > 10_000,
                        "QR drawn ({white} white, {black} black)"
                    );
                }
                ScreenContent::Message { title, .. } => {
                    assert_eq!(screen, "message");
                    assert_eq!(k.get_message_title(), title.as_str());
                }
                ScreenContent::Rotation { .. } => {
                    // ANCHOR_MS / 10 s is a multiple of 3: the first item, the clock.
                    assert_eq!(screen, "clock");
                }
            }
            if name == "announcement-overlay" {
                assert_eq!(
                    k.get_overlay_text(),
                    "Final table draw in 10 minutes at table 1"
                );
            }
            if name == "announcement-ticker" {
                assert!(k.get_ticker_text().starts_with("Sunday Deepstack"));
                assert_eq!(k.get_overlay_text(), "");
            }
        }
    }
}

/// Accent-coloured pixels: the setup code, and the notices' heading and frame when shown.
fn accent_pixels(frame: &Frame) -> usize {
    frame
        .pixels
        .iter()
        .filter(|px| (px.r, px.g, px.b) == ACCENT)
        .count()
}

/// The longest horizontal run of accent pixels: the notices panel's frame spans most of the
/// width, which no text does. The QEMU test finds the panel on a screendump the same way.
fn longest_accent_run(frame: &Frame) -> usize {
    let mut best = 0;
    for row in frame.pixels.chunks_exact(frame.width as usize) {
        let mut run = 0;
        for px in row {
            if (px.r, px.g, px.b) == ACCENT {
                run += 1;
                best = best.max(run);
            } else {
                run = 0;
            }
        }
    }
    best
}

fn accent_in_lower_third(frame: &Frame) -> usize {
    let (w, h) = (frame.width, frame.height);
    (h * 2 / 3..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| frame.pixel(x, y) == ACCENT)
        .count()
}

#[test]
fn first_boot_mistakes_are_drawn_large_under_the_setup_code_at_1080p_and_4k() {
    let (mut frame, _) = setup(1920, 1080);
    let dir = out_dir();
    for (w, h) in [(1920, 1080), (3840, 2160)] {
        frame.resize(w, h, 0);
        let mut p = Presenter::new(frame.window.clone_strong());
        show(&mut frame, &mut p, fixtures::setup(), 1, ANCHOR_MS);
        let plain_accent = accent_pixels(&frame);
        let plain_ink = frame.ink_share(BG);
        let plain_low = accent_in_lower_third(&frame);
        let plain_run = longest_accent_run(&frame);
        assert!(
            plain_run < 1000 * w as usize / 1920,
            "{w}x{h}: the plain setup screen has a {plain_run}-px accent line"
        );

        let mut p = Presenter::new(frame.window.clone_strong());
        show(
            &mut frame,
            &mut p,
            fixtures::setup_with_notices(),
            2,
            ANCHOR_MS,
        );
        frame
            .write_png(&dir.join(format!("setup-notices-check-{w}x{h}.png")))
            .unwrap();
        let k = g(&frame);
        assert_eq!(k.get_screen(), "setup");
        assert_eq!(k.get_setup_code(), "482-915", "the code stays on screen");
        let shown: Vec<String> = k.get_setup_notices().iter().map(|s| s.into()).collect();
        assert_eq!(shown.len(), 2);
        assert!(shown[0].contains("Mars/Olympus"), "{shown:?}");
        assert!(k.get_setup_notices_title().contains("pvm.toml"));

        // Drawn, not just set: the accent heading and frame add thousands of accent pixels
        // (the code alone has its own), and the panel's text adds ink below the code.
        let accent = accent_pixels(&frame);
        let scale = (w as usize * h as usize) / (1920 * 1080);
        assert!(
            accent > plain_accent + 3_000 * scale,
            "{w}x{h}: accent {accent} with notices, {plain_accent} without"
        );
        assert!(frame.ink_share(BG) > plain_ink, "{w}x{h}: no more ink");
        let run = longest_accent_run(&frame);
        assert!(
            run > 1000 * w as usize / 1920,
            "{w}x{h}: the notices panel's frame is a {run}-px accent line"
        );
        // Where it is drawn: under the QR code and the setup code, in the lowest third.
        let low = accent_in_lower_third(&frame);
        assert!(
            low > plain_low + 1_000 * scale,
            "{w}x{h}: {low} accent pixels in the lower third, {plain_low} without notices"
        );
    }
}

#[test]
fn the_clock_counts_down_from_its_anchor_and_repaints_only_the_digits() {
    let (mut frame, mut p) = setup(1920, 1080);
    show(&mut frame, &mut p, fixtures::clock(), 1, ANCHOR_MS);
    // The first frames after a new buffer are painted whole and fill the renderer's cache.
    frame.invalidate();
    frame.render();
    assert_eq!(frame.window.get_shown_clock(), "12:00");
    // 400 ms in, still 12:00 (rounded up), and the next wake-up is when it turns 11:59.
    let wait = p.tick(ANCHOR_MS + 400);
    assert_eq!(frame.window.get_shown_clock(), "12:00");
    assert_eq!(wait.as_millis(), 600);
    p.tick(ANCHOR_MS + 1000);
    assert_eq!(frame.window.get_shown_clock(), "11:59");
    let region = frame.render().expect("the new second is repainted");
    let share = headless::region_area(&region) as f64 / f64::from(1920 * 1080);
    println!(
        "one-second update repaints {:.1}% of the frame",
        share * 100.0
    );
    assert!(
        share < 0.25,
        "12:00 to 11:59 repaints {:.1}% of the frame",
        share * 100.0
    );
    // The usual second changes one digit (and the small "break in" line).
    p.tick(ANCHOR_MS + 2000);
    assert_eq!(frame.window.get_shown_clock(), "11:58");
    let region = frame.render().expect("the new second is repainted");
    let share = headless::region_area(&region) as f64 / f64::from(1920 * 1080);
    println!("11:59 to 11:58 repaints {:.1}% of the frame", share * 100.0);
    assert!(
        share < 0.08,
        "one digit's change repaints {:.1}% of the frame",
        share * 100.0
    );
    // Nothing due: nothing repainted.
    p.tick(ANCHOR_MS + 2100);
    let idle = frame.render();
    assert!(
        idle.is_none() || idle.is_some_and(|r| r.bounding_box_size().width == 0),
        "an idle tick repaints nothing"
    );
}

#[test]
fn crossing_into_the_next_level_shows_the_level_change_banner_then_the_new_blinds() {
    let (mut frame, mut p) = setup(1920, 1080);
    show(&mut frame, &mut p, fixtures::clock(), 1, ANCHOR_MS);
    let win = frame.window.clone_strong();
    let k = || win.global::<Kiosk>();
    assert!(!k().get_level_change());
    // 12 minutes later, with no update from the node, level 2 starts.
    let t = ANCHOR_MS + 12 * 60_000 + 500;
    p.tick(t);
    assert!(k().get_level_change());
    assert_eq!(k().get_level_change_title(), "LEVEL 2");
    assert_eq!(k().get_level_change_detail(), "200/400 ante 400");
    assert_eq!(k().get_blinds(), "200/400 ante 400");
    assert_eq!(frame.window.get_shown_clock(), "20:00");
    frame.render();
    frame
        .write_png(&out_dir().join("level-change-1920x1080.png"))
        .unwrap();
    // Unmissable: the middle of the screen is the accent colour.
    assert_eq!(frame.pixel(100, 540), ACCENT);
    assert!(frame.ink_share(BG) > 0.9);
    // Gone after its moment.
    p.tick(t + ui::LEVEL_CHANGE_MS + 10);
    assert!(!k().get_level_change());
    // Into the break 20 minutes later: the break screen with its colour-up note.
    p.tick(ANCHOR_MS + 32 * 60_000 + 1_000);
    assert_eq!(k().get_screen(), "break");
    assert_eq!(k().get_colour_up(), "Colour up the T25 chips");
    assert_eq!(k().get_next(), "Next: 300/600 ante 600");
}

#[test]
fn a_rotation_shows_item_floor_of_now_over_interval_mod_n() {
    let (mut frame, mut p) = setup(1280, 720);
    show(&mut frame, &mut p, fixtures::rotation(), 1, ANCHOR_MS);
    let win = frame.window.clone_strong();
    let k = || win.global::<Kiosk>().get_screen().to_string();
    // ANCHOR_MS is 180,000,000 intervals of 10 s: item 0.
    assert_eq!(k(), "clock");
    let wait = p.tick(ANCHOR_MS + 9_999);
    assert_eq!(k(), "clock");
    assert!(
        wait.as_millis() <= 1,
        "wakes for the switch, not a second late"
    );
    p.tick(ANCHOR_MS + 10_000);
    assert_eq!(k(), "tables");
    p.tick(ANCHOR_MS + 25_000);
    assert_eq!(k(), "waiting");
    p.tick(ANCHOR_MS + 30_000);
    assert_eq!(k(), "clock");
}

#[test]
fn portrait_rotations_and_overscan_keep_the_picture_inside_the_safe_area() {
    let (mut frame, mut p) = setup(1280, 720);
    let dir = out_dir();
    for rotation in [0u16, 90, 180, 270] {
        frame.resize(1280, 720, rotation);
        let mut v = fixtures::clock();
        v.rotation = rotation;
        v.overscan_percent = 5;
        show(&mut frame, &mut p, v, u64::from(rotation) + 1, ANCHOR_MS);
        frame
            .write_png(&dir.join(format!("clock-rot{rotation}-overscan5-1280x720.png")))
            .unwrap();
        assert_not_blank(&frame, "rotated clock");
        // The outer 4% on every side is left to the TV's crop: nothing but background.
        let (w, h) = (frame.width, frame.height);
        let (mx, my) = (w * 4 / 100, h * 4 / 100);
        for y in 0..h {
            for x in (0..mx).chain(w - mx..w) {
                assert_eq!(
                    frame.pixel(x, y),
                    BG,
                    "rotation {rotation}: ink at ({x},{y}) inside the overscan margin"
                );
            }
        }
        for x in 0..w {
            for y in (0..my).chain(h - my..h) {
                assert_eq!(
                    frame.pixel(x, y),
                    BG,
                    "rotation {rotation}: ink at ({x},{y}) inside the overscan margin"
                );
            }
        }
    }
    // 720p landscape with no overscan, for the record.
    frame.resize(1280, 720, 0);
    show(&mut frame, &mut p, fixtures::clock(), 99, ANCHOR_MS);
    frame.write_png(&dir.join("clock-1280x720.png")).unwrap();
    assert_not_blank(&frame, "720p clock");
}

#[test]
fn the_reconnecting_mark_is_discreet_and_the_clock_keeps_counting_under_it() {
    let (mut frame, mut p) = setup(1920, 1080);
    show(&mut frame, &mut p, fixtures::clock(), 1, ANCHOR_MS);
    let before = frame.pixels.clone();
    p.set_reconnecting(true);
    p.tick(ANCHOR_MS + 5_000);
    frame.render();
    frame
        .write_png(&out_dir().join("reconnecting-1920x1080.png"))
        .unwrap();
    assert!(frame.window.global::<Kiosk>().get_reconnecting());
    assert_eq!(frame.window.get_shown_clock(), "11:55");
    // The mark lives in the top-right corner: the rest of the frame differs only where the
    // digits and the progress bar changed.
    let changed_top_right = (0..60u32)
        .flat_map(|y| (1700..1920u32).map(move |x| (x, y)))
        .filter(|&(x, y)| before[(y * 1920 + x) as usize] != frame.pixels[(y * 1920 + x) as usize])
        .count();
    assert!(changed_top_right > 100, "the mark is drawn in the corner");
    p.set_reconnecting(false);
    p.tick(ANCHOR_MS + 5_100);
    assert!(!frame.window.global::<Kiosk>().get_reconnecting());
}

#[test]
fn announcements_show_as_overlay_or_ticker() {
    let (mut frame, mut p) = setup(1920, 1080);
    let v = fixtures::with_announcement(
        fixtures::clock(),
        "Dinner break at 21:00",
        AnnouncementStyle::Overlay,
    );
    show(&mut frame, &mut p, v, 1, ANCHOR_MS);
    assert_eq!(
        frame.window.global::<Kiosk>().get_overlay_text(),
        "Dinner break at 21:00"
    );
    // The overlay box is drawn with an accent border around the middle.
    let accent = frame
        .pixels
        .iter()
        .filter(|px| (px.r, px.g, px.b) == ACCENT)
        .count();
    assert!(
        accent > 5_000,
        "overlay border drawn ({accent} accent pixels)"
    );
    show(&mut frame, &mut p, fixtures::clock(), 2, ANCHOR_MS);
    assert_eq!(frame.window.global::<Kiosk>().get_overlay_text(), "");
}
