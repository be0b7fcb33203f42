//! The PVM cloud service: accounts, tenants, venues, players, node enrolment, fleet status
//! and the release catalog over a REST API (`api`), backed by PostgreSQL (`db`); the NATS
//! side (event ingestion, heartbeats, down channel, enrolment credentials) lives in `sync`.
//!
//! Stateless: several instances can run against one PostgreSQL and one NATS cluster. All
//! shared state (sessions, login throttling, enrolment codes) is in PostgreSQL, and every
//! instance holds the same token key, so any instance answers any request.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod enrolment;
pub mod error;
pub mod password;
pub mod server;
pub mod sessions;
pub mod state;
pub mod sync;
pub mod throttle;
pub mod token;

pub use config::CloudConfig;
pub use enrolment::{redeem_enrolment_code, EnrolmentError, EnrolmentGrant};
pub use server::{start, RunningCloud, StartError};
pub use state::CloudState;
