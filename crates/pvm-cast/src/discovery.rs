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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn service(txt: &[(&str, &str)], ips: &str) -> ServiceInfo {
        let txt: HashMap<String, String> = txt
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ServiceInfo::new(SERVICE_TYPE, "Chromecast-abc", "abc.local.", ips, 8009, txt).unwrap()
    }

    #[test]
    fn an_advertisement_gives_id_name_model_and_an_ipv4_address_first() {
        let info = service(
            &[("id", "0123abcd"), ("fn", "Bar TV"), ("md", "Chromecast")],
            "fe80::1,192.0.2.7",
        );
        let device = device_from_service(&info).unwrap();
        assert_eq!(device.id, "0123abcd");
        assert_eq!(device.name.as_deref(), Some("Bar TV"));
        assert_eq!(device.model.as_deref(), Some("Chromecast"));
        assert_eq!(device.addr, "192.0.2.7:8009".parse().unwrap());
    }

    #[test]
    fn an_advertisement_without_an_id_is_not_a_device() {
        assert!(device_from_service(&service(&[("fn", "TV")], "192.0.2.7")).is_none());
        assert!(device_from_service(&service(&[("id", " ")], "192.0.2.7")).is_none());
    }

    #[test]
    fn empty_names_are_absent_rather_than_blank() {
        let info = service(&[("id", "x"), ("fn", "")], "192.0.2.7");
        assert_eq!(device_from_service(&info).unwrap().name, None);
    }
}
