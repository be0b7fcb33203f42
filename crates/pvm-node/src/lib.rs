//! pvm-node: the venue's daemon. The binary (`main.rs`) only wires these modules together.
//!
//! `engine` is the single writer over the event log; `api` and `server` are the HTTP surface;
//! `auth` guards it; `scheduler` rings the level changes; `config`, `logging`, `systemd`,
//! `timesync`, `gpio` and `mdns` connect the node to the machine it runs on.

pub mod api;
pub mod auth;
pub mod config;
pub mod engine;
pub mod gpio;
pub mod http_server;
pub mod logging;
pub mod mdns;
pub mod node;
pub mod scheduler;
pub mod server;
pub mod sync;
pub mod systemd;
pub mod timesync;
pub mod update;
pub mod web;
