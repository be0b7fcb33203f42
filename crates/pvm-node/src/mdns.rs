//! mDNS advertisement so phones and TVs on the venue Wi-Fi find the node as `http://pvm.local`
//! without anyone typing an IP address. Failing to advertise is logged, never fatal.

use std::collections::HashMap;
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};
use serde::{Deserialize, Serialize};

/// Service type browsers and phones look for to find web consoles.
pub const HTTP_SERVICE_TYPE: &str = "_http._tcp.local.";
/// Service type PVM nodes and apps look for to find each other.
pub const PVM_SERVICE_TYPE: &str = "_pvm._tcp.local.";

/// What to advertise and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdnsSettings {
    /// Off: advertise nothing.
    pub enabled: bool,
    /// Host name answered over mDNS: `pvm`, `pvm.local` and `pvm.local.` all mean `pvm.local.`.
    pub hostname: String,
    /// Human-readable instance name shown in service browsers.
    pub instance_name: String,
    /// TCP port of the HTTP server (console and API).
    pub port: u16,
    /// This node's id, published in the `_pvm._tcp` TXT record.
    pub node_id: String,
    /// Software version, published in the `_pvm._tcp` TXT record.
    pub version: String,
    /// Interface names to advertise on (e.g. `wlan0`); empty means every non-loopback interface.
    pub interfaces: Vec<String>,
}

impl Default for MdnsSettings {
    fn default() -> Self {
        MdnsSettings {
            enabled: true,
            hostname: "pvm".to_owned(),
            instance_name: "PVM".to_owned(),
            port: 80,
            node_id: String::new(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            interfaces: Vec::new(),
        }
    }
}

/// Why the node could not be advertised.
#[derive(Debug, thiserror::Error)]
pub enum MdnsError {
    #[error("the host name \"{hostname}\" cannot be advertised: {reason}")]
    BadHostname { hostname: String, reason: String },
    #[error("the mDNS responder could not start: {0}")]
    Daemon(mdns_sd::Error),
    #[error("the {service_type} service could not be advertised: {source}")]
    Register {
        service_type: &'static str,
        source: mdns_sd::Error,
    },
}

/// `pvm` -> `pvm.local.`; mDNS only answers for names under `.local.`.
pub fn normalize_hostname(hostname: &str) -> Result<String, MdnsError> {
    let bad = |reason: &str| MdnsError::BadHostname {
        hostname: hostname.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = hostname.trim().trim_end_matches('.');
    let label = trimmed.strip_suffix(".local").unwrap_or(trimmed);
    if label.is_empty() {
        return Err(bad("it is empty"));
    }
    if label.len() > 63 {
        return Err(bad("it is longer than 63 characters"));
    }
    let valid = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    if !valid {
        return Err(bad(
            "use only letters, digits and inner hyphens, e.g. \"pvm\" or \"pvm-bar\"",
        ));
    }
    Ok(format!("{}.local.", label.to_ascii_lowercase()))
}

/// The advertisement while it runs. Shut it down (or drop it) to say goodbye on the network.
pub struct MdnsHandle {
    daemon: ServiceDaemon,
    fullnames: Vec<String>,
    stopped: bool,
}

impl std::fmt::Debug for MdnsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdnsHandle")
            .field("fullnames", &self.fullnames)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl MdnsHandle {
    /// Full DNS-SD names of the advertised services (e.g. `PVM._pvm._tcp.local.`).
    pub fn fullnames(&self) -> &[String] {
        &self.fullnames
    }

    /// Withdraws the services (goodbye packets, so browsers forget us at once) and stops the
    /// responder. Blocks for at most about a second.
    pub fn shutdown(mut self) {
        self.stop(Duration::from_millis(500));
    }

    fn stop(&mut self, wait: Duration) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        for fullname in &self.fullnames {
            match self.daemon.unregister(fullname) {
                Ok(done) if !wait.is_zero() => {
                    let _ = done.recv_timeout(wait);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, fullname, "mDNS unregister failed"),
            }
        }
        if let Err(error) = self.daemon.shutdown() {
            tracing::warn!(%error, "mDNS responder did not stop cleanly");
        }
    }
}

impl Drop for MdnsHandle {
    fn drop(&mut self) {
        // Never block in drop: the commands are queued in order, so goodbyes still go out.
        self.stop(Duration::ZERO);
    }
}

fn service(
    service_type: &'static str,
    settings: &MdnsSettings,
    hostname: &str,
    txt: HashMap<String, String>,
) -> Result<ServiceInfo, MdnsError> {
    ServiceInfo::new(
        service_type,
        &settings.instance_name,
        hostname,
        // No fixed address: the responder publishes the current addresses of the selected
        // interfaces and follows DHCP changes.
        "",
        settings.port,
        txt,
    )
    .map(ServiceInfo::enable_addr_auto)
    .map_err(|source| MdnsError::Register {
        service_type,
        source,
    })
}

/// Starts advertising `hostname` with the `_http._tcp` console and the `_pvm._tcp` node service.
pub fn advertise(settings: &MdnsSettings) -> Result<MdnsHandle, MdnsError> {
    let hostname = normalize_hostname(&settings.hostname)?;
    let daemon = ServiceDaemon::new().map_err(MdnsError::Daemon)?;
    let mut handle = MdnsHandle {
        daemon,
        fullnames: Vec::new(),
        stopped: false,
    };
    if !settings.interfaces.is_empty() {
        handle
            .daemon
            .disable_interface(IfKind::All)
            .map_err(MdnsError::Daemon)?;
        let names: Vec<IfKind> = settings
            .interfaces
            .iter()
            .map(|name| IfKind::Name(name.clone()))
            .collect();
        handle
            .daemon
            .enable_interface(names)
            .map_err(MdnsError::Daemon)?;
    }

    let http_txt = HashMap::from([("path".to_owned(), "/".to_owned())]);
    let pvm_txt = HashMap::from([
        ("version".to_owned(), settings.version.clone()),
        ("node_id".to_owned(), settings.node_id.clone()),
        ("path".to_owned(), "/".to_owned()),
    ]);
    for (service_type, txt) in [(HTTP_SERVICE_TYPE, http_txt), (PVM_SERVICE_TYPE, pvm_txt)] {
        let info = service(service_type, settings, &hostname, txt)?;
        let fullname = info.get_fullname().to_owned();
        handle
            .daemon
            .register(info)
            .map_err(|source| MdnsError::Register {
                service_type,
                source,
            })?;
        handle.fullnames.push(fullname);
    }
    tracing::info!(%hostname, port = settings.port, "advertising on mDNS");
    Ok(handle)
}

/// As [`advertise`], but a failure is logged and the node carries on without mDNS.
pub fn spawn(settings: &MdnsSettings) -> Option<MdnsHandle> {
    if !settings.enabled {
        return None;
    }
    match advertise(settings) {
        Ok(handle) => Some(handle),
        Err(error) => {
            tracing::warn!(%error, "mDNS is off: phones will need the IP address");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_normalised_under_local() {
        assert_eq!(normalize_hostname("pvm").unwrap(), "pvm.local.");
        assert_eq!(normalize_hostname("pvm.local").unwrap(), "pvm.local.");
        assert_eq!(
            normalize_hostname("PVM-Bar.local.").unwrap(),
            "pvm-bar.local."
        );
    }

    #[test]
    fn unusable_hostnames_are_refused_with_the_reason() {
        let error = normalize_hostname("poker room").unwrap_err().to_string();
        assert!(error.contains("\"poker room\""), "{error}");
        assert!(error.contains("letters, digits"), "{error}");
        assert!(normalize_hostname(".local").is_err());
        assert!(normalize_hostname("-pvm").is_err());
    }

    #[test]
    fn a_disabled_advertisement_starts_nothing() {
        let settings = MdnsSettings {
            enabled: false,
            ..MdnsSettings::default()
        };
        assert!(spawn(&settings).is_none());
    }
}
