//! The supervisor: keeps one worker per known or wanted device and feeds each the facts it
//! needs (where the device is, what it should show).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::channel::tls_connector;
use crate::config::{BridgeConfig, ManualDevice, ReceiverApp, Timings, WantedMap};
use crate::discovery::{DiscoveredDevice, Discovery};
use crate::error::CastError;
use crate::session::{Target, Worker};
use crate::status::{now_ms, DeviceState, DeviceStatus, Statuses};
use crate::venue::wanted_from_displays;
use pvm_core::VenueState;

enum Command {
    SetWanted(WantedMap),
    AddManual(ManualDevice),
    RemoveManual(String),
}

/// Starts the bridge. See [`BridgeHandle`].
pub struct Bridge;

impl Bridge {
    /// Starts discovery (if configured) and the supervisor. Call from within a tokio runtime.
    pub fn start(config: BridgeConfig) -> Result<BridgeHandle, CastError> {
        tokio::runtime::Handle::try_current().map_err(|_| CastError::NoRuntime)?;
        let connector = tls_connector()?;
        let (found_tx, found_rx) = mpsc::unbounded_channel();
        let discovery = match &config.discovery {
            Some(discovery) => Some(Discovery::start(discovery, found_tx)?),
            None => None,
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (status_tx, statuses) = watch::channel(Statuses::new());
        let mut supervisor = Supervisor {
            connector,
            receiver: config.receiver,
            timings: config.timings,
            known: BTreeMap::new(),
            wanted: WantedMap::new(),
            workers: BTreeMap::new(),
            statuses: Arc::new(status_tx),
        };
        for device in config.manual_devices {
            supervisor.add_manual(device);
        }
        let task = tokio::spawn(supervisor.run(command_rx, found_rx));
        Ok(BridgeHandle {
            commands,
            statuses,
            task,
            _discovery: discovery,
        })
    }
}

/// The running bridge.
///
/// Wiring in the node: `follow_venue(engine.watch_state(), base_url)` (or call `set_wanted`
/// yourself); serve `statuses().borrow()` in the Displays API and append `render_metrics` to
/// `/metrics`.
pub struct BridgeHandle {
    commands: mpsc::UnboundedSender<Command>,
    statuses: watch::Receiver<Statuses>,
    task: JoinHandle<()>,
    _discovery: Option<Discovery>,
}

impl BridgeHandle {
    /// Replaces the whole assignment: devices not in `wanted` are left (our receiver stopped).
    pub fn set_wanted(&self, wanted: WantedMap) {
        // Only fails once the supervisor is gone, that is after `stop`.
        let _ = self.commands.send(Command::SetWanted(wanted));
    }

    pub fn add_manual_device(&self, device: ManualDevice) {
        let _ = self.commands.send(Command::AddManual(device));
    }

    pub fn remove_manual_device(&self, id: &str) {
        let _ = self.commands.send(Command::RemoveManual(id.to_owned()));
    }

    /// Keeps the assignment in step with the venue: each new state's Chromecast displays
    /// become the wanted map (see [`wanted_from_displays`]). Only real changes reach the
    /// supervisor, so the many state updates of a running clock cost nothing here.
    /// The task ends when the state channel closes or the bridge stops.
    pub fn follow_venue(
        &self,
        mut states: watch::Receiver<Arc<VenueState>>,
        node_base_url: String,
    ) -> JoinHandle<()> {
        let commands = self.commands.clone();
        tokio::spawn(async move {
            let mut last: Option<WantedMap> = None;
            loop {
                let wanted =
                    wanted_from_displays(&states.borrow_and_update().displays, &node_base_url);
                if last.as_ref() != Some(&wanted) {
                    if commands.send(Command::SetWanted(wanted.clone())).is_err() {
                        return;
                    }
                    last = Some(wanted);
                }
                if states.changed().await.is_err() {
                    return;
                }
            }
        })
    }

    /// Every known or wanted device and what the bridge is doing with it.
    pub fn statuses(&self) -> watch::Receiver<Statuses> {
        self.statuses.clone()
    }

    /// Stops discovery and every connection. Receivers keep showing their page: a node
    /// restart must not blank the TVs.
    pub async fn stop(self) {
        drop(self.commands);
        // The supervisor ends when the command channel closes and takes its workers with it.
        let _ = self.task.await;
    }
}

#[derive(Debug, Clone, Default)]
struct Known {
    name: Option<String>,
    model: Option<String>,
    addr: Option<SocketAddr>,
}

struct Supervisor {
    connector: TlsConnector,
    receiver: ReceiverApp,
    timings: Timings,
    known: BTreeMap<String, Known>,
    wanted: WantedMap,
    workers: BTreeMap<String, (watch::Sender<Target>, JoinHandle<()>)>,
    statuses: Arc<watch::Sender<Statuses>>,
}

impl Supervisor {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut found: mpsc::UnboundedReceiver<DiscoveredDevice>,
    ) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::SetWanted(wanted)) => self.set_wanted(wanted),
                    Some(Command::AddManual(device)) => self.add_manual(device),
                    Some(Command::RemoveManual(id)) => {
                        self.known.remove(&id);
                        self.sync(&id, false);
                    }
                    None => break,
                },
                Some(device) = found.recv() => self.discovered(device),
            }
        }
        for (_, (target, worker)) in std::mem::take(&mut self.workers) {
            drop(target);
            worker.abort();
            let _ = worker.await;
        }
    }

    fn set_wanted(&mut self, wanted: WantedMap) {
        let old = std::mem::replace(&mut self.wanted, wanted);
        let ids: Vec<String> = old.keys().chain(self.wanted.keys()).cloned().collect();
        for id in ids {
            self.sync(&id, false);
        }
    }

    fn add_manual(&mut self, device: ManualDevice) {
        self.known.insert(
            device.id.clone(),
            Known {
                name: Some(device.name),
                model: None,
                addr: Some(device.addr),
            },
        );
        self.sync(&device.id, true);
    }

    fn discovered(&mut self, device: DiscoveredDevice) {
        tracing::debug!(id = %device.id, addr = %device.addr, "cast device seen");
        self.known.insert(
            device.id.clone(),
            Known {
                name: device.name,
                model: device.model,
                addr: Some(device.addr),
            },
        );
        self.sync(&device.id, true);
    }

    /// Brings one device's worker and status entry in line with `known` and `wanted`.
    fn sync(&mut self, id: &str, nudge: bool) {
        let known = self.known.get(id).cloned();
        let wanted = self.wanted.get(id).cloned();
        if known.is_none() && wanted.is_none() {
            if let Some((_, worker)) = self.workers.remove(id) {
                worker.abort();
            }
            self.statuses
                .send_if_modified(|all| all.remove(id).is_some());
            return;
        }
        let known = known.unwrap_or_default();
        self.statuses.send_if_modified(|all| {
            let inserted = !all.contains_key(id);
            let status = all.entry(id.to_owned()).or_insert_with(|| DeviceStatus {
                id: id.to_owned(),
                name: None,
                model: None,
                addr: None,
                state: if known.addr.is_some() {
                    DeviceState::Discovered
                } else {
                    DeviceState::NotFound
                },
                failures: 0,
                changed_ms: now_ms(),
            });
            let before = status.clone();
            status.name = known.name.clone();
            status.model = known.model.clone();
            status.addr = known.addr;
            inserted || *status != before
        });
        let addr = known.addr;
        if let Some((target, _)) = self.workers.get(id) {
            target.send_if_modified(|t| {
                let changed = t.addr != addr || t.wanted != wanted || nudge;
                t.addr = addr;
                t.wanted = wanted;
                if nudge {
                    t.nudge = t.nudge.wrapping_add(1);
                }
                changed
            });
            return;
        }
        let (target, target_rx) = watch::channel(Target {
            addr,
            wanted,
            nudge: 0,
        });
        let worker = Worker {
            id: id.to_owned(),
            connector: self.connector.clone(),
            receiver: self.receiver.clone(),
            timings: self.timings.clone(),
            target: target_rx,
            statuses: self.statuses.clone(),
            failures: 0,
            shown: None,
        };
        let task = tokio::spawn(worker.run());
        self.workers.insert(id.to_owned(), (target, task));
    }
}
