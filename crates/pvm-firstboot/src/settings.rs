//! Reading `pvm.toml`: every key the venue may set, checked one by one so that one mistake
//! does not hide the others, each reported with the line it is on.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::report::Problem;

/// The keys a venue may set, in the order the example file lists them.
pub const KNOWN_KEYS: [&str; 8] = [
    "hostname",
    "venue_name",
    "timezone",
    "wifi_ssid",
    "wifi_passphrase",
    "wifi_country",
    "enrolment_code",
    "ssh_key",
];

/// Keys whose values are removed from the FAT partition once applied: anyone who borrows the
/// card could read them there.
pub const SECRET_KEYS: [&str; 2] = ["wifi_passphrase", "enrolment_code"];

/// One setting as written: its text and where it is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
    /// Byte range of the whole `key = value`, for removing it.
    pub span: Range<usize>,
}

/// What `pvm.toml` asked for. Absent keys change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The file parsed as TOML; when false nothing below was read, and an absent key says
    /// nothing about what the venue wants.
    pub readable: bool,
    pub hostname: Option<Entry>,
    pub venue_name: Option<Entry>,
    pub timezone: Option<Entry>,
    pub wifi_ssid: Option<Entry>,
    pub wifi_passphrase: Option<Entry>,
    pub wifi_country: Option<Entry>,
    pub enrolment_code: Option<Entry>,
    pub ssh_key: Option<Entry>,
}

impl Settings {
    fn slot(&mut self, key: &str) -> Option<&mut Option<Entry>> {
        Some(match key {
            "hostname" => &mut self.hostname,
            "venue_name" => &mut self.venue_name,
            "timezone" => &mut self.timezone,
            "wifi_ssid" => &mut self.wifi_ssid,
            "wifi_passphrase" => &mut self.wifi_passphrase,
            "wifi_country" => &mut self.wifi_country,
            "enrolment_code" => &mut self.enrolment_code,
            "ssh_key" => &mut self.ssh_key,
            _ => return None,
        })
    }

    /// The entries of keys whose values must leave the FAT partition.
    pub fn secrets(&self) -> impl Iterator<Item = (&'static str, &Entry)> {
        [
            (SECRET_KEYS[0], self.wifi_passphrase.as_ref()),
            (SECRET_KEYS[1], self.enrolment_code.as_ref()),
        ]
        .into_iter()
        .filter_map(|(key, entry)| entry.map(|entry| (key, entry)))
    }
}

/// Parses `text`. Syntax errors make the whole file unreadable (one problem, with its line);
/// otherwise unknown keys and values of the wrong type are problems and the rest is kept.
pub fn parse(text: &str) -> (Settings, Vec<Problem>) {
    let mut settings = Settings::default();
    let mut problems = Vec::new();
    let table = match DeTable::parse(text) {
        Ok(table) => table.into_inner(),
        Err(error) => {
            let line = error.span().map(|span| line_of(text, span.start));
            let (line_no, column) = match &error.span() {
                Some(span) => line_and_column(text, span.start),
                None => (0, 0),
            };
            let place = if line.is_some() {
                format!(" (line {line_no}, column {column})")
            } else {
                String::new()
            };
            problems.push(Problem {
                key: None,
                message: format!(
                    "pvm.toml cannot be read{place}: {}; nothing in it was applied",
                    error.message().trim_end()
                ),
                line,
            });
            return (settings, problems);
        }
    };
    settings.readable = true;
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let line = line_of(text, key.span().start);
        let Some(slot) = settings.slot(name) else {
            problems.push(Problem {
                key: Some(name.to_owned()),
                message: format!(
                    "unknown setting `{name}`; pvm.toml knows {}",
                    KNOWN_KEYS.join(", ")
                ),
                line: Some(line),
            });
            continue;
        };
        match value.get_ref() {
            DeValue::String(text_value) => {
                *slot = Some(Entry {
                    value: text_value.to_string(),
                    line,
                    span: key.span().start..value.span().end,
                });
            }
            DeValue::Table(_) => problems.push(Problem {
                key: Some(name.to_owned()),
                message: format!(
                    "`{name}` is a section here; pvm.toml has no sections, write {name} = \"…\""
                ),
                line: Some(line),
            }),
            _ => problems.push(Problem {
                key: Some(name.to_owned()),
                message: format!("`{name}` must be text in double quotes, like {name} = \"…\""),
                line: Some(line),
            }),
        }
    }
    problems.sort_by_key(|problem| problem.line);
    (settings, problems)
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    line_and_column(text, offset).0
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The file with the given entries taken out, each replaced by a comment that says it was
/// applied, so the venue sees what happened when it looks at the card again.
pub fn without_entries(text: &str, removed: &[(&str, &Entry)], note: &str) -> String {
    let mut spans: Vec<(Range<usize>, &str)> = removed
        .iter()
        .map(|(key, entry)| (whole_lines(text, &entry.span), *key))
        .collect();
    spans.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut out = text.to_owned();
    for (span, key) in spans {
        let newline = if out.get(span.clone()).is_some_and(|s| s.ends_with('\n')) {
            "\n"
        } else {
            ""
        };
        out.replace_range(span, &format!("# {key}: {note}{newline}"));
    }
    out
}

/// Widens a byte range to the lines it touches, including the final newline.
fn whole_lines(text: &str, span: &Range<usize>) -> Range<usize> {
    let start = text
        .get(..span.start)
        .and_then(|before| before.rfind('\n'))
        .map_or(0, |newline| newline + 1);
    let end = text
        .get(span.end..)
        .and_then(|after| after.find('\n'))
        .map_or(text.len(), |newline| span.end + newline + 1);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_key_is_read_with_its_line() {
        let text = "# comment\nhostname = \"club7\"\nvenue_name = \"Club Seven\"\n";
        let (settings, problems) = parse(text);
        assert!(problems.is_empty(), "{problems:?}");
        let hostname = settings.hostname.unwrap();
        assert_eq!(hostname.value, "club7");
        assert_eq!(hostname.line, 2);
        assert_eq!(settings.venue_name.unwrap().line, 3);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_reported_and_the_rest_is_kept() {
        let text = "hostnme = \"x\"\ntimezone = 3\nhostname = \"ok\"\n[wifi]\nssid = \"a\"\n";
        let (settings, problems) = parse(text);
        assert_eq!(settings.hostname.unwrap().value, "ok");
        let keys: Vec<_> = problems
            .iter()
            .map(|p| (p.key.as_deref(), p.line))
            .collect();
        assert_eq!(
            keys,
            vec![
                (Some("hostnme"), Some(1)),
                (Some("timezone"), Some(2)),
                (Some("wifi"), Some(4))
            ]
        );
        assert!(problems[0].message.contains("unknown setting"));
        assert!(problems[1].message.contains("double quotes"));
    }

    #[test]
    fn a_syntax_error_names_its_line_and_column_and_applies_nothing() {
        let text = "hostname = \"a\"\nvenue_name = \"unterminated\n";
        let (settings, problems) = parse(text);
        assert_eq!(settings, Settings::default());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, None);
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0].message.contains("line 2, column"));
    }

    #[test]
    fn removing_an_entry_leaves_a_comment_and_the_other_lines() {
        let text = "hostname = \"h\"\nwifi_passphrase = \"s3cret\" # trailing\nvenue_name = \"v\"";
        let (settings, _) = parse(text);
        let entry = settings.wifi_passphrase.unwrap();
        let out = without_entries(text, &[("wifi_passphrase", &entry)], "applied");
        assert_eq!(
            out,
            "hostname = \"h\"\n# wifi_passphrase: applied\nvenue_name = \"v\""
        );
    }
}
