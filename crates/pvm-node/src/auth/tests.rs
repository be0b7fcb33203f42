//! The auth routes driven end to end through the router, with a manual clock.

use super::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use pvm_core::time::MINUTE_MS;
use pvm_core::Timestamp;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tempfile::TempDir;
use tower::ServiceExt;

/// Cheap hashing so that tests stay fast in debug builds; production uses the OWASP cost.
const TEST_COST: HashCost = HashCost {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};
const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);
const ADMIN_PASSWORD: &str = "owner-pass-123";
const PHONE: [u8; 4] = [192, 168, 1, 20];
const TABLET: [u8; 4] = [192, 168, 1, 21];

struct Node {
    dir: TempDir,
    clock: Arc<ManualClock>,
    auth: Arc<AuthService>,
    app: Router,
}

fn config() -> AuthConfig {
    AuthConfig {
        hash_cost: TEST_COST,
        ..AuthConfig::default()
    }
}

fn open_in(dir: TempDir, clock: Arc<ManualClock>) -> Node {
    let auth = Arc::new(AuthService::open(dir.path(), clock.clone(), config()).unwrap());
    let app = routes::<Arc<AuthService>>().with_state(auth.clone());
    Node {
        dir,
        clock,
        auth,
        app,
    }
}

fn fresh_node() -> Node {
    open_in(TempDir::new().unwrap(), Arc::new(ManualClock::new(START)))
}

/// How a request proves who it is.
#[derive(Clone, Copy)]
enum Cred<'a> {
    Anonymous,
    Bearer(&'a str),
    Cookie(&'a str),
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Node {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        cred: Cred<'_>,
        from: [u8; 4],
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        builder = match cred {
            Cred::Anonymous => builder,
            Cred::Bearer(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
            Cred::Cookie(token) => builder.header(
                header::COOKIE,
                format!("theme=dark; {SESSION_COOKIE}={token}; lang=en"),
            ),
        };
        let body = match body {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut request = builder.body(body).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((from, 50_000))));
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str, cred: Cred<'_>) -> Reply {
        self.call(Method::GET, uri, cred, PHONE, None).await
    }

    async fn send(&self, method: Method, uri: &str, cred: Cred<'_>, body: Value) -> Reply {
        self.call(method, uri, cred, PHONE, Some(body)).await
    }

    async fn login_from(&self, from: [u8; 4], username: &str, password: &str) -> Reply {
        let body = json!({"username": username, "password": password});
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            Cred::Anonymous,
            from,
            Some(body),
        )
        .await
    }

    /// Signs in and returns the token, asserting success.
    async fn login(&self, username: &str, password: &str) -> String {
        let reply = self.login_from(PHONE, username, password).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    /// Completes first-run setup as "owner"; returns the admin's token.
    async fn set_up(&self) -> String {
        let code = self.auth.setup_code().unwrap().unwrap();
        let reply = self
            .send(
                Method::POST,
                "/api/v1/setup",
                Cred::Anonymous,
                json!({"setup_code": code, "username": "owner", "password": ADMIN_PASSWORD,
                       "display_name": "Olga Owner"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    /// As `admin`, creates a user with `role` and password "password-of-<name>".
    async fn add_user(&self, admin: &str, username: &str, role: &str) {
        let reply = self
            .send(
                Method::POST,
                "/api/v1/users",
                Cred::Bearer(admin),
                json!({"username": username, "display_name": username, "role": role,
                       "password": format!("password-of-{username}")}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
}

fn assert_api_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.error_code(), code, "{}", reply.body);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.body
    );
    assert!(reply.body["error"]["details"].is_null(), "{}", reply.body);
}

#[tokio::test]
async fn setup_status_is_public_and_never_reveals_the_code() {
    let node = fresh_node();
    let code = node.auth.setup_code().unwrap().unwrap();
    let reply = node.get("/api/v1/setup", Cred::Anonymous).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"setup_required": true}));
    assert!(!reply.body.to_string().contains(&code));

    node.set_up().await;
    let reply = node.get("/api/v1/setup", Cred::Anonymous).await;
    assert_eq!(reply.body, json!({"setup_required": false}));
    assert_eq!(node.auth.setup_code().unwrap(), None);
}

#[tokio::test]
async fn setup_with_a_wrong_code_is_refused_and_creates_nobody() {
    let node = fresh_node();
    let reply = node
        .send(
            Method::POST,
            "/api/v1/setup",
            Cred::Anonymous,
            json!({"setup_code": "AAAA-AAAA", "username": "mallory", "password": "password123"}),
        )
        .await;
    assert_api_error(&reply, StatusCode::FORBIDDEN, "wrong_setup_code");
    assert!(node.auth.setup_required().unwrap());
    assert!(node.auth.list_users().unwrap().is_empty());
}

#[tokio::test]
async fn setup_creates_the_admin_signs_them_in_and_works_only_once() {
    let node = fresh_node();
    let code = node.auth.setup_code().unwrap().unwrap();
    // Typed in lower case without the dash: still accepted.
    let typed = code.replace('-', "").to_lowercase();
    let reply = node
        .send(
            Method::POST,
            "/api/v1/setup",
            Cred::Anonymous,
            json!({"setup_code": typed, "username": "Owner", "password": ADMIN_PASSWORD,
                   "display_name": "Olga Owner"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["user"]["username"], "owner");
    assert_eq!(reply.body["user"]["role"], "admin");
    let token = reply.body["token"].as_str().unwrap();
    let me = node.get("/api/v1/auth/me", Cred::Bearer(token)).await;
    assert_eq!(me.body["user"]["display_name"], "Olga Owner");

    let again = node
        .send(
            Method::POST,
            "/api/v1/setup",
            Cred::Anonymous,
            json!({"setup_code": code, "username": "second", "password": "password123"}),
        )
        .await;
    assert_api_error(&again, StatusCode::CONFLICT, "setup_complete");
    assert_eq!(
        again.body["error"]["message"],
        "setup is already complete: sign in with an admin account"
    );
}

#[tokio::test]
async fn setup_code_survives_a_restart_until_it_is_used() {
    let clock = Arc::new(ManualClock::new(START));
    let node = open_in(TempDir::new().unwrap(), clock.clone());
    let code = node.auth.setup_code().unwrap().unwrap();
    assert_eq!(code.len(), 9, "shown as ABCD-EFGH: {code}");

    let Node { dir, auth, app, .. } = node;
    drop((auth, app));
    let node = open_in(dir, clock.clone());
    assert_eq!(
        node.auth.setup_code().unwrap().as_deref(),
        Some(code.as_str())
    );
    node.set_up().await;

    let Node { dir, auth, app, .. } = node;
    drop((auth, app));
    let node = open_in(dir, clock);
    assert_eq!(node.auth.setup_code().unwrap(), None);
    assert!(!node.auth.setup_required().unwrap());
    node.login("owner", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn passwords_and_session_tokens_are_never_stored_in_plain() {
    let node = fresh_node();
    let setup_token = node.set_up().await;
    let login_token = node.login("owner", ADMIN_PASSWORD).await;

    let stored = node.auth.store_credentials_for_tests("owner");
    assert!(stored.password_hash.starts_with("$argon2id$"), "{stored:?}");

    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(node.dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains("$argon2id$"), "the hash itself is on disk");
    assert!(!contains(ADMIN_PASSWORD));
    assert!(!contains(&setup_token));
    assert!(!contains(&login_token));
}

#[tokio::test]
async fn session_works_from_the_cookie_and_from_the_bearer_header() {
    let node = fresh_node();
    node.set_up().await;
    let reply = node.login_from(PHONE, "owner", ADMIN_PASSWORD).await;
    let token = reply.body["token"].as_str().unwrap();
    let cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with(&format!("{SESSION_COOKIE}={token};")),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=57600"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(token.len() >= 32, "at least 128 bits");

    for cred in [Cred::Cookie(token), Cred::Bearer(token)] {
        let me = node.get("/api/v1/auth/me", cred).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
        assert_eq!(me.body["user"]["username"], "owner");
        assert_eq!(
            me.body["expires_at"],
            json!(START.plus_millis(16 * 60 * MINUTE_MS).as_millis())
        );
    }
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let node = fresh_node();
    node.set_up().await;
    let token = node.login("owner", ADMIN_PASSWORD).await;
    let other = node.login("owner", ADMIN_PASSWORD).await;
    let reply = node
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Cred::Cookie(&token),
            PHONE,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let cleared = reply.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.starts_with(&format!("{SESSION_COOKIE}=;")) && cleared.contains("Max-Age=0"));

    let me = node.get("/api/v1/auth/me", Cred::Bearer(&token)).await;
    assert_api_error(&me, StatusCode::UNAUTHORIZED, "unauthorized");
    // Only that session ended.
    assert_eq!(
        node.get("/api/v1/auth/me", Cred::Bearer(&other))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn expired_session_is_refused() {
    let node = fresh_node();
    node.set_up().await;
    let token = node.login("owner", ADMIN_PASSWORD).await;
    node.clock.advance(16 * 60 * MINUTE_MS - 1);
    assert_eq!(
        node.get("/api/v1/auth/me", Cred::Bearer(&token))
            .await
            .status,
        StatusCode::OK
    );
    node.clock.advance(1);
    let me = node.get("/api/v1/auth/me", Cred::Bearer(&token)).await;
    assert_api_error(&me, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        me.body["error"]["message"],
        "your session has expired or was signed out: sign in again"
    );
}

#[tokio::test]
async fn missing_or_bad_credentials_get_401_and_too_low_a_role_gets_403() {
    let node = fresh_node();
    let admin = node.set_up().await;
    node.add_user(&admin, "dave", "dealer").await;
    node.add_user(&admin, "fiona", "floor").await;
    let dealer = node.login("dave", "password-of-dave").await;
    let floor = node.login("fiona", "password-of-fiona").await;

    let anonymous = node.get("/api/v1/users", Cred::Anonymous).await;
    assert_api_error(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        anonymous.body["error"]["message"],
        "sign in first: this needs a staff login"
    );
    let forged = node
        .get("/api/v1/users", Cred::Bearer("not-a-real-token"))
        .await;
    assert_api_error(&forged, StatusCode::UNAUTHORIZED, "unauthorized");

    let as_dealer = node.get("/api/v1/users", Cred::Bearer(&dealer)).await;
    assert_api_error(&as_dealer, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        as_dealer.body["error"]["message"],
        "this needs the admin role or higher; you are signed in as dealer"
    );
    let as_floor = node.get("/api/v1/users", Cred::Cookie(&floor)).await;
    assert_api_error(&as_floor, StatusCode::FORBIDDEN, "forbidden");

    let as_admin = node.get("/api/v1/users", Cred::Bearer(&admin)).await;
    assert_eq!(as_admin.status, StatusCode::OK);
    let names: Vec<&str> = as_admin
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dave", "fiona", "owner"]);
    assert!(
        !as_admin.body.to_string().contains("argon2"),
        "no hashes in listings"
    );
}

#[tokio::test]
async fn require_follows_admin_over_floor_over_dealer() {
    let node = fresh_node();
    let admin = node.set_up().await;
    node.add_user(&admin, "fiona", "floor").await;
    let floor = node.login("fiona", "password-of-fiona").await;
    let who = node.auth.authenticate(&floor).unwrap();
    assert!(who.require(Role::Dealer).is_ok());
    assert!(who.require(Role::Floor).is_ok());
    assert!(matches!(
        who.require(Role::Admin),
        Err(AuthError::Forbidden {
            needed: Role::Admin,
            actual: Role::Floor
        })
    ));
    let boss = node.auth.authenticate(&admin).unwrap();
    assert!(boss.require(Role::Floor).is_ok() && boss.require(Role::Admin).is_ok());
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_client_ip() {
    let node = fresh_node();
    node.set_up().await;
    for _ in 0..5 {
        let reply = node.login_from(PHONE, "owner", "wrong password").await;
        assert_api_error(&reply, StatusCode::UNAUTHORIZED, "invalid_credentials");
        node.clock.advance(1_000);
    }
    // Failures at 0, 1, 2, 3 and 4 s; now is 5 s: blocked until the first ages out at 60 s,
    // even with the right password.
    let blocked = node.login_from(PHONE, "owner", ADMIN_PASSWORD).await;
    assert_api_error(&blocked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert_eq!(blocked.headers[header::RETRY_AFTER], "55");

    let other_device = node.login_from(TABLET, "owner", ADMIN_PASSWORD).await;
    assert_eq!(other_device.status, StatusCode::OK);

    node.clock.advance(55_000);
    let later = node.login_from(PHONE, "owner", ADMIN_PASSWORD).await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.body);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let node = fresh_node();
    node.set_up().await;
    let wrong_password = node.login_from(PHONE, "owner", "not the password").await;
    let unknown_user = node.login_from(TABLET, "nobody", "not the password").await;
    assert_eq!(wrong_password.status, unknown_user.status);
    assert_eq!(wrong_password.body, unknown_user.body);
    assert_eq!(
        wrong_password.body["error"]["message"],
        "wrong username or password"
    );
}

#[tokio::test]
async fn guessing_setup_codes_is_rate_limited() {
    let node = fresh_node();
    let guess =
        json!({"setup_code": "AAAA-AAAA", "username": "mallory", "password": "password123"});
    for _ in 0..5 {
        let reply = node
            .send(
                Method::POST,
                "/api/v1/setup",
                Cred::Anonymous,
                guess.clone(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
    let reply = node
        .send(Method::POST, "/api/v1/setup", Cred::Anonymous, guess)
        .await;
    assert_api_error(&reply, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_blocks_login() {
    let node = fresh_node();
    let admin = node.set_up().await;
    node.add_user(&admin, "dave", "dealer").await;
    let dealer = node.login("dave", "password-of-dave").await;

    let reply = node
        .send(
            Method::PATCH,
            "/api/v1/users/dave",
            Cred::Bearer(&admin),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["disabled"], true);

    let me = node.get("/api/v1/auth/me", Cred::Bearer(&dealer)).await;
    assert_api_error(&me, StatusCode::UNAUTHORIZED, "unauthorized");
    let login = node.login_from(PHONE, "dave", "password-of-dave").await;
    assert_api_error(&login, StatusCode::FORBIDDEN, "account_disabled");

    node.send(
        Method::PATCH,
        "/api/v1/users/dave",
        Cred::Bearer(&admin),
        json!({"disabled": false}),
    )
    .await;
    node.login("dave", "password-of-dave").await;
}

#[tokio::test]
async fn admin_creates_renames_promotes_and_deletes_users_with_clear_refusals() {
    let node = fresh_node();
    let admin = node.set_up().await;
    node.add_user(&admin, "fiona", "floor").await;

    let taken = node
        .send(
            Method::POST,
            "/api/v1/users",
            Cred::Bearer(&admin),
            json!({"username": "FIONA", "role": "dealer", "password": "password123"}),
        )
        .await;
    assert_api_error(&taken, StatusCode::CONFLICT, "username_taken");
    assert_eq!(
        taken.body["error"]["message"],
        "the username \"fiona\" is already taken"
    );

    let short = node
        .send(
            Method::POST,
            "/api/v1/users",
            Cred::Bearer(&admin),
            json!({"username": "sam", "role": "dealer", "password": "short"}),
        )
        .await;
    assert_api_error(&short, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(
        short.body["error"]["message"],
        "the password is too short: use at least 8 characters"
    );

    let unknown = node.get("/api/v1/users/ghost", Cred::Bearer(&admin)).await;
    assert_api_error(&unknown, StatusCode::NOT_FOUND, "unknown_user");
    assert_eq!(
        unknown.body["error"]["message"],
        "there is no user called \"ghost\""
    );

    let updated = node
        .send(
            Method::PATCH,
            "/api/v1/users/fiona",
            Cred::Bearer(&admin),
            json!({"display_name": "Fiona F.", "role": "admin"}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["display_name"], "Fiona F.");
    assert_eq!(updated.body["role"], "admin");
    let fetched = node.get("/api/v1/users/fiona", Cred::Bearer(&admin)).await;
    assert_eq!(fetched.body, updated.body);
    assert_eq!(fetched.body["created_at"], json!(START.as_millis()));

    let deleted = node
        .call(
            Method::DELETE,
            "/api/v1/users/fiona",
            Cred::Bearer(&admin),
            PHONE,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        node.get("/api/v1/users/fiona", Cred::Bearer(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_last_admin_cannot_lock_the_venue_out() {
    let node = fresh_node();
    let admin = node.set_up().await;
    for patch in [json!({"disabled": true}), json!({"role": "floor"})] {
        let reply = node
            .send(
                Method::PATCH,
                "/api/v1/users/owner",
                Cred::Bearer(&admin),
                patch,
            )
            .await;
        assert_api_error(&reply, StatusCode::CONFLICT, "last_admin");
    }
    let delete = node
        .call(
            Method::DELETE,
            "/api/v1/users/owner",
            Cred::Bearer(&admin),
            PHONE,
            None,
        )
        .await;
    assert_api_error(&delete, StatusCode::CONFLICT, "last_admin");
}

#[tokio::test]
async fn admin_password_reset_ends_the_users_sessions() {
    let node = fresh_node();
    let admin = node.set_up().await;
    node.add_user(&admin, "dave", "dealer").await;
    let dealer = node.login("dave", "password-of-dave").await;

    let reply = node
        .send(
            Method::PUT,
            "/api/v1/users/dave/password",
            Cred::Bearer(&admin),
            json!({"password": "brand-new-pass"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        node.get("/api/v1/auth/me", Cred::Bearer(&dealer))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let old = node.login_from(PHONE, "dave", "password-of-dave").await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    node.login("dave", "brand-new-pass").await;
}

#[tokio::test]
async fn user_changes_own_password_and_keeps_this_session_only() {
    let node = fresh_node();
    let admin = node.set_up().await;
    node.add_user(&admin, "dave", "dealer").await;
    let here = node.login("dave", "password-of-dave").await;
    let elsewhere = node.login("dave", "password-of-dave").await;

    let wrong = node
        .send(
            Method::POST,
            "/api/v1/auth/password",
            Cred::Cookie(&here),
            json!({"current_password": "guess-guess", "new_password": "dealer-pass-2"}),
        )
        .await;
    assert_api_error(&wrong, StatusCode::FORBIDDEN, "wrong_password");

    let ok = node
        .send(
            Method::POST,
            "/api/v1/auth/password",
            Cred::Cookie(&here),
            json!({"current_password": "password-of-dave", "new_password": "dealer-pass-2"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.body);
    assert_eq!(
        node.get("/api/v1/auth/me", Cred::Cookie(&here))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        node.get("/api/v1/auth/me", Cred::Bearer(&elsewhere))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    node.login("dave", "dealer-pass-2").await;
}

/// The status of `GET /api/v1/auth/me` with `token`, and the user it names.
async fn whoami(node: &Node, token: &str) -> (StatusCode, Value) {
    let reply = node.get("/api/v1/auth/me", Cred::Bearer(token)).await;
    (reply.status, reply.body["user"].clone())
}

/// Sessions are read from the database about once a minute each, and served from memory in
/// between: every change the node makes to an account must still show on the next request of
/// a session used just before it.
#[tokio::test]
async fn a_session_in_use_sees_every_change_to_its_account_on_the_next_request() {
    let node = fresh_node();
    let admin = node.set_up().await;
    node.add_user(&admin, "fiona", "floor").await;
    let patch = |body: Value| {
        node.send(
            Method::PATCH,
            "/api/v1/users/fiona",
            Cred::Bearer(&admin),
            body,
        )
    };

    let fiona = node.login("fiona", "password-of-fiona").await;
    assert_eq!(whoami(&node, &fiona).await.1["role"], "floor");
    assert_eq!(
        patch(json!({"display_name": "Fi", "role": "dealer"}))
            .await
            .status,
        StatusCode::OK
    );
    let (status, user) = whoami(&node, &fiona).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&user["display_name"], &user["role"]),
        (&json!("Fi"), &json!("dealer"))
    );
    // The dealer she now is may not create users, though her session was cached as floor's.
    let create = node
        .send(
            Method::POST,
            "/api/v1/users",
            Cred::Bearer(&fiona),
            json!({"username": "gus", "role": "dealer", "password": "password-of-gus"}),
        )
        .await;
    assert_api_error(&create, StatusCode::FORBIDDEN, "forbidden");

    assert_eq!(
        patch(json!({"disabled": true})).await.status,
        StatusCode::OK
    );
    assert_eq!(whoami(&node, &fiona).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        patch(json!({"disabled": false})).await.status,
        StatusCode::OK
    );

    let fiona = node.login("fiona", "password-of-fiona").await;
    assert_eq!(whoami(&node, &fiona).await.0, StatusCode::OK);
    let reset = node
        .send(
            Method::PUT,
            "/api/v1/users/fiona/password",
            Cred::Bearer(&admin),
            json!({"password": "brand-new-pass"}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.body);
    assert_eq!(whoami(&node, &fiona).await.0, StatusCode::UNAUTHORIZED);

    let fiona = node.login("fiona", "brand-new-pass").await;
    let elsewhere = node.login("fiona", "brand-new-pass").await;
    assert_eq!(whoami(&node, &fiona).await.0, StatusCode::OK);
    assert_eq!(whoami(&node, &elsewhere).await.0, StatusCode::OK);
    let changed = node
        .send(
            Method::POST,
            "/api/v1/auth/password",
            Cred::Bearer(&fiona),
            json!({"current_password": "brand-new-pass", "new_password": "fionas-own-pass"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    assert_eq!(whoami(&node, &fiona).await.0, StatusCode::OK);
    assert_eq!(whoami(&node, &elsewhere).await.0, StatusCode::UNAUTHORIZED);

    let logout = node
        .send(
            Method::POST,
            "/api/v1/auth/logout",
            Cred::Bearer(&fiona),
            json!({}),
        )
        .await;
    assert!(logout.status.is_success(), "{}", logout.body);
    assert_eq!(whoami(&node, &fiona).await.0, StatusCode::UNAUTHORIZED);

    let fiona = node.login("fiona", "fionas-own-pass").await;
    assert_eq!(whoami(&node, &fiona).await.0, StatusCode::OK);
    let deleted = node
        .send(
            Method::DELETE,
            "/api/v1/users/fiona",
            Cred::Bearer(&admin),
            json!({}),
        )
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.body);
    assert_eq!(whoami(&node, &fiona).await.0, StatusCode::UNAUTHORIZED);

    // Only a change made behind the node's back (no part of the node does that) waits for the
    // session's next read, at most `touch_interval_ms` later: the cache is what answers.
    assert_eq!(whoami(&node, &admin).await.0, StatusCode::OK);
    let accounts = rusqlite::Connection::open(node.dir.path().join(ACCOUNTS_DB_FILE)).unwrap();
    assert_eq!(accounts.execute("DELETE FROM sessions", []).unwrap(), 1);
    assert_eq!(whoami(&node, &admin).await.0, StatusCode::OK);
    node.clock.advance(config().touch_interval_ms);
    assert_eq!(whoami(&node, &admin).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_json_gets_400_in_the_api_error_shape() {
    let node = fresh_node();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"username\": "))
        .unwrap();
    let response = node.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(body["error"]["details"].is_null());
}

#[tokio::test]
async fn unknown_fields_and_roles_are_refused_not_ignored() {
    let node = fresh_node();
    let admin = node.set_up().await;
    node.add_user(&admin, "dave", "dealer").await;
    let typo = node
        .send(
            Method::PATCH,
            "/api/v1/users/dave",
            Cred::Bearer(&admin),
            json!({"disable": true}),
        )
        .await;
    assert_api_error(&typo, StatusCode::BAD_REQUEST, "bad_request");
    let bad_role = node
        .send(
            Method::PATCH,
            "/api/v1/users/dave",
            Cred::Bearer(&admin),
            json!({"role": "owner"}),
        )
        .await;
    assert_api_error(&bad_role, StatusCode::BAD_REQUEST, "bad_request");
    assert!(!node.auth.user("dave").unwrap().disabled);
}

/// Over a real socket: the rate limit sees the peer address only when the server is started
/// with connection info, as the binary must do.
#[tokio::test]
async fn rate_limit_uses_the_peer_address_of_a_real_connection() {
    let node = fresh_node();
    node.set_up().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = node.app.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/auth/login");
    let wrong = json!({"username": "owner", "password": "wrong password"});
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = client.post(&url).json(&wrong).send().await.unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    // The loopback client is blocked; a client from the LAN is not.
    let lan = node.login_from(PHONE, "owner", ADMIN_PASSWORD).await;
    assert_eq!(lan.status, StatusCode::OK);
    server.abort();
}
