//! Outbound anomaly detection for egress-guard: learns each destination's normal request rate,
//! body sizes and JSON field names, and reports each continuing anomaly at most once per aligned
//! time window. Reports carry kinds, names and figures, never request values.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

mod destination;

pub use crate::vocab::Thresholds;

use destination::DestState;

/// Weight of the newest completed window: the baseline follows a shop's growth within a few
/// windows, yet one odd window cannot move it much.
const ALPHA: f64 = 0.3;
/// Idle windows folded into the baseline at most: bounds the work, and 0.7^16 ≈ 0.003 is
/// "forgotten" anyway.
const MAX_DECAY_WINDOWS: u64 = 16;
/// Routes tracked per destination. Labels come from the policy; this only keeps memory bounded
/// if a caller ever derives labels from raw paths.
const MAX_ROUTES_PER_DESTINATION: usize = 1024;
/// Field label reported once a route's name set is full, so the set itself stays bounded.
const TOO_MANY_NAMES: &str = "(too many names)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    RateSpike,
    RefusalBurst,
    UnknownDestination,
    ClientCredentials,
    UpstreamAuthFailures,
    BodySizeOutlier,
    NewField,
    /// A credential older than its `rotate_every` (raised by `telemetry::key_age`).
    CredentialOverdue,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::RateSpike,
        Kind::RefusalBurst,
        Kind::UnknownDestination,
        Kind::ClientCredentials,
        Kind::UpstreamAuthFailures,
        Kind::BodySizeOutlier,
        Kind::NewField,
        Kind::CredentialOverdue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RateSpike => "rate_spike",
            Kind::RefusalBurst => "refusal_burst",
            Kind::UnknownDestination => "unknown_destination",
            Kind::ClientCredentials => "client_credentials",
            Kind::UpstreamAuthFailures => "upstream_auth_failures",
            Kind::BodySizeOutlier => "body_size_outlier",
            Kind::NewField => "new_field",
            Kind::CredentialOverdue => "credential_overdue",
        }
    }
}

/// One anomaly to report now.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub kind: Kind,
    pub destination: Option<String>,
    pub route: Option<String>,
    pub field: Option<String>,
    pub figures: Vec<(&'static str, f64)>,
}

impl Anomaly {
    fn new(kind: Kind, destination: Option<&str>, figures: Vec<(&'static str, f64)>) -> Self {
        Anomaly {
            kind,
            destination: destination.map(str::to_owned),
            route: None,
            field: None,
            figures,
        }
    }

    fn new_field(destination: &str, route: &str, field: &str) -> Self {
        Anomaly {
            route: Some(route.to_owned()),
            field: Some(field.to_owned()),
            ..Anomaly::new(Kind::NewField, Some(destination), Vec::new())
        }
    }
}

/// The facts of one finished request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Event<'a> {
    pub destination: Option<&'a str>,
    pub route: Option<&'a str>,
    pub refused: bool,
    /// The request named a host that no destination names (a 407 challenge or a
    /// malformed request has no destination either, and is not such an attempt).
    pub unknown_host: bool,
    pub client_credentials: usize,
    pub upstream_status: Option<u16>,
    pub body_bytes: Option<u64>,
    pub fields: &'a [String],
}

// A poisoned lock only means another request panicked mid-update. The counters stay usable and
// the request path must never panic, so poison is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Kinds already reported in the current window, one bit per kind (room for 32).
#[derive(Default)]
struct Reported(u32);

impl Reported {
    /// True the first time `kind` is claimed in this window, so the caller reports exactly once.
    fn first(&mut self, kind: Kind) -> bool {
        let bit = 1u32 << (kind as u32);
        let first = self.0 & bit == 0;
        self.0 |= bit;
        first
    }
}

/// Which window counters belong to. The length is kept because a reload may change it, and
/// indices of different lengths cannot be compared.
#[derive(Clone, Copy, Default, PartialEq)]
struct WindowId {
    index: u64,
    len: Duration,
}

impl WindowId {
    /// Aligned window; a zero length counts as 1 ns so a bad reload cannot divide by zero.
    fn at(now: Duration, len: Duration) -> Self {
        let index = now.as_nanos() / len.as_nanos().max(1);
        let index = u64::try_from(index).unwrap_or(u64::MAX);
        WindowId { index, len }
    }
}

/// Concurrent requests may take a lock slightly out of order near a boundary; an index lower
/// than the stored one is such a late request and counts in the current window instead of
/// resetting it.
fn is_new_window(stored: WindowId, now: WindowId) -> bool {
    stored.len != now.len || now.index > stored.index
}

/// One observation in flight: what it is judged against, and what it has found so far.
struct Obs<'e> {
    t: Thresholds,
    now: WindowId,
    ev: Event<'e>,
    out: Vec<Anomaly>,
}

/// Global counters: only refused requests and unknown hosts touch them, so the common request
/// never takes this lock.
#[derive(Default)]
struct GlobalState {
    window: WindowId,
    refusals: u64,
    unknown: u64,
    reported: Reported,
}

impl GlobalState {
    fn observe(&mut self, ob: &mut Obs<'_>) {
        if is_new_window(self.window, ob.now) {
            *self = GlobalState::default();
            self.window = ob.now;
        }
        if ob.ev.refused {
            self.refusals = self.refusals.saturating_add(1);
            if self.refusals >= ob.t.refusal_burst && self.reported.first(Kind::RefusalBurst) {
                let figures = vec![("refusals", self.refusals as f64)];
                ob.out.push(Anomaly::new(Kind::RefusalBurst, None, figures));
            }
        }
        if ob.ev.unknown_host {
            self.unknown = self.unknown.saturating_add(1);
            if self.unknown >= ob.t.unknown_destinations && self.reported.first(Kind::UnknownDestination) {
                let figures = vec![("attempts", self.unknown as f64)];
                ob.out.push(Anomaly::new(Kind::UnknownDestination, None, figures));
            }
        }
    }
}

/// Shared anomaly detector; `Send + Sync`, one per proxy.
pub struct Detector {
    thresholds: RwLock<Thresholds>,
    destinations: RwLock<HashMap<String, Arc<Mutex<DestState>>>>,
    global: Mutex<GlobalState>,
}

impl Detector {
    pub fn new(t: Thresholds) -> Detector {
        Detector {
            thresholds: RwLock::new(t),
            destinations: RwLock::new(HashMap::new()),
            global: Mutex::new(GlobalState::default()),
        }
    }

    /// A reload may change thresholds; learned state is kept.
    pub fn set_thresholds(&self, t: Thresholds) {
        *write(&self.thresholds) = t;
    }

    /// Forget destinations no longer in the policy (memory stays bounded by the policy).
    pub fn retain_destinations(&self, keep: &[&str]) {
        let keep: HashSet<&str> = keep.iter().copied().collect();
        write(&self.destinations).retain(|name, _| keep.contains(name.as_str()));
    }

    /// Records one request; returns the anomalies to report now.
    pub fn observe(&self, now: Duration, ev: &Event<'_>) -> Vec<Anomaly> {
        let t = *read(&self.thresholds);
        let now = WindowId::at(now, t.window);
        let mut ob = Obs {
            t,
            now,
            ev: *ev,
            out: Vec::new(),
        };
        if ev.refused || ev.destination.is_none() {
            lock(&self.global).observe(&mut ob);
        }
        if let Some(name) = ev.destination {
            let state = self.destination(name, now);
            lock(&state).observe(&mut ob, name);
        }
        ob.out
    }

    /// The destination's state; the map's write lock is taken only to insert a new destination,
    /// and no lock is held while another is taken.
    fn destination(&self, name: &str, window: WindowId) -> Arc<Mutex<DestState>> {
        let found = read(&self.destinations).get(name).map(Arc::clone);
        if let Some(state) = found {
            return state;
        }
        let mut map = write(&self.destinations);
        let state = map
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(DestState::starting(window))));
        Arc::clone(state)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lifecycle;

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Detector")
    }
}
