//! Staff authentication for the node's API.
//!
//! * First run: there is no default password. While no admin exists the node holds a
//!   one-time setup code ([`AuthService::setup_code`]) that is shown on the TV and logged to
//!   the console, never sent over the network; `POST /api/v1/setup` trades it for the first
//!   admin account.
//! * Passwords are hashed with argon2id ([`HashCost`]); sessions are 256-bit random tokens of
//!   which only the SHA-256 is stored, carried in the `pvm_session` cookie or as
//!   `Authorization: Bearer <token>`.
//! * Failed logins are rate-limited per client IP ([`LoginLimiter`]).
//! * Handlers get the signed-in user through the [`AuthUser`] extractor (401 without valid
//!   credentials) and check the role with [`AuthUser::require`] (403).
//!
//! Wiring, in the binary: open the service once and let the app state hand it out.
//!
//! ```text
//! let auth = Arc::new(AuthService::open(&data_dir, Arc::new(SystemClock), AuthConfig::default())?);
//! impl FromRef<AppState> for Arc<AuthService> { fn from_ref(s: &AppState) -> Self { s.auth.clone() } }
//! let app = Router::new().merge(auth::routes()).with_state(app_state);
//! pvm_node::http_server::serve(listener, app, shutdown).await;
//! ```
//!
//! The server must give handlers `ConnectInfo<SocketAddr>` (`http_server::serve` does, as does
//! axum's `into_make_service_with_connect_info`): the login rate limit is per client IP.
//!
//! Accounts live in their own SQLite file (`accounts.db`, see `pvm_store::accounts`), so
//! credentials never enter the event log that syncs to the cloud.

mod clock;
mod crypto;
mod error;
mod http;
mod limiter;
mod service;
#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock, SystemClock};
pub use crypto::{HashCost, SessionToken};
pub use error::AuthError;
pub use http::{
    routes, AuthUser, ChangePasswordRequest, ClientIp, CreateUserRequest, LoginRequest,
    LoginResponse, MeResponse, ResetPasswordRequest, SetupRequest, SetupStatus, SESSION_COOKIE,
};
pub use limiter::LoginLimiter;
pub use pvm_store::accounts::{Role, User, UserPatch};
pub use service::{AuthConfig, AuthService, NewSession, NewUserRequest, ACCOUNTS_DB_FILE};
