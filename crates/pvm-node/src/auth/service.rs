//! The accounts service: everything auth does, without HTTP. Methods block (SQLite,
//! argon2), so async callers run them on the blocking pool.

use super::clock::Clock;
use super::crypto::{
    generate_setup_code, hash_password, normalize_setup_code, same_secret, token_digest,
    verify_password, HashCost, SessionToken,
};
use super::error::AuthError;
use super::http::AuthUser;
use super::limiter::LoginLimiter;
use pvm_core::time::MINUTE_MS;
use pvm_core::Timestamp;
use pvm_store::accounts::{AccountStore, NewUser, Role, TokenDigest, User, UserPatch};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

/// The accounts database's file name inside the node's data directory.
pub const ACCOUNTS_DB_FILE: &str = "accounts.db";

const MIN_PASSWORD_CHARS: usize = 8;
/// Long enough for any passphrase, short enough that hashing stays cheap.
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_DISPLAY_NAME_CHARS: usize = 64;
const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=32;

/// Tunables; [`AuthConfig::default`] is the production setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// How long a login lasts. 16 hours covers a long poker night, so staff sign in once
    /// per shift, and a phone left behind is not signed in for days.
    pub session_ttl_ms: i64,
    pub hash_cost: HashCost,
    /// Failed logins (or setup codes, or current passwords) allowed per client per window.
    pub max_failures: usize,
    pub failure_window_ms: i64,
    /// `last_seen` is written at most this often per session, to spare the SD card.
    pub touch_interval_ms: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl_ms: 16 * 60 * MINUTE_MS,
            hash_cost: HashCost::OWASP_MINIMUM,
            max_failures: 5,
            failure_window_ms: MINUTE_MS,
            touch_interval_ms: MINUTE_MS,
        }
    }
}

/// A session just created by setup or login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token: SessionToken,
    pub user: User,
    pub expires_at: Timestamp,
}

/// A user to create, as an admin typed it.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUserRequest {
    pub username: String,
    /// Blank means "same as the username".
    pub display_name: String,
    pub role: Role,
    pub password: String,
}

impl std::fmt::Debug for NewUserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUserRequest")
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Staff accounts, sessions and the first-run setup code. Share it as `Arc<AuthService>`.
pub struct AuthService {
    store: Mutex<AccountStore>,
    /// Sessions as the database had them when last read, by token digest. Every API request
    /// presents a session; reading it from SQLite each time took a lock and a query on the
    /// async workers for every command. An entry serves until the session's `last_seen` is a
    /// `touch_interval_ms` old, when the database is read (and `last_seen` written) again, so
    /// the database still sees each session as often as before. Every change this service
    /// makes to users or sessions empties it, under the store's lock (see
    /// [`AuthService::changing_accounts`]); nothing else writes `accounts.db`.
    sessions: Mutex<HashMap<TokenDigest, CachedSession>>,
    limiter: Mutex<LoginLimiter>,
    clock: Arc<dyn Clock>,
    config: AuthConfig,
    /// A hash to check passwords against when the username is unknown, so that a wrong
    /// username takes as long as a wrong password and does not reveal who has an account.
    decoy_hash: OnceLock<String>,
}

/// A session and its user as [`AccountStore::session`] last returned them.
struct CachedSession {
    user: User,
    expires_at: i64,
    /// The session's `last_seen` in the database.
    last_seen: i64,
}

/// More sessions than a venue's staff ever hold at once: past it, expired entries are swept.
const CACHED_SESSIONS_SWEPT_PAST: usize = 256;

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// Opens `accounts.db` in `data_dir`. While setup is pending, makes sure a setup code
    /// exists (keeping the one from a previous run) and logs it for the console.
    pub fn open(
        data_dir: &Path,
        clock: Arc<dyn Clock>,
        config: AuthConfig,
    ) -> Result<AuthService, AuthError> {
        let store = AccountStore::open(&data_dir.join(ACCOUNTS_DB_FILE))?;
        let limiter = LoginLimiter::new(config.max_failures, config.failure_window_ms);
        let service = AuthService {
            store: Mutex::new(store),
            sessions: Mutex::new(HashMap::new()),
            limiter: Mutex::new(limiter),
            clock,
            config,
            decoy_hash: OnceLock::new(),
        };
        if let Some(code) = service.ensure_setup_code()? {
            tracing::warn!(
                setup_code = %display_setup_code(&code),
                "no admin account yet: open the web console and enter the setup code shown on the TV"
            );
        }
        Ok(service)
    }

    /// True while no admin exists and `POST /api/v1/setup` is open.
    pub fn setup_required(&self) -> Result<bool, AuthError> {
        Ok(self.store().setup_required()?)
    }

    /// The pending setup code, formatted for reading off a screen ("ABCD-EFGH"); `None` once
    /// setup is complete. For the local TV and console only: never serve it over the network.
    pub fn setup_code(&self) -> Result<Option<String>, AuthError> {
        Ok(self.store().setup_code()?.map(|c| display_setup_code(&c)))
    }

    fn ensure_setup_code(&self) -> Result<Option<String>, AuthError> {
        let mut store = self.store();
        if !store.setup_required()? {
            return Ok(None);
        }
        if let Some(code) = store.setup_code()? {
            return Ok(Some(code));
        }
        let candidate = generate_setup_code()?;
        Ok(store.ensure_setup_code(&candidate)?)
    }

    /// Creates the first admin with the setup code, and signs them in.
    pub fn complete_setup(
        &self,
        setup_code: &str,
        admin: NewUserRequest,
        client: Option<IpAddr>,
    ) -> Result<NewSession, AuthError> {
        let now = self.clock.now();
        self.check_rate(client, now)?;
        let expected = self.store().setup_code()?;
        let Some(expected) = expected else {
            return Err(AuthError::SetupComplete);
        };
        if !same_secret(&expected, &normalize_setup_code(setup_code)) {
            self.record_failure(client, now);
            return Err(AuthError::WrongSetupCode);
        }
        let new = self.prepare_user(admin, now)?;
        let user = self.store().create_first_admin(&new)?;
        tracing::info!(username = %user.username, "first admin created: setup complete");
        self.start_session(user, now)
    }

    /// Checks a username and password and starts a session.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<NewSession, AuthError> {
        let now = self.clock.now();
        self.check_rate(client, now)?;
        let username = username.trim().to_lowercase();
        // The store lock is released before hashing: argon2 takes a while.
        let credentials = self.store().credentials(&username)?;
        let verified = match &credentials {
            Some(c) => verify_password(password, &c.password_hash),
            None => {
                verify_password(password, self.decoy_hash()?);
                false
            }
        };
        let Some(credentials) = credentials.filter(|_| verified) else {
            self.record_failure(client, now);
            return Err(AuthError::WrongCredentials);
        };
        if credentials.user.disabled {
            return Err(AuthError::AccountDisabled(credentials.user.username));
        }
        // Sweeping here keeps the table small without a background task.
        self.store().purge_expired_sessions(now.as_millis())?;
        self.start_session(credentials.user, now)
    }

    /// The signed-in user for a presented token.
    pub fn authenticate(&self, token: &str) -> Result<AuthUser, AuthError> {
        let now = self.clock.now().as_millis();
        let digest = token_digest(token);
        if let Some(known) = self.cached_sessions().get(&digest) {
            if now < known.expires_at
                && now.saturating_sub(known.last_seen) < self.config.touch_interval_ms
            {
                return Ok(AuthUser::new(
                    known.user.clone(),
                    digest,
                    Timestamp::from_millis(known.expires_at),
                ));
            }
        }
        // The store's lock is held until the entry is cached, so a change made meanwhile
        // (which empties the cache under the same lock) cannot be undone by this read.
        let mut store = self.store();
        let Some((session, user)) = store.session(&digest, now)? else {
            self.cached_sessions().remove(&digest);
            return Err(AuthError::InvalidSession);
        };
        let mut last_seen = session.last_seen;
        if now.saturating_sub(last_seen) >= self.config.touch_interval_ms {
            store.touch_session(&digest, now)?;
            last_seen = now;
        }
        let mut cached = self.cached_sessions();
        if cached.len() >= CACHED_SESSIONS_SWEPT_PAST {
            cached.retain(|_, known| now < known.expires_at);
        }
        cached.insert(
            digest,
            CachedSession {
                user: user.clone(),
                expires_at: session.expires_at,
                last_seen,
            },
        );
        Ok(AuthUser::new(
            user,
            digest,
            Timestamp::from_millis(session.expires_at),
        ))
    }

    /// Ends the session of `token`, if it exists.
    pub fn logout(&self, token: &str) -> Result<(), AuthError> {
        self.changing_accounts(|store| store.delete_session(&token_digest(token)))?;
        Ok(())
    }

    /// All staff accounts.
    pub fn list_users(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.store().list_users()?)
    }

    /// One staff account.
    pub fn user(&self, username: &str) -> Result<User, AuthError> {
        Ok(self.store().user(&username.trim().to_lowercase())?)
    }

    /// Creates a staff account.
    pub fn create_user(&self, request: NewUserRequest) -> Result<User, AuthError> {
        let new = self.prepare_user(request, self.clock.now())?;
        let user = self.store().create_user(&new)?;
        tracing::info!(username = %user.username, role = %user.role, "user created");
        Ok(user)
    }

    /// Renames, changes the role of, disables or enables a user. Disabling ends their
    /// sessions at once.
    pub fn update_user(&self, username: &str, mut patch: UserPatch) -> Result<User, AuthError> {
        if let Some(name) = patch.display_name.take() {
            patch.display_name = Some(check_display_name(&name)?);
        }
        let user = self.changing_accounts(|store| {
            store.update_user(&username.trim().to_lowercase(), &patch)
        })?;
        tracing::info!(username = %user.username, ?patch, "user updated");
        Ok(user)
    }

    /// An admin sets a new password for someone; all that user's sessions end.
    pub fn reset_password(&self, username: &str, new_password: &str) -> Result<(), AuthError> {
        check_password(new_password)?;
        let username = username.trim().to_lowercase();
        // Fail fast on an unknown name before spending time on the hash.
        self.store().user(&username)?;
        let hash = hash_password(new_password, self.config.hash_cost)?;
        self.changing_accounts(|store| store.set_password_hash(&username, &hash, None))?;
        tracing::info!(%username, "password reset by an admin");
        Ok(())
    }

    /// A user changes their own password. Their other sessions end; this one stays.
    pub fn change_own_password(
        &self,
        who: &AuthUser,
        current_password: &str,
        new_password: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        self.check_rate(client, now)?;
        let username = &who.user().username;
        let credentials = self
            .store()
            .credentials(username)?
            .ok_or_else(|| AuthError::UnknownUser(username.clone()))?;
        if !verify_password(current_password, &credentials.password_hash) {
            // A stolen session must not become a way to guess the password.
            self.record_failure(client, now);
            return Err(AuthError::WrongCurrentPassword);
        }
        check_password(new_password)?;
        let hash = hash_password(new_password, self.config.hash_cost)?;
        self.changing_accounts(|store| {
            store.set_password_hash(username, &hash, Some(who.session_digest()))
        })?;
        Ok(())
    }

    /// Deletes a staff account and its sessions.
    pub fn delete_user(&self, username: &str) -> Result<(), AuthError> {
        let username = username.trim().to_lowercase();
        self.changing_accounts(|store| store.delete_user(&username))?;
        tracing::info!(%username, "user deleted");
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn store_credentials_for_tests(
        &self,
        username: &str,
    ) -> pvm_store::accounts::Credentials {
        self.store().credentials(username).unwrap().unwrap()
    }

    /// The session lifetime, for the cookie's `Max-Age`.
    pub fn session_ttl_ms(&self) -> i64 {
        self.config.session_ttl_ms
    }

    fn start_session(&self, user: User, now: Timestamp) -> Result<NewSession, AuthError> {
        let token = SessionToken::generate()?;
        let expires_at = now.plus_millis(self.config.session_ttl_ms);
        self.store().insert_session(
            &token.digest(),
            &user.username,
            now.as_millis(),
            expires_at.as_millis(),
        )?;
        Ok(NewSession {
            token,
            user,
            expires_at,
        })
    }

    fn prepare_user(&self, request: NewUserRequest, now: Timestamp) -> Result<NewUser, AuthError> {
        let username = check_username(&request.username)?;
        let display_name = if request.display_name.trim().is_empty() {
            username.clone()
        } else {
            check_display_name(&request.display_name)?
        };
        check_password(&request.password)?;
        let password_hash = hash_password(&request.password, self.config.hash_cost)?;
        Ok(NewUser {
            username,
            display_name,
            role: request.role,
            password_hash,
            created_at: now.as_millis(),
        })
    }

    fn check_rate(&self, client: Option<IpAddr>, now: Timestamp) -> Result<(), AuthError> {
        self.limiter()
            .check(client, now)
            .map_err(|retry_after_secs| AuthError::TooManyAttempts { retry_after_secs })
    }

    fn record_failure(&self, client: Option<IpAddr>, now: Timestamp) {
        self.limiter().record_failure(client, now);
    }

    fn decoy_hash(&self) -> Result<&str, AuthError> {
        if let Some(hash) = self.decoy_hash.get() {
            return Ok(hash);
        }
        let hash = hash_password("decoy password, never used", self.config.hash_cost)?;
        Ok(self.decoy_hash.get_or_init(|| hash))
    }

    // A panic while holding a lock leaves nothing half-done in memory (SQLite rolls back
    // its own transactions), so a poisoned lock is safe to keep using.
    fn store(&self) -> MutexGuard<'_, AccountStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a change to users or sessions, then forgets every cached session before the
    /// store's lock is released: a renamed, demoted, disabled or deleted user, a reset
    /// password, a logout all take effect on the very next request.
    fn changing_accounts<T, E>(
        &self,
        change: impl FnOnce(&mut AccountStore) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut store = self.store();
        let changed = change(&mut store);
        self.cached_sessions().clear();
        changed
    }

    fn cached_sessions(&self) -> MutexGuard<'_, HashMap<TokenDigest, CachedSession>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn limiter(&self) -> MutexGuard<'_, LoginLimiter> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// "ABCDEFGH" → "ABCD-EFGH": easier to read off a TV across the room.
fn display_setup_code(code: &str) -> String {
    if code.len() == 8 && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

fn check_username(typed: &str) -> Result<String, AuthError> {
    let name = typed.trim().to_lowercase();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    if !USERNAME_CHARS.contains(&name.chars().count()) {
        return Err(AuthError::Invalid(format!(
            "the username must be {} to {} characters long",
            USERNAME_CHARS.start(),
            USERNAME_CHARS.end()
        )));
    }
    if !name.chars().all(allowed) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(AuthError::Invalid(
            "the username may use only letters a-z, digits and . _ - and must start with a \
             letter or digit"
                .to_owned(),
        ));
    }
    Ok(name)
}

fn check_display_name(typed: &str) -> Result<String, AuthError> {
    let name = typed.trim();
    if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(AuthError::Invalid(format!(
            "the display name must be 1 to {MAX_DISPLAY_NAME_CHARS} characters long"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(AuthError::Invalid(
            "the display name may not contain control characters".to_owned(),
        ));
    }
    Ok(name.to_owned())
}

fn check_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::Invalid(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::Invalid(format!(
            "the password is too long: use at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

impl AuthService {
    /// The signed-in user behind a request's cookie or bearer token, if any and valid.
    pub fn session_from_headers(&self, headers: &axum::http::HeaderMap) -> Option<AuthUser> {
        let token = super::http::presented_token(headers)?;
        self.authenticate(&token).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_lowercased_and_checked() {
        assert_eq!(check_username("  Alice.B ").unwrap(), "alice.b");
        for bad in ["al", "has space", "-dash", "émile", &"x".repeat(33)] {
            assert!(
                matches!(check_username(bad), Err(AuthError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn password_shorter_than_eight_characters_is_refused() {
        let err = check_password("1234567").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the password is too short: use at least 8 characters"
        );
        assert!(check_password("12345678").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(check_display_name("  Ann  ").unwrap(), "Ann");
        assert!(check_display_name("   ").is_err());
        assert!(check_display_name("tab\there").is_err());
        assert!(check_display_name(&"n".repeat(65)).is_err());
    }

    #[test]
    fn setup_code_is_shown_in_two_groups() {
        assert_eq!(display_setup_code("ABCDEFGH"), "ABCD-EFGH");
    }
}
