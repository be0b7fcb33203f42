//! Staff accounts of the node: users, login sessions and the first-run setup code.
//!
//! This lives in its own SQLite file (`accounts.db`), never in the event log: the event log
//! syncs to the cloud, and password hashes and session digests must never leave the node.
//!
//! The store is deliberately dumb about cryptography: it keeps whatever password hash and
//! session digest the caller computed (the node hashes with argon2id and SHA-256). What it
//! does guard are the invariants that need a transaction: the first admin can be created
//! only once, the last admin can never be demoted, disabled or deleted (the venue would be
//! locked out of its own node), and disabling a user ends their sessions in the same commit.
//!
//! Times are milliseconds since the Unix epoch, UTC, passed in by the caller; nothing here
//! reads a clock.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use thiserror::Error;

/// What a staff member may do. Ordered: `Admin` ⊇ `Floor` ⊇ `Dealer`, so "at least floor"
/// is `role >= Role::Floor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs their own table: clock view, calling the floor.
    Dealer,
    /// Runs the room: tournaments, seating, waiting lists.
    Floor,
    /// Everything, including staff accounts and system settings.
    Admin,
}

impl Role {
    /// The stable name stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Dealer => "dealer",
            Role::Floor => "floor",
            Role::Admin => "admin",
        }
    }

    /// The role with this stable name, if any.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "dealer" => Some(Role::Dealer),
            "floor" => Some(Role::Floor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff account as anyone may see it: no password material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique, lower case; the name typed at login.
    pub username: String,
    /// The name shown on screens and in the console.
    pub display_name: String,
    pub role: Role,
    /// Milliseconds since the Unix epoch, UTC.
    pub created_at: i64,
    /// A disabled user cannot log in and has no sessions.
    pub disabled: bool,
}

/// A user together with their stored password hash, for checking a login.
///
/// Not `Serialize` on purpose, and its `Debug` hides the hash: this type must never end up
/// in a response body or a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: User,
    /// A PHC string as produced by the password hasher.
    pub password_hash: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// A user to be created. The password is already hashed.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
    /// Milliseconds since the Unix epoch, UTC.
    pub created_at: i64,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("password_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Changes to a user; `None` leaves a field as it is. Unknown fields are refused so that a
/// typo ("disable": true) is an error rather than a silent no-op.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// SHA-256 of a session token. The token itself is never stored.
pub type TokenDigest = [u8; 32];

/// A login session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub username: String,
    /// All times in milliseconds since the Unix epoch, UTC.
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen: i64,
}

/// Why the accounts store refused or failed.
#[derive(Debug, Error)]
pub enum AccountError {
    #[error("the username \"{0}\" is already taken")]
    UsernameTaken(String),
    #[error("there is no user called \"{0}\"")]
    UnknownUser(String),
    #[error("setup is already complete: an admin account exists")]
    SetupAlreadyComplete,
    #[error(
        "\"{0}\" is the last active admin: make another user admin first, \
         or the venue would be locked out of its own node"
    )]
    LastAdmin(String),
    /// A row that this code did not write (hand-edited or from a newer version).
    #[error("the accounts database is damaged: {0}")]
    Corrupt(String),
    #[error("the accounts database failed: {0}")]
    Database(#[from] rusqlite::Error),
}

/// The accounts database. One per node; the node serialises access (it is not `Sync`).
#[derive(Debug)]
pub struct AccountStore {
    conn: Connection,
}

/// Each entry upgrades the schema by one version (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &["
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name  TEXT NOT NULL,
        role          TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        disabled      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        token_sha256 BLOB PRIMARY KEY,
        user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        last_seen    INTEGER NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions(user_id);
    -- At most one row: the first-run code, deleted when the first admin is created.
    CREATE TABLE setup_code (
        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
        code     TEXT NOT NULL
    );
"];

/// A live session and its user, by the token's digest (`?1`) at a time (`?2`).
const SESSION_QUERY: &str = "SELECT u.username, u.display_name, u.role, u.created_at, u.disabled,
            s.created_at, s.expires_at, s.last_seen
     FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.token_sha256 = ?1 AND s.expires_at > ?2 AND u.disabled = 0";

const USER_COLUMNS: &str = "username, display_name, role, created_at, disabled";

impl AccountStore {
    /// Opens (creating if needed) the accounts database at `path` and brings its schema up
    /// to date.
    pub fn open(path: &Path) -> Result<AccountStore, AccountError> {
        let mut conn = Connection::open(path)?;
        // WAL + FULL: the Pi's SD card can lose power at any instant, and a user created or
        // a password changed must still be there after it.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        crate::keep_plans(&conn)?;
        migrate(&mut conn)?;
        Ok(AccountStore { conn })
    }

    /// True while no admin account exists, i.e. the node still needs its first-run setup.
    pub fn setup_required(&self) -> Result<bool, AccountError> {
        Ok(!admin_exists(&self.conn)?)
    }

    /// The stored first-run setup code, if one is waiting to be used.
    pub fn setup_code(&self) -> Result<Option<String>, AccountError> {
        Ok(self
            .conn
            .query_row("SELECT code FROM setup_code WHERE only_row = 1", [], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Stores `code` as the setup code unless setup is complete or a code already exists;
    /// returns the code now in force (`None` once setup is complete). Keeping an existing
    /// code means the code shown on the TV survives restarts until it is used.
    pub fn ensure_setup_code(&mut self, code: &str) -> Result<Option<String>, AccountError> {
        let tx = self.conn.transaction()?;
        if admin_exists(&tx)? {
            tx.execute("DELETE FROM setup_code", [])?;
            tx.commit()?;
            return Ok(None);
        }
        tx.execute(
            "INSERT OR IGNORE INTO setup_code (only_row, code) VALUES (1, ?1)",
            params![code],
        )?;
        let current: String =
            tx.query_row("SELECT code FROM setup_code WHERE only_row = 1", [], |r| {
                r.get(0)
            })?;
        tx.commit()?;
        Ok(Some(current))
    }

    /// Creates the first admin and retires the setup code, atomically: of two racing
    /// setups, exactly one wins. The caller has already checked the code.
    pub fn create_first_admin(&mut self, new: &NewUser) -> Result<User, AccountError> {
        let tx = self.conn.transaction()?;
        if admin_exists(&tx)? {
            return Err(AccountError::SetupAlreadyComplete);
        }
        let admin = NewUser {
            role: Role::Admin,
            ..new.clone()
        };
        let user = insert_user(&tx, &admin)?;
        tx.execute("DELETE FROM setup_code", [])?;
        tx.commit()?;
        Ok(user)
    }

    /// Creates a user. Usernames are unique regardless of case.
    pub fn create_user(&mut self, new: &NewUser) -> Result<User, AccountError> {
        let tx = self.conn.transaction()?;
        let user = insert_user(&tx, new)?;
        tx.commit()?;
        Ok(user)
    }

    /// The user called `username`.
    pub fn user(&self, username: &str) -> Result<User, AccountError> {
        find_user(&self.conn, username)?
            .ok_or_else(|| AccountError::UnknownUser(username.to_owned()))
    }

    /// All users, by username.
    pub fn list_users(&self) -> Result<Vec<User>, AccountError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        ))?;
        let rows = stmt.query_map([], user_from_row)?;
        let mut users = Vec::new();
        for row in rows {
            users.push(row??);
        }
        Ok(users)
    }

    /// The user and password hash for a login attempt; `None` if no such user.
    pub fn credentials(&self, username: &str) -> Result<Option<Credentials>, AccountError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1"),
                params![username],
                |r| Ok((user_from_row(r)?, r.get::<_, String>(5)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((user, password_hash)) => Ok(Some(Credentials {
                user: user?,
                password_hash,
            })),
        }
    }

    /// Applies `patch`. Refuses to leave the node without an active admin. Disabling a user
    /// ends all their sessions in the same transaction.
    pub fn update_user(&mut self, username: &str, patch: &UserPatch) -> Result<User, AccountError> {
        let tx = self.conn.transaction()?;
        let before = find_user(&tx, username)?
            .ok_or_else(|| AccountError::UnknownUser(username.to_owned()))?;
        let stays_active_admin = patch.role.unwrap_or(before.role) == Role::Admin
            && !patch.disabled.unwrap_or(before.disabled);
        if before.role == Role::Admin && !before.disabled && !stays_active_admin {
            refuse_if_last_active_admin(&tx, &before.username)?;
        }
        if let Some(display_name) = &patch.display_name {
            tx.execute(
                "UPDATE users SET display_name = ?1 WHERE username = ?2",
                params![display_name, username],
            )?;
        }
        if let Some(role) = patch.role {
            tx.execute(
                "UPDATE users SET role = ?1 WHERE username = ?2",
                params![role.as_str(), username],
            )?;
        }
        if let Some(disabled) = patch.disabled {
            tx.execute(
                "UPDATE users SET disabled = ?1 WHERE username = ?2",
                params![disabled, username],
            )?;
            if disabled {
                delete_sessions_of(&tx, username, None)?;
            }
        }
        let after = find_user(&tx, username)?
            .ok_or_else(|| AccountError::UnknownUser(username.to_owned()))?;
        tx.commit()?;
        Ok(after)
    }

    /// Replaces the password hash and ends the user's sessions, except `keep` (the session
    /// that changed its own password stays signed in).
    pub fn set_password_hash(
        &mut self,
        username: &str,
        password_hash: &str,
        keep: Option<&TokenDigest>,
    ) -> Result<(), AccountError> {
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE users SET password_hash = ?1 WHERE username = ?2",
            params![password_hash, username],
        )?;
        if changed == 0 {
            return Err(AccountError::UnknownUser(username.to_owned()));
        }
        delete_sessions_of(&tx, username, keep)?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes a user and their sessions. Refuses to delete the last active admin.
    pub fn delete_user(&mut self, username: &str) -> Result<(), AccountError> {
        let tx = self.conn.transaction()?;
        let user = find_user(&tx, username)?
            .ok_or_else(|| AccountError::UnknownUser(username.to_owned()))?;
        if user.role == Role::Admin && !user.disabled {
            refuse_if_last_active_admin(&tx, &user.username)?;
        }
        // Sessions go with the user (ON DELETE CASCADE).
        tx.execute("DELETE FROM users WHERE username = ?1", params![username])?;
        tx.commit()?;
        Ok(())
    }

    /// Records a new session for `username`.
    pub fn insert_session(
        &mut self,
        digest: &TokenDigest,
        username: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), AccountError> {
        let inserted = self.conn.execute(
            "INSERT INTO sessions (token_sha256, user_id, created_at, expires_at, last_seen)
             SELECT ?1, id, ?2, ?3, ?2 FROM users WHERE username = ?4",
            params![&digest[..], created_at, expires_at, username],
        )?;
        if inserted == 0 {
            return Err(AccountError::UnknownUser(username.to_owned()));
        }
        Ok(())
    }

    /// The live session with this digest and its user, or `None` if the session is unknown,
    /// expired at `now`, or its user is disabled.
    pub fn session(
        &self,
        digest: &TokenDigest,
        now: i64,
    ) -> Result<Option<(Session, User)>, AccountError> {
        // The node runs this for each session about once a minute (it caches what it read in
        // between), and for every request that presents an unknown token: parsing and planning
        // the join each time would be most of the cost, so the prepared statement is kept.
        let row = self
            .conn
            .prepare_cached(SESSION_QUERY)?
            .query_row(params![&digest[..], now], |r| {
                let user = user_from_row(r)?;
                let session = Session {
                    username: r.get(0)?,
                    created_at: r.get(5)?,
                    expires_at: r.get(6)?,
                    last_seen: r.get(7)?,
                };
                Ok((session, user))
            })
            .optional()?;
        match row {
            None => Ok(None),
            Some((session, user)) => Ok(Some((session, user?))),
        }
    }

    /// Notes that the session was used at `now`.
    pub fn touch_session(&mut self, digest: &TokenDigest, now: i64) -> Result<(), AccountError> {
        self.conn
            .prepare_cached("UPDATE sessions SET last_seen = ?1 WHERE token_sha256 = ?2")?
            .execute(params![now, &digest[..]])?;
        Ok(())
    }

    /// Ends one session (logout). Returns whether it existed.
    pub fn delete_session(&mut self, digest: &TokenDigest) -> Result<bool, AccountError> {
        let n = self.conn.execute(
            "DELETE FROM sessions WHERE token_sha256 = ?1",
            params![&digest[..]],
        )?;
        Ok(n > 0)
    }

    /// Number of sessions `username` has, expired or not (for tests and the admin view).
    pub fn session_count(&self, username: &str) -> Result<u64, AccountError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE u.username = ?1",
            params![username],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes sessions that expired at or before `now`; returns how many.
    pub fn purge_expired_sessions(&mut self, now: i64) -> Result<usize, AccountError> {
        Ok(self
            .conn
            .execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), AccountError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len();
    let from = usize::try_from(version).unwrap_or(usize::MAX);
    if from > known {
        return Err(AccountError::Corrupt(format!(
            "schema version {version} is newer than this software understands ({known})"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        let next_version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", next_version)?;
        tx.commit()?;
    }
    Ok(())
}

fn admin_exists(conn: &Connection) -> Result<bool, AccountError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')",
        [],
        |r| r.get(0),
    )?)
}

fn refuse_if_last_active_admin(tx: &Transaction<'_>, username: &str) -> Result<(), AccountError> {
    let others: i64 = tx.query_row(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND username <> ?1",
        params![username],
        |r| r.get(0),
    )?;
    if others == 0 {
        return Err(AccountError::LastAdmin(username.to_owned()));
    }
    Ok(())
}

fn insert_user(tx: &Transaction<'_>, new: &NewUser) -> Result<User, AccountError> {
    if find_user(tx, &new.username)?.is_some() {
        return Err(AccountError::UsernameTaken(new.username.clone()));
    }
    tx.execute(
        "INSERT INTO users (username, display_name, role, password_hash, created_at, disabled)
         VALUES (?1, ?2, ?3, ?4, ?5, 0)",
        params![
            new.username,
            new.display_name,
            new.role.as_str(),
            new.password_hash,
            new.created_at
        ],
    )?;
    Ok(User {
        username: new.username.clone(),
        display_name: new.display_name.clone(),
        role: new.role,
        created_at: new.created_at,
        disabled: false,
    })
}

fn delete_sessions_of(
    tx: &Transaction<'_>,
    username: &str,
    keep: Option<&TokenDigest>,
) -> Result<(), AccountError> {
    let keep: &[u8] = keep.map(|d| &d[..]).unwrap_or(&[]);
    tx.execute(
        "DELETE FROM sessions
         WHERE user_id = (SELECT id FROM users WHERE username = ?1) AND token_sha256 <> ?2",
        params![username, keep],
    )?;
    Ok(())
}

fn find_user(conn: &Connection, username: &str) -> Result<Option<User>, AccountError> {
    let row = conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
            params![username],
            user_from_row,
        )
        .optional()?;
    row.transpose()
}

/// Reads the first five columns (`USER_COLUMNS`). The outer `Result` is SQLite's, the inner
/// one reports a role name this code does not know.
fn user_from_row(r: &Row<'_>) -> rusqlite::Result<Result<User, AccountError>> {
    let role_name: String = r.get(2)?;
    let user = Role::from_name(&role_name)
        .map(|role| -> rusqlite::Result<User> {
            Ok(User {
                username: r.get(0)?,
                display_name: r.get(1)?,
                role,
                created_at: r.get(3)?,
                disabled: r.get(4)?,
            })
        })
        .transpose()?;
    Ok(user.ok_or_else(|| AccountError::Corrupt(format!("unknown role \"{role_name}\""))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    fn open(dir: &TempDir) -> AccountStore {
        AccountStore::open(&dir.path().join("accounts.db")).unwrap()
    }

    fn new_user(username: &str, role: Role) -> NewUser {
        NewUser {
            username: username.to_owned(),
            display_name: format!("{username} display"),
            role,
            password_hash: format!("hash-of-{username}"),
            created_at: 1_000,
        }
    }

    #[test]
    fn looking_up_a_session_again_reuses_its_prepared_plan() {
        let dir = TempDir::new().unwrap();
        let mut store = with_admin(&dir);
        store.insert_session(&[7; 32], "boss", 0, 10_000).unwrap();
        for now in 1..=5 {
            assert!(store.session(&[7; 32], now).unwrap().is_some());
        }
        let reprepared = store
            .conn
            .prepare_cached(SESSION_QUERY)
            .unwrap()
            .get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(
            reprepared, 0,
            "the session lookup was parsed and planned again"
        );
    }

    fn with_admin(dir: &TempDir) -> AccountStore {
        let mut store = open(dir);
        store
            .create_first_admin(&new_user("boss", Role::Admin))
            .unwrap();
        store
    }

    #[test]
    fn fresh_store_requires_setup_and_keeps_its_code_across_reopen() {
        let dir = TempDir::new().unwrap();
        {
            let mut store = open(&dir);
            assert!(store.setup_required().unwrap());
            assert_eq!(
                store.ensure_setup_code("ABCD2345").unwrap().as_deref(),
                Some("ABCD2345")
            );
        }
        let mut store = open(&dir);
        assert!(store.setup_required().unwrap());
        // A second candidate code does not replace the one already shown on the TV.
        assert_eq!(
            store.ensure_setup_code("ZZZZ9999").unwrap().as_deref(),
            Some("ABCD2345")
        );
        assert_eq!(store.setup_code().unwrap().as_deref(), Some("ABCD2345"));
    }

    #[test]
    fn first_admin_retires_the_setup_code_and_cannot_be_created_twice() {
        let dir = TempDir::new().unwrap();
        let mut store = open(&dir);
        store.ensure_setup_code("ABCD2345").unwrap();
        let admin = store
            .create_first_admin(&new_user("boss", Role::Dealer))
            .unwrap();
        assert_eq!(admin.role, Role::Admin, "the first user is always an admin");
        assert!(!store.setup_required().unwrap());
        assert_eq!(store.setup_code().unwrap(), None);
        assert_eq!(store.ensure_setup_code("NEWCODE2").unwrap(), None);
        assert!(matches!(
            store.create_first_admin(&new_user("intruder", Role::Admin)),
            Err(AccountError::SetupAlreadyComplete)
        ));
        assert!(matches!(
            store.user("intruder"),
            Err(AccountError::UnknownUser(_))
        ));
    }

    #[test]
    fn usernames_are_unique_regardless_of_case() {
        let dir = TempDir::new().unwrap();
        let mut store = with_admin(&dir);
        store.create_user(&new_user("alice", Role::Floor)).unwrap();
        let err = store
            .create_user(&new_user("ALICE", Role::Dealer))
            .unwrap_err();
        assert!(matches!(err, AccountError::UsernameTaken(ref n) if n == "ALICE"));
        assert_eq!(err.to_string(), "the username \"ALICE\" is already taken");
    }

    #[test]
    fn credentials_return_the_stored_hash_and_debug_hides_it() {
        let dir = TempDir::new().unwrap();
        let store = with_admin(&dir);
        let creds = store.credentials("boss").unwrap().unwrap();
        assert_eq!(creds.password_hash, "hash-of-boss");
        assert!(!format!("{creds:?}").contains("hash-of-boss"));
        assert_eq!(store.credentials("nobody").unwrap(), None);
    }

    #[test]
    fn unknown_user_is_reported_by_name() {
        let dir = TempDir::new().unwrap();
        let mut store = with_admin(&dir);
        let err = store
            .update_user("ghost", &UserPatch::default())
            .unwrap_err();
        assert_eq!(err.to_string(), "there is no user called \"ghost\"");
        assert!(matches!(
            store.set_password_hash("ghost", "h", None),
            Err(AccountError::UnknownUser(_))
        ));
        assert!(matches!(
            store.delete_user("ghost"),
            Err(AccountError::UnknownUser(_))
        ));
    }

    #[test]
    fn last_active_admin_cannot_be_demoted_disabled_or_deleted() {
        let dir = TempDir::new().unwrap();
        let mut store = with_admin(&dir);
        for patch in [
            UserPatch {
                role: Some(Role::Floor),
                ..UserPatch::default()
            },
            UserPatch {
                disabled: Some(true),
                ..UserPatch::default()
            },
        ] {
            assert!(matches!(
                store.update_user("boss", &patch),
                Err(AccountError::LastAdmin(_))
            ));
        }
        assert!(matches!(
            store.delete_user("boss"),
            Err(AccountError::LastAdmin(_))
        ));
        // With a second admin, the first may step down.
        store.create_user(&new_user("deputy", Role::Admin)).unwrap();
        let demoted = store
            .update_user(
                "boss",
                &UserPatch {
                    role: Some(Role::Floor),
                    ..UserPatch::default()
                },
            )
            .unwrap();
        assert_eq!(demoted.role, Role::Floor);
    }

    #[test]
    fn disabling_a_user_ends_their_sessions() {
        let dir = TempDir::new().unwrap();
        let mut store = with_admin(&dir);
        store.create_user(&new_user("dana", Role::Dealer)).unwrap();
        store.insert_session(&[1; 32], "dana", 0, 10_000).unwrap();
        store.insert_session(&[2; 32], "dana", 0, 10_000).unwrap();
        store.insert_session(&[3; 32], "boss", 0, 10_000).unwrap();
        let patch = UserPatch {
            disabled: Some(true),
            ..UserPatch::default()
        };
        assert!(store.update_user("dana", &patch).unwrap().disabled);
        assert_eq!(store.session_count("dana").unwrap(), 0);
        assert_eq!(store.session(&[1; 32], 5).unwrap(), None);
        assert!(store.session(&[3; 32], 5).unwrap().is_some());
    }

    #[test]
    fn sessions_are_found_until_they_expire() {
        let dir = TempDir::new().unwrap();
        let mut store = with_admin(&dir);
        store.insert_session(&[7; 32], "boss", 100, 200).unwrap();
        let (session, user) = store.session(&[7; 32], 199).unwrap().unwrap();
        assert_eq!(user.username, "boss");
        assert_eq!(
            (session.created_at, session.expires_at, session.last_seen),
            (100, 200, 100)
        );
        store.touch_session(&[7; 32], 150).unwrap();
        assert_eq!(
            store.session(&[7; 32], 160).unwrap().unwrap().0.last_seen,
            150
        );
        assert_eq!(store.session(&[7; 32], 200).unwrap(), None);
        assert_eq!(store.purge_expired_sessions(200).unwrap(), 1);
        assert_eq!(store.session_count("boss").unwrap(), 0);
    }

    #[test]
    fn password_change_keeps_only_the_session_that_made_it() {
        let dir = TempDir::new().unwrap();
        let mut store = with_admin(&dir);
        store.insert_session(&[1; 32], "boss", 0, 1_000).unwrap();
        store.insert_session(&[2; 32], "boss", 0, 1_000).unwrap();
        store
            .set_password_hash("boss", "new-hash", Some(&[1; 32]))
            .unwrap();
        assert!(store.session(&[1; 32], 1).unwrap().is_some());
        assert_eq!(store.session(&[2; 32], 1).unwrap(), None);
        assert_eq!(
            store.credentials("boss").unwrap().unwrap().password_hash,
            "new-hash"
        );
        store.set_password_hash("boss", "newer", None).unwrap();
        assert_eq!(store.session_count("boss").unwrap(), 0);
    }

    #[test]
    fn deleting_a_user_deletes_their_sessions_and_logout_deletes_one() {
        let dir = TempDir::new().unwrap();
        let mut store = with_admin(&dir);
        store.create_user(&new_user("fred", Role::Floor)).unwrap();
        store.insert_session(&[4; 32], "fred", 0, 1_000).unwrap();
        store.insert_session(&[5; 32], "boss", 0, 1_000).unwrap();
        assert!(store.delete_session(&[5; 32]).unwrap());
        assert!(!store.delete_session(&[5; 32]).unwrap());
        store.delete_user("fred").unwrap();
        assert_eq!(store.session(&[4; 32], 1).unwrap(), None);
        assert_eq!(
            store
                .list_users()
                .unwrap()
                .iter()
                .map(|u| u.username.as_str())
                .collect::<Vec<_>>(),
            ["boss"]
        );
    }

    #[test]
    fn session_for_unknown_user_is_refused() {
        let dir = TempDir::new().unwrap();
        let mut store = with_admin(&dir);
        assert!(matches!(
            store.insert_session(&[9; 32], "ghost", 0, 1),
            Err(AccountError::UnknownUser(_))
        ));
    }

    #[test]
    fn database_from_a_newer_version_is_refused_not_damaged() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("accounts.db");
        drop(AccountStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = AccountStore::open(&path).unwrap_err();
        assert!(matches!(err, AccountError::Corrupt(_)), "{err}");
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[test]
    fn roles_are_ordered_admin_over_floor_over_dealer() {
        assert!(Role::Admin > Role::Floor && Role::Floor > Role::Dealer);
        for role in [Role::Admin, Role::Floor, Role::Dealer] {
            assert_eq!(Role::from_name(role.as_str()), Some(role));
            assert_eq!(
                serde_json::to_string(&role).unwrap(),
                format!("\"{}\"", role.as_str())
            );
        }
        assert_eq!(Role::from_name("owner"), None);
    }
}
