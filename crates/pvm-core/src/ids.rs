//! Typed identifiers. All are UUIDv7: globally unique and time-ordered, generated inside
//! `decide` from the command's `now` and the injected entropy, so replays are exact.

use crate::entropy::Entropy;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A UUIDv7 for `now`, with its random bits drawn from `entropy`.
pub fn new_uuid_v7(now: Timestamp, entropy: &mut dyn Entropy) -> Uuid {
    let mut rand = [0u8; 10];
    let a = entropy.next_u64().to_le_bytes();
    let b = entropy.next_u64().to_le_bytes();
    rand[..8].copy_from_slice(&a);
    rand[8..].copy_from_slice(&b[..2]);
    let ms = u64::try_from(now.as_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(ms, &rand).into_uuid()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn generate(now: Timestamp, entropy: &mut dyn Entropy) -> Self {
                $name(new_uuid_v7(now, entropy))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

id_type!(
    /// One event in the log.
    EventId
);
id_type!(
    /// A person known to the venue (may play tournaments and cash games).
    PlayerId
);
id_type!(
    /// A tournament.
    TournamentId
);
id_type!(
    /// One buy-in of one player into one tournament; a re-entry is a new entry.
    EntryId
);
id_type!(
    /// A physical table (tournament or cash).
    TableId
);
id_type!(
    /// A cash game (game type and stakes), e.g. "NLH 1/3".
    GameId
);
id_type!(
    /// One person's place on one waiting list.
    WaitlistEntryId
);
id_type!(
    /// A screen spec (clock, waiting list board, rotation…).
    ScreenId
);
id_type!(
    /// A display output: the HDMI TV or a Chromecast.
    DisplayId
);
id_type!(
    /// An announcement shown on screens.
    AnnouncementId
);
