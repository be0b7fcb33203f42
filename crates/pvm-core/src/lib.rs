//! pvm-core: the rules of a poker room, as a pure library.
//!
//! Commands are checked by `decide(state, command, now, entropy)` and recorded as events;
//! `apply(state, event)` folds them. Nothing here does I/O, reads a clock or draws ambient
//! randomness: the node, the kiosk, the web pages and the cloud all share this crate.

pub mod deals;
pub mod entropy;
pub mod error;
pub mod icm;
pub mod ids;
pub mod money;
pub mod payouts;
pub mod time;

pub use entropy::{Entropy, SeededEntropy};
pub use error::{DomainError, DomainResult};
pub use money::{Chips, Money};
pub use time::Timestamp;
