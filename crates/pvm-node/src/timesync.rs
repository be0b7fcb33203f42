//! SNTP time keeping. The Pi has no real-time clock, so after a power cut its clock is wrong until
//! a time server answers; until then the status says "not trusted" and the API can warn the floor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The NTP port used when a server is configured without one.
pub const DEFAULT_NTP_PORT: u16 = 123;

/// How the node keeps its clock honest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSyncSettings {
    /// `host` or `host:port` (IPv6 as `[addr]:port`); tried in order until one answers.
    pub servers: Vec<String>,
    /// Time between two synchronisations.
    pub interval: Duration,
    /// How long to wait for one server's answer.
    pub query_timeout: Duration,
    /// Step the system clock when it is off by more than `step_threshold_ms`.
    pub set_system_clock: bool,
    /// Offsets at or below this (absolute, in ms) are left alone.
    pub step_threshold_ms: i64,
}

impl Default for TimeSyncSettings {
    fn default() -> Self {
        TimeSyncSettings {
            servers: vec!["pool.ntp.org".to_owned()],
            interval: Duration::from_secs(15 * 60),
            query_timeout: Duration::from_secs(3),
            set_system_clock: false,
            step_threshold_ms: 500,
        }
    }
}

/// What the node knows about its clock, published on a watch channel for the API.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeStatus {
    /// False until the first successful synchronisation since start.
    pub trusted: bool,
    /// System time (ms since the Unix epoch) of the last successful synchronisation.
    pub last_sync_ms: Option<i64>,
    /// Server time minus system time, in ms, still to be applied (0 after the clock was stepped).
    pub offset_ms: Option<i64>,
    /// Stratum of the server that last answered.
    pub stratum: Option<u8>,
    /// The server that last answered, as configured.
    pub server: Option<String>,
    /// Why the last attempt (or the last clock step) failed; cleared by a clean synchronisation.
    pub last_error: Option<String>,
}

/// One answer from one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SntpSample {
    /// The server as configured.
    pub server: String,
    /// Server time minus system time, in ms.
    pub offset_ms: i64,
    /// Round trip of the exchange, in ms.
    pub roundtrip_ms: u64,
    /// Stratum the server reported.
    pub stratum: u8,
}

/// Why a time server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TimeSyncError {
    #[error("no time server is configured")]
    NoServers,
    #[error("time server \"{server}\" could not be found: {reason}")]
    Resolve { server: String, reason: String },
    #[error("could not open a network socket to ask \"{server}\" the time: {source}")]
    Socket {
        server: String,
        source: std::io::Error,
    },
    #[error("time server \"{server}\" did not answer within {timeout_ms} ms")]
    Timeout { server: String, timeout_ms: u128 },
    #[error("time server \"{server}\" gave an unusable answer: {reason}")]
    BadAnswer { server: String, reason: String },
    #[error("the system clock is off by {offset_ms} ms but could not be set: {source}")]
    SetClock {
        offset_ms: i64,
        source: std::io::Error,
    },
}

/// Sets the wall clock. A trait so the stepping decision can be tested without CAP_SYS_TIME.
pub trait SystemClock: Send + Sync {
    /// Set the wall clock to `unix_ms` milliseconds since the Unix epoch.
    fn set_unix_ms(&self, unix_ms: i64) -> std::io::Result<()>;
}

/// The real wall clock (CLOCK_REALTIME); setting it needs CAP_SYS_TIME.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealtimeClock;

impl SystemClock for RealtimeClock {
    fn set_unix_ms(&self, unix_ms: i64) -> std::io::Result<()> {
        let timespec = rustix::time::Timespec {
            tv_sec: unix_ms.div_euclid(1_000),
            tv_nsec: unix_ms.rem_euclid(1_000) * 1_000_000,
        };
        rustix::time::clock_settime(rustix::time::ClockId::Realtime, timespec)
            .map_err(std::io::Error::from)
    }
}

/// The system clock in ms since the Unix epoch (negative before 1970, never panics).
pub fn system_now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// The best estimate of the real time: the system clock plus the offset not yet applied.
pub fn corrected_now_ms(status: &TimeStatus) -> i64 {
    system_now_ms().saturating_add(status.offset_ms.unwrap_or(0))
}

/// Turns `host`, `host:port`, `a.b.c.d:port`, `[v6]:port` or a bare IPv6 address into
/// something `lookup_host` accepts, adding the NTP port when none is given.
fn with_default_port(server: &str) -> String {
    let server = server.trim();
    if server.parse::<SocketAddr>().is_ok() {
        return server.to_owned();
    }
    if server.parse::<std::net::Ipv6Addr>().is_ok() {
        return format!("[{server}]:{DEFAULT_NTP_PORT}");
    }
    match server.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => {
            server.to_owned()
        }
        _ => format!("{server}:{DEFAULT_NTP_PORT}"),
    }
}

/// The local clock as the SNTP exchange sees it. `skew_ms` pretends the clock is that far ahead
/// (negative: behind), which lets a test play a wrong clock against a real server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalClock {
    /// Added to the system time for every timestamp of the exchange.
    pub skew_ms: i64,
    micros_since_epoch: u64,
}

impl LocalClock {
    /// The local clock shifted by `skew_ms`.
    pub fn skewed(skew_ms: i64) -> Self {
        LocalClock {
            skew_ms,
            micros_since_epoch: 0,
        }
    }
}

impl sntpc::NtpTimestampGenerator for LocalClock {
    fn init(&mut self) {
        // Unlike the stock generator this never panics on a clock before 1970 (a Pi without RTC
        // may boot with any date); NTP cannot express such times anyway, so they clamp to 0.
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
            Err(_) => 0,
        };
        let skewed = micros.saturating_add(self.skew_ms.saturating_mul(1_000));
        self.micros_since_epoch = u64::try_from(skewed).unwrap_or(0);
    }

    fn timestamp_sec(&self) -> u64 {
        self.micros_since_epoch / 1_000_000
    }

    fn timestamp_subsec_micros(&self) -> u32 {
        // Always below 1_000_000, so the conversion cannot fail.
        u32::try_from(self.micros_since_epoch % 1_000_000).unwrap_or(0)
    }
}

/// Asks one server for the time once.
pub async fn query_server(server: &str, timeout: Duration) -> Result<SntpSample, TimeSyncError> {
    query_server_with_clock(server, timeout, LocalClock::default()).await
}

/// As [`query_server`], measuring against the given local clock.
pub async fn query_server_with_clock(
    server: &str,
    timeout: Duration,
    clock: LocalClock,
) -> Result<SntpSample, TimeSyncError> {
    let target = with_default_port(server);
    let resolve_error = |reason: String| TimeSyncError::Resolve {
        server: server.to_owned(),
        reason,
    };
    let addr = tokio::time::timeout(timeout, tokio::net::lookup_host(target))
        .await
        .map_err(|_| resolve_error("the name lookup timed out".to_owned()))?
        .map_err(|e| resolve_error(e.to_string()))?
        .next()
        .ok_or_else(|| resolve_error("the name has no address".to_owned()))?;
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|source| TimeSyncError::Socket {
            server: server.to_owned(),
            source,
        })?;
    let context = sntpc::NtpContext::new(clock);
    let answer = tokio::time::timeout(timeout, sntpc::get_time(addr, &socket, context))
        .await
        .map_err(|_| TimeSyncError::Timeout {
            server: server.to_owned(),
            timeout_ms: timeout.as_millis(),
        })?
        .map_err(|e| TimeSyncError::BadAnswer {
            server: server.to_owned(),
            reason: describe_sntp_error(e),
        })?;
    Ok(SntpSample {
        server: server.to_owned(),
        // sntpc reports microseconds; round to the nearest millisecond.
        offset_ms: answer.offset().saturating_add(500).div_euclid(1_000),
        roundtrip_ms: answer.roundtrip().saturating_add(500) / 1_000,
        stratum: answer.stratum(),
    })
}

fn describe_sntp_error(error: sntpc::Error) -> String {
    match error {
        sntpc::Error::IncorrectOriginTimestamp => "the answer is not for our request".to_owned(),
        sntpc::Error::IncorrectMode => "the answer is not a server reply".to_owned(),
        sntpc::Error::IncorrectLeapIndicator => "the server is not synchronised itself".to_owned(),
        sntpc::Error::IncorrectResponseVersion => "unsupported NTP version".to_owned(),
        sntpc::Error::IncorrectStratumHeaders => {
            "the server refused (kiss-of-death or bad stratum)".to_owned()
        }
        sntpc::Error::IncorrectPayload => "the packet has the wrong size".to_owned(),
        sntpc::Error::Network => "network error".to_owned(),
        sntpc::Error::AddressResolve => "the address could not be resolved".to_owned(),
        sntpc::Error::ResponseAddressMismatch => "the answer came from another address".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Asks the servers in order and returns the first good answer, or every server's failure.
pub async fn query_first_answering(
    servers: &[String],
    timeout: Duration,
) -> Result<SntpSample, Vec<TimeSyncError>> {
    if servers.is_empty() {
        return Err(vec![TimeSyncError::NoServers]);
    }
    let mut failures = Vec::new();
    for server in servers {
        match query_server(server, timeout).await {
            Ok(sample) => return Ok(sample),
            Err(error) => failures.push(error),
        }
    }
    Err(failures)
}

/// Folds one synchronisation attempt into the status. A failure keeps what an earlier success
/// taught us (a clock that was right a few minutes ago is still trustworthy) and records why.
pub fn apply_attempt(
    previous: &TimeStatus,
    attempt: Result<SntpSample, Vec<TimeSyncError>>,
    settings: &TimeSyncSettings,
    clock: &dyn SystemClock,
    now_ms: i64,
) -> TimeStatus {
    match attempt {
        Err(failures) => {
            let reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
            TimeStatus {
                last_error: Some(reasons.join("; ")),
                ..previous.clone()
            }
        }
        Ok(sample) => {
            let mut status = TimeStatus {
                trusted: true,
                last_sync_ms: Some(now_ms),
                offset_ms: Some(sample.offset_ms),
                stratum: Some(sample.stratum),
                server: Some(sample.server),
                last_error: None,
            };
            if settings.set_system_clock && sample.offset_ms.abs() > settings.step_threshold_ms {
                let corrected = system_now_ms().saturating_add(sample.offset_ms);
                match clock.set_unix_ms(corrected) {
                    Ok(()) => {
                        tracing::info!(offset_ms = sample.offset_ms, "system clock stepped");
                        status.offset_ms = Some(0);
                        status.last_sync_ms = Some(corrected);
                    }
                    Err(source) => {
                        let error = TimeSyncError::SetClock {
                            offset_ms: sample.offset_ms,
                            source,
                        };
                        tracing::warn!(%error, "clock step failed");
                        status.last_error = Some(error.to_string());
                    }
                }
            }
            status
        }
    }
}

/// The running synchroniser. Dropping it stops the background task.
#[derive(Debug)]
pub struct TimeSyncHandle {
    status: watch::Receiver<TimeStatus>,
    task: JoinHandle<()>,
}

impl TimeSyncHandle {
    /// A receiver of the current status (cheap to clone, one per API consumer).
    pub fn status(&self) -> watch::Receiver<TimeStatus> {
        self.status.clone()
    }

    /// Stops the background task.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for TimeSyncHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts synchronising now and then every `interval`, stepping the real system clock if allowed.
/// Must be called inside a Tokio runtime.
pub fn spawn(settings: TimeSyncSettings) -> TimeSyncHandle {
    spawn_with_clock(settings, Arc::new(RealtimeClock))
}

/// As [`spawn`], with the clock to step given explicitly.
pub fn spawn_with_clock(settings: TimeSyncSettings, clock: Arc<dyn SystemClock>) -> TimeSyncHandle {
    let (sender, receiver) = watch::channel(TimeStatus::default());
    let task = tokio::spawn(async move {
        // A zero interval would spin; one second is the floor anyone could mean.
        let mut ticker = tokio::time::interval(settings.interval.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let attempt = query_first_answering(&settings.servers, settings.query_timeout).await;
            if let Err(failures) = &attempt {
                tracing::warn!(failures = failures.len(), "no time server answered");
            }
            let previous = sender.borrow().clone();
            let next = apply_attempt(
                &previous,
                attempt,
                &settings,
                clock.as_ref(),
                system_now_ms(),
            );
            sender.send_replace(next);
        }
    });
    TimeSyncHandle {
        status: receiver,
        task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_without_port_get_the_ntp_port() {
        assert_eq!(with_default_port("pool.ntp.org"), "pool.ntp.org:123");
        assert_eq!(with_default_port("10.0.0.1"), "10.0.0.1:123");
        assert_eq!(with_default_port("::1"), "[::1]:123");
        assert_eq!(with_default_port("[::1]:1123"), "[::1]:1123");
        assert_eq!(with_default_port("127.0.0.1:1123"), "127.0.0.1:1123");
        assert_eq!(with_default_port("time.lan:4123"), "time.lan:4123");
    }

    /// Panics if touched: these tests never ask for a clock step.
    struct UntouchableClock;

    impl SystemClock for UntouchableClock {
        fn set_unix_ms(&self, _unix_ms: i64) -> std::io::Result<()> {
            panic!("the clock must not be stepped here");
        }
    }

    fn sample(offset_ms: i64) -> SntpSample {
        SntpSample {
            server: "ntp.lan".to_owned(),
            offset_ms,
            roundtrip_ms: 3,
            stratum: 2,
        }
    }

    fn silent_server() -> Vec<TimeSyncError> {
        vec![TimeSyncError::Timeout {
            server: "ntp.lan".to_owned(),
            timeout_ms: 3_000,
        }]
    }

    #[test]
    fn a_failure_after_a_sync_keeps_the_clock_trusted_and_says_why() {
        let settings = TimeSyncSettings::default();
        let synced = apply_attempt(
            &TimeStatus::default(),
            Ok(sample(40)),
            &settings,
            &UntouchableClock,
            1_000,
        );
        let failed = apply_attempt(
            &synced,
            Err(silent_server()),
            &settings,
            &UntouchableClock,
            2_000,
        );
        assert!(failed.trusted);
        assert_eq!(failed.last_sync_ms, Some(1_000));
        assert_eq!(failed.offset_ms, Some(40));
        assert_eq!(
            failed.last_error.as_deref(),
            Some("time server \"ntp.lan\" did not answer within 3000 ms")
        );
    }

    #[test]
    fn a_sync_after_a_failure_clears_the_error() {
        let settings = TimeSyncSettings::default();
        let failed = apply_attempt(
            &TimeStatus::default(),
            Err(silent_server()),
            &settings,
            &UntouchableClock,
            1_000,
        );
        assert!(!failed.trusted);
        let synced = apply_attempt(&failed, Ok(sample(-7)), &settings, &UntouchableClock, 2_000);
        assert!(synced.trusted);
        assert_eq!(synced.last_error, None);
        assert_eq!(synced.offset_ms, Some(-7));
        assert_eq!(synced.stratum, Some(2));
        assert_eq!(synced.server.as_deref(), Some("ntp.lan"));
    }

    #[test]
    fn the_clock_is_left_alone_when_stepping_is_off() {
        let settings = TimeSyncSettings {
            set_system_clock: false,
            step_threshold_ms: 0,
            ..TimeSyncSettings::default()
        };
        let synced = apply_attempt(
            &TimeStatus::default(),
            Ok(sample(3_600_000)),
            &settings,
            &UntouchableClock,
            1_000,
        );
        assert_eq!(synced.offset_ms, Some(3_600_000));
    }

    #[test]
    fn corrected_now_adds_the_pending_offset() {
        let status = TimeStatus {
            offset_ms: Some(3_600_000),
            ..TimeStatus::default()
        };
        let before = system_now_ms();
        let corrected = corrected_now_ms(&status);
        let after = system_now_ms();
        assert!(corrected >= before + 3_600_000 && corrected <= after + 3_600_000);
    }
}
