//! The tournament clock. It is arithmetic, not a ticking counter: the stored [`Clock`] is an
//! anchor (which item, and when it began or how much of it was already played), and everything
//! a screen shows is a pure function of (structure, anchor, now). A node that reboots mid-level
//! shows the right level and time because nothing ever had to tick.
//!
//! Choices made here, so that every screen agrees:
//! - A running clock moves on by itself through levels and breaks as time passes; after the
//!   last item it shows as finished with nothing left. Only [`Clock::finish`] stores a finished
//!   anchor; a clock that merely ran out can still be taken back with [`Clock::previous_item`],
//!   or keeps going if levels are appended to the structure.
//! - Adding or removing time never clamps silently: it is refused with the amounts involved.
//!   An item never shows more than its planned length (lengthen it in the structure instead).
//! - If the wall clock steps back before the start of the running item, the item shows its
//!   full length and the anchor is left alone, rather than rewinding into earlier items.
//! - The structure may be edited under a running clock: the anchor keeps its item index and
//!   offset; an index past the new end shows as finished.

use crate::error::{DomainError, DomainResult};
use crate::structure::{Item, Level, Structure};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Where the clock is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockStatus {
    /// Set up, waiting for "shuffle up and deal".
    #[default]
    NotStarted,
    /// Counting down.
    Running,
    /// Stopped by the floor; no time passes.
    Paused,
    /// Over: the structure ran out, or the floor ended the clock.
    Finished,
}

/// The stored anchor of a tournament clock.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Clock {
    pub status: ClockStatus,
    /// Index into the structure's items (levels and breaks together).
    pub item_index: usize,
    /// While running: the wall time at which the current item began, shifted by any pause or
    /// time adjustment, so that `now - item_started_at` is the time played in the item.
    pub item_started_at: Option<Timestamp>,
    /// While not running: the time already played in the current item.
    pub elapsed_ms: i64,
}

/// Everything a clock screen shows, computed for one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockView {
    /// `Finished` also when a running clock has gone past the end of the structure.
    pub status: ClockStatus,
    /// Index of the current item (the last item once finished).
    pub item_index: usize,
    /// 1-based number of the current level; `None` on a break.
    pub level_number: Option<u32>,
    /// Whether the current item is a break.
    pub on_break: bool,
    /// Time left in the current item, within `0..=` its planned length.
    pub remaining_ms: i64,
    /// Time played in the current item; `elapsed_ms + remaining_ms` is its planned length.
    pub elapsed_ms: i64,
    /// The current item; `None` only when the structure is empty.
    pub current: Option<Item>,
    /// The item that follows, level or break; `None` at the last item or once finished.
    pub next_item: Option<Item>,
    /// The next level after the current item (skipping a break), for "next blinds".
    pub next_level: Option<Level>,
    /// Clock time until the next break starts; `None` if no break is left.
    pub next_break_in_ms: Option<i64>,
    /// When the current item ends, if the clock is running.
    pub item_ends_at: Option<Timestamp>,
}

/// Where a starting point lands once whole items that have run out are skipped.
struct Settled {
    index: usize,
    elapsed_ms: i64,
    ran_out: bool,
}

/// Walks forward from item `index` with `elapsed_ms` played in it, past every item that
/// is already over. Bounded by the number of items.
fn settle(s: &Structure, mut index: usize, elapsed_ms: i64) -> Settled {
    let mut elapsed_ms = elapsed_ms.max(0);
    loop {
        match s.item_duration_ms(index) {
            None => {
                return Settled {
                    index,
                    elapsed_ms: 0,
                    ran_out: true,
                }
            }
            Some(duration) if elapsed_ms >= duration => {
                elapsed_ms -= duration;
                index += 1;
            }
            Some(_) => {
                return Settled {
                    index,
                    elapsed_ms,
                    ran_out: false,
                }
            }
        }
    }
}

/// "5:00", "1:02:03". Partial seconds count as a whole one, as on the screen, where 0:00
/// appears only when the time is really up.
pub fn format_duration_ms(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let secs = ms.unsigned_abs().div_ceil(1000);
    let (hours, minutes, seconds) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if hours > 0 {
        format!("{sign}{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{sign}{minutes}:{seconds:02}")
    }
}

fn finished_error() -> DomainError {
    DomainError::refused("the clock has finished")
}

fn ran_out_error() -> DomainError {
    DomainError::refused("the clock has run through the whole structure: the last level is over")
}

fn describe(s: &Structure, index: usize) -> String {
    s.describe_item(index)
        .unwrap_or_else(|| format!("item {}", index.saturating_add(1)))
}

impl Clock {
    /// A clock that has not started, at the first item.
    pub fn new() -> Clock {
        Clock::default()
    }

    /// The anchor with every item that has run out skipped: the index is the item showing at
    /// `now`, and a clock past the end of the structure is `Finished`. For display and
    /// scheduling; transitions call it themselves.
    pub fn normalized(&self, s: &Structure, now: Timestamp) -> Clock {
        match self.status {
            ClockStatus::Finished => self.clone(),
            ClockStatus::Running => {
                let started = self
                    .item_started_at
                    .unwrap_or_else(|| now.plus_millis(self.elapsed_ms.saturating_neg()));
                let played = now.millis_since(started);
                let settled = settle(s, self.item_index, played);
                if settled.ran_out {
                    Clock::ran_out(settled.index)
                } else if played < 0 {
                    // The wall clock is behind the anchor: keep the anchor rather than rewind.
                    Clock {
                        status: ClockStatus::Running,
                        item_index: settled.index,
                        item_started_at: Some(started),
                        elapsed_ms: 0,
                    }
                } else {
                    Clock::running_from(settled.index, settled.elapsed_ms, now)
                }
            }
            ClockStatus::NotStarted | ClockStatus::Paused => {
                let settled = settle(s, self.item_index, self.elapsed_ms);
                if settled.ran_out {
                    Clock::ran_out(settled.index)
                } else {
                    Clock {
                        status: self.status,
                        item_index: settled.index,
                        item_started_at: None,
                        elapsed_ms: settled.elapsed_ms,
                    }
                }
            }
        }
    }

    fn ran_out(index: usize) -> Clock {
        Clock {
            status: ClockStatus::Finished,
            item_index: index,
            item_started_at: None,
            elapsed_ms: 0,
        }
    }

    fn running_from(index: usize, elapsed_ms: i64, now: Timestamp) -> Clock {
        Clock {
            status: ClockStatus::Running,
            item_index: index,
            item_started_at: Some(now.plus_millis(elapsed_ms.saturating_neg())),
            elapsed_ms: 0,
        }
    }

    /// Time played in the current item at `now`, for an anchor that is already normalized.
    fn elapsed_at(&self, now: Timestamp) -> i64 {
        match (self.status, self.item_started_at) {
            (ClockStatus::Running, Some(started)) => now.millis_since(started).max(0),
            _ => self.elapsed_ms.max(0),
        }
    }

    /// The same position with `status`, at `elapsed_ms` into item `index`.
    fn moved_to(status: ClockStatus, index: usize, elapsed_ms: i64, now: Timestamp) -> Clock {
        if status == ClockStatus::Running {
            Clock::running_from(index, elapsed_ms, now)
        } else {
            Clock {
                status,
                item_index: index,
                item_started_at: None,
                elapsed_ms,
            }
        }
    }

    /// The normalized anchor for a transition, refusing a finished clock.
    fn live(&self, s: &Structure, now: Timestamp) -> DomainResult<Clock> {
        if self.status == ClockStatus::Finished {
            return Err(finished_error());
        }
        let current = self.normalized(s, now);
        if current.status == ClockStatus::Finished {
            return Err(ran_out_error());
        }
        Ok(current)
    }

    /// Starts the countdown at the current item (usually level 1). The structure must be valid.
    pub fn start(&self, s: &Structure, now: Timestamp) -> DomainResult<Clock> {
        match self.status {
            ClockStatus::NotStarted => {}
            ClockStatus::Running => {
                return Err(DomainError::refused("the clock is already running"))
            }
            ClockStatus::Paused => {
                return Err(DomainError::refused(
                    "the clock has already started and is paused: resume it instead",
                ))
            }
            ClockStatus::Finished => return Err(finished_error()),
        }
        s.validate()?;
        let current = self.live(s, now)?;
        Ok(Clock::running_from(
            current.item_index,
            current.elapsed_ms,
            now,
        ))
    }

    /// Stops the countdown; no time passes until [`Clock::resume`].
    pub fn pause(&self, s: &Structure, now: Timestamp) -> DomainResult<Clock> {
        match self.status {
            ClockStatus::Running => {}
            ClockStatus::NotStarted => {
                return Err(DomainError::refused("the clock has not started yet"))
            }
            ClockStatus::Paused => return Err(DomainError::refused("the clock is already paused")),
            ClockStatus::Finished => return Err(finished_error()),
        }
        let current = self.live(s, now)?;
        Ok(Clock {
            status: ClockStatus::Paused,
            item_index: current.item_index,
            item_started_at: None,
            elapsed_ms: current.elapsed_at(now),
        })
    }

    /// Continues a paused countdown exactly where it stopped.
    pub fn resume(&self, s: &Structure, now: Timestamp) -> DomainResult<Clock> {
        match self.status {
            ClockStatus::Paused => {}
            ClockStatus::NotStarted => {
                return Err(DomainError::refused(
                    "the clock has not started yet: start it instead",
                ))
            }
            ClockStatus::Running => return Err(DomainError::refused("the clock is not paused")),
            ClockStatus::Finished => return Err(finished_error()),
        }
        let current = self.live(s, now)?;
        Ok(Clock::running_from(
            current.item_index,
            current.elapsed_ms,
            now,
        ))
    }

    /// Skips to the start of the next level or break, keeping the clock running or paused.
    pub fn next_item(&self, s: &Structure, now: Timestamp) -> DomainResult<Clock> {
        let current = self.live(s, now)?;
        let next = current.item_index.saturating_add(1);
        if next >= s.items.len() {
            return Err(DomainError::refused(format!(
                "there is no level after {}",
                describe(s, current.item_index)
            )));
        }
        Ok(Clock::moved_to(self.status, next, 0, now))
    }

    /// Goes back to the start of the previous level or break, keeping the clock running or
    /// paused. A clock that ran past the end of the structure goes back to its last item.
    pub fn previous_item(&self, s: &Structure, now: Timestamp) -> DomainResult<Clock> {
        if self.status == ClockStatus::Finished {
            return Err(finished_error());
        }
        let current = self.normalized(s, now);
        let target = if current.status == ClockStatus::Finished {
            s.items
                .len()
                .checked_sub(1)
                .ok_or_else(|| DomainError::refused("the structure has no levels"))?
        } else {
            current.item_index.checked_sub(1).ok_or_else(|| {
                DomainError::refused(format!(
                    "there is no level before {}",
                    describe(s, current.item_index)
                ))
            })?
        };
        Ok(Clock::moved_to(self.status, target, 0, now))
    }

    /// Adds time to the current item (`delta_ms > 0`) or removes it (`delta_ms < 0`).
    ///
    /// Refused rather than clamped: adding more than has been played would show more than
    /// the item's planned length, and removing more than is left would silently eat into the
    /// next item.
    pub fn add_time(&self, s: &Structure, delta_ms: i64, now: Timestamp) -> DomainResult<Clock> {
        let current = self.live(s, now)?;
        if delta_ms == 0 {
            return Err(DomainError::invalid(
                "the time change is zero: add or remove at least a second",
            ));
        }
        let index = current.item_index;
        let duration = s.item_duration_ms(index).unwrap_or(0);
        let elapsed = current.elapsed_at(now).min(duration);
        let remaining = duration - elapsed;
        let what = describe(s, index);
        let new_elapsed = if delta_ms > 0 {
            if delta_ms > elapsed {
                return Err(DomainError::refused(format!(
                    "cannot add {}: {what} lasts {} and only {} of it has been played; \
                     lengthen it in the structure to add more",
                    format_duration_ms(delta_ms),
                    format_duration_ms(duration),
                    format_duration_ms(elapsed)
                )));
            }
            elapsed - delta_ms
        } else {
            let removed = delta_ms.saturating_neg();
            if removed > remaining {
                return Err(DomainError::refused(format!(
                    "cannot remove {}: only {} left in {what}",
                    format_duration_ms(removed),
                    format_duration_ms(remaining)
                )));
            }
            elapsed + removed
        };
        Ok(Clock::moved_to(current.status, index, new_elapsed, now))
    }

    /// Sets the time left in the current item, between zero and its planned length.
    pub fn set_remaining(
        &self,
        s: &Structure,
        remaining_ms: i64,
        now: Timestamp,
    ) -> DomainResult<Clock> {
        let current = self.live(s, now)?;
        if remaining_ms < 0 {
            return Err(DomainError::invalid("the time left cannot be negative"));
        }
        let index = current.item_index;
        let duration = s.item_duration_ms(index).unwrap_or(0);
        if remaining_ms > duration {
            return Err(DomainError::refused(format!(
                "{} lasts {}: it cannot have {} left; lengthen it in the structure instead",
                describe(s, index),
                format_duration_ms(duration),
                format_duration_ms(remaining_ms)
            )));
        }
        Ok(Clock::moved_to(
            current.status,
            index,
            duration - remaining_ms,
            now,
        ))
    }

    /// Ends the clock where it stands (the tournament is over). Finishing twice changes nothing.
    pub fn finish(&self, s: &Structure, now: Timestamp) -> Clock {
        if self.status == ClockStatus::Finished {
            return self.clone();
        }
        let current = self.normalized(s, now);
        Clock {
            status: ClockStatus::Finished,
            item_index: current.item_index,
            item_started_at: None,
            elapsed_ms: current.elapsed_at(now),
        }
    }

    /// How much of the structure has been played at `now`: the planned length of every item
    /// before the current one, plus the time played in it.
    pub fn played_ms(&self, s: &Structure, now: Timestamp) -> i64 {
        let current = self.normalized(s, now);
        let before: i64 = s
            .items
            .iter()
            .take(current.item_index)
            .fold(0i64, |sum, item| sum.saturating_add(item.duration_ms()));
        let in_item = s
            .item_duration_ms(current.item_index)
            .map_or(0, |duration| current.elapsed_at(now).min(duration));
        before.saturating_add(in_item)
    }

    /// What every screen shows at `now`.
    pub fn view(&self, s: &Structure, now: Timestamp) -> ClockView {
        let current = self.normalized(s, now);
        if current.status == ClockStatus::Finished {
            let index = current.item_index.min(s.items.len().saturating_sub(1));
            let item = s.items.get(index).cloned();
            return ClockView {
                status: ClockStatus::Finished,
                item_index: index,
                level_number: s.level_number(index),
                on_break: item.as_ref().is_some_and(Item::is_break),
                remaining_ms: 0,
                elapsed_ms: item.as_ref().map_or(0, Item::duration_ms),
                current: item,
                next_item: None,
                next_level: None,
                next_break_in_ms: None,
                item_ends_at: None,
            };
        }

        let index = current.item_index;
        let item = s.items.get(index).cloned();
        let duration = item.as_ref().map_or(0, Item::duration_ms);
        let elapsed = current.elapsed_at(now).min(duration);
        let remaining = duration - elapsed;
        let later = s.items.iter().skip(index.saturating_add(1));
        let next_level = later.clone().find_map(|item| match item {
            Item::Level(level) => Some(level.clone()),
            Item::Break(_) => None,
        });
        let next_break_in_ms = {
            let mut until = remaining;
            let mut found = false;
            for item in later {
                if item.is_break() {
                    found = true;
                    break;
                }
                until = until.saturating_add(item.duration_ms());
            }
            found.then_some(until)
        };
        ClockView {
            status: current.status,
            item_index: index,
            level_number: s.level_number(index),
            on_break: item.as_ref().is_some_and(Item::is_break),
            remaining_ms: remaining,
            elapsed_ms: elapsed,
            current: item,
            next_item: s.items.get(index.saturating_add(1)).cloned(),
            next_level,
            next_break_in_ms,
            item_ends_at: (current.status == ClockStatus::Running)
                .then(|| now.plus_millis(remaining)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::{AnteKind, Break};
    use crate::time::{MINUTE_MS, SECOND_MS};
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp::from_millis(1_790_000_000_000);

    fn at(ms: i64) -> Timestamp {
        T0.plus_millis(ms)
    }

    fn level(big_blind: u64, minutes: u32) -> Item {
        Item::Level(Level {
            small_blind: big_blind / 2,
            big_blind,
            ante: 0,
            ante_kind: AnteKind::None,
            duration_secs: minutes * 60,
        })
    }

    fn pause(minutes: u32) -> Item {
        Item::Break(Break {
            duration_secs: minutes * 60,
            colour_up: None,
        })
    }

    /// Level 1 (20 min), level 2 (20 min), break (10 min), level 3 (20 min): 70 minutes.
    fn evening() -> Structure {
        Structure {
            name: "Evening".to_string(),
            items: vec![level(200, 20), level(400, 20), pause(10), level(600, 20)],
        }
    }

    fn started() -> Clock {
        Clock::new().start(&evening(), T0).unwrap()
    }

    fn err(result: DomainResult<Clock>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn new_clock_shows_level_one_in_full() {
        let v = Clock::new().view(&evening(), T0);
        assert_eq!(v.status, ClockStatus::NotStarted);
        assert_eq!(v.level_number, Some(1));
        assert_eq!(v.remaining_ms, 20 * MINUTE_MS);
        assert_eq!(v.item_ends_at, None);
    }

    #[test]
    fn not_started_clock_does_not_count_down() {
        let v = Clock::new().view(&evening(), at(90 * MINUTE_MS));
        assert_eq!(v.remaining_ms, 20 * MINUTE_MS);
        assert_eq!(v.status, ClockStatus::NotStarted);
    }

    #[test]
    fn started_clock_counts_down() {
        let v = started().view(&evening(), at(5 * MINUTE_MS));
        assert_eq!(v.status, ClockStatus::Running);
        assert_eq!(v.remaining_ms, 15 * MINUTE_MS);
        assert_eq!(v.elapsed_ms, 5 * MINUTE_MS);
        assert_eq!(v.item_ends_at, Some(at(20 * MINUTE_MS)));
    }

    #[test]
    fn starting_twice_is_refused() {
        let s = evening();
        assert_eq!(
            err(started().start(&s, at(1))),
            "the clock is already running"
        );
        let paused = started().pause(&s, at(1)).unwrap();
        assert_eq!(
            err(paused.start(&s, at(2))),
            "the clock has already started and is paused: resume it instead"
        );
    }

    #[test]
    fn starting_with_an_invalid_structure_is_refused() {
        let mut s = evening();
        s.items.push(level(100, 20));
        assert_eq!(
            err(Clock::new().start(&s, T0)),
            "level 4: small blind 50 is lower than the 300 of the level before"
        );
    }

    #[test]
    fn running_clock_moves_through_levels_and_breaks_by_itself() {
        let s = evening();
        let c = started();
        let v = c.view(&s, at(25 * MINUTE_MS));
        assert_eq!(v.level_number, Some(2));
        assert_eq!(v.remaining_ms, 15 * MINUTE_MS);
        let v = c.view(&s, at(45 * MINUTE_MS));
        assert!(v.on_break);
        assert_eq!(v.level_number, None);
        assert_eq!(v.remaining_ms, 5 * MINUTE_MS);
        assert_eq!(v.next_level.map(|l| l.big_blind), Some(600));
        let v = c.view(&s, at(50 * MINUTE_MS));
        assert_eq!(v.level_number, Some(3));
        assert_eq!(v.remaining_ms, 20 * MINUTE_MS);
    }

    #[test]
    fn after_the_last_item_the_clock_is_finished_with_nothing_left() {
        let s = evening();
        let v = started().view(&s, at(70 * MINUTE_MS));
        assert_eq!(v.status, ClockStatus::Finished);
        assert_eq!(v.remaining_ms, 0);
        assert_eq!(v.level_number, Some(3));
        assert_eq!(v.next_item, None);
        assert_eq!(v.item_ends_at, None);
        assert_eq!(
            err(started().pause(&s, at(71 * MINUTE_MS))),
            "the clock has run through the whole structure: the last level is over"
        );
    }

    #[test]
    fn clock_shows_the_next_break_and_next_level() {
        let s = evening();
        let v = started().view(&s, at(5 * MINUTE_MS));
        assert_eq!(v.next_break_in_ms, Some(35 * MINUTE_MS));
        assert_eq!(v.next_item, Some(level(400, 20)));
        assert_eq!(v.next_level.map(|l| l.big_blind), Some(400));
        let v = started().view(&s, at(45 * MINUTE_MS));
        assert_eq!(v.next_break_in_ms, None, "no break after the current one");
        let v = started().view(&s, at(55 * MINUTE_MS));
        assert_eq!(v.next_level, None);
        assert_eq!(v.next_item, None);
    }

    #[test]
    fn pause_freezes_the_time_left() {
        let s = evening();
        let paused = started().pause(&s, at(5 * MINUTE_MS)).unwrap();
        assert_eq!(paused.status, ClockStatus::Paused);
        let v = paused.view(&s, at(60 * MINUTE_MS));
        assert_eq!(v.remaining_ms, 15 * MINUTE_MS);
        assert_eq!(v.level_number, Some(1));
        assert_eq!(v.item_ends_at, None);
    }

    #[test]
    fn resume_continues_where_pause_stopped() {
        let s = evening();
        let c = started()
            .pause(&s, at(5 * MINUTE_MS))
            .unwrap()
            .resume(&s, at(30 * MINUTE_MS))
            .unwrap();
        let v = c.view(&s, at(31 * MINUTE_MS));
        assert_eq!(v.level_number, Some(1));
        assert_eq!(v.remaining_ms, 14 * MINUTE_MS);
    }

    #[test]
    fn pause_and_resume_refuse_the_wrong_state() {
        let s = evening();
        assert_eq!(
            err(Clock::new().pause(&s, T0)),
            "the clock has not started yet"
        );
        assert_eq!(
            err(Clock::new().resume(&s, T0)),
            "the clock has not started yet: start it instead"
        );
        assert_eq!(err(started().resume(&s, at(1))), "the clock is not paused");
        let paused = started().pause(&s, at(1)).unwrap();
        assert_eq!(err(paused.pause(&s, at(2))), "the clock is already paused");
    }

    #[test]
    fn pausing_after_the_level_ended_pauses_the_next_item() {
        let s = evening();
        let paused = started().pause(&s, at(22 * MINUTE_MS)).unwrap();
        assert_eq!(paused.item_index, 1);
        assert_eq!(paused.elapsed_ms, 2 * MINUTE_MS);
    }

    #[test]
    fn next_item_skips_to_the_start_of_the_next_item() {
        let s = evening();
        let c = started().next_item(&s, at(5 * MINUTE_MS)).unwrap();
        let v = c.view(&s, at(6 * MINUTE_MS));
        assert_eq!(v.level_number, Some(2));
        assert_eq!(v.remaining_ms, 19 * MINUTE_MS);
        let paused = started().pause(&s, at(MINUTE_MS)).unwrap();
        let skipped = paused.next_item(&s, at(2 * MINUTE_MS)).unwrap();
        assert_eq!(skipped.status, ClockStatus::Paused);
        assert_eq!(
            skipped.view(&s, at(9 * MINUTE_MS)).remaining_ms,
            20 * MINUTE_MS
        );
    }

    #[test]
    fn next_item_after_the_last_level_is_refused() {
        let s = evening();
        let c = started().next_item(&s, at(55 * MINUTE_MS));
        assert_eq!(err(c), "there is no level after level 3");
    }

    #[test]
    fn previous_item_goes_back_to_the_start_of_the_previous_item() {
        let s = evening();
        let c = started().previous_item(&s, at(55 * MINUTE_MS)).unwrap();
        let v = c.view(&s, at(55 * MINUTE_MS));
        assert!(v.on_break);
        assert_eq!(v.remaining_ms, 10 * MINUTE_MS);
        assert_eq!(
            err(started().previous_item(&s, at(MINUTE_MS))),
            "there is no level before level 1"
        );
    }

    #[test]
    fn previous_item_brings_back_a_clock_that_ran_out() {
        let s = evening();
        let c = started().previous_item(&s, at(99 * MINUTE_MS)).unwrap();
        let v = c.view(&s, at(100 * MINUTE_MS));
        assert_eq!(v.status, ClockStatus::Running);
        assert_eq!(v.level_number, Some(3));
        assert_eq!(v.remaining_ms, 19 * MINUTE_MS);
    }

    #[test]
    fn add_time_gives_back_played_time() {
        let s = evening();
        let c = started()
            .add_time(&s, 2 * MINUTE_MS, at(5 * MINUTE_MS))
            .unwrap();
        assert_eq!(c.view(&s, at(5 * MINUTE_MS)).remaining_ms, 17 * MINUTE_MS);
        let paused = started().pause(&s, at(5 * MINUTE_MS)).unwrap();
        let c = paused.add_time(&s, MINUTE_MS, at(6 * MINUTE_MS)).unwrap();
        assert_eq!(c.status, ClockStatus::Paused);
        assert_eq!(c.view(&s, at(9 * MINUTE_MS)).remaining_ms, 16 * MINUTE_MS);
    }

    #[test]
    fn adding_more_than_was_played_is_refused() {
        let s = evening();
        let e = err(started().add_time(&s, 6 * MINUTE_MS, at(5 * MINUTE_MS)));
        assert_eq!(
            e,
            "cannot add 6:00: level 1 lasts 20:00 and only 5:00 of it has been played; \
             lengthen it in the structure to add more"
        );
    }

    #[test]
    fn negative_add_time_removes_time() {
        let s = evening();
        let c = started()
            .add_time(&s, -3 * MINUTE_MS, at(5 * MINUTE_MS))
            .unwrap();
        assert_eq!(c.view(&s, at(5 * MINUTE_MS)).remaining_ms, 12 * MINUTE_MS);
    }

    #[test]
    fn removing_more_than_is_left_is_refused() {
        let s = evening();
        let now = at(56 * MINUTE_MS + 48 * SECOND_MS);
        let e = err(started().add_time(&s, -20 * MINUTE_MS, now));
        assert_eq!(e, "cannot remove 20:00: only 13:12 left in level 3");
    }

    #[test]
    fn removing_exactly_what_is_left_moves_to_the_next_item() {
        let s = evening();
        let c = started()
            .add_time(&s, -15 * MINUTE_MS, at(5 * MINUTE_MS))
            .unwrap();
        let v = c.view(&s, at(5 * MINUTE_MS));
        assert_eq!(v.level_number, Some(2));
        assert_eq!(v.remaining_ms, 20 * MINUTE_MS);
    }

    #[test]
    fn zero_time_change_is_refused() {
        let s = evening();
        assert!(err(started().add_time(&s, 0, at(1))).starts_with("the time change is zero"));
    }

    #[test]
    fn set_remaining_sets_the_time_left() {
        let s = evening();
        let c = started()
            .set_remaining(&s, 7 * MINUTE_MS, at(2 * MINUTE_MS))
            .unwrap();
        let v = c.view(&s, at(3 * MINUTE_MS));
        assert_eq!(v.remaining_ms, 6 * MINUTE_MS);
        let fresh = Clock::new().set_remaining(&s, MINUTE_MS, T0).unwrap();
        assert_eq!(fresh.status, ClockStatus::NotStarted);
        let running = fresh.start(&s, T0).unwrap();
        assert_eq!(running.view(&s, at(MINUTE_MS)).level_number, Some(2));
    }

    #[test]
    fn set_remaining_outside_the_item_is_refused() {
        let s = evening();
        assert_eq!(
            err(started().set_remaining(&s, 25 * MINUTE_MS, at(1))),
            "level 1 lasts 20:00: it cannot have 25:00 left; lengthen it in the structure instead"
        );
        assert_eq!(
            err(started().set_remaining(&s, -1, at(1))),
            "the time left cannot be negative"
        );
    }

    #[test]
    fn finish_stops_the_clock_for_good() {
        let s = evening();
        let done = started().finish(&s, at(25 * MINUTE_MS));
        assert_eq!(done.status, ClockStatus::Finished);
        let v = done.view(&s, at(26 * MINUTE_MS));
        assert_eq!(v.status, ClockStatus::Finished);
        assert_eq!(v.level_number, Some(2));
        assert_eq!(v.remaining_ms, 0);
        assert_eq!(done.finish(&s, at(30 * MINUTE_MS)), done);
        for refused in [
            done.start(&s, at(1)),
            done.pause(&s, at(1)),
            done.resume(&s, at(1)),
            done.next_item(&s, at(1)),
            done.previous_item(&s, at(1)),
            done.add_time(&s, 1, at(1)),
            done.set_remaining(&s, 1, at(1)),
        ] {
            assert_eq!(err(refused), "the clock has finished");
        }
    }

    #[test]
    fn rebooted_node_shows_the_right_level_and_time_from_the_stored_anchor() {
        let s = evening();
        let clock = started()
            .pause(&s, at(10 * MINUTE_MS))
            .unwrap()
            .resume(&s, at(13 * MINUTE_MS))
            .unwrap();
        let stored = serde_json::to_string(&clock).unwrap();
        // Power is lost; the node comes back 40 minutes after the start.
        let restored: Clock = serde_json::from_str(&stored).unwrap();
        let v = restored.view(&s, at(40 * MINUTE_MS + 30 * SECOND_MS));
        // 37:30 of clock time played: level 1 (20:00), then 17:30 into level 2.
        assert_eq!(v.level_number, Some(2));
        assert_eq!(v.remaining_ms, 2 * MINUTE_MS + 30 * SECOND_MS);
        assert_eq!(v, clock.view(&s, at(40 * MINUTE_MS + 30 * SECOND_MS)));
    }

    #[test]
    fn wall_clock_stepping_back_shows_the_full_item_without_moving_the_anchor() {
        let s = evening();
        let c = started().next_item(&s, at(10 * MINUTE_MS)).unwrap();
        let v = c.view(&s, at(9 * MINUTE_MS));
        assert_eq!(v.level_number, Some(2));
        assert_eq!(v.remaining_ms, 20 * MINUTE_MS);
        assert_eq!(c.normalized(&s, at(9 * MINUTE_MS)), c);
    }

    #[test]
    fn editing_the_structure_under_a_running_clock_is_safe() {
        let s = evening();
        let c = started()
            .next_item(&s, T0)
            .unwrap()
            .next_item(&s, T0)
            .unwrap();
        let mut shorter = s.clone();
        shorter.items.truncate(1);
        let v = c.view(&shorter, at(MINUTE_MS));
        assert_eq!(v.status, ClockStatus::Finished);
        assert_eq!(v.level_number, Some(1));
        let mut longer = s.clone();
        longer.items.push(level(800, 20));
        let v = c.view(&longer, at(MINUTE_MS));
        assert!(v.on_break);
        assert_eq!(v.next_break_in_ms, None);
        let empty = Structure {
            name: "empty".to_string(),
            items: vec![],
        };
        let v = c.view(&empty, at(MINUTE_MS));
        assert_eq!(v.status, ClockStatus::Finished);
        assert_eq!(v.current, None);
    }

    #[test]
    fn durations_are_written_as_a_clock_shows_them() {
        assert_eq!(format_duration_ms(0), "0:00");
        assert_eq!(format_duration_ms(5 * MINUTE_MS), "5:00");
        assert_eq!(format_duration_ms(192_001), "3:13");
        assert_eq!(format_duration_ms(3_723_000), "1:02:03");
        assert_eq!(format_duration_ms(-61_000), "-1:01");
    }

    fn arb_valid_structure() -> impl Strategy<Value = Structure> {
        prop::collection::vec((1u32..=1200, any::<bool>()), 1..12).prop_map(|steps| {
            let mut items = Vec::new();
            for (i, (secs, break_before)) in steps.into_iter().enumerate() {
                if break_before && i > 0 {
                    items.push(Item::Break(Break {
                        duration_secs: secs / 2 + 1,
                        colour_up: None,
                    }));
                }
                items.push(Item::Level(Level {
                    small_blind: 100,
                    big_blind: 200,
                    ante: 0,
                    ante_kind: AnteKind::None,
                    duration_secs: secs,
                }));
            }
            Structure {
                name: "p".to_string(),
                items,
            }
        })
    }

    fn arb_any_structure() -> impl Strategy<Value = Structure> {
        prop::collection::vec((any::<u32>(), any::<bool>()), 0..8).prop_map(|steps| Structure {
            name: String::new(),
            items: steps
                .into_iter()
                .map(|(secs, is_break)| {
                    if is_break {
                        Item::Break(Break {
                            duration_secs: secs % 4000,
                            colour_up: None,
                        })
                    } else {
                        Item::Level(Level {
                            small_blind: 1,
                            big_blind: 2,
                            ante: 0,
                            ante_kind: AnteKind::None,
                            duration_secs: secs,
                        })
                    }
                })
                .collect(),
        })
    }

    fn arb_any_clock() -> impl Strategy<Value = Clock> {
        (
            prop_oneof![
                Just(ClockStatus::NotStarted),
                Just(ClockStatus::Running),
                Just(ClockStatus::Paused),
                Just(ClockStatus::Finished),
            ],
            prop_oneof![0usize..12, Just(usize::MAX)],
            proptest::option::of(prop_oneof![
                any::<i64>(),
                (-10_000_000_000i64..10_000_000_000).prop_map(|d| T0.as_millis() + d)
            ]),
            prop_oneof![any::<i64>(), -100_000_000i64..100_000_000],
        )
            .prop_map(|(status, item_index, started, elapsed_ms)| Clock {
                status,
                item_index,
                item_started_at: started.map(Timestamp::from_millis),
                elapsed_ms,
            })
    }

    fn arb_now() -> impl Strategy<Value = Timestamp> {
        prop_oneof![
            any::<i64>(),
            (-10_000_000_000i64..10_000_000_000).prop_map(|d| T0.as_millis() + d)
        ]
        .prop_map(Timestamp::from_millis)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn pause_resume_and_waiting_never_lose_or_gain_time(
            s in arb_valid_structure(),
            steps in prop::collection::vec((any::<bool>(), 0i64..900_000), 0..40),
        ) {
            let total = s.total_duration_ms();
            let mut now = T0;
            let mut clock = Clock::new().start(&s, now).unwrap();
            let mut running = true;
            let mut run_time = 0i64;
            for (toggle, wait) in steps {
                if toggle {
                    let next = if running { clock.pause(&s, now) } else { clock.resume(&s, now) };
                    match next {
                        Ok(c) => {
                            clock = c;
                            running = !running;
                        }
                        // Only a clock that has run through everything may refuse.
                        Err(_) => prop_assert!(run_time >= total),
                    }
                } else {
                    now = now.plus_millis(wait);
                    if running {
                        run_time += wait;
                    }
                }
                prop_assert_eq!(clock.played_ms(&s, now), run_time.min(total));
            }
        }

        #[test]
        fn view_never_panics_and_stays_within_the_item(
            s in arb_any_structure(),
            clock in arb_any_clock(),
            now in arb_now(),
            delta in any::<i64>(),
        ) {
            let v = clock.view(&s, now);
            let duration = v.current.as_ref().map_or(0, Item::duration_ms);
            prop_assert!((0..=duration).contains(&v.remaining_ms));
            prop_assert_eq!(v.remaining_ms + v.elapsed_ms, duration);
            if let Some(next_break) = v.next_break_in_ms {
                prop_assert!(next_break >= v.remaining_ms);
            }
            let _ = clock.normalized(&s, now);
            let _ = clock.played_ms(&s, now);
            let _ = clock.finish(&s, now);
            for moved in [
                clock.start(&s, now),
                clock.pause(&s, now),
                clock.resume(&s, now),
                clock.next_item(&s, now),
                clock.previous_item(&s, now),
                clock.add_time(&s, delta, now),
                clock.set_remaining(&s, delta, now),
            ] .into_iter().flatten() {
                let v = moved.view(&s, now);
                let duration = v.current.as_ref().map_or(0, Item::duration_ms);
                prop_assert!((0..=duration).contains(&v.remaining_ms));
            }
        }

        #[test]
        fn running_clock_remaining_stays_within_the_item_duration(
            s in arb_valid_structure(),
            later in 0i64..20_000_000,
        ) {
            let v = Clock::new().start(&s, T0).unwrap().view(&s, at(later));
            let duration = s.item_duration_ms(v.item_index).unwrap();
            prop_assert!((0..=duration).contains(&v.remaining_ms));
            prop_assert_eq!(v.status == ClockStatus::Finished, later >= s.total_duration_ms());
        }
    }
}
