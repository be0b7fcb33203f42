//! The service's one configuration, from command-line flags or `PVM_CLOUD_*` environment
//! variables. Every instance of a deployment gets the same values (above all the same token
//! key), so any instance can answer any request.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Parser)]
#[command(name = "pvm-cloud", version, about = "PVM cloud service")]
pub struct CloudConfig {
    /// Address the HTTP API listens on.
    #[arg(
        long,
        env = "PVM_CLOUD_LISTEN",
        default_value = "127.0.0.1:8700",
        global = true
    )]
    pub listen: SocketAddr,

    /// PostgreSQL connection URL, e.g. `postgres://pvm:secret@db.internal:5432/pvm`.
    #[arg(
        long,
        env = "PVM_CLOUD_DATABASE_URL",
        default_value = "",
        global = true
    )]
    pub database_url: String,

    /// Largest number of PostgreSQL connections this instance holds.
    #[arg(
        long,
        env = "PVM_CLOUD_DB_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub db_pool_size: usize,

    /// NATS server(s) this instance connects to, comma-separated; absent: no sync.
    #[arg(long, env = "PVM_CLOUD_NATS_URL", global = true)]
    pub nats_url: Option<String>,

    /// NATS credentials file (user JWT + seed) for this instance's own connection.
    #[arg(long, env = "PVM_CLOUD_NATS_CREDS", global = true)]
    pub nats_creds: Option<PathBuf>,

    /// The PVM NATS account's seed (`account.seed` from `pvm-cloud nats-init`): signs each
    /// enrolled node's NATS user JWT. Without it this instance cannot enrol nodes.
    #[arg(long, env = "PVM_CLOUD_NATS_ACCOUNT_SEED_FILE", global = true)]
    pub nats_account_seed_file: Option<PathBuf>,

    /// NATS URLs nodes are told at enrolment (comma-separated); defaults to `--nats-url`.
    #[arg(
        long,
        env = "PVM_CLOUD_PUBLIC_NATS_URL",
        value_delimiter = ',',
        global = true
    )]
    pub public_nats_url: Vec<String>,

    /// File holding the Ed25519 key that signs access tokens (base64 of the 32-byte seed,
    /// made by `pvm-cloud gen-token-key`). Every instance must use the same key.
    #[arg(long, env = "PVM_CLOUD_TOKEN_KEY_FILE", global = true)]
    pub token_key_file: Option<PathBuf>,

    /// Public keys of earlier token keys still accepted while their tokens live out
    /// (files holding base64 of a 32-byte Ed25519 public key), for key rotation.
    #[arg(
        long,
        env = "PVM_CLOUD_TOKEN_VERIFY_KEY_FILES",
        value_delimiter = ',',
        global = true
    )]
    pub token_verify_key_files: Vec<PathBuf>,

    /// Lifetime of an access token, seconds.
    #[arg(
        long,
        env = "PVM_CLOUD_ACCESS_TOKEN_TTL_S",
        default_value_t = 900,
        global = true
    )]
    pub access_token_ttl_s: u64,

    /// Lifetime of a refresh token (each use gives a new one), seconds.
    #[arg(long, env = "PVM_CLOUD_REFRESH_TOKEN_TTL_S", default_value_t = 30 * 24 * 3600, global = true)]
    pub refresh_token_ttl_s: u64,

    /// Failed logins for one account before it is locked.
    #[arg(
        long,
        env = "PVM_CLOUD_LOGIN_MAX_FAILURES",
        default_value_t = 5,
        global = true
    )]
    pub login_max_failures: u32,

    /// How long a locked account stays locked (and the window failures are counted in), s.
    #[arg(
        long,
        env = "PVM_CLOUD_LOGIN_LOCKOUT_S",
        default_value_t = 900,
        global = true
    )]
    pub login_lockout_s: u64,

    /// Failed logins from one client address per window before it is refused.
    #[arg(
        long,
        env = "PVM_CLOUD_LOGIN_MAX_PER_IP",
        default_value_t = 50,
        global = true
    )]
    pub login_max_failures_per_ip: u32,

    /// The per-address window for failed logins, seconds.
    #[arg(
        long,
        env = "PVM_CLOUD_LOGIN_IP_WINDOW_S",
        default_value_t = 900,
        global = true
    )]
    pub login_ip_window_s: u64,

    /// Signups accepted from one client address per hour.
    #[arg(
        long,
        env = "PVM_CLOUD_SIGNUP_MAX_PER_IP",
        default_value_t = 10,
        global = true
    )]
    pub signup_max_per_ip_per_hour: u32,

    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    #[arg(long, env = "PVM_CLOUD_TRUST_FORWARDED_FOR", global = true)]
    pub trust_forwarded_for: bool,

    /// How often nodes send heartbeats, seconds; a node is online while its last one is
    /// younger than three intervals.
    #[arg(
        long,
        env = "PVM_CLOUD_HEARTBEAT_INTERVAL_S",
        default_value_t = 30,
        global = true
    )]
    pub heartbeat_interval_s: u64,

    /// Lifetime of an enrolment code, seconds.
    #[arg(long, env = "PVM_CLOUD_ENROLMENT_CODE_TTL_S", default_value_t = 24 * 3600, global = true)]
    pub enrolment_code_ttl_s: u64,

    /// argon2id memory cost for new password hashes, KiB (existing hashes keep their own).
    #[arg(long, env = "PVM_CLOUD_PASSWORD_MEMORY_KIB", default_value_t = 19 * 1024, global = true)]
    pub password_memory_kib: u32,

    /// argon2id iterations for new password hashes.
    #[arg(
        long,
        env = "PVM_CLOUD_PASSWORD_ITERATIONS",
        default_value_t = 2,
        global = true
    )]
    pub password_iterations: u32,

    /// E-mail addresses of the platform operators: only they may publish releases.
    #[arg(
        long,
        env = "PVM_CLOUD_OPERATOR_EMAIL",
        value_delimiter = ',',
        global = true
    )]
    pub operator_email: Vec<String>,
}

impl Default for CloudConfig {
    /// The defaults of the flags, with no database, NATS or key file named.
    fn default() -> Self {
        CloudConfig::parse_from(["pvm-cloud"])
    }
}

impl CloudConfig {
    /// The NATS URLs nodes are told: `--public-nats-url`, else `--nats-url`.
    pub fn nats_urls_for_nodes(&self) -> Vec<String> {
        if !self.public_nats_url.is_empty() {
            return self.public_nats_url.clone();
        }
        self.nats_url
            .as_deref()
            .map(|u| u.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    }

    pub fn is_operator(&self, email: &str) -> bool {
        self.operator_email
            .iter()
            .any(|e| e.trim().eq_ignore_ascii_case(email))
    }
}

/// `seconds` as a duration, capped at ten years (a configured lifetime beyond that is a
/// typo, and chrono would panic on an out-of-range value).
pub fn duration_s(seconds: u64) -> chrono::Duration {
    chrono::Duration::seconds(seconds.min(10 * 365 * 86_400) as i64)
}
