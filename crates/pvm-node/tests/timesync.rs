//! Talks to a real NTP server: a private chronyd on 127.0.0.1 that never touches the clock (`-x`).
//! Needs the `chrony` package (chronyd on PATH or in /usr/sbin).

use std::io;
use std::net::UdpSocket as StdUdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pvm_node::timesync::{
    apply_attempt, query_server, query_server_with_clock, spawn, spawn_with_clock, LocalClock,
    SystemClock, TimeStatus, TimeSyncSettings,
};

/// A chronyd serving NTP on a free loopback port; killed when dropped.
struct Chronyd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Chronyd {
    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn chronyd_binary() -> PathBuf {
    ["/usr/sbin/chronyd", "/sbin/chronyd", "/usr/bin/chronyd"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("chronyd"))
}

fn free_udp_port() -> u16 {
    StdUdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chronyd and waits until it answers SNTP (it is unsynchronised for a moment at start).
async fn start_chronyd() -> Chronyd {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let conf = dir.path().join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0\n\
             pidfile {pid}\ndriftfile {drift}\n",
            pid = dir.path().join("chronyd.pid").display(),
            drift = dir.path().join("chrony.drift").display(),
        ),
    )
    .unwrap();
    let child = Command::new(chronyd_binary())
        // -d: foreground; -x: never touch the system clock; -u root: the tempdir is ours.
        .args(["-d", "-x", "-u", "root", "-f"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chronyd (install the chrony package): {e}"));
    let chronyd = Chronyd {
        child,
        port,
        _dir: dir,
    };
    for _ in 0..100 {
        if query_server(&chronyd.server(), Duration::from_millis(200))
            .await
            .is_ok()
        {
            return chronyd;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chronyd on {} never answered", chronyd.server());
}

fn settings_for(servers: Vec<String>) -> TimeSyncSettings {
    TimeSyncSettings {
        servers,
        interval: Duration::from_secs(1),
        query_timeout: Duration::from_millis(300),
        set_system_clock: false,
        step_threshold_ms: 500,
    }
}

async fn wait_for(
    status: &mut tokio::sync::watch::Receiver<TimeStatus>,
    what: impl Fn(&TimeStatus) -> bool,
) -> TimeStatus {
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| what(s)))
        .await
        .expect("status did not arrive in time")
        .unwrap()
        .clone()
}

#[tokio::test]
async fn local_chronyd_answers_with_its_stratum_and_a_tiny_offset() {
    let chronyd = start_chronyd().await;
    let sample = query_server(&chronyd.server(), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(sample.stratum, 8);
    // Same machine, same clock: anything beyond a few ms would be a unit or sign bug.
    assert!(sample.offset_ms.abs() < 50, "offset {}", sample.offset_ms);
    assert_eq!(sample.server, chronyd.server());
}

#[tokio::test]
async fn a_clock_running_behind_gets_a_positive_offset_of_the_right_size() {
    let chronyd = start_chronyd().await;
    // Pretend our clock is 90 s slow: the server is then 90 s ahead of us.
    let behind = query_server_with_clock(
        &chronyd.server(),
        Duration::from_secs(1),
        LocalClock::skewed(-90_000),
    )
    .await
    .unwrap();
    assert!(
        (behind.offset_ms - 90_000).abs() < 50,
        "offset {}",
        behind.offset_ms
    );
    let ahead = query_server_with_clock(
        &chronyd.server(),
        Duration::from_secs(1),
        LocalClock::skewed(2_500),
    )
    .await
    .unwrap();
    assert!(
        (ahead.offset_ms + 2_500).abs() < 50,
        "offset {}",
        ahead.offset_ms
    );
}

#[tokio::test]
async fn first_sync_makes_the_clock_trusted_and_later_syncs_update_last_sync() {
    let chronyd = start_chronyd().await;
    let handle = spawn(settings_for(vec![chronyd.server()]));
    let mut status = handle.status();
    assert!(!status.borrow().trusted, "trusted before any answer");

    let first = wait_for(&mut status, |s| s.trusted).await;
    assert_eq!(first.stratum, Some(8));
    assert_eq!(first.server, Some(chronyd.server()));
    assert_eq!(first.last_error, None);
    assert!(first.offset_ms.unwrap().abs() < 50);
    let first_sync = first.last_sync_ms.unwrap();

    let second = wait_for(&mut status, |s| s.last_sync_ms > Some(first_sync)).await;
    assert!(second.trusted);
    assert!(second.last_sync_ms.unwrap() >= first_sync + 500);
    handle.shutdown();
}

#[tokio::test]
async fn a_silent_server_leaves_the_clock_untrusted_with_an_error() {
    // A bound socket that never replies: the request is delivered, the answer never comes.
    let silent = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap().to_string();
    let handle = spawn(settings_for(vec![server.clone()]));
    let mut status = handle.status();

    let failed = wait_for(&mut status, |s| s.last_error.is_some()).await;
    assert!(!failed.trusted);
    assert_eq!(failed.last_sync_ms, None);
    let error = failed.last_error.unwrap();
    assert!(error.contains("did not answer"), "{error}");
    assert!(error.contains(&server), "{error}");
}

#[tokio::test]
async fn a_dead_server_is_skipped_for_the_next_one() {
    let chronyd = start_chronyd().await;
    let silent = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    let servers = vec![silent.local_addr().unwrap().to_string(), chronyd.server()];
    let handle = spawn(settings_for(servers));
    let mut status = handle.status();
    let synced = wait_for(&mut status, |s| s.trusted).await;
    assert_eq!(synced.server, Some(chronyd.server()));
}

/// Records the requested time, or refuses like a process without CAP_SYS_TIME.
struct FakeClock {
    refuse: bool,
    set_to: Mutex<Vec<i64>>,
}

impl SystemClock for FakeClock {
    fn set_unix_ms(&self, unix_ms: i64) -> io::Result<()> {
        if self.refuse {
            return Err(io::Error::from_raw_os_error(1));
        }
        self.set_to.lock().unwrap().push(unix_ms);
        Ok(())
    }
}

#[tokio::test]
async fn a_refused_clock_step_is_reported_but_the_time_is_still_trusted() {
    let chronyd = start_chronyd().await;
    let clock = Arc::new(FakeClock {
        refuse: true,
        set_to: Mutex::new(Vec::new()),
    });
    let settings = TimeSyncSettings {
        set_system_clock: true,
        // Negative: any measured offset, even 0 ms, counts as "too far", so a step is attempted.
        step_threshold_ms: -1,
        ..settings_for(vec![chronyd.server()])
    };
    let handle = spawn_with_clock(settings, clock);
    let mut status = handle.status();
    let synced = wait_for(&mut status, |s| s.trusted).await;
    let error = synced.last_error.unwrap();
    assert!(error.contains("could not be set"), "{error}");
    assert!(synced.offset_ms.is_some());
}

#[tokio::test]
async fn offsets_beyond_the_threshold_step_the_clock_and_leave_nothing_pending() {
    let chronyd = start_chronyd().await;
    let sample = query_server(&chronyd.server(), Duration::from_secs(1))
        .await
        .unwrap();
    let clock = FakeClock {
        refuse: false,
        set_to: Mutex::new(Vec::new()),
    };
    let far_off = pvm_node::timesync::SntpSample {
        offset_ms: 90_000,
        ..sample
    };
    let settings = TimeSyncSettings {
        set_system_clock: true,
        ..settings_for(vec![chronyd.server()])
    };
    let before = pvm_node::timesync::system_now_ms();
    let status = apply_attempt(
        &TimeStatus::default(),
        Ok(far_off),
        &settings,
        &clock,
        before,
    );
    let set_to = clock.set_to.lock().unwrap().clone();
    assert_eq!(set_to.len(), 1);
    assert!(set_to[0] >= before + 90_000 && set_to[0] < before + 91_000);
    assert_eq!(status.offset_ms, Some(0));
    assert!(status.trusted);
    assert_eq!(status.last_error, None);

    // Within the threshold nothing is touched and the offset stays pending.
    let near = pvm_node::timesync::SntpSample {
        offset_ms: 120,
        server: chronyd.server(),
        roundtrip_ms: 0,
        stratum: 8,
    };
    let status = apply_attempt(&status, Ok(near), &settings, &clock, before);
    assert_eq!(clock.set_to.lock().unwrap().len(), 1);
    assert_eq!(status.offset_ms, Some(120));
}
