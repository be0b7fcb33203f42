//! PostgreSQL: the connection pool and the versioned migration runner.
//!
//! Migrations are SQL files under `cloud/migrations/NNNN_name.sql`, embedded in the binary.
//! The accounts side owns 0001–0099; the sync side lists its own (0100+) in
//! [`crate::sync::MIGRATIONS`]. Each applied version is recorded in `schema_migrations`.
//! The whole run holds a transaction-scoped advisory lock, so instances starting together
//! apply each migration exactly once: the first one applies, the others wait and then
//! find nothing left to do.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::str::FromStr;

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The accounts side's migrations, in order.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "accounts",
    sql: include_str!("../migrations/0001_accounts.sql"),
}];

/// Advisory lock key for migrations ("pvmcloud" as ASCII, to stay clear of other users).
const MIGRATION_LOCK_KEY: i64 = 0x7076_6d63_6c6f_7564;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the database URL is not valid: {0}")]
    BadUrl(#[source] tokio_postgres::Error),
    #[error("could not build the connection pool: {0}")]
    Pool(String),
    #[error("could not get a database connection: {0}")]
    Connect(#[from] deadpool_postgres::PoolError),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("migration versions are not strictly increasing at {0}")]
    MigrationOrder(i64),
    #[error("database: {0}")]
    Query(#[from] tokio_postgres::Error),
}

/// A pool of at most `size` connections to `url`. Connections are opened lazily, so this
/// succeeds even while the database is down; the first query says so.
pub fn pool(url: &str, size: usize) -> Result<Pool, DbError> {
    let pg = tokio_postgres::Config::from_str(url).map_err(DbError::BadUrl)?;
    let manager = Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        ManagerConfig {
            // Fast: a broken connection shows itself on the next query and is dropped then;
            // a round trip on every checkout would cost more than it saves.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .build()
        .map_err(|e| DbError::Pool(e.to_string()))
}

/// Every migration the service knows: the accounts side's, then the sync side's.
pub fn all_migrations() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .chain(crate::sync::MIGRATIONS.iter())
        .copied()
        .collect()
}

/// Applies every migration not yet recorded; returns the versions it applied.
pub async fn migrate(pool: &Pool) -> Result<Vec<i64>, DbError> {
    let migrations = all_migrations();
    for pair in migrations.windows(2) {
        if pair[1].version <= pair[0].version {
            return Err(DbError::MigrationOrder(pair[1].version));
        }
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     bigint PRIMARY KEY,
            name        text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let applied: Vec<i64> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut done = Vec::new();
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        let fail = |source| DbError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        tx.batch_execute(m.sql).await.map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(fail)?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        done.push(m.version);
    }
    tx.commit().await?;
    Ok(done)
}
