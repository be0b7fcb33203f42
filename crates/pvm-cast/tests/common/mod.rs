//! Shared by the integration tests: the stand-in Chromecasts (a Node.js process built on the
//! independent `castv2` package) and helpers to wait on the bridge.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pvm_cast::{BridgeConfig, BridgeHandle, DeviceStatus, ManualDevice, Timings};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

pub const DASHCAST_NS: &str = "urn:x-cast:com.madmod.dashcast";
pub const RECEIVER_NS: &str = "urn:x-cast:com.google.cast.receiver";
pub const CONNECTION_NS: &str = "urn:x-cast:com.google.cast.tp.connection";
pub const HEARTBEAT_NS: &str = "urn:x-cast:com.google.cast.tp.heartbeat";

/// Fast timings so that "within seconds" fits in a test's time.
pub fn fast_timings() -> Timings {
    Timings {
        heartbeat: Duration::from_millis(200),
        silent_after: Duration::from_millis(800),
        connect_timeout: Duration::from_secs(2),
        launch_timeout: Duration::from_secs(2),
        retry_min: Duration::from_millis(100),
        retry_max: Duration::from_secs(1),
    }
}

pub fn manual_config(devices: &[(&str, SocketAddr)]) -> BridgeConfig {
    BridgeConfig {
        timings: fast_timings(),
        discovery: None,
        manual_devices: devices
            .iter()
            .map(|(id, addr)| ManualDevice {
                id: (*id).to_owned(),
                name: format!("TV {id}"),
                addr: *addr,
            })
            .collect(),
        ..BridgeConfig::default()
    }
}

pub struct FakeDevices {
    child: Child,
    stdin: ChildStdin,
    events: Arc<Mutex<Vec<Value>>>,
}

impl FakeDevices {
    pub async fn spawn() -> Self {
        // Relative to the crate being tested, so pvm-node's tests can share this stand-in device.
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pvm-cast/tests/fake-chromecast");
        assert!(
            dir.join("node_modules/castv2").is_dir(),
            "the stand-in Chromecast needs its npm packages: run `npm ci --prefix {}`",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("device.js"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node is installed");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let fake = FakeDevices {
            child,
            stdin,
            events,
        };
        fake.wait_for(0, Duration::from_secs(10), |e| e["event"] == "ready")
            .await;
        fake
    }

    pub async fn command(&mut self, command: Value) {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Starts a device on a free loopback port; `extra` adds options (launchError, …).
    pub async fn start(&mut self, device: &str, extra: Value) -> SocketAddr {
        let mut command = json!({"cmd": "start", "device": device, "port": 0});
        if let (Some(c), Some(e)) = (command.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        let mark = self.mark();
        self.command(command).await;
        let listening = self
            .wait_for(mark, Duration::from_secs(10), |e| {
                e["event"] == "listening" && e["device"] == device
            })
            .await;
        let port = listening["port"].as_u64().unwrap() as u16;
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    pub async fn act(&mut self, cmd: &str, device: &str) {
        self.command(json!({"cmd": cmd, "device": device})).await;
    }

    /// How many reports so far: waits can start from here.
    pub fn mark(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    pub fn events_since(&self, mark: usize) -> Vec<Value> {
        self.events.lock().unwrap()[mark..].to_vec()
    }

    /// The first report at or after `mark` that matches.
    pub async fn wait_for(
        &self,
        mark: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = self.events.lock().unwrap()[mark..].iter().find(|e| pred(e)) {
                return found.clone();
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "no matching report within {timeout:?}; reports since mark: {:#?}",
                    self.events_since(mark)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The URL message a device received on the app namespace, after `mark`.
    pub async fn wait_for_url(&self, mark: usize, device: &str, timeout: Duration) -> Value {
        self.wait_for_app_message(mark, device, DASHCAST_NS, timeout)
            .await
    }

    pub async fn wait_for_app_message(
        &self,
        mark: usize,
        device: &str,
        ns: &str,
        timeout: Duration,
    ) -> Value {
        self.wait_for(mark, timeout, |e| {
            e["event"] == "received" && e["device"] == device && e["ns"] == ns
        })
        .await
    }

    pub fn count(&self, mark: usize, pred: impl Fn(&Value) -> bool) -> usize {
        self.events_since(mark).iter().filter(|e| pred(e)).count()
    }

    pub async fn shutdown(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

pub fn is_received(e: &Value, device: &str, ns: &str, kind: &str) -> bool {
    e["event"] == "received" && e["device"] == device && e["ns"] == ns && e["data"]["type"] == kind
}

/// Waits until the device's status matches.
pub async fn wait_status(
    bridge: &BridgeHandle,
    id: &str,
    timeout: Duration,
    pred: impl Fn(&DeviceStatus) -> bool,
) -> DeviceStatus {
    let mut statuses = bridge.statuses();
    let wait = async {
        loop {
            if let Some(status) = statuses.borrow_and_update().get(id).filter(|s| pred(s)) {
                return status.clone();
            }
            if statuses.changed().await.is_err() {
                panic!("bridge stopped");
            }
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(status) => status,
        Err(_) => panic!(
            "status of {id} did not match within {timeout:?}; it is {:#?}",
            bridge.statuses().borrow().get(id)
        ),
    }
}
