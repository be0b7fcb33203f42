//! From a `DisplayView` to the Slint globals. A new view sets everything once; between views
//! `tick` only touches what time changes (the digits, the progress bar, "break in", the
//! rotation's item), and only when its value actually changes, so the software renderer
//! repaints just those regions.

use crate::clock::{self, ClockPosition};
use pvm_core::displays::AnnouncementStyle;
use pvm_core::views::{ClockScreen, DisplayView, ScreenContent};
use slint::{
    ComponentHandle, Image, Model, ModelRc, Rgb8Pixel, SharedPixelBuffer, SharedString, VecModel,
};
use std::rc::Rc;
use std::time::Duration;

#[allow(clippy::all, clippy::pedantic)]
mod generated {
    slint::include_modules!();
}
pub use generated::{Kiosk, KioskWindow, Row, Stat, Theme, WaitGame};

/// How long the level-change banner stays up.
pub const LEVEL_CHANGE_MS: i64 = 8_000;
/// A long list pages every so often, all displays in step (the page comes from server time).
pub const PAGE_SECS: i64 = 12;

/// What the presenter last put on screen, to tell what a tick must change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    version: u64,
    rotation_item: usize,
    segment: usize,
    page: usize,
    on_break: bool,
}

/// Drives one `KioskWindow` from views and time.
pub struct Presenter {
    window: KioskWindow,
    view: Option<Rc<DisplayView>>,
    version: u64,
    shown: Option<Shown>,
    /// The level (tournament, segment title+detail) last shown, to catch the change.
    level_key: Option<(String, String)>,
    level_change_until: Option<i64>,
    logo_source: Option<String>,
    qr_payload: Option<String>,
    /// The node's time of the tick in progress.
    now_ms: i64,
    clock_chars: Rc<VecModel<SharedString>>,
}

impl Presenter {
    pub fn new(window: KioskWindow) -> Self {
        let clock_chars = Rc::new(VecModel::default());
        window
            .global::<Kiosk>()
            .set_clock_chars(ModelRc::from(clock_chars.clone()));
        Presenter {
            clock_chars,
            window,
            view: None,
            version: 0,
            shown: None,
            level_key: None,
            level_change_until: None,
            logo_source: None,
            qr_payload: None,
            now_ms: 0,
        }
    }

    pub fn window(&self) -> &KioskWindow {
        &self.window
    }

    /// A new view from the node (the client bumps `version` for each one).
    pub fn set_view(&mut self, view: Rc<DisplayView>, version: u64) {
        let g = self.window.global::<Kiosk>();
        apply_brand(&self.window, &view, &mut self.logo_source);
        g.set_overscan_percent(f32::from(view.overscan_percent));
        let overlay: Vec<&str> = view
            .announcements
            .iter()
            .filter(|a| a.style == AnnouncementStyle::Overlay)
            .map(|a| a.text.as_str())
            .collect();
        let ticker: Vec<&str> = view
            .announcements
            .iter()
            .filter(|a| a.style == AnnouncementStyle::Ticker)
            .map(|a| a.text.as_str())
            .collect();
        set_str(&g.get_overlay_text(), &overlay.join("\n\n"), |v| {
            g.set_overlay_text(v)
        });
        set_str(&g.get_ticker_text(), &ticker.join("     •     "), |v| {
            g.set_ticker_text(v)
        });
        self.view = Some(view);
        self.version = version;
    }

    pub fn set_reconnecting(&self, reconnecting: bool) {
        let g = self.window.global::<Kiosk>();
        if g.get_reconnecting() != reconnecting {
            g.set_reconnecting(reconnecting);
        }
    }

    /// Brings the screen to `now_ms` (the node's clock); returns how long until something on
    /// it next changes, so the caller sleeps instead of polling.
    pub fn tick(&mut self, now_ms: i64) -> Duration {
        self.now_ms = now_ms;
        let Some(view) = self.view.clone() else {
            self.show_message("Starting", "Waiting for the venue's server…");
            return Duration::from_millis(1000);
        };
        let mut next_ms: i64 = 60_000;
        let (content, rotation_item) = match &view.content {
            ScreenContent::Rotation {
                interval_secs,
                items,
            } if !items.is_empty() => {
                let interval_ms = i64::from((*interval_secs).max(1)) * 1000;
                let slot = now_ms.div_euclid(interval_ms);
                next_ms = next_ms.min(interval_ms - now_ms.rem_euclid(interval_ms));
                (
                    &items[slot.rem_euclid(items.len() as i64) as usize],
                    slot as usize,
                )
            }
            other => (other, 0),
        };
        let page_slot = now_ms.div_euclid(PAGE_SECS * 1000);
        let pos = match content {
            ScreenContent::Clock(c) => Some(clock::position_at(c, view.server_time_ms, now_ms)),
            _ => None,
        };
        let on_break = match (content, &pos) {
            (ScreenContent::Clock(c), Some(p)) => {
                c.segments.get(p.segment).is_some_and(|s| s.is_break)
            }
            _ => false,
        };
        let wanted = Shown {
            version: self.version,
            rotation_item,
            segment: pos.map(|p| p.segment).unwrap_or(0),
            page: page_slot as usize,
            on_break,
        };
        if self.shown.as_ref() != Some(&wanted) {
            self.fill(content, &view, page_slot);
            self.shown = Some(wanted);
        }
        if let (ScreenContent::Clock(c), Some(p)) = (content, pos) {
            next_ms = next_ms.min(self.tick_clock(c, &p, now_ms));
        } else {
            self.level_key = None;
            self.set_level_change(false);
        }
        if matches!(
            content,
            ScreenContent::SeatingDraw(_) | ScreenContent::Payouts(_)
        ) {
            next_ms = next_ms.min(PAGE_SECS * 1000 - now_ms.rem_euclid(PAGE_SECS * 1000));
        }
        Duration::from_millis(next_ms.clamp(1, 60_000) as u64)
    }

    fn tick_clock(&mut self, c: &ClockScreen, p: &ClockPosition, now_ms: i64) -> i64 {
        let g = self.window.global::<Kiosk>();
        let segment = c.segments.get(p.segment);
        let text = pvm_core::format::countdown(p.remaining_ms);
        set_str(&g.get_clock_time(), &text, |v| g.set_clock_time(v));
        self.set_clock_chars(&text);
        let progress = match segment {
            Some(s) if s.duration_ms > 0 => 1.0 - p.remaining_ms as f32 / s.duration_ms as f32,
            _ => 0.0,
        };
        // A thousandth of the bar is under a pixel even at 4K: no need to repaint more often.
        if (g.get_progress() - progress).abs() >= 0.001 {
            g.set_progress(progress);
        }
        if c.running {
            set_str(
                &g.get_next_break(),
                &clock::next_break_text(&c.segments, p),
                |v| g.set_next_break(v),
            );
        }
        // The level-change moment: when the level shown changes while the clock runs.
        let key = segment.map(|s| (format!("{}|{}", c.tournament_id, s.title), s.detail.clone()));
        if let (Some(old), Some(new)) = (&self.level_key, &key) {
            if old != new && c.running {
                if let Some(s) = segment {
                    g.set_level_change_title(s.title.to_uppercase().into());
                    g.set_level_change_detail(s.detail.clone().into());
                }
                self.level_change_until = Some(now_ms + LEVEL_CHANGE_MS);
            }
        }
        self.level_key = key;
        let banner = self.level_change_until.is_some_and(|t| now_ms < t);
        self.set_level_change(banner);
        let mut next = if c.running {
            clock::ms_until_next_second(p.remaining_ms)
        } else {
            60_000
        };
        if let Some(until) = self.level_change_until.filter(|_| banner) {
            next = next.min(until - now_ms);
        }
        next
    }

    /// Updates only the characters that changed, so only their glyphs are repainted.
    fn set_clock_chars(&self, text: &str) {
        let chars: Vec<SharedString> = text
            .chars()
            .map(|c| SharedString::from(c.to_string()))
            .collect();
        if self.clock_chars.row_count() != chars.len() {
            self.window
                .global::<Kiosk>()
                .set_clock_length(chars.len() as i32);
            self.clock_chars.set_vec(chars);
            return;
        }
        for (i, c) in chars.into_iter().enumerate() {
            if self.clock_chars.row_data(i).as_ref() != Some(&c) {
                self.clock_chars.set_row_data(i, c);
            }
        }
    }

    fn set_level_change(&self, on: bool) {
        let g = self.window.global::<Kiosk>();
        if g.get_level_change() != on {
            g.set_level_change(on);
        }
    }

    fn show_message(&self, title: &str, text: &str) {
        let g = self.window.global::<Kiosk>();
        set_str(&g.get_message_title(), title, |v| g.set_message_title(v));
        set_str(&g.get_message_text(), text, |v| g.set_message_text(v));
        set_str(&g.get_screen(), "message", |v| g.set_screen(v));
    }

    /// Sets everything a screen shows that does not change with time.
    fn fill(&mut self, content: &ScreenContent, view: &DisplayView, page_slot: i64) {
        let g = self.window.global::<Kiosk>();
        match content {
            ScreenContent::Clock(c) => self.fill_clock(c, view),
            ScreenContent::SeatingDraw(s) => {
                let rows: Vec<Row> = s
                    .lines
                    .iter()
                    .map(|l| row(&l.name, &l.table, &l.seat, false))
                    .collect();
                self.fill_table(
                    "seating",
                    &s.tournament_name,
                    "Seating draw",
                    &["Player", "Table", "Seat"],
                    rows,
                    page_slot,
                );
            }
            ScreenContent::Payouts(p) => {
                let rows: Vec<Row> = p
                    .lines
                    .iter()
                    .map(|l| {
                        let who = if l.name.is_empty() {
                            l.place.clone()
                        } else {
                            format!("{}   {}", l.place, l.name)
                        };
                        row(&who, &l.amount, "", !l.name.is_empty())
                    })
                    .collect();
                let subtitle = format!("Prize pool {} · {}", p.prize_pool, p.places_paid);
                self.fill_table(
                    "payouts",
                    &p.tournament_name,
                    &subtitle,
                    &["Place", "Prize", ""],
                    rows,
                    page_slot,
                );
            }
            ScreenContent::TablesBoard(t) => {
                let rows: Vec<Row> = t
                    .lines
                    .iter()
                    .map(|l| {
                        let game = if l.waiting > 0 {
                            format!("{}  ({} waiting)", l.game, l.waiting)
                        } else {
                            l.game.clone()
                        };
                        row(
                            &game,
                            &l.tables.to_string(),
                            &l.open_seats.to_string(),
                            l.open_seats > 0,
                        )
                    })
                    .collect();
                self.fill_table(
                    "tables",
                    "Cash games",
                    "",
                    &["Game", "Tables", "Open seats"],
                    rows,
                    0,
                );
                if t.lines.is_empty() {
                    self.show_message("Cash games", "No game is running right now.");
                }
            }
            ScreenContent::WaitingList(w) => {
                let games: Vec<WaitGame> = w
                    .games
                    .iter()
                    .map(|game| {
                        let note = if game.interest_only {
                            "Interest list".to_string()
                        } else if game.lines.is_empty() {
                            "No wait: a seat is open".to_string()
                        } else if game.estimated_wait.is_empty() {
                            format!("{} waiting", game.lines.len())
                        } else {
                            format!("{} waiting · {}", game.lines.len(), game.estimated_wait)
                        };
                        WaitGame {
                            title: game.game.clone().into(),
                            note: note.into(),
                            rows: model(
                                game.lines
                                    .iter()
                                    .take(14)
                                    .map(|l| {
                                        row(
                                            &l.position.to_string(),
                                            &l.name,
                                            if l.called { "CALLED" } else { "" },
                                            l.called,
                                        )
                                    })
                                    .collect(),
                            ),
                        }
                    })
                    .collect();
                g.set_waiting_games(model(games));
                if w.games.is_empty() {
                    self.show_message("Waiting list", "No list is open right now.");
                } else {
                    g.set_screen("waiting".into());
                }
            }
            ScreenContent::Setup(s) => {
                g.set_setup_title(s.title.clone().into());
                g.set_setup_url(s.console_url.clone().into());
                g.set_setup_other_urls(s.other_urls.join("   ").into());
                g.set_setup_code(s.setup_code.clone().unwrap_or_default().into());
                g.set_setup_instructions(s.instructions.clone().into());
                g.set_setup_notices_title(s.notices_title.clone().into());
                g.set_setup_notices(model(s.notices.iter().map(|n| n.clone().into()).collect()));
                if self.qr_payload.as_deref() != Some(s.qr_payload.as_str()) {
                    match qr_image(&s.qr_payload) {
                        Some(img) => g.set_qr(img),
                        None => tracing::warn!("no QR code for {:?}", s.qr_payload),
                    }
                    self.qr_payload = Some(s.qr_payload.clone());
                }
                g.set_screen("setup".into());
            }
            ScreenContent::Message { title, text } => self.show_message(title, text),
            ScreenContent::Rotation { .. } => {
                self.show_message(&view.brand.venue_name, "This rotation has no screens yet.")
            }
        }
    }

    fn fill_clock(&mut self, c: &ClockScreen, view: &DisplayView) {
        let g = self.window.global::<Kiosk>();
        let p = clock::position_at(c, view.server_time_ms, self.now_ms);
        let seg = c.segments.get(p.segment);
        let on_break = seg.is_some_and(|s| s.is_break);
        g.set_tournament_name(c.tournament_name.clone().into());
        match seg {
            Some(s) => {
                g.set_level_title(s.title.clone().into());
                g.set_blinds(s.detail.clone().into());
                g.set_next(clock::next_text(&c.segments, p.segment).into());
            }
            None => {
                g.set_level_title(c.level_title.clone().into());
                g.set_blinds(c.blinds.clone().into());
                g.set_next(c.next.clone().into());
            }
        }
        g.set_next_break(c.next_break.clone().into());
        g.set_colour_up(
            if on_break {
                seg.map(|s| s.detail.clone()).unwrap_or_default()
            } else {
                String::new()
            }
            .into(),
        );
        let note = match c.status.as_str() {
            "paused" => "PAUSED",
            "not_started" => "Starting soon",
            "finished" => "Finished",
            _ if c.hand_for_hand => "Hand for hand",
            _ => "",
        };
        g.set_status_note(note.into());
        g.set_registration(c.registration.clone().into());
        g.set_prize_pool(c.prize_pool.clone().into());
        g.set_overlay(c.overlay.clone().into());
        let avg = if c.average_stack_bb.is_empty() {
            c.average_stack.clone()
        } else {
            format!("{} ({})", c.average_stack, c.average_stack_bb)
        };
        let mut stats = vec![stat("Players", &c.players_left), stat("Avg stack", &avg)];
        if on_break {
            stats.push(stat("Chips in play", &c.chips_in_play));
        } else {
            stats.push(stat("Re-entries", &c.reentries));
            stats.push(stat("Rebuys", &c.rebuys));
            stats.push(stat("Add-ons", &c.addons));
            stats.push(stat("Chips in play", &c.chips_in_play));
        }
        g.set_stats(model(stats));
        g.set_top_payouts(model(
            c.payouts.iter().take(6).map(|(a, b)| stat(a, b)).collect(),
        ));
        g.set_screen(if on_break { "break" } else { "clock" }.into());
    }

    fn fill_table(
        &self,
        screen: &str,
        title: &str,
        subtitle: &str,
        columns: &[&str],
        rows: Vec<Row>,
        page_slot: i64,
    ) {
        let g = self.window.global::<Kiosk>();
        let per_page = rows_per_page(
            g.get_stage_width(),
            g.get_stage_height(),
            !subtitle.is_empty(),
        );
        let pages = rows.len().div_ceil(per_page).max(1);
        let page = page_slot.rem_euclid(pages as i64) as usize;
        let shown: Vec<Row> = rows
            .into_iter()
            .skip(page * per_page)
            .take(per_page)
            .collect();
        let subtitle = if pages > 1 {
            if subtitle.is_empty() {
                format!("Page {} of {pages}", page + 1)
            } else {
                format!("{subtitle} · page {} of {pages}", page + 1)
            }
        } else {
            subtitle.to_string()
        };
        g.set_list_title(
            if title.is_empty() {
                screen.to_string()
            } else {
                title.to_string()
            }
            .into(),
        );
        g.set_list_subtitle(subtitle.into());
        g.set_columns(model(
            columns.iter().map(|c| SharedString::from(*c)).collect(),
        ));
        g.set_rows(model(shown));
        g.set_screen(screen.into());
    }
}

/// How many 5.6u-high rows fit under the header on a stage of this size (u = short side/100).
pub fn rows_per_page(width: f32, height: f32, subtitle: bool) -> usize {
    let u = width.min(height) / 100.0;
    if u <= 0.0 {
        return 10;
    }
    let used = 5.0 + 8.0 + 1.5 * 3.0 + 3.5 + if subtitle { 5.0 } else { 0.0 };
    (((height / u) - used) / 5.6).floor().max(1.0) as usize
}

fn apply_brand(window: &KioskWindow, view: &DisplayView, logo_source: &mut Option<String>) {
    let theme = window.global::<Theme>();
    let b = &view.brand;
    if let Some(c) = parse_colour(&b.background) {
        theme.set_background(c);
    }
    if let Some(c) = parse_colour(&b.foreground) {
        theme.set_foreground(c);
    }
    if let Some(c) = parse_colour(&b.accent) {
        theme.set_accent(c);
    }
    let g = window.global::<Kiosk>();
    set_str(&g.get_venue_name(), &b.venue_name, |v| g.set_venue_name(v));
    if logo_source.as_deref() != b.logo.as_deref() {
        let img = b.logo.as_deref().and_then(crate::logo::decode_data_url);
        g.set_has_logo(img.is_some());
        if let Some(img) = img {
            g.set_logo(img);
        }
        logo_source.clone_from(&b.logo);
    }
}

/// `#rrggbb` to a colour; anything else is ignored (the theme keeps its default).
pub fn parse_colour(s: &str) -> Option<slint::Color> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some(slint::Color::from_rgb_u8(
        (v >> 16) as u8,
        (v >> 8) as u8,
        v as u8,
    ))
}

/// A QR code as an image, one pixel per module with a 4-module quiet zone; the UI scales it
/// up with pixelated sampling so the modules stay sharp.
pub fn qr_image(payload: &str) -> Option<Image> {
    let code = qrcode::QrCode::new(payload.as_bytes()).ok()?;
    let n = code.width();
    let quiet = 4;
    let size = (n + 2 * quiet) as u32;
    let mut buf = SharedPixelBuffer::<Rgb8Pixel>::new(size, size);
    let colors = code.to_colors();
    for (i, px) in buf.make_mut_slice().iter_mut().enumerate() {
        let (x, y) = (i % size as usize, i / size as usize);
        let dark = x >= quiet
            && y >= quiet
            && x < n + quiet
            && y < n + quiet
            && colors[(y - quiet) * n + (x - quiet)] == qrcode::Color::Dark;
        let v = if dark { 0 } else { 255 };
        *px = Rgb8Pixel { r: v, g: v, b: v };
    }
    Some(Image::from_rgb8(buf))
}

fn set_str(current: &SharedString, wanted: &str, set: impl FnOnce(SharedString)) {
    if current.as_str() != wanted {
        set(wanted.into());
    }
}

fn row(a: &str, b: &str, c: &str, highlight: bool) -> Row {
    Row {
        a: a.into(),
        b: b.into(),
        c: c.into(),
        highlight,
    }
}

fn stat(label: &str, value: &str) -> Stat {
    Stat {
        label: label.into(),
        value: value.into(),
    }
}

fn model<T: Clone + 'static>(items: Vec<T>) -> ModelRc<T> {
    ModelRc::from(Rc::new(VecModel::from(items)))
}

/// The rows a list screen currently shows (for tests and the bench).
pub fn shown_rows(window: &KioskWindow) -> Vec<Row> {
    let rows = window.global::<Kiosk>().get_rows();
    rows.iter().collect()
}
