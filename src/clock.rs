//! The proxy's one notion of time for rate limits and anomaly windows: the
//! system's monotonic clock in service, a clock the test advances in tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Clock {
    start: Instant,
    /// Nanoseconds set by a test; `None` follows the system clock.
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock {
            start: Instant::now(),
            manual: None,
        }
    }

    /// A clock that stands still until `advance` moves it.
    pub fn manual() -> Clock {
        Clock {
            start: Instant::now(),
            manual: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(m) = &self.manual {
            m.fetch_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX), Ordering::SeqCst);
        }
    }

    /// Time since the clock started.
    pub fn now(&self) -> Duration {
        match &self.manual {
            Some(m) => Duration::from_nanos(m.load(Ordering::SeqCst)),
            None => self.start.elapsed(),
        }
    }
}

impl governor::clock::Clock for Clock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Clock::now(self)
    }
}
