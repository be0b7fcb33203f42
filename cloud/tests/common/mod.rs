//! Shared by the cloud's integration tests: a throwaway PostgreSQL, the service on
//! 127.0.0.1:0 against it, and a small JSON client speaking to it over real HTTP.
#![allow(dead_code)]

use pvm_cloud::token::TokenKeys;
use pvm_cloud::{CloudConfig, RunningCloud};
use pvm_testpeers::Postgres;
use serde_json::{json, Value};

/// The token key every test instance shares (tests need no secrecy, only sameness).
pub const TEST_KEY_SEED: [u8; 32] = [42; 32];
/// A password that passes the length rule.
pub const PASSWORD: &str = "correct horse battery";

pub fn test_keys() -> TokenKeys {
    TokenKeys::from_seed(TEST_KEY_SEED)
}

/// The service's configuration for a test: loopback, a small pool, and argon2 made cheap
/// (the debug build hashes slowly; the cost parameters are not what a test proves).
pub fn test_config(database_url: &str) -> CloudConfig {
    CloudConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.to_string(),
        db_pool_size: 8,
        password_memory_kib: 64,
        password_iterations: 1,
        ..CloudConfig::default()
    }
}

/// PostgreSQL plus one running instance of the service.
pub struct Cloud {
    pub pg: Postgres,
    pub app: RunningCloud,
    pub api: Api,
}

impl Cloud {
    pub async fn start() -> Cloud {
        Cloud::start_with(|_| {}).await
    }

    /// Starts with the test configuration changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut CloudConfig)) -> Cloud {
        Cloud::start_on(Postgres::start, adjust).await
    }

    /// On a PostgreSQL that forces its commits to disk, as in production (benchmarks).
    pub async fn start_durable_with(adjust: impl FnOnce(&mut CloudConfig)) -> Cloud {
        Cloud::start_on(Postgres::start_durable, adjust).await
    }

    async fn start_on(
        postgres: fn() -> Result<Postgres, pvm_testpeers::PeerError>,
        adjust: impl FnOnce(&mut CloudConfig),
    ) -> Cloud {
        let pg = tokio::task::spawn_blocking(postgres)
            .await
            .unwrap()
            .expect("start PostgreSQL (make setup installs postgresql-15)");
        let mut config = test_config(&pg.url());
        adjust(&mut config);
        let app = pvm_cloud::start(config, test_keys()).await.unwrap();
        let api = Api::new(app.addr);
        Cloud { pg, app, api }
    }

    /// Another instance on the same database with the same key (as behind a load balancer).
    pub async fn another_instance(&self) -> (RunningCloud, Api) {
        let config = (*self.app.state.config).clone();
        let app = pvm_cloud::start(config, test_keys()).await.unwrap();
        let api = Api::new(app.addr);
        (app, api)
    }

    pub async fn stop(self) {
        self.app.stop().await;
        tokio::task::spawn_blocking(move || drop(self.pg))
            .await
            .unwrap();
    }
}

/// An HTTP response: status and JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    /// The `error.code` of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts an error response in the API's shape with this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(self.code(), code, "unexpected code; body: {}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without a message: {}",
            self.body
        );
    }
}

/// A JSON client for one instance.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(addr: std::net::SocketAddr) -> Api {
        Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp { status, body }
    }

    /// Sends a raw body with a content type (for malformed-input tests).
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> Resp {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        Resp {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(reqwest::Method::PATCH, path, token, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(reqwest::Method::DELETE, path, token, None).await
    }

    /// Signs up a tenant; returns (tenant id, admin user id).
    pub async fn signup(&self, tenant: &str, email: &str) -> (String, String) {
        let body = self
            .post(
                "/api/v1/signup",
                None,
                json!({"tenant_name": tenant, "email": email, "password": PASSWORD}),
            )
            .await
            .expect(201);
        (
            body["tenant_id"].as_str().unwrap().to_string(),
            body["user_id"].as_str().unwrap().to_string(),
        )
    }

    /// Logs in with [`PASSWORD`]; returns the whole token response.
    pub async fn login(&self, email: &str) -> Value {
        self.post(
            "/api/v1/auth/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await
        .expect(200)
    }

    /// Logs in and returns just the access token.
    pub async fn token(&self, email: &str) -> String {
        self.login(email).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Creates a venue in `tenant`; returns its id.
    pub async fn venue(&self, token: &str, tenant: &str, name: &str) -> String {
        self.post(
            &format!("/api/v1/tenants/{tenant}/venues"),
            Some(token),
            json!({"name": name, "time_zone": "Europe/Vienna"}),
        )
        .await
        .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Adds a user with `role` to `tenant` (as its admin `token`), creating the account.
    pub async fn add_user(&self, token: &str, tenant: &str, email: &str, role: &str) -> String {
        self.post(
            &format!("/api/v1/tenants/{tenant}/users"),
            Some(token),
            json!({"email": email, "role": role, "password": PASSWORD}),
        )
        .await
        .expect(201)["user_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}
