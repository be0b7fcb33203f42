//! Finding Chromecasts: mDNS browsing for `_googlecast._tcp`.

use std::net::SocketAddr;

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::DiscoveryConfig;
use crate::error::CastError;

pub const SERVICE_TYPE: &str = "_googlecast._tcp.local.";

/// A device as its advertisement describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredDevice {
    /// TXT `id`: stable across reboots and address changes.
    pub id: String,
    /// TXT `fn`: the name the venue gave the TV.
    pub name: Option<String>,
    /// TXT `md`: the model.
    pub model: Option<String>,
    pub addr: SocketAddr,
}

/// Reads a resolved `_googlecast._tcp` service. `None` when it has no `id` or no address.
pub fn device_from_service(info: &ServiceInfo) -> Option<DiscoveredDevice> {
    let id = info.get_property_val_str("id")?.trim();
    if id.is_empty() {
        return None;
    }
    let addresses = info.get_addresses();
    // IPv4 first: it is what every Chromecast model answers on.
    let ip = addresses
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| addresses.iter().next())
        .copied()?;
    let text = |key: &str| {
        info.get_property_val_str(key)
            .map(str::to_owned)
            .filter(|s| !s.is_empty())
    };
    Some(DiscoveredDevice {
        id: id.to_owned(),
        name: text("fn"),
        model: text("md"),
        addr: SocketAddr::new(ip, info.get_port()),
    })
}

/// The running browser; dropping it stops browsing.
pub(crate) struct Discovery {
    daemon: ServiceDaemon,
    task: JoinHandle<()>,
}

impl Discovery {
    pub fn start(
        config: &DiscoveryConfig,
        found: mpsc::UnboundedSender<DiscoveredDevice>,
    ) -> Result<Self, CastError> {
        let daemon = ServiceDaemon::new()?;
        if !config.interfaces.is_empty() {
            daemon.disable_interface(IfKind::All)?;
            let names: Vec<IfKind> = config
                .interfaces
                .iter()
                .map(|name| IfKind::Name(name.clone()))
                .collect();
            daemon.enable_interface(names)?;
        }
        let events = daemon.browse(SERVICE_TYPE)?;
        let task = tokio::spawn(async move {
            while let Ok(event) = events.recv_async().await {
                if let ServiceEvent::ServiceResolved(info) = event {
                    match device_from_service(&info) {
                        Some(device) => {
                            if found.send(device).is_err() {
                                return;
                            }
                        }
                        None => tracing::debug!(
                            service = info.get_fullname(),
                            "cast advertisement without id or address"
                        ),
                    }
                }
            }
        });
        Ok(Discovery { daemon, task })
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
        if let Err(error) = self.daemon.shutdown() {
            tracing::debug!(%error, "mDNS daemon already stopped");
        }
    }
}
