//! Shared helpers for the node's end-to-end tests: a real node started in-process on a loopback
//! port with a temporary data directory, and small JSON clients that talk to it over real
//! sockets. No peer is mocked: mDNS is off and SNTP has no servers, so the node never leaves
//! the machine.

#![allow(dead_code)] // Each test binary uses a different part of these helpers.

use pvm_node::auth::{AuthConfig, HashCost};
use pvm_node::config::NodeConfig;
use pvm_node::node::{self, NodeError, RunningNode};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use uuid::Uuid;

pub const ADMIN: &str = "boss";
pub const PASSWORD: &str = "correct horse battery staple";
/// The fixed id of the Pi's HDMI output (`pvm_core::displays::HDMI_DISPLAY_ID`).
pub const HDMI: &str = "00000000-0000-7000-8000-000000000001";

/// A node configuration for tests: loopback, any free port, no mDNS, no NTP servers.
pub fn test_config(data_dir: &Path) -> NodeConfig {
    let mut c = NodeConfig {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        node_name: "test-node".into(),
        ..NodeConfig::default()
    };
    c.mdns.enabled = false;
    c.time.ntp_servers.clear();
    c.gpio.enabled = false;
    c.cast.enabled = false;
    c
}

/// Account settings for tests: everything as in production except the password hash cost,
/// because argon2 at 19 MiB without optimisation takes seconds per login on this machine.
/// Sessions, roles and the login rate limit are the production ones.
pub fn test_auth() -> AuthConfig {
    AuthConfig {
        hash_cost: HashCost {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        ..AuthConfig::default()
    }
}

/// Starts a node the way the binary does, with [`test_auth`].
pub async fn start_node(config: NodeConfig) -> Result<RunningNode, NodeError> {
    node::start_with_auth(config, test_auth()).await
}

/// A running node and the directory it keeps its data in.
pub struct TestNode {
    pub node: Option<RunningNode>,
    pub dir: tempfile::TempDir,
    pub base: String,
}

impl TestNode {
    /// Starts a node on a fresh data directory.
    pub async fn start() -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let config = test_config(dir.path());
        Self::start_with(dir, config).await
    }

    /// Starts a node on `dir` with `config` (whose `data_dir` should be inside `dir`).
    pub async fn start_with(dir: tempfile::TempDir, config: NodeConfig) -> TestNode {
        let node = start_node(config).await.expect("node starts");
        let base = format!("http://{}", node.addr);
        TestNode {
            node: Some(node),
            dir,
            base,
        }
    }

    pub fn running(&self) -> &RunningNode {
        self.node.as_ref().expect("node is running")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A client without a session.
    pub fn anonymous(&self) -> Api {
        Api::new(&self.base, None)
    }

    /// Completes first-run setup with the setup code the node printed; returns the admin.
    pub async fn setup_admin(&self) -> Api {
        let code = self
            .running()
            .setup_code
            .clone()
            .expect("a fresh node has a setup code");
        let r = self
            .anonymous()
            .post(
                "/api/v1/setup",
                json!({"setup_code": code, "username": ADMIN, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "setup: {}", r.text);
        Api::new(
            &self.base,
            Some(r.body["token"].as_str().unwrap().to_string()),
        )
    }

    /// Logs in as `username` with the shared test password.
    pub async fn login(&self, username: &str) -> Api {
        let r = self
            .anonymous()
            .post(
                "/api/v1/auth/login",
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login {username}: {}", r.text);
        Api::new(
            &self.base,
            Some(r.body["token"].as_str().unwrap().to_string()),
        )
    }

    /// Creates a staff account with `role` (as `admin`) and logs it in.
    pub async fn user(&self, admin: &Api, username: &str, role: &str) -> Api {
        let r = admin
            .post(
                "/api/v1/users",
                json!({"username": username, "role": role, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "create {username}: {}",
            r.text
        );
        self.login(username).await
    }

    /// Stops the node (drains the writer, closes the log); the data directory stays.
    pub async fn stop(&mut self) {
        if let Some(n) = self.node.take() {
            n.stop().await.expect("node stops cleanly");
        }
    }

    /// Stops the node and starts it again on the same data directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        let config = test_config(self.dir.path());
        let node = start_node(config).await.expect("node restarts");
        self.base = format!("http://{}", node.addr);
        self.node = Some(node);
    }
}

/// One answer from the node.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Asserts a 2xx and returns the body.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            self.status.is_success(),
            "expected 2xx, got {} {}",
            self.status,
            self.text
        );
        self.body
    }

    /// The `created_id` of a command response.
    #[track_caller]
    pub fn created(self) -> String {
        let b = self.ok();
        b["created_id"].as_str().expect("created_id").to_string()
    }

    /// Asserts the error shape `{"error":{"code","message","details"}}`, the status and the code.
    #[track_caller]
    pub fn error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_error_shape(&self.body, &self.text);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.text);
        self.body["error"]["message"].as_str().unwrap().to_string()
    }
}

/// Every error leaves as `{"error":{"code":…,"message":…,"details":…}}` and nothing else.
#[track_caller]
pub fn assert_error_shape(body: &Value, text: &str) {
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {text}"));
    assert_eq!(obj.len(), 1, "only `error` at the top: {text}");
    let e = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("no error object: {text}"));
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["code", "details", "message"], "error keys: {text}");
    assert!(e["code"].as_str().is_some_and(|c| !c.is_empty()), "{text}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{text}"
    );
}

/// A JSON client with an optional bearer token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Api {
        Api {
            base: base.to_string(),
            token,
            http: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    /// A POST without a body (body-less actions).
    pub async fn act(&self, path: &str) -> Reply {
        self.send(Method::POST, path, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.raw(method, path, bytes, "application/json").await
    }

    /// Sends `body` as it is, with `content_type`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", content_type).body(b);
        }
        let resp = req.send().await.expect("request reaches the node");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text }
    }

    /// The log's last sequence number, from `/api/v1/system/health`.
    pub async fn seq(&self) -> u64 {
        self.get("/api/v1/system/health").await.ok()["seq"]
            .as_u64()
            .unwrap()
    }
}

/// A freezeout-style config body with late registration through level 2.
pub fn config(name: &str) -> Value {
    json!({
        "name": name,
        "buy_in": 10000,
        "fee": 1000,
        "starting_stack": 20000,
        "late_registration": {"until_level": 2},
    })
}

/// Creates a tournament from the `standard` template; returns its id.
pub async fn create_tournament(api: &Api, config: Value) -> String {
    api.post(
        "/api/v1/tournaments",
        json!({"config": config, "template": "standard"}),
    )
    .await
    .created()
}

/// Registers a new player by name; returns the entry id.
pub async fn register_new(api: &Api, tournament: &str, name: &str) -> String {
    let r = api
        .post(
            &format!("/api/v1/tournaments/{tournament}/entries"),
            json!({"new_player": {"name": name}}),
        )
        .await
        .ok();
    r["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "tournament.entry_registered")
        .map(|_| r["created_id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no entry registered: {r}"))
}

pub fn random_id() -> String {
    Uuid::now_v7().to_string()
}
