//! The update agent: verify, install into the inactive slot, trial boot, then
//! commit or roll back, with its state persisted on the data partition.
//!
//! Blocking by design (it streams hundreds of megabytes through SHA-256); the node
//! runs it on a blocking thread behind a mutex and publishes [`UpdateStatus`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bootloader::Bootloader;
use crate::bundle::{hash_payload, open_sequential, read_layout, VerifyOptions};
use crate::error::{OtaError, Result};
use crate::fsutil::atomic_write;
use crate::keys::TrustStore;
use crate::manifest::PayloadKind;
use crate::slots::{read_back, write_payload, Autoboot, SlotLayout};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    Idle,
    Downloading,
    Verifying,
    Installing,
    /// Installed in the inactive slot; `[tryboot]` names it; waiting for a reboot.
    Ready,
    /// Rebooted into the new slot once; waiting for the health check.
    Trying,
    Committed,
    RolledBack,
    Failed,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// What the API, the console and the fleet view show.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UpdateStatus {
    pub state: UpdateState,
    /// The version being (or last) installed.
    pub version: Option<String>,
    /// Boot partition of the slot it went into, and of the slot it came from.
    pub target_partition: Option<u32>,
    pub previous_partition: Option<u32>,
    pub progress: Option<Progress>,
    pub error: Option<String>,
    /// Unix seconds; installs and reboots wait until then unless forced.
    pub postponed_until: Option<u64>,
}

impl Default for UpdateStatus {
    fn default() -> Self {
        UpdateStatus {
            state: UpdateState::Idle,
            version: None,
            target_partition: None,
            previous_partition: None,
            progress: None,
            error: None,
            postponed_until: None,
        }
    }
}

/// A daily window (venue-local minutes since midnight) when disruptions are fine
/// even with a clock running. `start > end` wraps past midnight.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub start_minute: u16,
    pub end_minute: u16,
}

impl MaintenanceWindow {
    pub fn contains(&self, minute: u16) -> bool {
        if self.start_minute <= self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute)
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }
}

/// The venue right now, as the node sees it.
#[derive(Clone, Copy, Debug)]
pub struct Conditions {
    pub clock_running: bool,
    pub now_unix: u64,
    pub local_minute_of_day: u16,
}

/// What [`UpdateAgent::after_boot`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootOutcome {
    /// Nothing was on trial.
    Normal,
    Committed,
    /// The health check failed; a normal reboot was requested to go back.
    RollingBack,
    /// The firmware already brought back the old slot (the trial boot never got this far).
    RolledBack,
}

pub struct AgentConfig {
    /// On the data partition.
    pub state_file: PathBuf,
    pub layout: SlotLayout,
    pub verify: VerifyOptions,
    pub maintenance_window: Option<MaintenanceWindow>,
    /// After writing a slot, set `root=` in its boot partition's `cmdline.txt` to the slot's
    /// system device (see [`crate::cmdline`]), so one boot payload boots from either slot.
    /// Off only where the "partitions" are plain files without a kernel (tests).
    pub set_cmdline_root: bool,
}

pub type ProgressListener = Box<dyn FnMut(&UpdateStatus) + Send>;

pub struct UpdateAgent<B: Bootloader> {
    cfg: AgentConfig,
    boot: B,
    trust: TrustStore,
    status: UpdateStatus,
    listener: Option<ProgressListener>,
}

impl<B: Bootloader> UpdateAgent<B> {
    /// Loads the persisted state. An install that was running when the process died
    /// is marked failed: its slot is inactive and unnamed for a normal boot, so
    /// nothing needs undoing, and a new install starts over.
    pub fn open(cfg: AgentConfig, trust: TrustStore, boot: B) -> Result<Self> {
        let status = match std::fs::read(&cfg.state_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "unreadable update state; starting idle");
                UpdateStatus::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => UpdateStatus::default(),
            Err(e) => {
                return Err(OtaError::Io {
                    context: format!("read {}", cfg.state_file.display()),
                    source: e,
                })
            }
        };
        let mut agent = UpdateAgent {
            cfg,
            boot,
            trust,
            status,
            listener: None,
        };
        if matches!(
            agent.status.state,
            UpdateState::Downloading | UpdateState::Verifying | UpdateState::Installing
        ) {
            agent.status.error = Some("interrupted (restart or power loss)".into());
            agent.set_state(UpdateState::Failed)?;
        }
        Ok(agent)
    }

    pub fn status(&self) -> &UpdateStatus {
        &self.status
    }

    pub fn trust_store(&self) -> &TrustStore {
        &self.trust
    }

    /// Called on every state change and as bytes move.
    pub fn set_listener(&mut self, listener: ProgressListener) {
        self.listener = Some(listener);
    }

    fn persist(&self) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.status)
            .map_err(|e| OtaError::Malformed(format!("state: {e}")))?;
        atomic_write(&self.cfg.state_file, &json)
    }

    fn notify(&mut self) {
        if let Some(l) = self.listener.as_mut() {
            l(&self.status);
        }
    }

    fn set_state(&mut self, state: UpdateState) -> Result<()> {
        self.status.state = state;
        self.persist()?;
        self.notify();
        Ok(())
    }

    fn fail(&mut self, e: OtaError) -> OtaError {
        self.status.error = Some(e.to_string());
        self.status.progress = None;
        if let Err(pe) = self.set_state(UpdateState::Failed) {
            tracing::error!(error = %pe, "could not persist the failed update state");
        }
        e
    }

    /// Delays installs and reboots until `until_unix` (unless forced).
    pub fn postpone(&mut self, until_unix: u64) -> Result<()> {
        self.status.postponed_until = Some(until_unix);
        self.persist()?;
        self.notify();
        Ok(())
    }

    /// Download progress, reported by whoever fetches the bundle.
    pub fn downloading(&mut self, done: u64, total: u64) -> Result<()> {
        if self.status.state == UpdateState::Trying {
            // The health check of the trial boot owns the state until it decides.
            return Err(OtaError::WrongState {
                state: "trying".into(),
                action: "download".into(),
            });
        }
        let first = self.status.state != UpdateState::Downloading;
        self.status.progress = Some(Progress { done, total });
        if first {
            self.status.error = None;
            self.set_state(UpdateState::Downloading)
        } else {
            self.notify();
            Ok(())
        }
    }

    /// The download (or upload) of a bundle ended. Back to idle when it arrived whole,
    /// failed with `error` otherwise; a trial boot in progress is never overwritten.
    pub fn download_done(&mut self, error: Option<String>) -> Result<()> {
        if self.status.state != UpdateState::Downloading {
            return Ok(());
        }
        self.status.progress = None;
        match error {
            None => self.set_state(UpdateState::Idle),
            Some(e) => {
                self.status.error = Some(e);
                self.set_state(UpdateState::Failed)
            }
        }
    }

    /// How the firmware says this boot came about.
    pub fn boot_status(&self) -> Result<crate::bootloader::BootStatus> {
        self.boot.status()
    }

    pub fn layout(&self) -> &SlotLayout {
        &self.cfg.layout
    }

    /// The policy: no disruption while a tournament clock runs, outside the
    /// maintenance window, or while postponed, unless forced (and then it is logged).
    pub fn may_disrupt(&self, c: &Conditions, force: bool) -> Result<()> {
        if force {
            tracing::warn!(clock_running = c.clock_running, "update forced by an admin");
            return Ok(());
        }
        if let Some(until) = self.status.postponed_until {
            if c.now_unix < until {
                return Err(OtaError::Deferred(format!("postponed until {until}")));
            }
        }
        let in_window = self
            .cfg
            .maintenance_window
            .is_some_and(|w| w.contains(c.local_minute_of_day));
        if c.clock_running && !in_window {
            return Err(OtaError::Deferred("a tournament clock is running".into()));
        }
        Ok(())
    }

    /// Verifies `bundle` completely, then streams it into the inactive slot and arms
    /// `[tryboot]`. A refused bundle leaves every slot and autoboot.txt untouched.
    pub fn install(&mut self, bundle: &Path, c: &Conditions, force: bool) -> Result<()> {
        if matches!(self.status.state, UpdateState::Trying) {
            return Err(OtaError::WrongState {
                state: "trying".into(),
                action: "install".into(),
            });
        }
        self.may_disrupt(c, force)?;
        self.status.error = None;
        self.status.progress = None;
        self.set_state(UpdateState::Verifying)?;
        match self.install_inner(bundle) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn install_inner(&mut self, bundle: &Path) -> Result<()> {
        let opts = self.cfg.verify.clone();
        // One open file for both passes: the install pass hashes every byte it writes
        // against the manifest verified here, so a bundle changed in between is caught.
        let layout = read_layout(bundle, &self.trust, &opts)?;
        let file = open_sequential(bundle)?;
        let total: u64 = layout.payloads.iter().map(|(p, _)| p.size).sum();
        {
            let mut done = 0u64;
            let mut last = 0u64;
            for (p, offset) in &layout.payloads {
                hash_payload(&file, p, *offset, None, &mut |block| {
                    done += block.len() as u64;
                    if done - last >= 8 << 20 {
                        last = done;
                        self.status.progress = Some(Progress { done, total });
                        if let Some(l) = self.listener.as_mut() {
                            l(&self.status);
                        }
                    }
                    Ok(())
                })?;
            }
        }
        let verified = &layout.verified;
        let m = &verified.manifest;
        if m.payload(PayloadKind::Boot).is_none() || m.payload(PayloadKind::Rootfs).is_none() {
            return Err(OtaError::Malformed(
                "a system update needs a boot and a rootfs payload".into(),
            ));
        }
        self.trust.apply(&m.keys, &verified.signer)?;

        let slots = self.cfg.layout.clone();
        let current = Autoboot::read(&slots.autoboot)?;
        let active = current.normal;
        let target = slots.other(active)?.clone();
        // While the target slot is being overwritten nothing may name it, not even
        // for a one-shot boot.
        if current.tryboot != active {
            Autoboot {
                normal: active,
                tryboot: active,
            }
            .write(&slots.autoboot)?;
        }
        self.status.version = Some(m.version.to_string());
        self.status.target_partition = Some(target.boot_partition);
        self.status.previous_partition = Some(active);
        let payload_total: u64 = m
            .payloads
            .iter()
            .filter(|p| p.kind != PayloadKind::App)
            .map(|p| p.size)
            .sum();
        self.status.progress = Some(Progress {
            done: 0,
            total: payload_total,
        });
        self.set_state(UpdateState::Installing)?;

        let mut done = 0u64;
        let mut last = 0u64;
        let mut written = Vec::new();
        for (p, offset) in &layout.payloads {
            let dest = match p.kind {
                PayloadKind::Boot => &target.boot,
                PayloadKind::Rootfs => &target.system,
                // Verified with the rest; app binaries ship inside the rootfs on A/B systems.
                PayloadKind::App => continue,
            };
            let status = &mut self.status;
            let listener = &mut self.listener;
            let read_back_equal = write_payload(dest, &file, p, *offset, &mut |n| {
                done += n;
                if done - last >= 8 << 20 || done == payload_total {
                    last = done;
                    status.progress = Some(Progress {
                        done,
                        total: payload_total,
                    });
                    if let Some(l) = listener.as_mut() {
                        l(status);
                    }
                }
            })?;
            written.push((
                dest.clone(),
                p.size,
                p.sha256.clone(),
                p.file.clone(),
                read_back_equal,
            ));
        }
        // Where the writer could not read back behind itself (no O_DIRECT), each slot is
        // read back whole from the medium now, after its pages were dropped, and hashed.
        for (dest, size, sha, name, read_back_equal) in written {
            if read_back_equal {
                continue;
            }
            if read_back(&dest, size)? != sha {
                return Err(OtaError::Slot {
                    path: dest,
                    reason: format!("{name} reads back differently than written"),
                });
            }
        }
        let layout = slots;
        if self.cfg.set_cmdline_root {
            let root = target.system.to_str().ok_or_else(|| OtaError::Slot {
                path: target.system.clone(),
                reason: "not a path the kernel command line can carry".into(),
            })?;
            crate::cmdline::set_root(&target.boot, root)?;
        }
        Autoboot {
            normal: active,
            tryboot: target.boot_partition,
        }
        .write(&layout.autoboot)?;
        self.status.progress = None;
        self.set_state(UpdateState::Ready)?;
        tracing::info!(version = %m.version, slot = target.boot_partition, "update installed, ready for a trial boot");
        Ok(())
    }

    /// Reboots once into the new slot, if the policy allows it now.
    pub fn reboot_to_try(&mut self, c: &Conditions, force: bool) -> Result<()> {
        if self.status.state != UpdateState::Ready {
            return Err(OtaError::WrongState {
                state: format!("{:?}", self.status.state),
                action: "trial reboot".into(),
            });
        }
        self.may_disrupt(c, force)?;
        self.set_state(UpdateState::Trying)?;
        self.boot.reboot_tryboot()
    }

    /// Run once at startup. On a trial boot of the new slot, `health` decides: pass
    /// commits (`[all]` names the new slot); fail requests a normal reboot, which
    /// the firmware serves from the old slot because autoboot.txt was never changed.
    pub fn after_boot(&mut self, health: &mut dyn FnMut() -> bool) -> Result<BootOutcome> {
        if self.status.state != UpdateState::Trying {
            return Ok(BootOutcome::Normal);
        }
        let (Some(target), Some(previous)) =
            (self.status.target_partition, self.status.previous_partition)
        else {
            return Err(self.fail(OtaError::Malformed("trying without a target slot".into())));
        };
        let boot = self.boot.status()?;
        let autoboot_path = self.cfg.layout.autoboot.clone();
        if !boot.tryboot {
            if boot.partition == target && Autoboot::read(&autoboot_path)?.normal == target {
                // The commit reached autoboot.txt but not the state file.
                self.set_state(UpdateState::Committed)?;
                return Ok(BootOutcome::Committed);
            }
            self.status.error =
                Some("the trial boot did not come up; the old slot is running".into());
            self.set_state(UpdateState::RolledBack)?;
            return Ok(BootOutcome::RolledBack);
        }
        if boot.partition != target {
            self.status.error = Some(format!(
                "trial boot came up from partition {} instead of {target}",
                boot.partition
            ));
            self.set_state(UpdateState::RolledBack)?;
            self.boot.reboot()?;
            return Ok(BootOutcome::RollingBack);
        }
        if health() {
            Autoboot {
                normal: target,
                tryboot: previous,
            }
            .write(&autoboot_path)?;
            self.status.error = None;
            self.set_state(UpdateState::Committed)?;
            tracing::info!(version = ?self.status.version, slot = target, "update committed");
            Ok(BootOutcome::Committed)
        } else {
            self.status.error = Some("health check failed on the trial boot".into());
            self.set_state(UpdateState::RolledBack)?;
            tracing::warn!(version = ?self.status.version, "health check failed; rolling back");
            self.boot.reboot()?;
            Ok(BootOutcome::RollingBack)
        }
    }
}
