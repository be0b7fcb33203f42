//! pvm-store: the append-only event log in SQLite.
pub mod accounts;
