//! Fleet-wide limits: a `scope: fleet` rate limit (and byte budget) is one
//! GCRA in the Redis the fleet shares, checked in one atomic script call per
//! request under a bounded wait; when Redis cannot answer in time,
//! `on_unavailable` decides (this host's own limiter, or a 429).

mod link;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use redis::Script;

use crate::limit::Limits;
use crate::policy::{Destination, OnUnavailable, Scope, SharedLimits};
use crate::store::Snapshot;
use link::Link;

/// The seconds a client is told to wait when the store is down and `on_unavailable: refuse`.
const REFUSE_RETRY_SECS: u64 = 1;

/// The fleet's shared store, as one proxy sees it. Made once at start:
/// `server` settings do not reload.
#[derive(Debug)]
pub struct Fleet {
    link: Arc<Link>,
    script: Script,
    prefix: String,
    on_unavailable: OnUnavailable,
    timeout: Duration,
    errors: Counter,
}

/// Redis did not give an answer in time (or at all).
struct Unavailable;

impl Fleet {
    /// Starts keeping a connection in the background (on the current tokio
    /// runtime) and returns at once; until it is up, requests fall back.
    pub fn start(config: &SharedLimits, errors: Counter, up: Gauge) -> Option<Arc<Fleet>> {
        // The URL was checked when the policy was compiled; its text is never logged.
        let client = redis::Client::open(config.url()).ok()?;
        let script = Script::new(include_str!("gcra.lua"));
        let link = Arc::new(Link::new(up));
        let fleet = Arc::new(Fleet {
            link: link.clone(),
            script: script.clone(),
            prefix: config.key_prefix.clone(),
            on_unavailable: config.on_unavailable,
            timeout: config.timeout,
            errors,
        });
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn(link::supervise(Arc::downgrade(&link), client, script))),
            Err(_) => tracing::warn!("no runtime to reach the fleet store from: fleet-scoped limits fall back"),
        }
        Some(fleet)
    }

    /// One GCRA step of `cost` units on `key`; `Ok(Err(seconds))` when over the limit.
    async fn take(&self, key: &str, interval_us: f64, burst: f64, cost: f64) -> Result<Result<(), u64>, Unavailable> {
        let Some(conn) = self.link.current() else {
            self.errors.inc();
            return Err(Unavailable);
        };
        let mut c = (*conn).clone();
        let mut call = self.script.prepare_invoke();
        call.key(format!("{}{key}", self.prefix))
            .arg(interval_us)
            .arg(burst)
            .arg(cost);
        let outcome = tokio::time::timeout(self.timeout, call.invoke_async::<i64>(&mut c)).await;
        match outcome {
            Ok(Ok(wait_us)) if wait_us <= 0 => Ok(Ok(())),
            Ok(Ok(wait_us)) => Ok(Err(retry_secs(wait_us))),
            Ok(Err(e)) => {
                self.errors.inc();
                if link::is_server_error(&e) {
                    self.link.server_error(&e);
                } else {
                    self.link.lose(&conn, link::cause(&e));
                }
                Err(Unavailable)
            }
            Err(_) => {
                self.errors.inc();
                self.link.lose(&conn, "timeout");
                Err(Unavailable)
            }
        }
    }

    /// What a request gets when the store cannot answer.
    fn fallback(&self, local: impl FnOnce() -> Result<(), u64>) -> Result<(), u64> {
        match self.on_unavailable {
            OnUnavailable::Local => local(),
            OnUnavailable::Refuse => Err(REFUSE_RETRY_SECS),
        }
    }
}

/// Whole seconds to wait (for `Retry-After`), at least 1.
fn retry_secs(wait_us: i64) -> u64 {
    u64::try_from(wait_us).unwrap_or(0).div_ceil(1_000_000).max(1)
}

/// The fleet store and this destination's limiters, when its limit is fleet-wide.
fn fleet_scoped<'a>(snap: &'a Snapshot, dest: &Destination) -> (Option<&'a Fleet>, Option<&'a Limits>) {
    let local = snap.limits_of(dest.index);
    let fleet = snap
        .fleet
        .as_deref()
        .filter(|_| local.is_some_and(|l| l.config.scope == Scope::Fleet));
    (fleet, local)
}

/// One more request to `dest`: `None` when it has no limit, else the verdict
/// (`Err(seconds to wait)` when over). A destination whose limit says
/// `scope: fleet` while this proxy started without a fleet store (a reload
/// added it) is limited by this host alone.
pub async fn check_request(snap: &Snapshot, dest: &Destination) -> Option<Result<(), u64>> {
    let (fleet, local) = fleet_scoped(snap, dest);
    let local = local?;
    let Some(fleet) = fleet else {
        return Some(local.check_request());
    };
    let c = &local.config;
    let taken = fleet
        .take(&dest.name, 1e6 / c.per_second, f64::from(c.burst), 1.0)
        .await;
    Some(taken.unwrap_or_else(|Unavailable| fleet.fallback(|| local.check_request())))
}

/// `n` more body bytes to `dest`: `None` when it has no byte budget. The
/// fleet's budget lives under its own key, next to the request rate's.
pub async fn check_bytes(snap: &Snapshot, dest: &Destination, n: u64) -> Option<Result<(), u64>> {
    let (fleet, local) = fleet_scoped(snap, dest);
    let local = local.filter(|l| l.has_byte_budget())?;
    let (Some(fleet), Some(per_minute)) = (fleet, local.config.bytes_per_minute) else {
        return Some(local.check_bytes(n));
    };
    // Like the host's budget: nothing to count, or more than a whole minute's worth.
    if n == 0 {
        return Some(Ok(()));
    }
    if n > per_minute {
        return Some(Err(60));
    }
    let per_minute = per_minute as f64;
    let key = format!("{}:bytes", dest.name);
    let taken = fleet.take(&key, 60e6 / per_minute, per_minute, n as f64).await;
    Some(taken.unwrap_or_else(|Unavailable| fleet.fallback(|| local.check_bytes(n))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        let cases: &[(&str, i64, u64)] = &[
            ("a microsecond", 1, 1),
            ("just under a second", 999_999, 1),
            ("a second", 1_000_000, 1),
            ("just over a second", 1_000_001, 2),
            ("ten seconds", 10_000_000, 10),
            ("nonsense from the server", -5, 1),
        ];
        for (name, us, want) in cases {
            assert_eq!(retry_secs(*us), *want, "{name}");
        }
    }
}
