//! The notify protocol against a real datagram socket standing in for systemd's.
#![cfg(unix)]

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pvm_node::systemd::{spawn_watchdog, watchdog_ping_interval, Notifier};

/// A bound socket in a temporary directory, like the one systemd listens on.
struct FakeSystemd {
    _dir: tempfile::TempDir,
    path: PathBuf,
    socket: UnixDatagram,
}

impl FakeSystemd {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        Self {
            _dir: dir,
            path,
            socket,
        }
    }

    fn notifier(&self) -> Notifier {
        let socket = self.path.to_str().unwrap().to_owned();
        Notifier::from_env(&|name| (name == "NOTIFY_SOCKET").then(|| socket.clone()))
    }

    /// The next datagram, or `None` if none arrives within `wait`.
    fn receive(&self, wait: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buffer = [0u8; 4096];
        match self.socket.recv(&mut buffer) {
            Ok(length) => Some(String::from_utf8(buffer[..length].to_vec()).unwrap()),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(error) => panic!("receive failed: {error}"),
        }
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn ready_status_and_stopping_arrive_as_datagrams() {
    let systemd = FakeSystemd::new();
    let notifier = systemd.notifier();
    assert!(notifier.is_enabled());

    notifier.ready().unwrap();
    assert_eq!(systemd.receive(WAIT).as_deref(), Some("READY=1"));

    notifier.status("level 3 of 20, 41 players").unwrap();
    assert_eq!(
        systemd.receive(WAIT).as_deref(),
        Some("STATUS=level 3 of 20, 41 players")
    );

    notifier.stopping().unwrap();
    assert_eq!(systemd.receive(WAIT).as_deref(), Some("STOPPING=1"));
}

#[test]
fn status_with_newlines_stays_one_assignment() {
    let systemd = FakeSystemd::new();
    systemd.notifier().status("line one\nREADY=1").unwrap();
    assert_eq!(
        systemd.receive(WAIT).as_deref(),
        Some("STATUS=line one READY=1")
    );
}

#[test]
fn without_notify_socket_every_call_is_a_no_op() {
    let notifier = Notifier::from_env(&|_| None);
    assert!(!notifier.is_enabled());
    notifier.ready().unwrap();
    notifier.status("anything").unwrap();
    notifier.watchdog().unwrap();
}

#[test]
fn missing_socket_is_reported_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone").to_str().unwrap().to_owned();
    let notifier = Notifier::from_env(&|name| (name == "NOTIFY_SOCKET").then(|| gone.clone()));
    assert!(notifier.ready().is_err());
}

#[cfg(target_os = "linux")]
#[test]
fn abstract_socket_names_starting_with_at_are_reached() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("pvm-node-test-{}-{:?}", std::process::id(), Instant::now());
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let receiver = UnixDatagram::bind_addr(&address).unwrap();
    receiver.set_read_timeout(Some(WAIT)).unwrap();

    let target = format!("@{name}");
    Notifier::from_env(&|key| (key == "NOTIFY_SOCKET").then(|| target.clone()))
        .ready()
        .unwrap();
    let mut buffer = [0u8; 64];
    let length = receiver.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..length], b"READY=1");
}

#[test]
fn ping_interval_is_half_of_watchdog_usec() {
    let env = |name: &str| (name == "WATCHDOG_USEC").then(|| "10000000".to_owned());
    assert_eq!(
        watchdog_ping_interval(&env, 42),
        Some(Duration::from_secs(5))
    );
}

#[test]
fn watchdog_is_off_without_usec_or_for_another_pid() {
    assert_eq!(watchdog_ping_interval(&|_| None, 42), None);

    let for_pid = |pid: &'static str| {
        move |name: &str| match name {
            "WATCHDOG_USEC" => Some("2000000".to_owned()),
            "WATCHDOG_PID" => Some(pid.to_owned()),
            _ => None,
        }
    };
    assert_eq!(watchdog_ping_interval(&for_pid("7"), 42), None);
    assert_eq!(
        watchdog_ping_interval(&for_pid("42"), 42),
        Some(Duration::from_secs(1))
    );

    let zero = |name: &str| (name == "WATCHDOG_USEC").then(|| "0".to_owned());
    assert_eq!(watchdog_ping_interval(&zero, 42), None);
}

#[tokio::test]
async fn healthy_node_pings_the_watchdog_repeatedly() {
    let systemd = FakeSystemd::new();
    let task = spawn_watchdog(systemd.notifier(), Duration::from_millis(10), || true);
    let received = tokio::task::spawn_blocking(move || {
        let first = systemd.receive(WAIT);
        let second = systemd.receive(WAIT);
        (first, second)
    })
    .await
    .unwrap();
    task.abort();
    assert_eq!(received.0.as_deref(), Some("WATCHDOG=1"));
    assert_eq!(received.1.as_deref(), Some("WATCHDOG=1"));
}

#[tokio::test]
async fn unhealthy_node_withholds_pings_until_it_recovers() {
    let systemd = FakeSystemd::new();
    let checks = Arc::new(AtomicUsize::new(0));
    let healthy = Arc::new(AtomicBool::new(false));
    let task = spawn_watchdog(systemd.notifier(), Duration::from_millis(10), {
        let checks = Arc::clone(&checks);
        let healthy = Arc::clone(&healthy);
        move || {
            checks.fetch_add(1, Ordering::SeqCst);
            healthy.load(Ordering::SeqCst)
        }
    });

    // Wait until the task has asked several times, so silence is not just a slow start.
    let started = Instant::now();
    while checks.load(Ordering::SeqCst) < 5 {
        assert!(started.elapsed() < WAIT, "the watchdog task never ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (systemd, silence) = tokio::task::spawn_blocking(move || {
        let silence = systemd.receive(Duration::from_millis(100));
        (systemd, silence)
    })
    .await
    .unwrap();
    assert_eq!(silence, None, "no WATCHDOG=1 while unhealthy");

    healthy.store(true, Ordering::SeqCst);
    let resumed = tokio::task::spawn_blocking(move || systemd.receive(WAIT))
        .await
        .unwrap();
    task.abort();
    assert_eq!(resumed.as_deref(), Some("WATCHDOG=1"));
}
