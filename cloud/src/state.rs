//! What every handler and background task shares; cheap to clone.

use crate::config::CloudConfig;
use crate::password::Passwords;
use crate::token::TokenKeys;
use deadpool_postgres::Pool;
use std::sync::Arc;

#[derive(Clone)]
pub struct CloudState {
    pub pool: Pool,
    pub config: Arc<CloudConfig>,
    /// Signs and verifies access tokens (the same key on every instance).
    pub tokens: Arc<TokenKeys>,
    pub passwords: Arc<Passwords>,
    /// This instance's NATS connection, when `--nats-url` is set.
    pub nats: Option<async_nats::Client>,
}

impl CloudState {
    pub fn new(
        pool: Pool,
        config: CloudConfig,
        tokens: TokenKeys,
        nats: Option<async_nats::Client>,
    ) -> Result<Self, crate::password::PasswordError> {
        let passwords = Passwords::new(config.password_memory_kib, config.password_iterations)?;
        Ok(CloudState {
            pool,
            config: Arc::new(config),
            tokens: Arc::new(tokens),
            passwords: Arc::new(passwords),
            nats,
        })
    }
}
