//! pvm-cast: the Chromecast bridge.
//!
//! The node tells the bridge which page each Chromecast should show
//! ([`BridgeHandle::set_wanted`], usually from [`wanted_from_displays`]); the bridge finds the
//! devices (mDNS `_googlecast._tcp`, or addresses typed in), launches a web receiver on each
//! over CASTV2, hands it the URL, keeps the session alive and re-casts when the TV, the receiver
//! or the network comes back. [`BridgeHandle::statuses`] says where each device stands.
//!
//! Layers, bottom up: [`frame`] (length-prefixed protobuf), [`protocol`] (the JSON namespaces),
//! [`channel`] (TLS to port 8009), `session` (one device's state machine), [`bridge`] (the
//! supervisor), [`discovery`] (mDNS).

pub mod bridge;
pub mod channel;
pub mod config;
pub mod discovery;
mod error;
pub mod frame;
pub mod protocol;
mod session;
pub mod status;
pub mod venue;

/// The project's Cast receiver page; the node serves it at `/cast/receiver.html`.
pub const RECEIVER_HTML: &str = include_str!("../receiver/receiver.html");

pub use bridge::{Bridge, BridgeHandle};
pub use config::{
    BridgeConfig, DiscoveryConfig, ManualDevice, ReceiverApp, Timings, Wanted, WantedMap,
};
pub use error::CastError;
pub use status::{render_metrics, DeviceState, DeviceStatus, Statuses};
pub use venue::{display_url, wanted_from_displays};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_page_listens_on_the_namespace_the_bridge_sends_on() {
        let line = format!("var NAMESPACE = '{}';", protocol::PVM_RECEIVER_NAMESPACE);
        assert!(RECEIVER_HTML.contains(&line));
        assert!(RECEIVER_HTML.contains("disableIdleTimeout = true"));
    }

    #[test]
    fn starting_outside_a_runtime_is_an_error_not_a_panic() {
        assert!(matches!(
            Bridge::start(BridgeConfig::default()),
            Err(CastError::NoRuntime)
        ));
    }
}
