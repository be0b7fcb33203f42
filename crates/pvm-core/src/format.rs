//! Every piece of text the screens show is formatted here, once, so the kiosk, the web pages
//! and the Chromecasts say exactly the same thing.

use crate::chips::Denomination;
use crate::money::{Chips, Money};
use crate::structure::{AnteKind, Level};

/// Thousands separated by commas: 1250000 → "1,250,000".
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn chips(c: Chips) -> String {
    grouped(c)
}

/// Whole units without decimals ("1,250"), otherwise two decimals ("1,250.50").
pub fn money(m: Money) -> String {
    let cents = m.as_cents();
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let (units, rest) = (abs / 100, abs % 100);
    if rest == 0 {
        format!("{sign}{}", grouped(units))
    } else {
        format!("{sign}{}.{rest:02}", grouped(units))
    }
}

/// Money with the currency's symbol where one is well known, else its code.
pub fn money_in(m: Money, currency: &str) -> String {
    let symbol = match currency {
        "EUR" => "€",
        "USD" | "CAD" | "AUD" | "NZD" => "$",
        "GBP" => "£",
        _ => "",
    };
    if symbol.is_empty() {
        format!("{} {currency}", money(m))
    } else if m.as_cents() < 0 {
        format!("-{symbol}{}", money(-m))
    } else {
        format!("{symbol}{}", money(m))
    }
}

/// A countdown: "12:04", or "1:02:03" from an hour up. Rounded up to the next whole second so
/// the display reads "12:00" for the whole first second and reaches "0:00" exactly at the end.
pub fn countdown(ms: i64) -> String {
    let ms = ms.max(0);
    let total = (ms + 999) / 1000;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// "200/400 ante 400", "200/400 BB ante 400", or "200/400".
pub fn blinds(level: &Level) -> String {
    let base = format!(
        "{}/{}",
        grouped(level.small_blind),
        grouped(level.big_blind)
    );
    match level.ante_kind {
        AnteKind::None => base,
        _ if level.ante == 0 => base,
        AnteKind::Classic => format!("{base} ante {}", grouped(level.ante)),
        AnteKind::BigBlind => format!("{base} BB ante {}", grouped(level.ante)),
    }
}

/// The break note for a colour-up (TDA 2024 Rule 24): "Colour up: race off the green 25s for
/// black 100s", "Colour up: race off the green 25s and black 100s for purple 500s".
pub fn colour_up(removed: &[&Denomination], next: &Denomination) -> String {
    let chip = |d: &Denomination| format!("{} {}s", d.colour.trim(), grouped(d.value));
    let raced: Vec<String> = removed.iter().map(|d| chip(d)).collect();
    format!(
        "Colour up: race off the {} for {}",
        raced.join(" and "),
        chip(next)
    )
}

/// 1 → "1st", 2 → "2nd", 11 → "11th", 23 → "23rd".
pub fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Average stack in big blinds from the ×10 figure: 253 → "25.3 BB".
pub fn big_blinds_x10(x10: u64) -> String {
    format!("{}.{} BB", grouped(x10 / 10), x10 % 10)
}

/// The heading over the first-boot mistakes on the setup screen. pvm-firstboot reads
/// `pvm.toml` again at every boot, so fixing the card and restarting is the whole remedy.
pub fn setup_notices_title(count: usize) -> String {
    let what = if count == 1 { "a mistake" } else { "mistakes" };
    format!("pvm.toml on the SD card has {what}: fix it on the card and restart")
}

/// One first-boot mistake: where it is, then what is wrong. The message already names the
/// setting when it is about one, so the setting is only added when the message lacks it.
pub fn setup_notice(line: Option<u64>, setting: Option<&str>, message: &str) -> String {
    let mut place = Vec::new();
    if let Some(line) = line {
        place.push(format!("Line {line}"));
    }
    if let Some(setting) = setting.filter(|s| !message.contains(s)) {
        place.push(setting.to_owned());
    }
    if place.is_empty() {
        message.to_owned()
    } else {
        format!("{}: {message}", place.join(", "))
    }
}

/// The line that stands for the notices not drawn.
pub fn more_notices(n: usize) -> String {
    if n == 1 {
        "…and 1 more (see System in the console)".to_owned()
    } else {
        format!("…and {n} more (see System in the console)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_inserts_commas_every_three_digits() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_250_000), "1,250,000");
    }

    #[test]
    fn money_drops_zero_cents_and_keeps_others() {
        assert_eq!(money(Money::units(1250)), "1,250");
        assert_eq!(money(Money::cents(125_050)), "1,250.50");
        assert_eq!(money(Money::cents(-5)), "-0.05");
        assert_eq!(money_in(Money::units(100), "EUR"), "€100");
        assert_eq!(money_in(Money::units(100), "CHF"), "100 CHF");
    }

    #[test]
    fn countdown_rounds_up_to_the_second() {
        assert_eq!(countdown(12 * 60_000), "12:00");
        assert_eq!(countdown(12 * 60_000 - 1), "12:00");
        assert_eq!(countdown(12 * 60_000 - 1000), "11:59");
        assert_eq!(countdown(4 * 60_000 + 4_000), "4:04");
        assert_eq!(countdown(0), "0:00");
        assert_eq!(countdown(-5), "0:00");
        assert_eq!(countdown(3_723_000), "1:02:03");
    }

    #[test]
    fn blinds_show_the_ante_kind() {
        let mut l = Level {
            small_blind: 200,
            big_blind: 400,
            ante: 400,
            ante_kind: AnteKind::Classic,
            duration_secs: 1200,
        };
        assert_eq!(blinds(&l), "200/400 ante 400");
        l.ante_kind = AnteKind::BigBlind;
        assert_eq!(blinds(&l), "200/400 BB ante 400");
        l.ante_kind = AnteKind::None;
        assert_eq!(blinds(&l), "200/400");
    }

    #[test]
    fn ordinals_handle_the_teens() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111]
            .iter()
            .map(|n| ordinal(*n))
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd",
                "101st", "111th"
            ]
        );
    }
}
