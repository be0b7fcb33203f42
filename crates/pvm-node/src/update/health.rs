//! The trial boot's health check: the new system is kept only if, within the deadline,
//! the node serves HTTP, its database answers, and the kiosk has drawn a frame.

use crate::engine::EngineHandle;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How often the probes are repeated until they all pass or the deadline comes.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// One HTTP probe may take this long.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// What each probe found, last time it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthReport {
    /// `GET /healthz` on the node's own listener answered 200.
    pub http: bool,
    /// The event log answered a read.
    pub database: bool,
    /// The kiosk's frame signal exists (or no kiosk is expected on this machine).
    pub kiosk: bool,
}

impl HealthReport {
    /// The decision: every probe must pass. Nothing partial commits a trial boot.
    pub fn healthy(&self) -> bool {
        self.http && self.database && self.kiosk
    }
}

/// The probes of one running node.
pub struct Probes {
    pub addr: SocketAddr,
    pub engine: EngineHandle,
    /// `None`: no kiosk runs on this machine.
    pub kiosk_frame_file: Option<PathBuf>,
}

impl Probes {
    pub async fn run(&self) -> HealthReport {
        HealthReport {
            http: http_ok(self.addr).await,
            database: self.engine.events_since(0, 1).await.is_ok(),
            kiosk: self.kiosk_frame_file.as_ref().is_none_or(|p| p.exists()),
        }
    }

    /// Probes until healthy or `deadline`, and answers with the last report.
    pub async fn wait_healthy(&self, deadline: Duration) -> HealthReport {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let report = self.run().await;
            if report.healthy() || tokio::time::Instant::now() >= until {
                return report;
            }
            tokio::time::sleep_until((tokio::time::Instant::now() + PROBE_EVERY).min(until)).await;
        }
    }
}

/// A real request over a real socket to the node's own listener: proves the server
/// accepts and answers, which a flag set by the server itself could not.
async fn http_ok(addr: SocketAddr) -> bool {
    let target = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    };
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(target).await.ok()?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.ok()?;
        Some(&head == b"HTTP/1.1 200")
    };
    matches!(
        tokio::time::timeout(HTTP_TIMEOUT, probe).await,
        Ok(Some(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trial_boot_is_healthy_only_when_every_probe_passes() {
        let all = HealthReport {
            http: true,
            database: true,
            kiosk: true,
        };
        assert!(all.healthy());
        for broken in [
            HealthReport { http: false, ..all },
            HealthReport {
                database: false,
                ..all
            },
            HealthReport {
                kiosk: false,
                ..all
            },
        ] {
            assert!(!broken.healthy(), "{broken:?} passed");
        }
    }
}
