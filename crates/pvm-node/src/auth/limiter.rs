//! Per-client limit on failed logins, in memory: a restart forgets it, which is fine for a
//! limit measured in minutes.

use pvm_core::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Counts failed attempts per client IP in a sliding window. A client with `max_failures`
/// failures inside the window is refused until the oldest of them leaves the window.
///
/// Requests whose address is unknown (no connection info) share one bucket, so they are
/// limited together rather than not at all.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    max_failures: usize,
    window_ms: i64,
    failures: HashMap<Option<IpAddr>, VecDeque<Timestamp>>,
}

/// Above this many tracked clients, stale entries are swept so that a flood of addresses
/// cannot grow memory without bound.
const SWEEP_ABOVE: usize = 1024;

impl LoginLimiter {
    /// Allows `max_failures` failures per `window_ms` per client.
    pub fn new(max_failures: usize, window_ms: i64) -> LoginLimiter {
        LoginLimiter {
            max_failures: max_failures.max(1),
            window_ms: window_ms.max(1),
            failures: HashMap::new(),
        }
    }

    /// `Err(seconds)` if `client` must wait that long before trying again.
    pub fn check(&mut self, client: Option<IpAddr>, now: Timestamp) -> Result<(), u64> {
        let window_ms = self.window_ms;
        let Some(recent) = self.failures.get_mut(&client) else {
            return Ok(());
        };
        forget_old(recent, now, window_ms);
        if recent.len() < self.max_failures {
            return Ok(());
        }
        let oldest = recent.front().copied().unwrap_or(now);
        let wait_ms = oldest.plus_millis(window_ms).millis_since(now).max(1);
        // Round up: "retry after 0 seconds" would invite an immediate, refused retry.
        Err(u64::try_from(wait_ms).unwrap_or(1).div_ceil(1000))
    }

    /// Records a failed attempt by `client` at `now`.
    pub fn record_failure(&mut self, client: Option<IpAddr>, now: Timestamp) {
        if self.failures.len() >= SWEEP_ABOVE {
            let window_ms = self.window_ms;
            self.failures.retain(|_, recent| {
                forget_old(recent, now, window_ms);
                !recent.is_empty()
            });
        }
        let recent = self.failures.entry(client).or_default();
        forget_old(recent, now, self.window_ms);
        recent.push_back(now);
        // Only the newest `max_failures` matter for the decision.
        while recent.len() > self.max_failures {
            recent.pop_front();
        }
    }
}

fn forget_old(recent: &mut VecDeque<Timestamp>, now: Timestamp, window_ms: i64) {
    while recent
        .front()
        .is_some_and(|t| now.millis_since(*t) >= window_ms)
    {
        recent.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const PHONE: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)));
    const TABLET: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 21)));

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn fifth_failure_within_a_minute_blocks_the_client_until_the_first_ages_out() {
        let mut limiter = LoginLimiter::new(5, 60_000);
        for i in 0..5 {
            assert_eq!(limiter.check(PHONE, at(i * 1_000)), Ok(()));
            limiter.record_failure(PHONE, at(i * 1_000));
        }
        // First failure at 0 s, so the client may try again at 60 s.
        assert_eq!(limiter.check(PHONE, at(4_500)), Err(56));
        assert_eq!(limiter.check(PHONE, at(59_001)), Err(1));
        assert_eq!(limiter.check(PHONE, at(60_000)), Ok(()));
    }

    #[test]
    fn other_clients_are_not_affected() {
        let mut limiter = LoginLimiter::new(5, 60_000);
        for _ in 0..5 {
            limiter.record_failure(PHONE, at(0));
        }
        assert!(limiter.check(PHONE, at(1)).is_err());
        assert_eq!(limiter.check(TABLET, at(1)), Ok(()));
        assert_eq!(limiter.check(None, at(1)), Ok(()));
    }

    #[test]
    fn failures_spread_over_more_than_the_window_never_block() {
        let mut limiter = LoginLimiter::new(5, 60_000);
        for i in 0..20 {
            let now = at(i * 15_000);
            assert_eq!(limiter.check(PHONE, now), Ok(()), "attempt {i}");
            limiter.record_failure(PHONE, now);
        }
    }

    #[test]
    fn many_clients_do_not_accumulate_forever() {
        let mut limiter = LoginLimiter::new(5, 60_000);
        for i in 0..3_000u32 {
            let ip = Some(IpAddr::V4(Ipv4Addr::from(i)));
            limiter.record_failure(ip, at(i64::from(i) * 1_000));
        }
        assert!(limiter.failures.len() <= SWEEP_ABOVE + 1);
    }
}
