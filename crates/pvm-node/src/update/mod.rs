//! System updates on the appliance: the node's side of `pvm_ota`.
//!
//! [`UpdateService`] owns the update agent (behind a mutex, driven from blocking
//! threads because it streams hundreds of megabytes through SHA-256), keeps a copy
//! of its status for the API and the live `system` topic, stages bundles received by
//! upload or fetched from a URL, and at start runs the trial boot's health check
//! ([`UpdateService::after_boot`]). On a machine that is not an A/B appliance it
//! says so and refuses every action with that reason.
//!
//! The hook for cloud release notices is [`UpdateService::fetch`]: give it the
//! bundle's URL and it downloads with progress like the console's fetch does.

pub mod api;
pub mod config;
pub mod health;

use crate::engine::EngineHandle;
use config::{FirmwareKind, UpdateConfig};
use health::{HealthReport, Probes};
use pvm_core::clock::ClockStatus;
use pvm_ota::{
    AgentConfig, BootOutcome, BootStatus, Bootloader, Conditions, EmulatedFirmware, FileBootloader,
    OtaError, PiFirmware, RebootVia, Slot, SlotLayout, TrustStore, UpdateAgent, UpdateState,
    UpdateStatus, VerifyOptions,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::sync::{broadcast, watch};

type Agent = UpdateAgent<Box<dyn Bootloader + Send>>;

/// Why an update action was not taken. The API turns each into its own status and code.
#[derive(Debug, Error)]
pub enum UpdateError {
    #[error("{0}")]
    NotManaged(String),
    #[error("another update action is in progress")]
    Busy,
    #[error("no bundle has been uploaded or fetched yet")]
    NoBundle,
    #[error(transparent)]
    Ota(#[from] OtaError),
    #[error("the update worker stopped unexpectedly: {0}")]
    Worker(String),
}

/// The outcome of the last trial boot, kept across restarts for the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrialResult {
    /// `committed` or `rolled_back`.
    pub outcome: String,
    pub version: Option<String>,
    /// Unix seconds.
    pub at: u64,
    pub detail: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub health: Option<HealthReport>,
}

/// Everything the console's Updates section shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UpdateView {
    /// False on a machine that is not an A/B appliance; `reason` says why.
    pub managed: bool,
    pub reason: Option<String>,
    /// The running system's version.
    pub running_version: String,
    /// The boot partition this system runs from, and the other slot's.
    pub current_partition: Option<u32>,
    pub other_partition: Option<u32>,
    /// This boot is the one-shot trial of a new slot.
    pub trial_boot: bool,
    /// `idle`, `downloading`, `verifying`, `installing`, `ready`, `trying`, `committed`,
    /// `rolled_back`, `failed`; with the version, progress and last error.
    #[schema(value_type = Option<Object>)]
    pub status: Option<UpdateStatus>,
    /// A bundle is staged on the data partition, ready to install.
    pub bundle_bytes: Option<u64>,
    /// An upload, fetch or install is running.
    pub busy: bool,
    /// A tournament clock runs: installs and reboots are refused unless forced or in the
    /// maintenance window.
    pub clock_running: bool,
    /// `HH:MM-HH:MM` UTC.
    pub maintenance_window: Option<String>,
    pub last_trial: Option<TrialResult>,
}

/// What the fleet view shows of `status`: state, progress in percent, version, error.
pub fn fleet_report(status: &UpdateStatus) -> pvm_sync::UpdateReport {
    let state = match status.state {
        UpdateState::Idle => "idle",
        UpdateState::Downloading => "downloading",
        UpdateState::Verifying => "verifying",
        UpdateState::Installing => "installing",
        UpdateState::Ready => "ready",
        UpdateState::Trying => "trying",
        UpdateState::Committed => "committed",
        UpdateState::RolledBack => "rolled_back",
        UpdateState::Failed => "failed",
    };
    let progress_pct = status
        .progress
        .filter(|p| p.total > 0)
        .map(|p| (p.done.min(p.total).saturating_mul(100) / p.total) as u8);
    pvm_sync::UpdateReport {
        state: state.to_string(),
        progress_pct,
        target_version: status.version.clone(),
        last_error: status.error.clone(),
    }
}

struct Managed {
    agent: Arc<Mutex<Agent>>,
    boot: Option<BootStatus>,
    other_partition: Option<u32>,
}

pub struct UpdateService {
    managed: Result<Managed, String>,
    running_version: String,
    dir: PathBuf,
    cfg: UpdateConfig,
    status: watch::Sender<Option<UpdateStatus>>,
    /// Every change in order, so a live client sees each state the update went through
    /// (a watch would fold `verifying` into `ready` for a client a moment late).
    changes: broadcast::Sender<UpdateStatus>,
    busy: Arc<AtomicBool>,
    trials: Arc<Mutex<Trials>>,
    http: reqwest::Client,
}

/// The last trial boot's result, and the one being decided. Views pair the agent's state
/// with `last`, so the agent's listener promotes `pending` to `last` before it publishes
/// the decided state: no view shows `committed` without its trial, nor a trial while the
/// state still says `trying`.
struct Trials {
    file: PathBuf,
    last: Option<TrialResult>,
    pending: Option<TrialResult>,
}

impl Trials {
    /// Keeps `trial` in memory and on the data partition.
    fn record(&mut self, trial: TrialResult) {
        let written = serde_json::to_vec_pretty(&trial)
            .map_err(|e| e.to_string())
            .and_then(|json| pvm_ota::atomic_write(&self.file, &json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot record the trial boot's result");
        }
        self.last = Some(trial);
    }

    /// Called with every status the agent publishes, before any view can see it.
    fn on_status(&mut self, status: &UpdateStatus) {
        if status.state == UpdateState::Trying {
            return;
        }
        if let Some(mut trial) = self.pending.take() {
            trial.outcome = match status.state {
                UpdateState::Committed => "committed",
                _ => "rolled_back",
            }
            .into();
            self.record(trial);
        }
    }
}

fn lock_trials(trials: &Mutex<Trials>) -> MutexGuard<'_, Trials> {
    trials
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Holds the one-long-action-at-a-time flag until dropped.
struct BusyGuard(Arc<AtomicBool>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn lock(agent: &Mutex<Agent>) -> MutexGuard<'_, Agent> {
    // A panic inside the agent leaves its state file as the truth; keep going from it.
    agent
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl UpdateService {
    /// Opens the agent if this machine is an A/B appliance; otherwise an unmanaged
    /// service whose every action explains why not. Never fails the node's start.
    pub fn open(cfg: &UpdateConfig, data_dir: &Path, node_version: &str) -> UpdateService {
        let dir = data_dir.join("ota");
        let running_version = std::fs::read_to_string(&cfg.version_file)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| node_version.to_string());
        let (status, _) = watch::channel(None);
        let (changes, _) = broadcast::channel(CHANGES_KEPT);
        let managed = Self::open_agent(cfg, &dir, &running_version);
        if let Err(reason) = &managed {
            tracing::info!(%reason, "system updates not managed");
        }
        let trial_file = dir.join(LAST_TRIAL_FILE);
        let last_trial = std::fs::read(&trial_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let svc = UpdateService {
            managed,
            running_version,
            dir,
            cfg: cfg.clone(),
            status,
            changes,
            busy: Arc::new(AtomicBool::new(false)),
            trials: Arc::new(Mutex::new(Trials {
                file: trial_file,
                last: last_trial,
                pending: None,
            })),
            http: reqwest::Client::new(),
        };
        if let Ok(m) = &svc.managed {
            let mut agent = lock(&m.agent);
            svc.status.send_replace(Some(agent.status().clone()));
            let (tx, changes) = (svc.status.clone(), svc.changes.clone());
            let trials = svc.trials.clone();
            agent.set_listener(Box::new(move |s: &UpdateStatus| {
                // Held across the publish: `view` reads state and trial under this lock.
                let mut trials = lock_trials(&trials);
                trials.on_status(s);
                tx.send_replace(Some(s.clone()));
                drop(trials);
                // No live client listening is fine.
                let _ = changes.send(s.clone());
            }));
        }
        svc
    }

    fn open_agent(cfg: &UpdateConfig, dir: &Path, running: &str) -> Result<Managed, String> {
        if !cfg.enabled {
            return Err("updates are not managed on this machine (turned off in [update])".into());
        }
        if !cfg.autoboot.exists() {
            return Err(format!(
                "updates are not managed on this machine: it has no A/B boot partitions ({} \
                 does not exist); install a new version the way this one was installed",
                cfg.autoboot.display()
            ));
        }
        let running = semver::Version::parse(running)
            .map_err(|e| format!("the running version {running:?} is not a version: {e}"))?;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let trust = TrustStore::open(&cfg.keys_dir, Some(&dir.join("keys")))
            .map_err(|e| format!("cannot read the trusted update keys: {e}"))?;
        let reboot = cfg
            .reboot_request
            .clone()
            .map_or(RebootVia::Command, RebootVia::Request);
        let boot: Box<dyn Bootloader + Send> = match &cfg.firmware {
            FirmwareKind::RaspberryPi => Box::new(PiFirmware {
                reboot,
                ..PiFirmware::default()
            }),
            FirmwareKind::TestImage => Box::new(EmulatedFirmware {
                reboot,
                ..EmulatedFirmware::new(
                    cfg.autoboot
                        .parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_default(),
                )
            }),
            FirmwareKind::Files(d) => Box::new(FileBootloader { dir: d.clone() }),
        };
        let layout = SlotLayout {
            autoboot: cfg.autoboot.clone(),
            slots: [
                Slot {
                    boot_partition: 2,
                    boot: cfg.boot_a.clone(),
                    system: cfg.system_a.clone(),
                },
                Slot {
                    boot_partition: 3,
                    boot: cfg.boot_b.clone(),
                    system: cfg.system_b.clone(),
                },
            ],
        };
        let agent = UpdateAgent::open(
            AgentConfig {
                state_file: dir.join("state.json"),
                layout,
                verify: VerifyOptions {
                    product: cfg.product.clone(),
                    board: cfg.board.clone(),
                    running,
                    allow_downgrade: false,
                },
                maintenance_window: cfg.maintenance_window,
                // Real boot partitions carry a kernel command line; the stand-in files do not.
                set_cmdline_root: !matches!(cfg.firmware, FirmwareKind::Files(_)),
            },
            trust,
            boot,
        )
        .map_err(|e| format!("cannot open the update state: {e}"))?;
        let boot = match agent.boot_status() {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the boot status from the firmware");
                None
            }
        };
        let other_partition = boot
            .and_then(|b| agent.layout().other(b.partition).ok())
            .map(|s| s.boot_partition);
        Ok(Managed {
            agent: Arc::new(Mutex::new(agent)),
            boot,
            other_partition,
        })
    }

    fn managed(&self) -> Result<&Managed, UpdateError> {
        self.managed
            .as_ref()
            .map_err(|r| UpdateError::NotManaged(r.clone()))
    }

    fn bundle_path(&self) -> PathBuf {
        self.dir.join(BUNDLE_FILE)
    }

    fn claim(&self) -> Result<BusyGuard, UpdateError> {
        self.busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|_| UpdateError::Busy)?;
        Ok(BusyGuard(self.busy.clone()))
    }

    /// The agent's latest status (`None` where updates are not managed), for the
    /// heartbeats that carry it to the cloud's fleet view.
    pub fn watch_status(&self) -> watch::Receiver<Option<UpdateStatus>> {
        self.status.subscribe()
    }

    /// Changes of the agent's status (progress included), for the live `system` topic.
    pub fn subscribe(&self) -> broadcast::Receiver<UpdateStatus> {
        self.changes.subscribe()
    }

    pub fn view(&self, engine: &EngineHandle) -> UpdateView {
        let (status, last_trial) = {
            let trials = lock_trials(&self.trials);
            (self.status.borrow().clone(), trials.last.clone())
        };
        self.build_view(engine, status, last_trial)
    }

    /// The view as it was when the agent reported `status` (the listener records a decided
    /// trial before it reports the decision, so `last_trial` is at least that recent).
    pub fn view_with(&self, engine: &EngineHandle, status: Option<UpdateStatus>) -> UpdateView {
        let last_trial = lock_trials(&self.trials).last.clone();
        self.build_view(engine, status, last_trial)
    }

    fn build_view(
        &self,
        engine: &EngineHandle,
        status: Option<UpdateStatus>,
        last_trial: Option<TrialResult>,
    ) -> UpdateView {
        let managed = self.managed.as_ref().ok();
        UpdateView {
            managed: managed.is_some(),
            reason: self.managed.as_ref().err().cloned(),
            running_version: self.running_version.clone(),
            current_partition: managed.and_then(|m| m.boot).map(|b| b.partition),
            other_partition: managed.and_then(|m| m.other_partition),
            trial_boot: managed.and_then(|m| m.boot).is_some_and(|b| b.tryboot),
            status,
            bundle_bytes: managed
                .and_then(|_| std::fs::metadata(self.bundle_path()).ok())
                .map(|m| m.len()),
            busy: self.busy.load(Ordering::Acquire),
            clock_running: clock_running(engine),
            maintenance_window: self
                .cfg
                .maintenance_window
                .as_ref()
                .map(config::format_window),
            last_trial,
        }
    }

    /// Runs `f` on the agent from a blocking thread: an install may hold the agent for
    /// minutes, and no runtime worker may wait that long.
    async fn with_agent<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Agent) -> R + Send + 'static,
    ) -> Result<R, UpdateError> {
        let agent = self.managed()?.agent.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&agent)))
            .await
            .map_err(|e| UpdateError::Worker(e.to_string()))
    }

    /// Receives a bundle from `chunks` (an upload), writing it to the data partition as
    /// it arrives. `total` is the announced size, if any.
    pub async fn receive<S, E>(&self, mut chunks: S, total: Option<u64>) -> Result<u64, UpdateError>
    where
        S: futures::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        self.managed()?;
        let _busy = self.claim()?;
        let max = self.cfg.max_bundle_bytes;
        if let Some(t) = total.filter(|t| *t > max) {
            return Err(UpdateError::Ota(OtaError::Download(format!(
                "the bundle is {t} bytes, more than the {max} allowed"
            ))));
        }
        let total = total.unwrap_or(0);
        self.with_agent(move |a| a.downloading(0, total)).await??;
        let partial = self.dir.join(PARTIAL_FILE);
        let result: Result<u64, OtaError> = async {
            let io = |what: &'static str| {
                let p = partial.clone();
                move |e: std::io::Error| OtaError::Download(format!("{what} {}: {e}", p.display()))
            };
            let mut f = tokio::fs::File::create(&partial)
                .await
                .map_err(io("create"))?;
            let mut done = 0u64;
            let mut reported = 0u64;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| {
                    OtaError::Truncated(format!("the upload broke off after {done} bytes: {e}"))
                })?;
                done += chunk.len() as u64;
                if done > max {
                    return Err(OtaError::Download(format!(
                        "the bundle is more than the {max} bytes allowed"
                    )));
                }
                f.write_all(&chunk).await.map_err(io("write"))?;
                if done - reported >= PROGRESS_EVERY {
                    reported = done;
                    self.report_download(done, total);
                }
            }
            if total > 0 && done != total {
                return Err(OtaError::Truncated(format!(
                    "received {done} of {total} bytes"
                )));
            }
            f.sync_all().await.map_err(io("fsync"))?;
            Ok(done)
        }
        .await;
        self.finish_download(result).await
    }

    /// Downloads the bundle at `url` in the background (the console's fetch, and the
    /// hook for a cloud release notice). Returns once the download has started.
    pub async fn fetch(self: &Arc<Self>, url: &str) -> Result<(), UpdateError> {
        self.managed()?;
        let url = reqwest::Url::parse(url)
            .map_err(|e| UpdateError::Ota(OtaError::Download(format!("{url:?}: {e}"))))?;
        let busy = self.claim()?;
        self.with_agent(|a| a.downloading(0, 0)).await??;
        let svc = self.clone();
        tokio::spawn(async move {
            let _busy = busy;
            let partial = svc.dir.join(PARTIAL_FILE);
            let mut reported = 0u64;
            let progress_svc = svc.clone();
            let mut progress = move |done: u64, total: u64| {
                if done - reported >= PROGRESS_EVERY {
                    reported = done;
                    progress_svc.report_download(done, total);
                }
            };
            let result = pvm_ota::selfupdate::fetch_to_file(
                &svc.http,
                &url,
                &partial,
                svc.cfg.max_bundle_bytes,
                &mut progress,
            )
            .await;
            if let Err(e) = svc.finish_download(result).await {
                tracing::warn!(%url, error = %e, "bundle download failed");
            }
        });
        Ok(())
    }

    /// Progress of a transfer: cheap enough for the async side (no long agent action
    /// runs while a transfer holds the busy flag, so the lock is free).
    fn report_download(&self, done: u64, total: u64) {
        if let Ok(m) = self.managed() {
            if let Err(e) = lock(&m.agent).downloading(done, total) {
                tracing::warn!(error = %e, "cannot record download progress");
            }
        }
    }

    async fn finish_download(&self, result: Result<u64, OtaError>) -> Result<u64, UpdateError> {
        let partial = self.dir.join(PARTIAL_FILE);
        match result {
            Ok(n) => {
                tokio::fs::rename(&partial, self.bundle_path())
                    .await
                    .map_err(|e| {
                        UpdateError::Ota(OtaError::Download(format!("staging the bundle: {e}")))
                    })?;
                self.with_agent(|a| a.download_done(None)).await??;
                tracing::info!(bytes = n, "update bundle staged");
                Ok(n)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                let msg = e.to_string();
                self.with_agent(move |a| a.download_done(Some(msg)))
                    .await??;
                Err(UpdateError::Ota(e))
            }
        }
    }

    /// Verifies the staged bundle and writes it into the other slot, in the background.
    /// Refused at once (nothing started) while a clock runs, postponed, or busy.
    pub async fn install(&self, engine: &EngineHandle, force: bool) -> Result<(), UpdateError> {
        self.managed()?;
        let busy = self.claim()?;
        let bundle = self.bundle_path();
        if !bundle.exists() {
            return Err(UpdateError::NoBundle);
        }
        let c = conditions(engine);
        self.with_agent(move |a| a.may_disrupt(&c, force)).await??;
        let agent = self.managed()?.agent.clone();
        tokio::task::spawn_blocking(move || {
            let _busy = busy;
            match lock(&agent).install(&bundle, &c, force) {
                Ok(()) => tracing::info!("update installed into the other slot"),
                Err(e) => tracing::warn!(error = %e, "update not installed"),
            }
        });
        Ok(())
    }

    /// Reboots once into the installed slot, if the policy allows it now.
    pub async fn reboot(&self, engine: &EngineHandle, force: bool) -> Result<(), UpdateError> {
        self.managed()?;
        let _busy = self.claim()?;
        let c = conditions(engine);
        self.with_agent(move |a| a.reboot_to_try(&c, force))
            .await??;
        Ok(())
    }

    /// No installs or reboots (unless forced) for `minutes`.
    pub async fn postpone(&self, minutes: u64) -> Result<u64, UpdateError> {
        let until = now_unix() + minutes * 60;
        self.with_agent(move |a| a.postpone(until)).await??;
        Ok(until)
    }

    /// Run once the node serves: on the trial boot of a new slot, waits (up to the
    /// deadline) for the node to serve HTTP, the database to answer and the kiosk to
    /// draw, then commits the slot or reboots into the old one. Elsewhere it only
    /// records what the firmware did (e.g. a trial that never came up).
    pub async fn after_boot(&self, addr: SocketAddr, engine: EngineHandle) -> Option<BootOutcome> {
        let m = self.managed().ok()?;
        let status = self.status.borrow().clone()?;
        if status.state != UpdateState::Trying {
            return None;
        }
        // Installs wait until the trial is decided.
        let _busy = self.claim().ok()?;
        let on_trial = m
            .boot
            .is_some_and(|b| b.tryboot && Some(b.partition) == status.target_partition);
        let report = if on_trial {
            let probes = Probes {
                addr,
                engine,
                kiosk_frame_file: self.cfg.kiosk_frame_file.clone(),
            };
            let deadline = Duration::from_secs(self.cfg.health_deadline_secs);
            tracing::info!(?deadline, "trial boot: checking health before committing");
            Some(probes.wait_healthy(deadline).await)
        } else {
            None
        };
        let healthy = report.is_some_and(|r| r.healthy());
        let expected = if healthy {
            BootOutcome::Committed
        } else {
            BootOutcome::RollingBack
        };
        lock_trials(&self.trials).pending = Some(self.trial_result(&status, expected, report));
        let decided = self
            .with_agent(move |a| a.after_boot(&mut || healthy))
            .await;
        let outcome = match decided {
            Ok(Ok(o)) => o,
            Ok(Err(e)) | Err(UpdateError::Ota(e)) => {
                tracing::error!(error = %e, "the trial boot could not be decided");
                lock_trials(&self.trials).pending = None;
                return None;
            }
            Err(e) => {
                tracing::error!(error = %e, "the trial boot could not be decided");
                lock_trials(&self.trials).pending = None;
                return None;
            }
        };
        tracing::info!(?outcome, ?report, "trial boot decided");
        // The listener recorded the result when the agent published its decision; this
        // adds what only the finished decision knows (e.g. the agent's error).
        let result = self.trial_result(&status, outcome, report);
        let mut trials = lock_trials(&self.trials);
        trials.pending = None;
        trials.record(result);
        Some(outcome)
    }

    fn trial_result(
        &self,
        status: &UpdateStatus,
        outcome: BootOutcome,
        report: Option<HealthReport>,
    ) -> TrialResult {
        let detail = match (&report, outcome) {
            (Some(r), BootOutcome::RollingBack) => Some(format!(
                "health check failed: http {}, database {}, kiosk {}",
                r.http, r.database, r.kiosk
            )),
            _ => self.status.borrow().as_ref().and_then(|s| s.error.clone()),
        };
        TrialResult {
            outcome: match outcome {
                BootOutcome::Committed => "committed",
                _ => "rolled_back",
            }
            .into(),
            version: status.version.clone(),
            at: now_unix(),
            detail,
            health: report,
        }
    }
}

const BUNDLE_FILE: &str = "bundle.pvmb";
const PARTIAL_FILE: &str = "bundle.pvmb.partial";
const LAST_TRIAL_FILE: &str = "last-trial.json";
/// Transfer progress is published this often, in bytes.
const PROGRESS_EVERY: u64 = 1 << 20;
/// Status changes buffered for a slow live client before it skips ahead.
const CHANGES_KEPT: usize = 256;

fn clock_running(engine: &EngineHandle) -> bool {
    engine
        .state()
        .tournaments
        .values()
        .any(|t| t.clock.status == ClockStatus::Running)
}

fn conditions(engine: &EngineHandle) -> Conditions {
    let now = now_unix();
    Conditions {
        clock_running: clock_running(engine),
        now_unix: now,
        // The maintenance window is configured in UTC.
        local_minute_of_day: ((now % 86_400) / 60) as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_report_carries_state_percent_version_and_error() {
        let status = UpdateStatus {
            state: UpdateState::Installing,
            version: Some("2.0.0".into()),
            progress: Some(pvm_ota::agent::Progress {
                done: 3 << 20,
                total: 8 << 20,
            }),
            ..UpdateStatus::default()
        };
        let r = fleet_report(&status);
        assert_eq!(r.state, "installing");
        assert_eq!(r.progress_pct, Some(37));
        assert_eq!(r.target_version.as_deref(), Some("2.0.0"));
        assert_eq!(r.last_error, None);

        let failed = UpdateStatus {
            state: UpdateState::RolledBack,
            error: Some("health check failed on the trial boot".into()),
            // A total of 0 (a download of unknown length) has no percentage.
            progress: Some(pvm_ota::agent::Progress { done: 5, total: 0 }),
            ..UpdateStatus::default()
        };
        let r = fleet_report(&failed);
        assert_eq!(r.state, "rolled_back");
        assert_eq!(r.progress_pct, None);
        assert_eq!(
            r.last_error.as_deref(),
            Some("health check failed on the trial boot")
        );
        // The state names are the agent's own (as the node's API spells them).
        assert_eq!(
            serde_json::to_value(UpdateState::RolledBack).unwrap(),
            r.state.as_str()
        );
    }
}
