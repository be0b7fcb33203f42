//! pvm-core: the rules of a poker room, as a pure library.
//!
//! Commands are checked by [`decide`] (state, command, now, entropy) and recorded as
//! [`Event`]s; [`apply`] folds them. Nothing here does I/O, reads a clock or draws ambient
//! randomness: the node, the kiosk, the web pages and the cloud all share this crate.
//!
//! Module map: `structure` and `clock` (blinds and time), `tournament` (entries, busts,
//! prize pool, results), `payouts`, `deals` and `icm` (money), `seating` and `chips` (tables,
//! TDA 2024 rules), `cash` (cash games and waiting lists), `players`, `venue`, `displays`
//! (screens and outputs), `views` (what screens draw), `format` (every string they show) and
//! `patch` (the change between two views, as the live feed sends it).

pub mod cash;
pub mod chips;
pub mod clock;
pub mod deals;
pub mod displays;
pub mod entropy;
pub mod error;
pub mod format;
pub mod icm;
pub mod ids;
pub mod money;
pub mod patch;
pub mod payouts;
pub mod players;
pub mod seating;
pub mod structure;
#[cfg(test)]
pub(crate) mod testkit;
pub mod time;
pub mod tournament;
pub mod venue;
mod venue_state;
pub mod views;

pub use entropy::{Entropy, SeededEntropy};
pub use error::{DomainError, DomainResult};
pub use money::{Chips, Money};
pub use time::Timestamp;
pub use venue_state::{apply, decide, Command, Event, EventBody, VenueState, SCHEMA_VERSION};
