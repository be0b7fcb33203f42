//! What the bridge is told: the receiver app, timings, where to look for devices, what to show.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::{DASHCAST_APP_ID, DASHCAST_NAMESPACE, PVM_RECEIVER_NAMESPACE};

/// The web receiver that shows a page on the TV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverApp {
    /// The app id registered with the Cast developer console (DashCast by default).
    pub app_id: String,
    /// The namespace on which the app takes `{url, force, reload, reload_time}`.
    pub namespace: String,
    /// The receiver leaves its own page to show ours (DashCast with `force: true`), so it can
    /// take no second URL: changing the page means launching it again.
    pub relaunch_to_change_url: bool,
}

impl ReceiverApp {
    /// The project's own receiver (receiver/receiver.html), registered by the venue under
    /// `app_id` with its node's `http://…/cast/receiver.html` URL: it frames the display page
    /// and takes new URLs in place.
    pub fn pvm(app_id: &str) -> Self {
        ReceiverApp {
            app_id: app_id.to_owned(),
            namespace: PVM_RECEIVER_NAMESPACE.to_owned(),
            relaunch_to_change_url: false,
        }
    }
}

impl Default for ReceiverApp {
    fn default() -> Self {
        ReceiverApp {
            app_id: DASHCAST_APP_ID.to_owned(),
            namespace: DASHCAST_NAMESPACE.to_owned(),
            relaunch_to_change_url: true,
        }
    }
}

/// Every delay the bridge uses. The defaults are for real devices; tests shrink them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// How often we PING the device (and ask for its receiver status).
    pub heartbeat: Duration,
    /// A device that sent nothing for this long is gone.
    pub silent_after: Duration,
    pub connect_timeout: Duration,
    /// How long a launched receiver may take to report itself ready.
    pub launch_timeout: Duration,
    /// First wait after a failure; doubled on each further failure in a row.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            heartbeat: Duration::from_secs(5),
            silent_after: Duration::from_secs(12),
            connect_timeout: Duration::from_secs(5),
            // A receiver is downloaded from the internet at launch; slow venue uplinks need time.
            launch_timeout: Duration::from_secs(30),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
        }
    }
}

impl Timings {
    /// The wait after `failures` failures in a row (1 = the first failure).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.retry_min.saturating_mul(factor).min(self.retry_max)
    }
}

/// A device given by address, for venues whose Wi-Fi drops multicast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualDevice {
    /// Any stable key; the console uses it like an mDNS id.
    pub id: String,
    pub name: String,
    /// Usually `<ip>:8009`.
    pub addr: SocketAddr,
}

/// mDNS browsing for `_googlecast._tcp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Interface names to browse on; empty means every non-loopback interface.
    pub interfaces: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct BridgeConfig {
    pub receiver: ReceiverApp,
    pub timings: Timings,
    /// `None` turns mDNS off (manual devices only).
    pub discovery: Option<DiscoveryConfig>,
    pub manual_devices: Vec<ManualDevice>,
}

/// What one device should show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wanted {
    pub url: String,
    /// Take the TV over even when someone else is casting to it.
    pub always: bool,
}

/// Device id (mDNS TXT `id`, or a manual entry's id) → what it should show.
pub type WantedMap = BTreeMap<String, Wanted>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_and_stops_at_the_maximum() {
        let t = Timings {
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_millis(1000),
            ..Timings::default()
        };
        assert_eq!(t.backoff(1), Duration::from_millis(100));
        assert_eq!(t.backoff(2), Duration::from_millis(200));
        assert_eq!(t.backoff(4), Duration::from_millis(800));
        assert_eq!(t.backoff(5), Duration::from_millis(1000));
        assert_eq!(t.backoff(u32::MAX), Duration::from_millis(1000));
    }
}
