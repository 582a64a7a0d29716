//! Metric handles resolved once per policy snapshot, so a finished request
//! counts itself without building label strings or hashing them: a table per
//! generation holds each destination's and route's counters, created on
//! first use (a series appears only once it has something to say, as before).

use std::sync::{Arc, OnceLock, RwLock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::audit::Outcome;
use super::metrics::{DestinationLabel, FieldLabels, Metrics, RequestLabels};
use crate::store::Snapshot;
use crate::vocab::Reason;

/// One policy generation's handles.
#[derive(Debug)]
pub(crate) struct Handles {
    pub(crate) generation: u64,
    /// In policy order; the last one is "(none)" (no destination matched).
    destinations: Vec<Dest>,
}

/// A destination's handles, `label` as its metrics spell it.
#[derive(Debug)]
pub(crate) struct Dest {
    label: String,
    upstream_latency: OnceLock<Histogram>,
    overhead: OnceLock<Histogram>,
    request_bytes: OnceLock<Counter>,
    response_bytes: OnceLock<Counter>,
    rate_limited: OnceLock<Counter>,
    /// By route index; the last one is "-" (no route).
    routes: Vec<RouteSlot>,
}

#[derive(Debug)]
struct RouteSlot {
    label: String,
    /// Requests by (outcome, reason), the few a route sees, scanned linearly.
    requests: RwLock<Vec<(Outcome, Option<Reason>, Counter)>>,
    /// Removed-field counters by field label (policy paths or "(other)").
    fields: RwLock<Vec<(String, Counter)>>,
}

impl Handles {
    pub(crate) fn new(snap: &Snapshot) -> Handles {
        let names = snap.policy.destinations.iter().map(|d| {
            let routes = d.routes.as_ref().map_or(0, Vec::len);
            (d.name.clone(), routes)
        });
        let destinations = names
            .chain(std::iter::once(("(none)".to_owned(), 0)))
            .map(|(label, routes)| Dest {
                label,
                upstream_latency: OnceLock::new(),
                overhead: OnceLock::new(),
                request_bytes: OnceLock::new(),
                response_bytes: OnceLock::new(),
                rate_limited: OnceLock::new(),
                routes: (0..routes)
                    .map(|r| r.to_string())
                    .chain(std::iter::once("-".to_owned()))
                    .map(|label| RouteSlot {
                        label,
                        requests: RwLock::default(),
                        fields: RwLock::default(),
                    })
                    .collect(),
            })
            .collect();
        Handles {
            generation: snap.generation,
            destinations,
        }
    }

    /// The handles of `destination` (`None`: none matched); `None` if the
    /// name is not in this generation's policy.
    pub(crate) fn dest(&self, destination: Option<&str>) -> Option<&Dest> {
        match destination {
            None => self.destinations.last(),
            Some(name) => {
                let known = self.destinations.len().saturating_sub(1);
                self.destinations.iter().take(known).find(|d| d.label == name)
            }
        }
    }
}

impl Dest {
    fn label(&self) -> DestinationLabel {
        DestinationLabel {
            destination: self.label.clone(),
        }
    }

    fn route(&self, route: Option<usize>) -> Option<&RouteSlot> {
        match route {
            None => self.routes.last(),
            Some(r) if r + 1 < self.routes.len() => self.routes.get(r),
            Some(_) => None,
        }
    }

    /// The route's label ("-" for none); the route is known (`count_request` said so).
    pub(crate) fn route_label(&self, route: Option<usize>) -> &str {
        self.route(route).map_or("-", |s| s.label.as_str())
    }

    pub(crate) fn upstream_latency(&self, m: &Metrics) -> &Histogram {
        self.upstream_latency
            .get_or_init(|| m.upstream_latency.get_or_create(&self.label()).clone())
    }

    pub(crate) fn overhead(&self, m: &Metrics) -> &Histogram {
        self.overhead
            .get_or_init(|| m.overhead.get_or_create(&self.label()).clone())
    }

    pub(crate) fn request_bytes(&self, m: &Metrics) -> &Counter {
        self.request_bytes
            .get_or_init(|| m.request_bytes.get_or_create(&self.label()).clone())
    }

    pub(crate) fn response_bytes(&self, m: &Metrics) -> &Counter {
        self.response_bytes
            .get_or_init(|| m.response_bytes.get_or_create(&self.label()).clone())
    }

    pub(crate) fn rate_limited(&self, m: &Metrics) -> &Counter {
        self.rate_limited
            .get_or_init(|| m.rate_limited.get_or_create(&self.label()).clone())
    }

    /// Counts one request; false if `route` is not in this generation's policy.
    pub(crate) fn count_request(
        &self,
        m: &Metrics,
        route: Option<usize>,
        outcome: Outcome,
        reason: Option<Reason>,
    ) -> bool {
        let Some(slot) = self.route(route) else {
            return false;
        };
        if let Some((_, _, c)) = read(&slot.requests)
            .iter()
            .find(|(o, r, _)| *o == outcome && *r == reason)
        {
            c.inc();
            return true;
        }
        let labels = RequestLabels {
            destination: self.label.clone(),
            route: slot.label.clone(),
            outcome: outcome.as_str().to_owned(),
            reason: reason.map_or("-", Reason::code).to_owned(),
        };
        let c = m.requests.get_or_create(&labels).clone();
        c.inc();
        write(&slot.requests).push((outcome, reason, c));
        true
    }

    /// Counts one removed field under its label; false if `route` is unknown.
    pub(crate) fn count_field(&self, m: &Metrics, route: Option<usize>, field: &str) -> bool {
        let Some(slot) = self.route(route) else {
            return false;
        };
        if let Some((_, c)) = read(&slot.fields).iter().find(|(f, _)| f == field) {
            c.inc();
            return true;
        }
        let labels = FieldLabels {
            destination: self.label.clone(),
            route: slot.label.clone(),
            field: field.to_owned(),
        };
        let c = m.fields_removed.get_or_create(&labels).clone();
        c.inc();
        write(&slot.fields).push((field.to_owned(), c));
        true
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The table for `snap`, built by the first request of its generation.
pub(crate) fn for_snapshot(cell: &arc_swap::ArcSwapOption<Handles>, snap: &Snapshot) -> Arc<Handles> {
    if let Some(h) = cell.load_full().filter(|h| h.generation == snap.generation) {
        return h;
    }
    // Two first requests may both build one: either table counts into the same series.
    let h = Arc::new(Handles::new(snap));
    cell.store(Some(h.clone()));
    h
}
