//! The NATS side of the service: enrolment redemption with NATS credentials, event
//! ingestion into PostgreSQL, heartbeats and the down channel.
//!
//! Owned by the sync work (branch h/cloudsync). The accounts side calls only the three
//! hooks below; they start empty here.

use crate::db::Migration;
use crate::state::CloudState;
use utoipa_axum::router::OpenApiRouter;

/// The sync side's migrations (versions 0100 and up), applied after the accounts side's.
pub const MIGRATIONS: &[Migration] = &[];

/// The sync side's routes (e.g. `POST /api/v1/enrol`), merged into the API router.
pub fn routes() -> OpenApiRouter<CloudState> {
    OpenApiRouter::new()
}

/// Starts the sync side's background tasks (consumers), called once by the server after
/// the database is migrated. The tasks end when `stopping` turns true.
pub fn start(
    _state: &CloudState,
    _stopping: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    Vec::new()
}
