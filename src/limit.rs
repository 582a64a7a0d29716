//! Per-destination limits: requests per second with a burst, and optionally
//! request-body bytes per minute (slow exfiltration stays under a request
//! rate). Limiters outlive reloads that leave a destination's limit unchanged.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::Clock;
use crate::policy::RateLimit;

type Limiter = RateLimiter<NotKeyed, InMemoryState, Clock, NoOpMiddleware<Duration>>;

/// The limiters of one destination.
pub struct Limits {
    pub config: RateLimit,
    requests: Limiter,
    bytes: Option<(Limiter, u32)>,
    clock: Clock,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").field("config", &self.config).finish()
    }
}

/// How long to wait, in whole seconds (for `Retry-After`), at least 1.
fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl Limits {
    pub fn new(config: RateLimit, clock: &Clock) -> Limits {
        let burst = NonZeroU32::new(config.burst).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs_f64(1.0 / config.per_second);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        let bytes = config.bytes_per_minute.map(|b| {
            let per_minute = NonZeroU32::new(u32::try_from(b).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
            (
                RateLimiter::direct_with_clock(Quota::per_minute(per_minute), clock.clone()),
                per_minute.get(),
            )
        });
        Limits {
            config,
            requests: RateLimiter::direct_with_clock(quota, clock.clone()),
            bytes,
            clock: clock.clone(),
        }
    }

    /// One more request; `Err(seconds to wait)` when over the limit.
    pub fn check_request(&self) -> Result<(), u64> {
        self.requests
            .check()
            .map_err(|not_until| retry_secs(not_until.wait_time_from(self.clock.now())).max(1))
    }

    /// `n` more body bytes; `Err(seconds to wait)` when over the budget.
    pub fn check_bytes(&self, n: u64) -> Result<(), u64> {
        let Some((limiter, per_minute)) = &self.bytes else {
            return Ok(());
        };
        let Some(n) = u32::try_from(n).ok().and_then(NonZeroU32::new) else {
            return if n == 0 { Ok(()) } else { Err(60) };
        };
        if n.get() > *per_minute {
            return Err(60);
        }
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(retry_secs(not_until.wait_time_from(self.clock.now())).max(1)),
            Err(_) => Err(60),
        }
    }

    /// Whether this destination has a byte budget (its bodies must be counted before sending).
    pub fn has_byte_budget(&self) -> bool {
        self.bytes.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_second: f64, burst: u32, bytes: Option<u64>) -> (Limits, Clock) {
        let clock = Clock::manual();
        (
            Limits::new(
                RateLimit {
                    per_second,
                    burst,
                    bytes_per_minute: bytes,
                    scope: crate::policy::Scope::Host,
                },
                &clock,
            ),
            clock,
        )
    }

    #[test]
    fn burst_then_refill() {
        let (l, clock) = limits(2.0, 3, None);
        for i in 0..3 {
            assert_eq!(l.check_request(), Ok(()), "request {i} within the burst");
        }
        assert_eq!(
            l.check_request(),
            Err(1),
            "over the burst: retry in about half a second, rounded up"
        );
        clock.advance(Duration::from_millis(500));
        assert_eq!(l.check_request(), Ok(()), "one token back after 1/rate");
        assert!(l.check_request().is_err());
    }

    #[test]
    fn slow_rate_gives_a_long_retry_after() {
        let (l, _clock) = limits(0.1, 1, None);
        assert_eq!(l.check_request(), Ok(()));
        assert_eq!(l.check_request(), Err(10));
    }

    #[test]
    fn byte_budget() {
        let (l, clock) = limits(100.0, 100, Some(6000));
        assert_eq!(l.check_bytes(4000), Ok(()));
        assert!(l.check_bytes(4000).is_err(), "over the minute's budget");
        assert_eq!(l.check_bytes(7000), Err(60), "bigger than a whole minute's budget");
        clock.advance(Duration::from_secs(60));
        assert_eq!(l.check_bytes(4000), Ok(()));
        assert_eq!(l.check_bytes(0), Ok(()));
    }
}
