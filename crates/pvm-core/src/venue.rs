//! Venue-wide settings: name, time zone, currency, theme. Changed only through events.

use crate::error::{DomainError, DomainResult};
use crate::money::Money;
use serde::{Deserialize, Serialize};

/// What the venue looks like on every screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Theme {
    /// Background colour, `#rrggbb`. Dark by default: poker rooms are dark.
    pub background: String,
    /// Main text colour, `#rrggbb`.
    pub foreground: String,
    /// Accent colour for highlights (called players, level changes), `#rrggbb`.
    pub accent: String,
    /// Logo as a data URL (`data:image/png;base64,…`) or `None`.
    pub logo: Option<String>,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            background: "#0b0f14".into(),
            foreground: "#f2f4f8".into(),
            accent: "#f5b800".into(),
            logo: None,
        }
    }
}

/// Largest logo we accept inside an event (the log syncs to the cloud; keep it small).
pub const MAX_LOGO_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueSettings {
    pub name: String,
    /// IANA time zone name, e.g. "Europe/Dublin". Displays format local times with it.
    pub time_zone: String,
    /// ISO 4217 code, e.g. "EUR". Amounts are in its minor units.
    pub currency: String,
    /// Payouts are rounded to this unit (e.g. 500 = 5.00); the remainder goes to first place.
    pub rounding_unit: Money,
    pub theme: Theme,
}

impl Default for VenueSettings {
    fn default() -> Self {
        VenueSettings {
            name: "Poker Room".into(),
            time_zone: "UTC".into(),
            currency: "EUR".into(),
            rounding_unit: Money::units(1),
            theme: Theme::default(),
        }
    }
}

impl VenueSettings {
    pub fn validate(&self) -> DomainResult<()> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(DomainError::invalid("the venue name must not be empty"));
        }
        if name.chars().count() > 80 {
            return Err(DomainError::invalid(
                "the venue name is longer than 80 characters",
            ));
        }
        if self.time_zone.trim().is_empty() || self.time_zone.contains(char::is_whitespace) {
            return Err(DomainError::invalid(format!(
                "time zone {:?} is not an IANA name such as \"Europe/Dublin\"",
                self.time_zone
            )));
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(DomainError::invalid(format!(
                "currency {:?} is not a three-letter ISO code such as \"EUR\"",
                self.currency
            )));
        }
        if self.rounding_unit.as_cents() <= 0 {
            return Err(DomainError::invalid(
                "the payout rounding unit must be at least 0.01",
            ));
        }
        for (what, colour) in [
            ("background", &self.theme.background),
            ("foreground", &self.theme.foreground),
            ("accent", &self.theme.accent),
        ] {
            if !is_hex_colour(colour) {
                return Err(DomainError::invalid(format!(
                    "theme {what} colour {colour:?} is not of the form #rrggbb"
                )));
            }
        }
        if let Some(logo) = &self.theme.logo {
            if !logo.starts_with("data:image/") {
                return Err(DomainError::invalid(
                    "the logo must be a data URL of an image (data:image/png;base64,…)",
                ));
            }
            if logo.len() > MAX_LOGO_BYTES {
                return Err(DomainError::invalid(format!(
                    "the logo is {} KiB; at most {} KiB is accepted",
                    logo.len() / 1024,
                    MAX_LOGO_BYTES / 1024
                )));
            }
        }
        Ok(())
    }
}

fn is_hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_are_valid() {
        VenueSettings::default().validate().unwrap();
    }

    #[test]
    fn empty_venue_name_is_refused() {
        let s = VenueSettings {
            name: "  ".into(),
            ..Default::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("name"));
    }

    #[test]
    fn bad_theme_colour_is_refused_with_its_name() {
        let mut s = VenueSettings::default();
        s.theme.accent = "yellow".into();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("accent") && e.contains("#rrggbb"), "{e}");
    }
}
