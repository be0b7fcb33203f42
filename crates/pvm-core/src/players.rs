//! The venue's players: people who enter tournaments and sit in cash games.

use crate::error::{DomainError, DomainResult};
use crate::ids::PlayerId;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Player {
    pub id: PlayerId,
    pub name: String,
    pub nickname: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub created_at: Timestamp,
}

/// Details a floor person types in. Only the name is required.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlayerDetails {
    pub name: String,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl PlayerDetails {
    /// Trims the fields and checks them, so that the log only ever holds clean data.
    pub fn normalized(self) -> DomainResult<PlayerDetails> {
        let name = self.name.trim().to_string();
        if name.is_empty() {
            return Err(DomainError::invalid("a player needs a name"));
        }
        if name.chars().count() > 60 {
            return Err(DomainError::invalid(format!(
                "player name {name:?} is longer than 60 characters"
            )));
        }
        let clean = |v: Option<String>| {
            v.map(|s| s.trim().to_string())
                .filter(|s: &String| !s.is_empty())
        };
        let phone = clean(self.phone);
        if let Some(p) = &phone {
            if !p
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c))
                || p.chars().filter(char::is_ascii_digit).count() < 5
            {
                return Err(DomainError::invalid(format!(
                    "phone number {p:?} should contain only digits, spaces and + - ( ) ."
                )));
            }
        }
        let email = clean(self.email);
        if let Some(e) = &email {
            if !e.contains('@') || e.contains(char::is_whitespace) {
                return Err(DomainError::invalid(format!(
                    "{e:?} is not an e-mail address"
                )));
            }
        }
        Ok(PlayerDetails {
            name,
            nickname: clean(self.nickname),
            phone,
            email,
        })
    }
}

/// Case-insensitive search over name, nickname and phone, for the quick registration box.
pub fn matches(player: &Player, query: &str) -> bool {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return true;
    }
    player.name.to_lowercase().contains(&q)
        || player
            .nickname
            .as_ref()
            .is_some_and(|n| n.to_lowercase().contains(&q))
        || player.phone.as_ref().is_some_and(|p| p.contains(&q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_details_are_trimmed_and_empty_optionals_dropped() {
        let d = PlayerDetails {
            name: "  Ana Lopez ".into(),
            nickname: Some("  ".into()),
            phone: Some(" +353 87 123 4567 ".into()),
            email: None,
        }
        .normalized()
        .unwrap();
        assert_eq!(d.name, "Ana Lopez");
        assert_eq!(d.nickname, None);
        assert_eq!(d.phone.as_deref(), Some("+353 87 123 4567"));
    }

    #[test]
    fn player_without_name_is_refused() {
        assert!(PlayerDetails::default().normalized().is_err());
    }

    #[test]
    fn phone_with_letters_is_refused() {
        let e = PlayerDetails {
            name: "Bo".into(),
            phone: Some("call me".into()),
            ..Default::default()
        }
        .normalized()
        .unwrap_err();
        assert!(e.to_string().contains("phone"));
    }
}
