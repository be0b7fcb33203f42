//! Local time-keeping: the node's clock as seen from here, and the tournament countdown
//! computed from a view's anchor. The TV counts on its own between updates, and through a
//! node restart, so nothing here depends on messages arriving every second.

use pvm_core::views::{ClockScreen, ClockSegment};
use std::sync::OnceLock;
use std::time::Instant;

/// Milliseconds on this process's monotonic clock. The wall clock can be stepped by NTP under
/// us; the offset to the node is measured against this one instead, so a step cannot make the
/// countdown jump.
pub fn mono_ms() -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// The node's clock minus ours, from the timestamps the node sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeSync {
    offset_ms: Option<i64>,
    /// Round trip of the ping that set the offset; `None` when it came from a one-way message.
    rtt_ms: Option<i64>,
}

impl TimeSync {
    /// A one-way sample (`hello`, `snapshot`, `update`, `time`): the server's time when it sent
    /// the message, and ours when it arrived. On loopback the delay is well under a
    /// millisecond; it is only used until a ping has given a round-trip sample.
    pub fn observe(&mut self, server_time_ms: i64, local_recv_ms: i64) {
        if self.rtt_ms.is_none() {
            self.offset_ms = Some(server_time_ms - local_recv_ms);
        }
    }

    /// A `pong`: the midpoint of the round trip is when the server stamped it. The latest one
    /// always wins, so a step of the node's clock is followed within one ping.
    pub fn observe_round_trip(&mut self, sent_ms: i64, server_time_ms: i64, local_recv_ms: i64) {
        let rtt = (local_recv_ms - sent_ms).max(0);
        self.offset_ms = Some(server_time_ms - (sent_ms + rtt / 2));
        self.rtt_ms = Some(rtt);
    }

    /// Forget round-trip precision, e.g. after a reconnect to a node that may have restarted
    /// with another clock: the next one-way sample is taken until a new pong arrives.
    pub fn reset_precision(&mut self) {
        self.rtt_ms = None;
    }

    pub fn offset_ms(&self) -> Option<i64> {
        self.offset_ms
    }

    /// The node's time now, by our clock and the last known offset.
    pub fn server_now(&self, local_ms: i64) -> Option<i64> {
        self.offset_ms.map(|o| local_ms + o)
    }
}

/// Where the clock is at some instant, computed from a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockPosition {
    /// Index into `ClockScreen::segments` (0 = the segment current when the view was made).
    pub segment: usize,
    pub remaining_ms: i64,
    /// Past the end of the last segment.
    pub finished: bool,
}

/// The clock of `screen` (made at `anchor_ms` on the node's clock) at `now_ms` on the node's
/// clock: walk through the segments, so a level change happens on time even with no update.
pub fn position_at(screen: &ClockScreen, anchor_ms: i64, now_ms: i64) -> ClockPosition {
    if !screen.running {
        return ClockPosition {
            segment: 0,
            remaining_ms: screen.remaining_ms.max(0),
            finished: screen.status == "finished",
        };
    }
    let mut remaining = screen.remaining_ms - (now_ms - anchor_ms).max(0);
    let mut segment = 0;
    while remaining <= 0 && segment + 1 < screen.segments.len() {
        segment += 1;
        remaining += screen.segments[segment].duration_ms;
    }
    ClockPosition {
        segment,
        remaining_ms: remaining.max(0),
        finished: remaining <= 0,
    }
}

/// Milliseconds until the countdown text (whole seconds, rounded up) changes.
pub fn ms_until_next_second(remaining_ms: i64) -> i64 {
    if remaining_ms <= 0 {
        return 1000;
    }
    remaining_ms - ((remaining_ms - 1) / 1000) * 1000
}

/// "Break in 1:04:00" from the local position, or "" when no break is left.
pub fn next_break_text(segments: &[ClockSegment], pos: &ClockPosition) -> String {
    let mut ms = pos.remaining_ms;
    for seg in segments.iter().skip(pos.segment + 1) {
        if seg.is_break {
            return format!("Break in {}", pvm_core::format::countdown(ms));
        }
        ms += seg.duration_ms;
    }
    String::new()
}

/// "Next: 300/600 ante 600" or "Next: Break" after the segment at `index`.
pub fn next_text(segments: &[ClockSegment], index: usize) -> String {
    match segments.get(index + 1) {
        Some(s) if s.is_break => "Next: Break".to_string(),
        Some(s) => format!("Next: {}", s.detail),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvm_core::ids::TournamentId;

    fn seg(title: &str, is_break: bool, mins: i64) -> ClockSegment {
        ClockSegment {
            title: title.into(),
            detail: if is_break {
                "Colour up the 25s".into()
            } else {
                "100/200".into()
            },
            is_break,
            duration_ms: mins * 60_000,
        }
    }

    fn screen(running: bool, remaining_ms: i64) -> ClockScreen {
        ClockScreen {
            tournament_id: TournamentId(uuid_nil()),
            tournament_name: "T".into(),
            status: if running { "running" } else { "paused" }.into(),
            running,
            remaining_ms,
            time_left: String::new(),
            segments: vec![
                seg("Level 1", false, 20),
                seg("Break", true, 10),
                seg("Level 2", false, 20),
            ],
            on_break: false,
            level_title: "Level 1".into(),
            blinds: "100/200".into(),
            next: String::new(),
            next_break: String::new(),
            hand_for_hand: false,
            players_left: String::new(),
            entries: String::new(),
            reentries: String::new(),
            rebuys: String::new(),
            addons: String::new(),
            average_stack: String::new(),
            average_stack_bb: String::new(),
            chips_in_play: String::new(),
            prize_pool: String::new(),
            overlay: String::new(),
            payouts: Vec::new(),
            registration: String::new(),
        }
    }

    fn uuid_nil() -> uuid::Uuid {
        uuid::Uuid::nil()
    }

    #[test]
    fn a_running_clock_counts_down_from_its_anchor() {
        let s = screen(true, 60_000);
        let p = position_at(&s, 1_000_000, 1_010_500);
        assert_eq!(p.segment, 0);
        assert_eq!(p.remaining_ms, 49_500);
        assert_eq!(pvm_core::format::countdown(p.remaining_ms), "0:50");
    }

    #[test]
    fn a_running_clock_walks_into_the_break_and_the_next_level_on_its_own() {
        let s = screen(true, 60_000);
        let into_break = position_at(&s, 0, 61_000);
        assert_eq!(into_break.segment, 1);
        assert_eq!(into_break.remaining_ms, 10 * 60_000 - 1_000);
        let after = position_at(&s, 0, 60_000 + 10 * 60_000 + 5_000);
        assert_eq!(after.segment, 2);
        assert_eq!(after.remaining_ms, 20 * 60_000 - 5_000);
        let end = position_at(&s, 0, 60_000 + 30 * 60_000 + 1);
        assert!(end.finished);
        assert_eq!(end.remaining_ms, 0);
    }

    #[test]
    fn a_paused_clock_does_not_move() {
        let s = screen(false, 42_000);
        assert_eq!(position_at(&s, 0, 999_999).remaining_ms, 42_000);
    }

    #[test]
    fn the_round_trip_midpoint_sets_the_offset_and_later_one_way_samples_do_not_override_it() {
        let mut t = TimeSync::default();
        t.observe(5_000, 100);
        assert_eq!(t.offset_ms(), Some(4_900));
        t.observe_round_trip(200, 5_110, 220);
        assert_eq!(t.offset_ms(), Some(4_900));
        t.observe(9_999, 300);
        assert_eq!(t.offset_ms(), Some(4_900));
        t.reset_precision();
        t.observe(10_000, 300);
        assert_eq!(t.server_now(400), Some(10_100));
    }

    #[test]
    fn the_next_redraw_lands_when_the_displayed_second_changes() {
        assert_eq!(ms_until_next_second(12_345), 345);
        assert_eq!(ms_until_next_second(12_000), 1_000);
        assert_eq!(ms_until_next_second(1), 1);
    }

    #[test]
    fn break_in_counts_to_the_next_break_from_the_local_position() {
        let s = screen(true, 60_000);
        let p = position_at(&s, 0, 30_000);
        assert_eq!(next_break_text(&s.segments, &p), "Break in 0:30");
        assert_eq!(next_text(&s.segments, 0), "Next: Break");
        assert_eq!(next_text(&s.segments, 1), "Next: 100/200");
    }
}
