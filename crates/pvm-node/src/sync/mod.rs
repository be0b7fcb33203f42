//! Cloud sync, the node's side (see `pvm_sync` for the contract).
//!
//! Once paired (`cloud.json` in the data directory), one task keeps a session with the cloud's
//! NATS: it publishes the event log after the cursor to JetStream and moves the cursor only
//! over events the server acknowledged, sends heartbeats, and pulls the node's down-messages.
//! Any failure ends the session; the next one starts after a capped exponential back-off and
//! resumes from the durable cursor, however long the outage was. The writer engine is never
//! waited on: the task reads the log and records its progress through its own connection.
//!
//! Files: `pairing` (cloud.json), `enrol` (the cloud's enrolment call), `session` (NATS:
//! publisher, heartbeats, down consumer), `down` (applying down-messages), `api` (the
//! `/api/v1/system/cloud` routes).

pub mod api;
mod down;
mod enrol;
pub mod pairing;
mod session;

use crate::config::CloudConfig;
use crate::engine::EngineHandle;
use crate::timesync::TimeStatus;
use pairing::{Pairing, PairingError};
use pvm_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

pub use enrol::EnrolError;

/// Key of the node metadata entry holding the latest release notice (JSON).
const RELEASE_NOTICE_META: &str = "cloud.release_notice";

/// The sync cursor's name in the store: one per cloud identity, so pairing again as another
/// node starts from the first event while re-reading the same pairing resumes.
pub fn cursor_name(node_id: Uuid) -> String {
    format!("cloud:{node_id}")
}

/// How the sync task behaves; from `[cloud]` in the node's configuration.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub heartbeat_interval: Duration,
    pub batch_size: usize,
    pub ack_timeout: Duration,
    pub max_backoff: Duration,
}

impl From<&CloudConfig> for SyncSettings {
    fn from(c: &CloudConfig) -> Self {
        SyncSettings {
            heartbeat_interval: Duration::from_secs(c.heartbeat_interval_secs.max(1)),
            batch_size: c.batch_size.max(1),
            ack_timeout: Duration::from_millis(c.ack_timeout_ms.max(1)),
            max_backoff: Duration::from_secs(c.max_backoff_secs.max(1)),
        }
    }
}

/// Restarts the machine when the cloud asks. The appliance uses [`SystemctlRebooter`]; tests
/// pass a recording implementation instead (the only thing about the machine they fake).
pub trait Rebooter: Send + Sync {
    fn reboot(&self) -> Result<(), String>;
}

/// `systemctl reboot`: systemd stops the node cleanly (SIGTERM drains the writer) first.
pub struct SystemctlRebooter;

impl Rebooter for SystemctlRebooter {
    fn reboot(&self) -> Result<(), String> {
        let status = std::process::Command::new("systemctl")
            .arg("reboot")
            .status()
            .map_err(|e| format!("cannot run systemctl: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("systemctl reboot failed with {status}"))
        }
    }
}

/// A release the cloud announced for this node's channel, kept for the update agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseNotice {
    pub version: String,
    pub channel: String,
    pub bundle_url: String,
    pub notes: String,
    pub received_at_ms: i64,
}

/// The last down-message the node dealt with and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DownReport {
    pub id: Uuid,
    pub kind: String,
    pub outcome: String,
    pub at_ms: i64,
}

/// What `GET /api/v1/system/cloud` answers. Never contains credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CloudStatus {
    pub paired: bool,
    pub cloud_url: Option<String>,
    pub node_id: Option<Uuid>,
    pub venue_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub venue_name: Option<String>,
    pub paired_at_ms: Option<i64>,
    /// A NATS session is up right now.
    pub connected: bool,
    /// Highest sequence such that it and every event before it were acknowledged.
    pub cursor: u64,
    /// Sequence of the last event in the log.
    pub last_event_seq: u64,
    /// Events not yet acknowledged by the cloud.
    pub lag: u64,
    /// When the cloud last acknowledged events (or the node was seen fully caught up).
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub errors_total: u64,
    pub release_notice: Option<ReleaseNotice>,
    pub last_down_message: Option<DownReport>,
}

/// What the task reports as it goes; read by the API and `/metrics`.
#[derive(Default)]
struct Live {
    pairing: Option<Pairing>,
    last_success_ms: Option<i64>,
    last_error: Option<(String, i64)>,
    release_notice: Option<ReleaseNotice>,
    last_down: Option<DownReport>,
}

pub(crate) struct Shared {
    live: Mutex<Live>,
    connected: AtomicBool,
    cursor: AtomicU64,
    errors_total: AtomicU64,
    /// Woken when a resync moved the cursor back, so an idle publisher starts re-sending.
    rewind: Notify,
    /// A resync's target (the cursor to go back to), taken by the publisher.
    rewind_to: Mutex<Option<u64>>,
    /// Counts rewinds the publisher has saved, so a resync can wait for its own.
    rewound: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        // A panic while holding this lock cannot leave it inconsistent (plain field writes).
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn record_error(&self, error: impl std::fmt::Display) {
        let text = error.to_string();
        tracing::warn!(error = %text, "cloud sync");
        self.errors_total.fetch_add(1, Ordering::Relaxed);
        self.lock().last_error = Some((text, now_ms()));
    }

    pub(crate) fn record_success(&self, cursor: u64) {
        self.cursor.store(cursor, Ordering::Relaxed);
        self.lock().last_success_ms = Some(now_ms());
    }

    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    pub(crate) fn set_release_notice(&self, notice: ReleaseNotice) {
        self.lock().release_notice = Some(notice);
    }

    pub(crate) fn set_last_down(&self, report: DownReport) {
        self.lock().last_down = Some(report);
    }

    /// Asks the publisher to go back to `cursor` (the lowest request wins).
    pub(crate) fn request_rewind(&self, cursor: u64) {
        {
            let mut slot = self.rewind_to.lock().unwrap_or_else(|p| p.into_inner());
            *slot = Some(slot.map_or(cursor, |c| c.min(cursor)));
        }
        self.rewind.notify_one();
    }

    pub(crate) fn take_rewind(&self) -> Option<u64> {
        self.rewind_to
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

pub fn now_ms() -> i64 {
    crate::engine::wall_now().as_millis()
}

/// Why a pairing request failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("this node is already paired with venue {venue_name:?}; unpair it first")]
    AlreadyPaired { venue_name: String },
    #[error(transparent)]
    Enrol(#[from] EnrolError),
    #[error(transparent)]
    Pairing(#[from] PairingError),
    #[error("the event log: {0}")]
    Store(#[from] StoreError),
}

/// Everything the sync task needs from the node.
pub(crate) struct Context {
    pub engine: EngineHandle,
    pub db_path: PathBuf,
    pub settings: SyncSettings,
    pub rebooter: Arc<dyn Rebooter>,
    pub time: watch::Receiver<TimeStatus>,
    pub data_dir: PathBuf,
    pub started_at: Instant,
    pub shared: Arc<Shared>,
    /// The update agent's status, sent with every heartbeat (set once the update
    /// service exists; see [`CloudService::report_updates`]).
    pub update: std::sync::OnceLock<watch::Receiver<Option<pvm_ota::UpdateStatus>>>,
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The node's cloud link: pairing, the sync task, and its status.
pub struct CloudService {
    ctx: Arc<Context>,
    /// Serializes enrol/unpair/stop so two admins cannot pair at once.
    running: tokio::sync::Mutex<Option<Running>>,
    http: reqwest::Client,
}

impl CloudService {
    /// Reads the pairing (if any) and the last release notice. Call [`Self::start`] to run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        data_dir: PathBuf,
        db_path: PathBuf,
        engine: EngineHandle,
        settings: SyncSettings,
        rebooter: Arc<dyn Rebooter>,
        time: watch::Receiver<TimeStatus>,
        started_at: Instant,
    ) -> Arc<CloudService> {
        let shared = Arc::new(Shared {
            live: Mutex::new(Live::default()),
            connected: AtomicBool::new(false),
            cursor: AtomicU64::new(0),
            errors_total: AtomicU64::new(0),
            rewind: Notify::new(),
            rewind_to: Mutex::new(None),
            rewound: watch::Sender::new(0),
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Arc::new(CloudService {
            ctx: Arc::new(Context {
                engine,
                db_path,
                settings,
                rebooter,
                time,
                data_dir,
                started_at,
                shared,
                update: std::sync::OnceLock::new(),
            }),
            running: tokio::sync::Mutex::new(None),
            http,
        })
    }

    /// Heartbeats carry the update agent's status from here on (the fleet view shows it).
    pub fn report_updates(&self, status: watch::Receiver<Option<pvm_ota::UpdateStatus>>) {
        // Set once at start; a second call keeps the first source.
        let _ = self.ctx.update.set(status);
    }

    /// Starts syncing if the node is paired. A damaged pairing file is reported in the
    /// status, never fatal: the venue runs offline regardless.
    pub async fn start(&self) {
        let mut running = self.running.lock().await;
        let pairing = match pairing::load(&self.ctx.data_dir) {
            Ok(p) => p,
            Err(e) => {
                self.ctx.shared.record_error(&e);
                return;
            }
        };
        self.load_saved_state(pairing.as_ref()).await;
        if let Some(pairing) = pairing {
            *running = Some(self.spawn(pairing));
        }
    }

    async fn load_saved_state(&self, pairing: Option<&Pairing>) {
        let db = self.ctx.db_path.clone();
        let cursor = pairing.map(|p| cursor_name(p.enrolment.node_id));
        let read = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let store = Store::open_companion(&db)?;
            let notice = store.meta_get(RELEASE_NOTICE_META)?;
            let cursor = match cursor {
                Some(name) => store.sync_cursor(&name)?,
                None => 0,
            };
            Ok((notice, cursor))
        })
        .await;
        match read {
            Ok(Ok((notice, cursor))) => {
                let shared = &self.ctx.shared;
                shared.cursor.store(cursor, Ordering::Relaxed);
                let mut live = shared.lock();
                live.pairing = pairing.cloned();
                live.release_notice = notice.and_then(|n| serde_json::from_str(&n).ok());
            }
            Ok(Err(e)) => self.ctx.shared.record_error(e),
            Err(e) => self.ctx.shared.record_error(e),
        }
    }

    fn spawn(&self, pairing: Pairing) -> Running {
        let (stop, stop_rx) = watch::channel(false);
        self.ctx.shared.lock().pairing = Some(pairing.clone());
        let task = tokio::spawn(session::run(self.ctx.clone(), pairing, stop_rx));
        Running { stop, task }
    }

    /// Redeems an enrolment code at the cloud, keeps the answer in `cloud.json` and starts
    /// syncing.
    pub async fn enrol(
        &self,
        cloud_url: &str,
        code: &str,
        hostname: &str,
    ) -> Result<CloudStatus, SyncError> {
        let mut running = self.running.lock().await;
        if let Some(p) = pairing::load(&self.ctx.data_dir)? {
            return Err(SyncError::AlreadyPaired {
                venue_name: p.enrolment.venue_name,
            });
        }
        let answer = enrol::redeem(&self.http, cloud_url, code, hostname).await?;
        let pairing = Pairing {
            cloud_url: cloud_url.trim_end_matches('/').to_string(),
            paired_at_ms: now_ms(),
            enrolment: answer,
        };
        pairing::save(&self.ctx.data_dir, &pairing)?;
        tracing::info!(?pairing, "paired with the cloud");
        self.load_saved_state(Some(&pairing)).await;
        {
            let mut live = self.ctx.shared.lock();
            live.last_error = None;
            live.last_success_ms = None;
        }
        *running = Some(self.spawn(pairing));
        drop(running);
        Ok(self.status())
    }

    /// Stops syncing and forgets the pairing. The log and the cursor stay: pairing again as
    /// the same node resumes where it was.
    pub async fn unpair(&self) -> Result<(), SyncError> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.take() {
            stop_task(r).await;
        }
        pairing::remove(&self.ctx.data_dir)?;
        let shared = &self.ctx.shared;
        shared.set_connected(false);
        shared.cursor.store(0, Ordering::Relaxed);
        let mut live = shared.lock();
        live.pairing = None;
        live.last_success_ms = None;
        live.last_error = None;
        tracing::info!("unpaired from the cloud");
        Ok(())
    }

    /// Stops the sync task (node shutdown); the pairing stays.
    pub async fn stop(&self) {
        if let Some(r) = self.running.lock().await.take() {
            stop_task(r).await;
        }
        self.ctx.shared.set_connected(false);
    }

    pub fn status(&self) -> CloudStatus {
        let shared = &self.ctx.shared;
        let live = shared.lock();
        let last_event_seq = self.ctx.engine.last_seq();
        let paired = live.pairing.is_some();
        let cursor = if paired {
            shared.cursor.load(Ordering::Relaxed)
        } else {
            0
        };
        let e = live.pairing.as_ref().map(|p| &p.enrolment);
        CloudStatus {
            paired,
            cloud_url: live.pairing.as_ref().map(|p| p.cloud_url.clone()),
            node_id: e.map(|e| e.node_id),
            venue_id: e.map(|e| e.venue_id),
            tenant_id: e.map(|e| e.tenant_id),
            venue_name: e.map(|e| e.venue_name.clone()),
            paired_at_ms: live.pairing.as_ref().map(|p| p.paired_at_ms),
            connected: paired && shared.connected.load(Ordering::Relaxed),
            cursor,
            last_event_seq,
            lag: if paired {
                last_event_seq.saturating_sub(cursor)
            } else {
                0
            },
            last_success_ms: live.last_success_ms,
            last_error: live.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_ms: live.last_error.as_ref().map(|(_, at)| *at),
            errors_total: shared.errors_total.load(Ordering::Relaxed),
            release_notice: live.release_notice.clone(),
            last_down_message: live.last_down.clone(),
        }
    }

    /// The `pvm_sync_*` lines of `/metrics` (Prometheus text format).
    pub fn render_metrics(&self) -> String {
        let s = self.status();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "pvm_sync_paired",
            "gauge",
            "1 when the node is paired with a cloud.",
            if s.paired { 1.0 } else { 0.0 },
        );
        metric(
            "pvm_sync_connected",
            "gauge",
            "1 while a NATS session with the cloud is up.",
            if s.connected { 1.0 } else { 0.0 },
        );
        metric(
            "pvm_sync_lag_events",
            "gauge",
            "Events in the log not yet acknowledged by the cloud.",
            s.lag as f64,
        );
        metric(
            "pvm_sync_acked_seq",
            "gauge",
            "Highest log sequence acknowledged by the cloud, with everything before it.",
            s.cursor as f64,
        );
        metric(
            "pvm_sync_last_success_timestamp_seconds",
            "gauge",
            "When the cloud last acknowledged events (Unix time, 0 if never).",
            s.last_success_ms.map_or(0.0, |ms| ms as f64 / 1000.0),
        );
        metric(
            "pvm_sync_errors_total",
            "counter",
            "Sync failures (connection, publish, ack, down-message) since start.",
            s.errors_total as f64,
        );
        out
    }
}

async fn stop_task(r: Running) {
    let _ = r.stop.send(true);
    let mut task = r.task;
    // The task only waits on the network and short SQLite writes; if a NATS call hangs past
    // its timeout, abort rather than hold up shutdown.
    if tokio::time::timeout(Duration::from_secs(5), &mut task)
        .await
        .is_err()
    {
        task.abort();
    }
}

/// This machine's host name, for the cloud's fleet list.
pub fn hostname(fallback: &str) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| fallback.to_string())
}
