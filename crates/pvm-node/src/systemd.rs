//! systemd integration for `Type=notify` units: readiness, status line, stopping, watchdog.
//!
//! The notify protocol is one datagram of `KEY=value` lines sent to the socket named by
//! `NOTIFY_SOCKET`, so it is spoken here directly rather than through a crate that reads the
//! process environment: the environment is injected, and tests can point it at their own socket.
//! Without `NOTIFY_SOCKET` (a desktop, a test) every call is a no-op.
//!
//! Entry points: [`notify_ready`], [`notify_status`], [`notify_stopping`] and
//! [`spawn_watchdog_from_env`].

use std::io;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Where notifications go, taken from `NOTIFY_SOCKET`; sends nothing when it was unset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notifier {
    target: Option<String>,
}

impl Notifier {
    /// A notifier for the socket named by `NOTIFY_SOCKET` in `env`, if any.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            target: env("NOTIFY_SOCKET").filter(|socket| !socket.is_empty()),
        }
    }

    /// A notifier for this process's `NOTIFY_SOCKET`.
    pub fn from_process_env() -> Self {
        Self::from_env(&|name| std::env::var(name).ok())
    }

    /// True when there is a socket to notify.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Tells systemd start-up is finished (`READY=1`).
    pub fn ready(&self) -> io::Result<()> {
        self.send("READY=1")
    }

    /// Sets the one-line status `systemctl status` shows (`STATUS=`).
    pub fn status(&self, status: &str) -> io::Result<()> {
        // A newline would start a new assignment in the datagram.
        let one_line = status.replace(['\n', '\r'], " ");
        self.send(&format!("STATUS={one_line}"))
    }

    /// Tells systemd the node is shutting down (`STOPPING=1`).
    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }

    /// One watchdog keep-alive (`WATCHDOG=1`).
    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    /// Sends one raw notification (`KEY=value` lines); a no-op without a socket.
    pub fn send(&self, message: &str) -> io::Result<()> {
        match &self.target {
            Some(target) => send_datagram(target, message.as_bytes()),
            None => Ok(()),
        }
    }
}

#[cfg(unix)]
fn send_datagram(target: &str, message: &[u8]) -> io::Result<()> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    // Never stall a runtime worker on a full systemd queue: a lost keep-alive is followed by
    // the next one, and a lost READY=1 is reported to the caller.
    socket.set_nonblocking(true)?;
    let sent = match target.strip_prefix('@') {
        Some(name) => send_abstract(&socket, name, message)?,
        None => socket.send_to(message, target)?,
    };
    if sent == message.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "systemd notification was cut short",
        ))
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(
    socket: &std::os::unix::net::UnixDatagram,
    name: &str,
    message: &[u8],
) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    socket.send_to_addr(message, &address)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn send_abstract(
    _socket: &std::os::unix::net::UnixDatagram,
    _name: &str,
    _message: &[u8],
) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract notify sockets exist only on Linux",
    ))
}

#[cfg(not(unix))]
fn send_datagram(_target: &str, _message: &[u8]) -> io::Result<()> {
    Ok(())
}

/// `READY=1` to this process's `NOTIFY_SOCKET` (no-op without one).
pub fn notify_ready() -> io::Result<()> {
    Notifier::from_process_env().ready()
}

/// `STATUS=…` to this process's `NOTIFY_SOCKET` (no-op without one).
pub fn notify_status(status: &str) -> io::Result<()> {
    Notifier::from_process_env().status(status)
}

/// `STOPPING=1` to this process's `NOTIFY_SOCKET` (no-op without one).
pub fn notify_stopping() -> io::Result<()> {
    Notifier::from_process_env().stopping()
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, as systemd recommends, or `None`
/// when the watchdog is off or meant for another process (`WATCHDOG_PID` ≠ `own_pid`).
pub fn watchdog_ping_interval(
    env: &dyn Fn(&str) -> Option<String>,
    own_pid: u32,
) -> Option<Duration> {
    let usec: u64 = env("WATCHDOG_USEC")?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = env("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

/// Spawns the keep-alive task: every `every`, asks `healthy` and sends `WATCHDOG=1` only if it
/// says yes. When the node's writer is stuck, `healthy` returns false, the pings stop, and
/// systemd restarts the node once `WatchdogSec=` passes — which is the point of a watchdog.
/// Must be called inside a tokio runtime; abort the handle to stop it.
pub fn spawn_watchdog<F>(notifier: Notifier, every: Duration, healthy: F) -> JoinHandle<()>
where
    F: Fn() -> bool + Send + 'static,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        // After a long stall, catch up with one ping rather than a burst.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Log transitions only, so a stuck node does not flood the journal.
        let mut was_healthy = true;
        loop {
            ticker.tick().await;
            let is_healthy = healthy();
            if is_healthy != was_healthy {
                if is_healthy {
                    tracing::info!("node healthy again; resuming watchdog pings");
                } else {
                    tracing::warn!("node unhealthy; withholding watchdog pings");
                }
                was_healthy = is_healthy;
            }
            if is_healthy {
                if let Err(error) = notifier.watchdog() {
                    tracing::warn!(%error, "watchdog ping failed");
                }
            }
        }
    })
}

/// Spawns [`spawn_watchdog`] for this process when systemd asked for a watchdog
/// (`NOTIFY_SOCKET` and `WATCHDOG_USEC` set, `WATCHDOG_PID` ours or unset); `None` otherwise.
pub fn spawn_watchdog_from_env<F>(healthy: F) -> Option<JoinHandle<()>>
where
    F: Fn() -> bool + Send + 'static,
{
    let env = |name: &str| std::env::var(name).ok();
    let notifier = Notifier::from_env(&env);
    if !notifier.is_enabled() {
        return None;
    }
    let every = watchdog_ping_interval(&env, std::process::id())?;
    Some(spawn_watchdog(notifier, every, healthy))
}
