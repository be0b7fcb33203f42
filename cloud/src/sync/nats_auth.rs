//! NATS decentralized JWT auth, issued by the cloud itself.
//!
//! The trust chain is operator → accounts → users. `pvm-cloud nats-init` creates an
//! operator, the system account nats-server needs for its own traffic, and the `PVM`
//! account every node and cloud instance lives in; it writes the nats-server config block
//! that trusts them (a MEMORY resolver preloaded with both account JWTs) and the cloud's own
//! user credentials. At enrolment the cloud signs a user JWT for the node with the PVM
//! account key, allowing exactly the node's own subjects (see [`node_permissions`]).
//!
//! The JWTs follow the NATS JWT v2 schema: header `{"typ":"JWT","alg":"ed25519-nkey"}`,
//! base64url (no padding) header and claims, an Ed25519 signature over `header.claims` by
//! the issuer's nkey, and `jti` = base32(SHA-512/256(claims without jti)).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use nkeys::KeyPair;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Digest as _;
use uuid::Uuid;

/// The name of the account nodes and the cloud share.
pub const PVM_ACCOUNT_NAME: &str = "PVM";
/// Unlimited, in NATS JWT limits.
const NO_LIMIT: i64 = -1;

#[derive(Debug, thiserror::Error)]
pub enum NatsAuthError {
    #[error("nkey: {0}")]
    Nkey(String),
    #[error("the seed in {path} is not a {expected} seed")]
    WrongSeedKind {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encode claims: {0}")]
    Json(#[from] serde_json::Error),
}

fn nkey_err(err: nkeys::error::Error) -> NatsAuthError {
    NatsAuthError::Nkey(err.to_string())
}

/// Publish/subscribe allow lists of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// What a node's credentials allow: publishing its own `pvm.up.<node>.>` and the three
/// JetStream API subjects that pulling and acking its own down consumer needs; subscribing
/// only below its own inbox prefix, where its request replies (JetStream acks, pulled
/// messages) arrive. Nothing else: not another node's subjects, not the stream API.
pub fn node_permissions(node_id: Uuid) -> Permissions {
    let durable = pvm_sync::streams::down_durable(node_id);
    let down = pvm_sync::streams::DOWN;
    Permissions {
        publish: vec![
            pvm_sync::subjects::up_all(node_id),
            format!("$JS.API.CONSUMER.MSG.NEXT.{down}.{durable}"),
            format!("$JS.API.CONSUMER.INFO.{down}.{durable}"),
            format!("$JS.ACK.{down}.{durable}.>"),
        ],
        subscribe: vec![format!("{}.>", pvm_sync::subjects::inbox_prefix(node_id))],
    }
}

/// The registered claims every NATS JWT carries, in the order and with the omissions the
/// reference implementation hashes them for `jti`.
#[derive(Serialize)]
struct ClaimsData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    iat: i64,
    iss: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    sub: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    #[serde(flatten)]
    data: ClaimsData<'a>,
    nats: Value,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs a v2 JWT for `subject` with `issuer`; `nats` is the type-specific claim object
/// (it must carry `type` and `version: 2`).
fn encode_jwt(
    issuer: &KeyPair,
    subject: &str,
    name: &str,
    nats: Value,
    issued_at: i64,
) -> Result<String, NatsAuthError> {
    let iss = issuer.public_key();
    let mut data = ClaimsData {
        jti: None,
        iat: issued_at,
        iss: &iss,
        name,
        sub: subject,
    };
    let digest = sha2::Sha512_256::digest(serde_json::to_vec(&data)?);
    let jti = data_encoding::BASE32_NOPAD.encode(&digest);
    data.jti = Some(&jti);
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = b64(&serde_json::to_vec(&Claims { data, nats })?);
    let to_sign = format!("{header}.{claims}");
    let signature = issuer.sign(to_sign.as_bytes()).map_err(nkey_err)?;
    Ok(format!("{to_sign}.{}", b64(&signature)))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn user_claims(permissions: Option<&Permissions>) -> Value {
    let mut nats = json!({
        "subs": NO_LIMIT,
        "data": NO_LIMIT,
        "payload": NO_LIMIT,
        "type": "user",
        "version": 2,
    });
    if let Some(p) = permissions {
        nats["pub"] = json!({ "allow": p.publish });
        nats["sub"] = json!({ "allow": p.subscribe });
    }
    nats
}

fn account_claims(jetstream: bool) -> Value {
    let mut limits = json!({
        "subs": NO_LIMIT,
        "data": NO_LIMIT,
        "payload": NO_LIMIT,
        "imports": NO_LIMIT,
        "exports": NO_LIMIT,
        "wildcards": true,
        "conn": NO_LIMIT,
        "leaf": NO_LIMIT,
    });
    if jetstream {
        // Non-zero storage limits are what turns JetStream on for an account.
        limits["mem_storage"] = json!(NO_LIMIT);
        limits["disk_storage"] = json!(NO_LIMIT);
        limits["streams"] = json!(NO_LIMIT);
        limits["consumer"] = json!(NO_LIMIT);
    }
    json!({
        "limits": limits,
        "default_permissions": { "pub": {}, "sub": {} },
        "type": "account",
        "version": 2,
    })
}

/// A freshly issued NATS user: its JWT and its nkey seed (`SU…`).
#[derive(Clone)]
pub struct IssuedUser {
    pub public_key: String,
    pub jwt: String,
    pub seed: String,
}

impl std::fmt::Debug for IssuedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed is a secret: keep it out of logs and panics.
        f.debug_struct("IssuedUser")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl IssuedUser {
    /// The standard `.creds` text (JWT + seed) that NATS clients load.
    pub fn creds(&self) -> String {
        pvm_sync::creds::user_creds(&self.jwt, &self.seed)
    }
}

/// Issues user JWTs in the PVM account (holds the account's signing seed).
pub struct UserIssuer {
    account: KeyPair,
}

impl std::fmt::Debug for UserIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserIssuer")
            .field("account", &self.account.public_key())
            .finish()
    }
}

impl UserIssuer {
    pub fn from_seed(seed: &str) -> Result<Self, NatsAuthError> {
        let account = KeyPair::from_seed(seed.trim()).map_err(nkey_err)?;
        if account.key_pair_type() != nkeys::KeyPairType::Account {
            return Err(NatsAuthError::Nkey("expected an account seed (SA…)".into()));
        }
        Ok(UserIssuer { account })
    }

    /// Reads the account seed `nats-init` wrote.
    pub fn from_seed_file(path: &Path) -> Result<Self, NatsAuthError> {
        let seed = std::fs::read_to_string(path).map_err(|source| NatsAuthError::Io {
            what: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_seed(&seed).map_err(|_| NatsAuthError::WrongSeedKind {
            path: path.to_path_buf(),
            expected: "NATS account",
        })
    }

    pub fn account_public_key(&self) -> String {
        self.account.public_key()
    }

    fn issue(
        &self,
        name: &str,
        permissions: Option<&Permissions>,
    ) -> Result<IssuedUser, NatsAuthError> {
        let user = KeyPair::new_user();
        let public_key = user.public_key();
        let jwt = encode_jwt(
            &self.account,
            &public_key,
            name,
            user_claims(permissions),
            now_unix(),
        )?;
        Ok(IssuedUser {
            public_key,
            jwt,
            seed: user.seed().map_err(nkey_err)?,
        })
    }

    /// A node's user: only its own subjects ([`node_permissions`]).
    pub fn issue_node_user(&self, node_id: Uuid) -> Result<IssuedUser, NatsAuthError> {
        self.issue(&format!("node-{node_id}"), Some(&node_permissions(node_id)))
    }

    /// A user with every right in the account (the cloud's instances, operators' tools).
    pub fn issue_service_user(&self, name: &str) -> Result<IssuedUser, NatsAuthError> {
        self.issue(name, None)
    }
}

/// Operator, system account and PVM account: everything nats-server must trust.
pub struct Trust {
    operator: KeyPair,
    system: KeyPair,
    account: KeyPair,
}

/// File names `nats-init` writes in its folder.
pub mod files {
    pub const OPERATOR_SEED: &str = "operator.seed";
    pub const SYSTEM_ACCOUNT_SEED: &str = "system-account.seed";
    pub const ACCOUNT_SEED: &str = "account.seed";
    /// The nats-server config block (include it from the server's config).
    pub const SERVER_CONFIG: &str = "auth.conf";
    /// The cloud's own user credentials (full rights in the PVM account).
    pub const CLOUD_CREDS: &str = "cloud.creds";
}

fn read_or_create_seed(
    path: &Path,
    kind: nkeys::KeyPairType,
    expected: &'static str,
) -> Result<KeyPair, NatsAuthError> {
    match std::fs::read_to_string(path) {
        Ok(seed) => {
            let pair =
                KeyPair::from_seed(seed.trim()).map_err(|_| NatsAuthError::WrongSeedKind {
                    path: path.to_path_buf(),
                    expected,
                })?;
            if pair.key_pair_type() != kind {
                return Err(NatsAuthError::WrongSeedKind {
                    path: path.to_path_buf(),
                    expected,
                });
            }
            Ok(pair)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let pair = KeyPair::new(kind);
            write_secret(path, &pair.seed().map_err(nkey_err)?)?;
            Ok(pair)
        }
        Err(source) => Err(NatsAuthError::Io {
            what: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a file readable by its owner only (seeds and creds are secrets).
fn write_secret(path: &Path, text: &str) -> Result<(), NatsAuthError> {
    use std::io::Write as _;
    let io_err = |what| {
        let path = path.to_path_buf();
        move |source| NatsAuthError::Io { what, path, source }
    };
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io_err("create"))?;
    file.write_all(text.as_bytes()).map_err(io_err("write"))?;
    file.sync_all().map_err(io_err("sync"))?;
    std::fs::rename(&tmp, path).map_err(io_err("rename into"))?;
    Ok(())
}

impl Trust {
    /// New random operator and accounts (for tests; `nats-init` uses [`Trust::load_or_create`]).
    pub fn generate() -> Self {
        Trust {
            operator: KeyPair::new_operator(),
            system: KeyPair::new_account(),
            account: KeyPair::new_account(),
        }
    }

    /// Loads the seeds from `dir`, creating any that are missing, so running `nats-init`
    /// again keeps the identities (and every node credential already issued stays valid).
    pub fn load_or_create(dir: &Path) -> Result<Self, NatsAuthError> {
        std::fs::create_dir_all(dir).map_err(|source| NatsAuthError::Io {
            what: "create folder",
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Trust {
            operator: read_or_create_seed(
                &dir.join(files::OPERATOR_SEED),
                nkeys::KeyPairType::Operator,
                "NATS operator",
            )?,
            system: read_or_create_seed(
                &dir.join(files::SYSTEM_ACCOUNT_SEED),
                nkeys::KeyPairType::Account,
                "NATS account",
            )?,
            account: read_or_create_seed(
                &dir.join(files::ACCOUNT_SEED),
                nkeys::KeyPairType::Account,
                "NATS account",
            )?,
        })
    }

    pub fn account_seed(&self) -> Result<String, NatsAuthError> {
        self.account.seed().map_err(nkey_err)
    }

    pub fn user_issuer(&self) -> Result<UserIssuer, NatsAuthError> {
        UserIssuer::from_seed(&self.account_seed()?)
    }

    /// The nats-server configuration block: trusted operator, system account and a MEMORY
    /// resolver preloaded with both account JWTs. Append it to (or `include` it from) a
    /// config that sets `listen` and `jetstream`.
    pub fn server_config(&self) -> Result<String, NatsAuthError> {
        let now = now_unix();
        let system_pub = self.system.public_key();
        let account_pub = self.account.public_key();
        let operator_pub = self.operator.public_key();
        let operator_jwt = encode_jwt(
            &self.operator,
            &operator_pub,
            "PVM operator",
            json!({ "system_account": system_pub, "type": "operator", "version": 2 }),
            now,
        )?;
        let system_jwt = encode_jwt(
            &self.operator,
            &system_pub,
            "SYS",
            account_claims(false),
            now,
        )?;
        let account_jwt = encode_jwt(
            &self.operator,
            &account_pub,
            PVM_ACCOUNT_NAME,
            account_claims(true),
            now,
        )?;
        Ok(format!(
            "# Generated by `pvm-cloud nats-init`: NATS decentralized auth for PVM.\n\
             operator: {operator_jwt}\n\
             system_account: {system_pub}\n\
             resolver: MEMORY\n\
             resolver_preload: {{\n  \
               {system_pub}: {system_jwt}\n  \
               {account_pub}: {account_jwt}\n\
             }}\n"
        ))
    }

    /// Writes the seeds (kept if present), `auth.conf` and `cloud.creds` into `dir`.
    pub fn write_dir(&self, dir: &Path) -> Result<(), NatsAuthError> {
        write_secret(&dir.join(files::SERVER_CONFIG), &self.server_config()?)?;
        let cloud = self.user_issuer()?.issue_service_user("pvm-cloud")?;
        write_secret(&dir.join(files::CLOUD_CREDS), &cloud.creds())?;
        Ok(())
    }
}

/// `pvm-cloud nats-init --dir D`: keys (kept when present), server config and cloud creds.
pub fn nats_init(dir: &Path) -> Result<(), NatsAuthError> {
    let trust = Trust::load_or_create(dir)?;
    trust.write_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_part(part: &str) -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_node_jwt_is_signed_by_the_account_and_names_only_the_nodes_subjects() {
        let trust = Trust::generate();
        let issuer = trust.user_issuer().unwrap();
        let node = Uuid::from_u128(42);
        let user = issuer.issue_node_user(node).unwrap();
        let parts: Vec<&str> = user.jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            decode_part(parts[0]),
            json!({"typ":"JWT","alg":"ed25519-nkey"})
        );
        let claims = decode_part(parts[1]);
        assert_eq!(claims["iss"], issuer.account_public_key());
        assert_eq!(claims["sub"], user.public_key);
        assert_eq!(claims["nats"]["type"], "user");
        assert_eq!(claims["nats"]["version"], 2);
        let allowed: Vec<String> =
            serde_json::from_value(claims["nats"]["pub"]["allow"].clone()).unwrap();
        assert!(allowed.iter().all(|s| s.contains(&node.to_string())));
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[2])
            .unwrap();
        let account = KeyPair::from_public_key(&issuer.account_public_key()).unwrap();
        account
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
        assert!(user.seed.starts_with("SU"));
    }

    #[test]
    fn jti_is_the_hash_of_the_claims_without_it() {
        let signer = KeyPair::new_account();
        let jwt = encode_jwt(&signer, "UABC", "n", json!({"type":"user","version":2}), 7).unwrap();
        let claims = decode_part(jwt.split('.').nth(1).unwrap());
        let without = format!(
            r#"{{"iat":7,"iss":"{}","name":"n","sub":"UABC"}}"#,
            signer.public_key()
        );
        let expected =
            data_encoding::BASE32_NOPAD.encode(&sha2::Sha512_256::digest(without.as_bytes()));
        assert_eq!(claims["jti"], expected);
    }

    #[test]
    fn nats_init_again_keeps_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        nats_init(dir.path()).unwrap();
        let first = std::fs::read_to_string(dir.path().join(files::ACCOUNT_SEED)).unwrap();
        nats_init(dir.path()).unwrap();
        let second = std::fs::read_to_string(dir.path().join(files::ACCOUNT_SEED)).unwrap();
        assert_eq!(first, second);
        let conf = std::fs::read_to_string(dir.path().join(files::SERVER_CONFIG)).unwrap();
        assert!(conf.contains("resolver: MEMORY"));
        assert!(UserIssuer::from_seed_file(&dir.path().join(files::ACCOUNT_SEED)).is_ok());
        assert!(UserIssuer::from_seed_file(&dir.path().join(files::OPERATOR_SEED)).is_err());
    }
}
