//! Shared by the tests that run a real pvm-node in-process: its configuration for loopback,
//! cheap password hashing, a small client for the node's API, and pairing it with the cloud
//! through that API.
#![allow(dead_code)]

use pvm_node::auth::{AuthConfig, HashCost};
use pvm_node::config::NodeConfig;
use serde_json::{json, Value};
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A node on loopback with everything that reaches outside the machine switched off.
pub fn node_config(dir: &std::path::Path) -> NodeConfig {
    let mut c = NodeConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        node_name: "e2e-node".into(),
        ..NodeConfig::default()
    };
    c.mdns.enabled = false;
    c.time.ntp_servers.clear();
    c.gpio.enabled = false;
    c.cast.enabled = false;
    c.cloud.heartbeat_interval_secs = 1;
    c
}

/// Production accounts except the password hash cost (unoptimised argon2 is slow).
pub fn cheap_auth() -> AuthConfig {
    AuthConfig {
        hash_cost: HashCost {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        ..AuthConfig::default()
    }
}

pub struct NodeApi {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

impl NodeApi {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// The first admin of a fresh node, through its setup code.
    pub async fn first_admin(node: &pvm_node::node::RunningNode) -> NodeApi {
        let base = format!("http://{}", node.addr);
        let anon = NodeApi {
            base: base.clone(),
            token: None,
            http: reqwest::Client::new(),
        };
        let setup = anon
            .post(
                "/api/v1/setup",
                json!({"setup_code": node.setup_code.clone().unwrap(),
                       "username": "boss", "password": "correct horse battery staple"}),
            )
            .await;
        NodeApi {
            base,
            token: Some(setup["token"].as_str().unwrap().to_string()),
            http: reqwest::Client::new(),
        }
    }
}

/// A venue on the cloud, made the way an operator makes one: signed up, logged in, venue
/// created.
pub struct CloudVenue {
    pub tenant: String,
    pub venue: String,
    /// The operator's access token.
    pub token: String,
}

impl CloudVenue {
    pub async fn create(api: &crate::common::Api) -> CloudVenue {
        let (tenant, _) = api.signup("Casino", "admin@example.com").await;
        let token = api.token("admin@example.com").await;
        let venue = api.venue(&token, &tenant, "Main room").await;
        CloudVenue {
            tenant,
            venue,
            token,
        }
    }

    /// `/api/v1/tenants/{tenant}/venues/{venue}` followed by `rest`.
    pub fn path(&self, rest: &str) -> String {
        format!(
            "/api/v1/tenants/{}/venues/{}{rest}",
            self.tenant, self.venue
        )
    }

    /// A fresh enrolment code for this venue.
    pub async fn enrolment_code(&self, api: &crate::common::Api) -> String {
        api.post(&self.path("/enrolment-codes"), Some(&self.token), json!({}))
            .await
            .expect(201)["code"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// One pvm-cloud (on its own PostgreSQL) connected to `nats` with the cloud's credentials,
/// `operator` being the e-mail of the fleet's operator.
pub async fn cloud_on_auth_nats(
    nats: &crate::sync_common::AuthNats,
    operator: &str,
) -> crate::common::Cloud {
    let url = nats.server.url();
    let (creds, seed) = (nats.creds_file(), nats.account_seed_file());
    let operator = operator.to_string();
    crate::common::Cloud::start_with(move |c| {
        c.nats_url = Some(url);
        c.nats_creds = Some(creds);
        c.nats_account_seed_file = Some(seed);
        c.operator_email = vec![operator];
    })
    .await
}

/// Signs an operator up on the cloud, creates a venue and returns a fresh enrolment code.
pub async fn enrolment_code(api: &crate::common::Api) -> String {
    CloudVenue::create(api).await.enrolment_code(api).await
}

/// Adds `count` players through the node's engine, `chunk` commands in flight at a time (the
/// engine commits them in groups): the fastest honest way to grow a real node's log.
pub async fn add_players(engine: &pvm_node::engine::EngineHandle, tag: &str, count: usize) {
    const IN_FLIGHT: usize = 512;
    let mut done = 0;
    while done < count {
        let n = IN_FLIGHT.min(count - done);
        let commands = (done..done + n).map(|i| {
            engine.execute(pvm_core::Command::AddPlayer {
                details: pvm_core::players::PlayerDetails {
                    name: format!("{tag} {i}"),
                    ..Default::default()
                },
            })
        });
        for outcome in futures::future::join_all(commands).await {
            outcome.unwrap();
        }
        done += n;
    }
}

/// A TCP relay between the node and nats-server. Severing closes every relayed connection
/// and turns new ones away (accepted and closed at once, before a byte is relayed), so the
/// node sees the cloud vanish exactly as with a broken network path; restoring lets new
/// connections through again.
pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

const RELAY_BUFFER: usize = 256 * 1024;

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, up_rx) = watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !*up_rx.borrow() {
                    drop(client);
                    continue;
                }
                let mut cut = up_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    // As on a direct link: no Nagle delay on either leg, and big relay
                    // buffers so the relay's own copying stays out of the sync bench's figures.
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    // Either side ending, or a cut, drops both sockets.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional_with_sizes(
                            &mut client,
                            &mut server,
                            RELAY_BUFFER,
                            RELAY_BUFFER,
                        ) => {}
                        _ = cut.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { addr, up, task }
    }

    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    pub fn sever(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
