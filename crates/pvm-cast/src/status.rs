//! Per-device status, for the API, the console's Displays page and metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceState {
    /// Assigned a screen, but not seen on the network (yet).
    NotFound,
    /// Seen, nothing assigned.
    Discovered,
    Connecting,
    /// Asked the device to start the receiver; waiting for it to be ready.
    Launching,
    Casting {
        since_ms: u64,
        url: String,
    },
    /// Someone else is casting to this TV and the assignment is not "always".
    Busy {
        app: String,
    },
    /// The device stopped answering or closed the connection; retrying.
    Lost {
        since_ms: u64,
        reason: String,
    },
    /// The device refused (with its own reason) or never started the receiver; retrying.
    Error {
        reason: String,
    },
}

impl DeviceState {
    /// A short name, for metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            DeviceState::NotFound => "not_found",
            DeviceState::Discovered => "discovered",
            DeviceState::Connecting => "connecting",
            DeviceState::Launching => "launching",
            DeviceState::Casting { .. } => "casting",
            DeviceState::Busy { .. } => "busy",
            DeviceState::Lost { .. } => "lost",
            DeviceState::Error { .. } => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub id: String,
    /// Friendly name (mDNS `fn`).
    pub name: Option<String>,
    /// Model (mDNS `md`).
    pub model: Option<String>,
    pub addr: Option<SocketAddr>,
    pub state: DeviceState,
    /// Failures in a row (connects, launches); reset once casting.
    pub failures: u32,
    /// When `state` last changed, Unix milliseconds.
    pub changed_ms: u64,
}

pub type Statuses = BTreeMap<String, DeviceStatus>;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const ALL_STATES: [&str; 8] = [
    "not_found",
    "discovered",
    "connecting",
    "launching",
    "casting",
    "busy",
    "lost",
    "error",
];

/// Prometheus text lines: how many devices are in each state.
pub fn render_metrics(statuses: &Statuses) -> String {
    let mut counts: BTreeMap<&str, usize> = ALL_STATES.iter().map(|s| (*s, 0)).collect();
    for status in statuses.values() {
        *counts.entry(status.state.label()).or_default() += 1;
    }
    let mut out = String::from(
        "# HELP pvm_cast_devices Chromecast devices by bridge state.\n# TYPE pvm_cast_devices gauge\n",
    );
    for (state, n) in counts {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "pvm_cast_devices{{state=\"{state}\"}} {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_count_devices_per_state_including_empty_states() {
        let mut s = Statuses::new();
        for (id, state) in [
            ("a", DeviceState::Connecting),
            ("b", DeviceState::Connecting),
            ("c", DeviceState::NotFound),
        ] {
            s.insert(
                id.into(),
                DeviceStatus {
                    id: id.into(),
                    name: None,
                    model: None,
                    addr: None,
                    state,
                    failures: 0,
                    changed_ms: 0,
                },
            );
        }
        let text = render_metrics(&s);
        assert!(text.contains("pvm_cast_devices{state=\"connecting\"} 2"));
        assert!(text.contains("pvm_cast_devices{state=\"not_found\"} 1"));
        assert!(text.contains("pvm_cast_devices{state=\"casting\"} 0"));
    }

    #[test]
    fn states_serialise_with_a_tag_for_the_console() {
        let json = serde_json::to_value(DeviceState::Busy {
            app: "YouTube".into(),
        })
        .unwrap();
        assert_eq!(json, serde_json::json!({"state":"busy","app":"YouTube"}));
    }
}
