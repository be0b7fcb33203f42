//! Blind structures: the ordered list of levels and breaks a tournament clock runs through.
//!
//! A structure is plain data. It is checked by [`Structure::validate`] whenever it comes from
//! outside (JSON or CSV import, a floor manager's edit), so the clock can trust its shape; the
//! clock still never panics on an unchecked one.

use crate::error::{DomainError, DomainResult};
use crate::money::Chips;
use crate::time::SECOND_MS;
use serde::{Deserialize, Serialize};

/// Longest level accepted: beyond this the number is a typo (minutes entered as seconds…).
pub const MAX_LEVEL_SECS: u32 = 4 * 3600;
/// Longest break accepted (a dinner break fits; an overnight stop is not a clock break).
pub const MAX_BREAK_SECS: u32 = 12 * 3600;
/// Most items in one structure; real structures have a few dozen.
pub const MAX_ITEMS: usize = 200;
/// Largest blind or ante accepted, far above any real game, so sums can never overflow.
pub const MAX_BLIND: Chips = 1_000_000_000_000;
/// Longest structure name.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest colour-up note.
pub const MAX_NOTE_CHARS: usize = 200;

/// How the ante of a level is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnteKind {
    /// No ante.
    #[default]
    None,
    /// Every player pays the ante ("ante 400").
    Classic,
    /// The big blind pays the ante for the whole table ("big-blind ante").
    BigBlind,
}

impl AnteKind {
    /// The spelling used in CSV files and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            AnteKind::None => "none",
            AnteKind::Classic => "classic",
            AnteKind::BigBlind => "big_blind",
        }
    }
}

/// One blind level.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Level {
    pub small_blind: Chips,
    pub big_blind: Chips,
    /// The ante amount: per player for a classic ante, the whole table's for a big-blind ante.
    #[serde(default)]
    pub ante: Chips,
    #[serde(default)]
    pub ante_kind: AnteKind,
    /// Planned length; a running clock moves on when it is used up.
    pub duration_secs: u32,
}

/// A break between levels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Break {
    /// Planned length of the break.
    pub duration_secs: u32,
    /// What the dealers do during the break, e.g. "colour up: race off the 25s".
    #[serde(default)]
    pub colour_up: Option<String>,
}

/// One step of a structure.
///
/// Newtype variants so that [`Level`] can be handed around on its own (the clock shows "next
/// level"); with the internal tag their JSON is exactly the flat struct-variant form:
/// `{"type":"level","small_blind":100,...}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    /// Cards are dealt at these blinds.
    Level(Level),
    /// Play stops.
    Break(Break),
}

impl Item {
    /// Planned length of the item in seconds.
    pub fn duration_secs(&self) -> u32 {
        match self {
            Item::Level(level) => level.duration_secs,
            Item::Break(pause) => pause.duration_secs,
        }
    }

    /// Planned length of the item in milliseconds.
    pub fn duration_ms(&self) -> i64 {
        i64::from(self.duration_secs()) * SECOND_MS
    }

    /// Whether this item is a break.
    pub fn is_break(&self) -> bool {
        matches!(self, Item::Break(_))
    }
}

/// A named blind structure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Structure {
    /// What the floor calls it, e.g. "Monday Deep Stack".
    pub name: String,
    /// Levels and breaks in the order they are played.
    pub items: Vec<Item>,
}

/// The built-in structures a floor manager starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// 10,000 chips, 15-minute levels: about four hours to a winner in a small field.
    Turbo,
    /// 20,000 chips, 20-minute levels: the usual evening tournament.
    Standard,
    /// 40,000 chips, 30-minute levels: a long, skill-heavy event.
    DeepStack,
}

/// The shape of a template: everything except the shared blind ladder.
struct TemplateShape {
    name: &'static str,
    starting_stack: Chips,
    levels: usize,
    level_minutes: u32,
    levels_between_breaks: usize,
    break_minutes: u32,
    /// First level (1-based) with a big-blind ante.
    first_ante_level: usize,
}

/// (small blind, big blind) in the order they are played. Every template walks this ladder;
/// they differ in stack, level length and how far down the ladder they go.
const BLIND_LADDER: [(Chips, Chips); 28] = [
    (50, 100),
    (100, 200),
    (150, 300),
    (200, 400),
    (250, 500),
    (300, 600),
    (400, 800),
    (500, 1_000),
    (600, 1_200),
    (800, 1_600),
    (1_000, 2_000),
    (1_200, 2_400),
    (1_500, 3_000),
    (2_000, 4_000),
    (2_500, 5_000),
    (3_000, 6_000),
    (4_000, 8_000),
    (5_000, 10_000),
    (6_000, 12_000),
    (8_000, 16_000),
    (10_000, 20_000),
    (12_500, 25_000),
    (15_000, 30_000),
    (20_000, 40_000),
    (25_000, 50_000),
    (30_000, 60_000),
    (40_000, 80_000),
    (50_000, 100_000),
];

/// The chip set the templates assume, smallest first.
const CHIP_SET: [Chips; 6] = [25, 100, 500, 1_000, 5_000, 25_000];

impl Template {
    /// Every built-in template.
    pub const ALL: [Template; 3] = [Template::Turbo, Template::Standard, Template::DeepStack];

    fn shape(self) -> TemplateShape {
        match self {
            Template::Turbo => TemplateShape {
                name: "Turbo",
                starting_stack: 10_000,
                levels: 20,
                level_minutes: 15,
                levels_between_breaks: 6,
                break_minutes: 10,
                first_ante_level: 4,
            },
            Template::Standard => TemplateShape {
                name: "Standard",
                starting_stack: 20_000,
                levels: 24,
                level_minutes: 20,
                levels_between_breaks: 4,
                break_minutes: 15,
                first_ante_level: 5,
            },
            Template::DeepStack => TemplateShape {
                name: "Deep Stack",
                starting_stack: 40_000,
                levels: 28,
                level_minutes: 30,
                levels_between_breaks: 4,
                break_minutes: 15,
                first_ante_level: 6,
            },
        }
    }

    /// The starting stack this template is designed for.
    pub fn starting_stack(self) -> Chips {
        self.shape().starting_stack
    }
}

/// Largest chip of the set that divides every amount, i.e. the smallest chip still needed.
fn smallest_chip_needed(levels: &[Level]) -> Chips {
    CHIP_SET
        .iter()
        .rev()
        .copied()
        .find(|&chip| {
            levels.iter().all(|l| {
                l.small_blind.is_multiple_of(chip)
                    && l.big_blind.is_multiple_of(chip)
                    && l.ante.is_multiple_of(chip)
            })
        })
        .unwrap_or(1)
}

impl Structure {
    /// A built-in structure, valid by construction (a test checks it).
    ///
    /// Breaks carry a colour-up note when the next levels no longer need the smallest chips.
    pub fn template(template: Template) -> Structure {
        let shape = template.shape();
        let levels: Vec<Level> = BLIND_LADDER
            .iter()
            .take(shape.levels)
            .enumerate()
            .map(|(i, &(small_blind, big_blind))| {
                let with_ante = i + 1 >= shape.first_ante_level;
                Level {
                    small_blind,
                    big_blind,
                    ante: if with_ante { big_blind } else { 0 },
                    ante_kind: if with_ante {
                        AnteKind::BigBlind
                    } else {
                        AnteKind::None
                    },
                    duration_secs: shape.level_minutes * 60,
                }
            })
            .collect();

        let mut chip_in_play = smallest_chip_needed(&levels);
        let mut items = Vec::with_capacity(levels.len() + levels.len() / 2);
        for (i, level) in levels.iter().enumerate() {
            items.push(Item::Level(level.clone()));
            let played = i + 1;
            let more_levels_follow = played < levels.len();
            if more_levels_follow && played.is_multiple_of(shape.levels_between_breaks) {
                let needed = smallest_chip_needed(levels.get(played..).unwrap_or(&[]));
                let colour_up = (needed > chip_in_play).then(|| {
                    let raced: Vec<String> = CHIP_SET
                        .iter()
                        .filter(|&&c| c >= chip_in_play && c < needed)
                        .map(|c| format!("{c}s"))
                        .collect();
                    format!("colour up: race off the {}", raced.join(" and "))
                });
                chip_in_play = chip_in_play.max(needed);
                items.push(Item::Break(Break {
                    duration_secs: shape.break_minutes * 60,
                    colour_up,
                }));
            }
        }
        Structure {
            name: shape.name.to_string(),
            items,
        }
    }

    /// Checks the structure is one a clock can run and a floor manager meant.
    pub fn validate(&self) -> DomainResult<()> {
        self.find_problem()
            .map_or(Ok(()), |problem| Err(DomainError::invalid(problem.message)))
    }

    /// The first problem found, with the index of the item it concerns (if any), so that an
    /// importer can point at the line of the file.
    fn find_problem(&self) -> Option<Problem> {
        let name = self.name.trim();
        if name.is_empty() {
            return Some(Problem::whole("the structure has no name"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Some(Problem::whole(format!(
                "the structure name is longer than {MAX_NAME_CHARS} characters"
            )));
        }
        if self.items.len() > MAX_ITEMS {
            return Some(Problem::whole(format!(
                "the structure has {} items; at most {MAX_ITEMS} are allowed",
                self.items.len()
            )));
        }
        if !self.items.iter().any(|item| !item.is_break()) {
            return Some(Problem::whole("the structure has no levels"));
        }
        if self.items.first().is_some_and(Item::is_break) {
            return Some(Problem::at(0, "the structure starts with a break"));
        }
        let last = self.items.len() - 1;
        if self.items.last().is_some_and(Item::is_break) {
            return Some(Problem::at(
                last,
                "the structure ends with a break: a break needs a level after it",
            ));
        }

        let mut previous_level: Option<&Level> = None;
        let mut previous_was_break = false;
        let mut level_number = 0u32;
        for (index, item) in self.items.iter().enumerate() {
            match item {
                Item::Level(level) => {
                    level_number += 1;
                    if let Some(message) = level_problem(level_number, level, previous_level) {
                        return Some(Problem::at(index, message));
                    }
                    previous_level = Some(level);
                    previous_was_break = false;
                }
                Item::Break(pause) => {
                    let what = format!("the break after level {level_number}");
                    if previous_was_break {
                        return Some(Problem::at(
                            index,
                            format!("two breaks in a row after level {level_number}"),
                        ));
                    }
                    if pause.duration_secs == 0 {
                        return Some(Problem::at(index, format!("{what} has zero duration")));
                    }
                    if pause.duration_secs > MAX_BREAK_SECS {
                        return Some(Problem::at(
                            index,
                            format!(
                                "{what} lasts {}; at most {} is allowed",
                                format_secs(pause.duration_secs),
                                format_secs(MAX_BREAK_SECS)
                            ),
                        ));
                    }
                    if let Some(note) = &pause.colour_up {
                        if note.chars().count() > MAX_NOTE_CHARS {
                            return Some(Problem::at(
                                index,
                                format!(
                                    "the note of {what} is longer than {MAX_NOTE_CHARS} characters"
                                ),
                            ));
                        }
                    }
                    previous_was_break = true;
                }
            }
        }
        None
    }

    /// The 1-based level number of item `index`, or `None` for a break or past the end.
    pub fn level_number(&self, index: usize) -> Option<u32> {
        match self.items.get(index)? {
            Item::Break(_) => None,
            Item::Level(_) => Some(self.levels_up_to(index)),
        }
    }

    /// How many levels are among the items `0..=index`.
    fn levels_up_to(&self, index: usize) -> u32 {
        let count = self
            .items
            .iter()
            .take(index.saturating_add(1))
            .filter(|item| !item.is_break())
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// The item index of level `number` (1-based), if the structure has that many levels.
    pub fn index_of_level(&self, number: u32) -> Option<usize> {
        let nth = usize::try_from(number).ok()?.checked_sub(1)?;
        self.items
            .iter()
            .enumerate()
            .filter(|(_, item)| !item.is_break())
            .nth(nth)
            .map(|(index, _)| index)
    }

    /// The planned length of item `index` in milliseconds.
    pub fn item_duration_ms(&self, index: usize) -> Option<i64> {
        self.items.get(index).map(Item::duration_ms)
    }

    /// The planned length of the whole structure in milliseconds.
    pub fn total_duration_ms(&self) -> i64 {
        self.items
            .iter()
            .fold(0i64, |sum, item| sum.saturating_add(item.duration_ms()))
    }

    /// Only the levels, in order.
    pub fn levels(&self) -> impl Iterator<Item = &Level> {
        self.items.iter().filter_map(|item| match item {
            Item::Level(level) => Some(level),
            Item::Break(_) => None,
        })
    }

    /// How a floor manager names item `index`: "level 6", "the break after level 4".
    pub fn describe_item(&self, index: usize) -> Option<String> {
        match self.items.get(index)? {
            Item::Level(_) => Some(format!("level {}", self.levels_up_to(index))),
            Item::Break(_) => match self.levels_up_to(index) {
                0 => Some("the break before level 1".to_string()),
                n => Some(format!("the break after level {n}")),
            },
        }
    }

    /// The structure as pretty JSON (the form [`Structure::from_json`] reads).
    pub fn to_json(&self) -> DomainResult<String> {
        serde_json::to_string_pretty(self).map_err(|e| {
            DomainError::invalid(format!("the structure could not be written as JSON: {e}"))
        })
    }

    /// Reads a structure from JSON and validates it.
    pub fn from_json(json: &str) -> DomainResult<Structure> {
        let structure: Structure = serde_json::from_str(json)
            .map_err(|e| DomainError::invalid(format!("the structure file is not valid: {e}")))?;
        structure.validate()?;
        Ok(structure)
    }

    /// The items as CSV with the header [`CSV_HEADER`]; the name is not part of the file.
    ///
    /// Durations are whole minutes, or `m:ss` when a length is not a whole number of minutes.
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(64 * (self.items.len() + 1));
        out.push_str(&CSV_HEADER.join(","));
        out.push('\n');
        for item in &self.items {
            let row = match item {
                Item::Level(l) => [
                    "level".to_string(),
                    l.small_blind.to_string(),
                    l.big_blind.to_string(),
                    l.ante.to_string(),
                    l.ante_kind.as_str().to_string(),
                    minutes_field(l.duration_secs),
                    String::new(),
                ],
                Item::Break(b) => [
                    "break".to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    minutes_field(b.duration_secs),
                    csv_quote(b.colour_up.as_deref().unwrap_or("")),
                ],
            };
            out.push_str(&row.join(","));
            out.push('\n');
        }
        out
    }

    /// Reads the items of a structure called `name` from CSV (header [`CSV_HEADER`]) and
    /// validates it. Every complaint names the line of the file it is about.
    ///
    /// Blank cells in ante and ante_kind mean "no ante"; a break row must leave the blind
    /// columns blank (or 0) and a level row must leave the note blank, so that nothing typed
    /// into the file is silently dropped.
    pub fn from_csv(name: &str, csv_text: &str) -> DomainResult<Structure> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(csv_text.as_bytes());
        let header = reader
            .headers()
            .map_err(|e| DomainError::invalid(format!("line 1: the header cannot be read: {e}")))?
            .clone();
        let columns: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
        if columns != CSV_HEADER {
            return Err(DomainError::invalid(format!(
                "line 1: the header must be \"{}\", found \"{}\"",
                CSV_HEADER.join(","),
                header.iter().collect::<Vec<_>>().join(",")
            )));
        }

        let mut items = Vec::new();
        let mut lines = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                DomainError::invalid(format!("line {line}: the row cannot be read: {e}"))
            })?;
            let line = record.position().map_or(0, |p| p.line());
            if items.len() >= MAX_ITEMS {
                return Err(DomainError::invalid(format!(
                    "line {line}: the structure has more than {MAX_ITEMS} items"
                )));
            }
            if record.len() != CSV_HEADER.len() {
                return Err(DomainError::invalid(format!(
                    "line {line}: expected {} columns, found {}",
                    CSV_HEADER.len(),
                    record.len()
                )));
            }
            let cells: Vec<&str> = record.iter().collect();
            let item = parse_row(&cells)
                .map_err(|message| DomainError::invalid(format!("line {line}: {message}")))?;
            items.push(item);
            lines.push(line);
        }

        let structure = Structure {
            name: name.to_string(),
            items,
        };
        match structure.find_problem() {
            None => Ok(structure),
            Some(Problem {
                item: Some(index),
                message,
            }) => {
                let line = lines.get(index).copied().unwrap_or(0);
                Err(DomainError::invalid(format!("line {line}: {message}")))
            }
            Some(Problem {
                item: None,
                message,
            }) => Err(DomainError::invalid(message)),
        }
    }
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 7] = [
    "kind",
    "small_blind",
    "big_blind",
    "ante",
    "ante_kind",
    "duration_minutes",
    "note",
];

/// A validation failure, tied to an item when it concerns one.
struct Problem {
    item: Option<usize>,
    message: String,
}

impl Problem {
    fn whole(message: impl Into<String>) -> Problem {
        Problem {
            item: None,
            message: message.into(),
        }
    }

    fn at(item: usize, message: impl Into<String>) -> Problem {
        Problem {
            item: Some(item),
            message: message.into(),
        }
    }
}

fn level_problem(number: u32, level: &Level, previous: Option<&Level>) -> Option<String> {
    let what = format!("level {number}");
    if level.duration_secs == 0 {
        return Some(format!("{what} has zero duration"));
    }
    if level.duration_secs > MAX_LEVEL_SECS {
        return Some(format!(
            "{what} lasts {}; at most {} is allowed",
            format_secs(level.duration_secs),
            format_secs(MAX_LEVEL_SECS)
        ));
    }
    if level.small_blind == 0 {
        return Some(format!("{what}: the small blind is zero"));
    }
    if level.big_blind < level.small_blind {
        return Some(format!(
            "{what}: big blind {} is smaller than small blind {}",
            level.big_blind, level.small_blind
        ));
    }
    for (amount, label) in [(level.big_blind, "big blind"), (level.ante, "ante")] {
        if amount > MAX_BLIND {
            return Some(format!(
                "{what}: {label} {amount} is more than the largest allowed, {MAX_BLIND}"
            ));
        }
    }
    match level.ante_kind {
        AnteKind::None if level.ante > 0 => {
            return Some(format!(
                "{what}: ante {} is given but the ante kind is none",
                level.ante
            ));
        }
        AnteKind::Classic | AnteKind::BigBlind if level.ante == 0 => {
            return Some(format!(
                "{what}: the ante kind is {} but the ante is zero",
                level.ante_kind.as_str()
            ));
        }
        // Neither a per-player ante nor a big-blind ante larger than the big blind is played
        // anywhere; it is almost surely a typo.
        AnteKind::Classic | AnteKind::BigBlind if level.ante > level.big_blind => {
            return Some(format!(
                "{what}: ante {} is larger than the big blind {}",
                level.ante, level.big_blind
            ));
        }
        _ => {}
    }
    if let Some(prev) = previous {
        if level.small_blind < prev.small_blind {
            return Some(format!(
                "{what}: small blind {} is lower than the {} of the level before",
                level.small_blind, prev.small_blind
            ));
        }
        if level.big_blind < prev.big_blind {
            return Some(format!(
                "{what}: big blind {} is lower than the {} of the level before",
                level.big_blind, prev.big_blind
            ));
        }
    }
    None
}

/// "15 minutes", "1 hour 30 minutes", "45 seconds" — for messages about lengths.
fn format_secs(secs: u32) -> String {
    let hours = secs / 3600;
    let minutes = (secs % 3600) / 60;
    let seconds = secs % 60;
    let mut parts = Vec::new();
    let plural = |n: u32, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if hours > 0 {
        parts.push(plural(hours, "hour"));
    }
    if minutes > 0 {
        parts.push(plural(minutes, "minute"));
    }
    if seconds > 0 || parts.is_empty() {
        parts.push(plural(seconds, "second"));
    }
    parts.join(" ")
}

fn minutes_field(secs: u32) -> String {
    if secs.is_multiple_of(60) {
        (secs / 60).to_string()
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

fn csv_quote(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) || text.trim() != text {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn parse_row(cells: &[&str]) -> Result<Item, String> {
    let cell = |i: usize| cells.get(i).copied().unwrap_or("");
    let duration_secs = parse_minutes(cell(5))?;
    match cell(0).to_ascii_lowercase().as_str() {
        "level" => {
            if !cell(6).is_empty() {
                return Err(format!(
                    "a level has no note, but \"{}\" is written in the note column",
                    cell(6)
                ));
            }
            let small_blind = parse_chips("small blind", cell(1), false)?;
            let big_blind = parse_chips("big blind", cell(2), false)?;
            let ante = parse_chips("ante", cell(3), true)?;
            let ante_kind = match cell(4).to_ascii_lowercase().as_str() {
                "" | "none" => AnteKind::None,
                "classic" => AnteKind::Classic,
                "big_blind" | "big blind" | "bba" => AnteKind::BigBlind,
                other => {
                    return Err(format!(
                        "ante kind \"{other}\" is not one of none, classic, big_blind"
                    ))
                }
            };
            Ok(Item::Level(Level {
                small_blind,
                big_blind,
                ante,
                ante_kind,
                duration_secs,
            }))
        }
        "break" => {
            for (i, label) in [
                (1, "small blind"),
                (2, "big blind"),
                (3, "ante"),
                (4, "ante kind"),
            ] {
                let value = cell(i);
                if !(value.is_empty() || value == "0" || (i == 4 && value == "none")) {
                    return Err(format!(
                        "a break has no {label}, but \"{value}\" is written in that column"
                    ));
                }
            }
            let note = cell(6);
            Ok(Item::Break(Break {
                duration_secs,
                colour_up: (!note.is_empty()).then(|| note.to_string()),
            }))
        }
        "" => Err("the kind is empty; write level or break".to_string()),
        other => Err(format!("kind \"{other}\" is neither level nor break")),
    }
}

fn parse_chips(label: &str, text: &str, blank_is_zero: bool) -> Result<Chips, String> {
    if text.is_empty() {
        return if blank_is_zero {
            Ok(0)
        } else {
            Err(format!("the {label} is missing"))
        };
    }
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{label} \"{text}\" is not a whole number of chips"));
    }
    digits
        .parse::<Chips>()
        .ok()
        .filter(|amount| *amount <= MAX_BLIND)
        .ok_or_else(|| format!("{label} {text} is more than the largest allowed, {MAX_BLIND}"))
}

/// "20" or "12:30" (minutes and seconds) into seconds. No decimals: they would invite floats.
fn parse_minutes(text: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "duration \"{text}\" is not whole minutes (like 20) or minutes:seconds (like 12:30)"
        )
    };
    let (minutes, seconds) = match text.split_once(':') {
        Some((m, s)) => (m, Some(s)),
        None => (text, None),
    };
    let number = |t: &str| -> Result<u32, String> {
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<u32>().map_err(|_| bad())
    };
    if text.is_empty() {
        return Err("the duration is missing".to_string());
    }
    let minutes = number(minutes)?;
    let seconds = match seconds {
        Some(s) => {
            let s = number(s)?;
            if s >= 60 {
                return Err(bad());
            }
            s
        }
        None => 0,
    };
    minutes
        .checked_mul(60)
        .and_then(|m| m.checked_add(seconds))
        .ok_or_else(|| format!("duration \"{text}\" is far too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn level(small_blind: Chips, big_blind: Chips, minutes: u32) -> Item {
        Item::Level(Level {
            small_blind,
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

    fn small() -> Structure {
        Structure {
            name: "Monday".to_string(),
            items: vec![
                level(100, 200, 20),
                level(200, 400, 20),
                pause(10),
                level(300, 600, 20),
            ],
        }
    }

    fn error_of(structure: &Structure) -> String {
        structure.validate().unwrap_err().to_string()
    }

    #[test]
    fn every_template_is_valid_and_has_breaks() {
        for template in Template::ALL {
            let s = Structure::template(template);
            assert_eq!(s.validate(), Ok(()), "{template:?}");
            assert!(s.items.iter().any(Item::is_break), "{template:?}");
            assert!(s.levels().count() >= 20, "{template:?}");
            assert!(template.starting_stack() >= 50 * s.levels().next().unwrap().big_blind);
        }
    }

    #[test]
    fn templates_differ_in_pace() {
        let turbo = Structure::template(Template::Turbo);
        let deep = Structure::template(Template::DeepStack);
        assert!(turbo.total_duration_ms() < deep.total_duration_ms());
        assert!(Template::Turbo.starting_stack() < Template::DeepStack.starting_stack());
    }

    #[test]
    fn template_breaks_race_off_small_chips_once_they_are_not_needed() {
        let s = Structure::template(Template::Standard);
        let notes: Vec<&str> = s
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Break(b) => b.colour_up.as_deref(),
                Item::Level(_) => None,
            })
            .collect();
        assert_eq!(notes.first(), Some(&"colour up: race off the 25s"));
        // The 25s are raced off only once.
        assert_eq!(notes.iter().filter(|n| n.contains("25s")).count(), 1);
        // Levels after the 25s are gone never need a 25.
        let race_index = s
            .items
            .iter()
            .position(|i| matches!(i, Item::Break(b) if b.colour_up.is_some()))
            .unwrap();
        for item in &s.items[race_index..] {
            if let Item::Level(l) = item {
                assert_eq!(l.small_blind % 100, 0, "{l:?}");
            }
        }
    }

    #[test]
    fn templates_use_big_blind_ante_equal_to_the_big_blind() {
        let s = Structure::template(Template::Turbo);
        let with_ante: Vec<&Level> = s.levels().filter(|l| l.ante > 0).collect();
        assert!(!with_ante.is_empty());
        for l in with_ante {
            assert_eq!(l.ante_kind, AnteKind::BigBlind);
            assert_eq!(l.ante, l.big_blind);
        }
    }

    #[test]
    fn big_blind_smaller_than_small_blind_is_refused_with_the_level_number() {
        let mut s = small();
        s.items.push(level(400, 300, 20));
        assert_eq!(
            error_of(&s),
            "level 4: big blind 300 is smaller than small blind 400"
        );
    }

    #[test]
    fn zero_duration_level_is_refused() {
        let mut s = small();
        s.items[3] = level(300, 600, 0);
        assert_eq!(error_of(&s), "level 3 has zero duration");
    }

    #[test]
    fn zero_duration_break_is_refused() {
        let mut s = small();
        s.items[2] = pause(0);
        assert_eq!(error_of(&s), "the break after level 2 has zero duration");
    }

    #[test]
    fn structure_without_levels_is_refused() {
        let s = Structure {
            name: "x".to_string(),
            items: vec![],
        };
        assert_eq!(error_of(&s), "the structure has no levels");
        let s = Structure {
            name: "x".to_string(),
            items: vec![pause(10)],
        };
        assert_eq!(error_of(&s), "the structure has no levels");
    }

    #[test]
    fn decreasing_blinds_are_refused() {
        let mut s = small();
        s.items.push(level(200, 600, 20));
        assert_eq!(
            error_of(&s),
            "level 4: small blind 200 is lower than the 300 of the level before"
        );
        let mut s = small();
        s.items.push(level(300, 500, 20));
        assert_eq!(
            error_of(&s),
            "level 4: big blind 500 is lower than the 600 of the level before"
        );
    }

    #[test]
    fn repeated_level_is_allowed() {
        let mut s = small();
        s.items.push(level(300, 600, 20));
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn two_breaks_in_a_row_are_refused() {
        let mut s = small();
        s.items.insert(2, pause(5));
        assert_eq!(error_of(&s), "two breaks in a row after level 2");
    }

    #[test]
    fn leading_or_trailing_break_is_refused() {
        let mut s = small();
        s.items.insert(0, pause(5));
        assert_eq!(error_of(&s), "the structure starts with a break");
        let mut s = small();
        s.items.push(pause(5));
        assert!(error_of(&s).starts_with("the structure ends with a break"));
    }

    #[test]
    fn empty_name_is_refused() {
        let mut s = small();
        s.name = "   ".to_string();
        assert_eq!(error_of(&s), "the structure has no name");
    }

    #[test]
    fn ante_must_match_its_kind() {
        let mut s = small();
        s.items[0] = Item::Level(Level {
            small_blind: 100,
            big_blind: 200,
            ante: 25,
            ante_kind: AnteKind::None,
            duration_secs: 600,
        });
        assert_eq!(
            error_of(&s),
            "level 1: ante 25 is given but the ante kind is none"
        );
        s.items[0] = Item::Level(Level {
            small_blind: 100,
            big_blind: 200,
            ante: 0,
            ante_kind: AnteKind::BigBlind,
            duration_secs: 600,
        });
        assert_eq!(
            error_of(&s),
            "level 1: the ante kind is big_blind but the ante is zero"
        );
        s.items[0] = Item::Level(Level {
            small_blind: 100,
            big_blind: 200,
            ante: 400,
            ante_kind: AnteKind::Classic,
            duration_secs: 600,
        });
        assert_eq!(
            error_of(&s),
            "level 1: ante 400 is larger than the big blind 200"
        );
    }

    #[test]
    fn absurd_lengths_and_amounts_are_refused() {
        let mut s = small();
        s.items[0] = level(100, 200, 5 * 60);
        assert_eq!(
            error_of(&s),
            "level 1 lasts 5 hours; at most 4 hours is allowed"
        );
        let mut s = small();
        s.items[3] = level(300, MAX_BLIND + 1, 20);
        assert!(error_of(&s).starts_with("level 3: big blind"));
        let mut s = small();
        s.items = (0..=MAX_ITEMS).map(|_| level(100, 200, 1)).collect();
        assert!(error_of(&s).contains("at most 200"));
    }

    #[test]
    fn level_numbers_skip_breaks() {
        let s = small();
        assert_eq!(s.level_number(0), Some(1));
        assert_eq!(s.level_number(1), Some(2));
        assert_eq!(s.level_number(2), None);
        assert_eq!(s.level_number(3), Some(3));
        assert_eq!(s.level_number(4), None);
        assert_eq!(s.index_of_level(3), Some(3));
        assert_eq!(s.index_of_level(1), Some(0));
        assert_eq!(s.index_of_level(0), None);
        assert_eq!(s.index_of_level(4), None);
    }

    #[test]
    fn items_are_described_as_a_floor_manager_says_them() {
        let s = small();
        assert_eq!(s.describe_item(1).as_deref(), Some("level 2"));
        assert_eq!(
            s.describe_item(2).as_deref(),
            Some("the break after level 2")
        );
        assert_eq!(s.describe_item(9), None);
        assert_eq!(s.item_duration_ms(2), Some(10 * 60 * 1000));
        assert_eq!(s.item_duration_ms(4), None);
        assert_eq!(s.total_duration_ms(), 70 * 60 * 1000);
    }

    #[test]
    fn json_round_trips_every_template() {
        for template in Template::ALL {
            let s = Structure::template(template);
            let json = s.to_json().unwrap();
            assert_eq!(Structure::from_json(&json), Ok(s));
        }
    }

    #[test]
    fn json_items_are_flat_and_tagged() {
        let json = serde_json::to_value(&small().items[2]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "break", "duration_secs": 600, "colour_up": null})
        );
        let level: Item = serde_json::from_str(
            r#"{"type":"level","small_blind":100,"big_blind":200,"duration_secs":900}"#,
        )
        .unwrap();
        assert_eq!(
            level,
            Item::Level(Level {
                small_blind: 100,
                big_blind: 200,
                ante: 0,
                ante_kind: AnteKind::None,
                duration_secs: 900,
            })
        );
    }

    #[test]
    fn json_import_validates() {
        let mut s = small();
        s.items.push(level(400, 300, 20));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            Structure::from_json(&json).unwrap_err().to_string(),
            "level 4: big blind 300 is smaller than small blind 400"
        );
        assert!(Structure::from_json("{nope")
            .unwrap_err()
            .to_string()
            .starts_with("the structure file is not valid"));
    }

    #[test]
    fn csv_round_trips_every_template() {
        for template in Template::ALL {
            let s = Structure::template(template);
            let csv = s.to_csv();
            assert_eq!(Structure::from_csv(&s.name, &csv), Ok(s));
        }
    }

    #[test]
    fn csv_export_is_readable() {
        let mut s = small();
        s.items[2] = Item::Break(Break {
            duration_secs: 630,
            colour_up: Some("race off the 25s, then \"chip up\"".to_string()),
        });
        let csv = s.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "kind,small_blind,big_blind,ante,ante_kind,duration_minutes,note"
        );
        assert_eq!(lines[1], "level,100,200,0,none,20,");
        assert_eq!(
            lines[3],
            "break,,,,,10:30,\"race off the 25s, then \"\"chip up\"\"\""
        );
        assert_eq!(Structure::from_csv("Monday", &csv), Ok(s));
    }

    #[test]
    fn csv_accepts_blank_antes_and_friendly_spellings() {
        let csv = "Kind,Small_Blind,Big_Blind,Ante,Ante_Kind,Duration_Minutes,Note\n\
                   level,100,200,,,20,\n\
                   LEVEL, 200 , 400 ,400,big blind,20,\n\
                   break,0,0,0,none,10,colour up\n\
                   level,300,600,600,bba,20,\n";
        let s = Structure::from_csv("Friday", csv).unwrap();
        assert_eq!(s.levels().count(), 3);
        assert_eq!(s.levels().nth(1).unwrap().ante_kind, AnteKind::BigBlind);
    }

    #[test]
    fn csv_bad_row_is_reported_with_its_line_number() {
        let head = "kind,small_blind,big_blind,ante,ante_kind,duration_minutes,note\n";
        let cases = [
            ("level,100,abc,0,none,20,\n", "line 3: big blind \"abc\" is not a whole number of chips"),
            ("level,100,200,0,none,twenty,\n", "line 3: duration \"twenty\" is not whole minutes (like 20) or minutes:seconds (like 12:30)"),
            ("level,100,200,0,weird,20,\n", "line 3: ante kind \"weird\" is not one of none, classic, big_blind"),
            ("pause,,,,,10,\n", "line 3: kind \"pause\" is neither level nor break"),
            ("break,100,,,,10,\n", "line 3: a break has no small blind, but \"100\" is written in that column"),
            ("level,100,200,0,none,20,hello\n", "line 3: a level has no note, but \"hello\" is written in the note column"),
            ("level,100,200,0,none\n", "line 3: expected 7 columns, found 5"),
            ("level,200,100,0,none,20,\n", "line 3: level 2: big blind 100 is smaller than small blind 200"),
            ("level,,200,0,none,20,\n", "line 3: the small blind is missing"),
        ];
        for (row, expected) in cases {
            let csv = format!("{head}level,50,100,0,none,20,\n{row}");
            assert_eq!(
                Structure::from_csv("x", &csv).unwrap_err().to_string(),
                expected,
                "{row}"
            );
        }
    }

    #[test]
    fn csv_with_wrong_header_is_refused() {
        let err = Structure::from_csv("x", "a,b,c\nlevel,1,2\n").unwrap_err();
        assert!(err.to_string().starts_with("line 1: the header must be"));
    }

    #[test]
    fn csv_validation_problems_without_a_row_have_no_line() {
        let csv = "kind,small_blind,big_blind,ante,ante_kind,duration_minutes,note\n";
        assert_eq!(
            Structure::from_csv("x", csv).unwrap_err().to_string(),
            "the structure has no levels"
        );
    }

    fn arb_structure() -> impl Strategy<Value = Structure> {
        let step = (
            0u64..500,
            0u64..500,
            1u32..=MAX_LEVEL_SECS,
            any::<bool>(),
            0u8..3,
        );
        (
            "[A-Za-z0-9 ,\"]{1,20}",
            prop::collection::vec(step, 1..30),
            prop::collection::vec(proptest::option::of("[a-z0-9 ,\"']{0,20}"), 30),
        )
            .prop_map(|(name, steps, notes)| {
                let mut items = Vec::new();
                let (mut sb, mut bb) = (1u64, 1u64);
                for (i, (dsb, dbb, secs, with_break, ante_pick)) in steps.into_iter().enumerate() {
                    sb += dsb;
                    bb = bb.max(sb) + dbb;
                    let (ante, ante_kind) = match ante_pick {
                        0 => (0, AnteKind::None),
                        1 => (bb / 2 + 1, AnteKind::Classic),
                        _ => (bb, AnteKind::BigBlind),
                    };
                    if with_break && i > 0 {
                        let note = notes[i].clone().map(|n| n.trim().to_string());
                        items.push(Item::Break(Break {
                            duration_secs: secs.min(MAX_BREAK_SECS),
                            colour_up: note.filter(|n| !n.is_empty()),
                        }));
                    }
                    items.push(Item::Level(Level {
                        small_blind: sb,
                        big_blind: bb,
                        ante,
                        ante_kind,
                        duration_secs: secs,
                    }));
                }
                Structure {
                    name: format!("x{name}"),
                    items,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn any_valid_structure_round_trips_through_json_and_csv(s in arb_structure()) {
            prop_assert_eq!(s.validate(), Ok(()));
            prop_assert_eq!(Structure::from_json(&s.to_json().unwrap()), Ok(s.clone()));
            prop_assert_eq!(Structure::from_csv(&s.name, &s.to_csv()), Ok(s.clone()));
        }

        #[test]
        fn level_numbers_and_indexes_agree(s in arb_structure()) {
            for (index, item) in s.items.iter().enumerate() {
                match s.level_number(index) {
                    Some(n) => prop_assert_eq!(s.index_of_level(n), Some(index)),
                    None => prop_assert!(item.is_break()),
                }
            }
        }
    }
}
