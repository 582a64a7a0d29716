//! What the detector learns per destination: its request rate against a
//! moving baseline, body sizes, upstream auth failures, and per route the
//! JSON field names seen, each judged in aligned windows.

use std::collections::{HashMap, HashSet};

use super::{
    is_new_window, Anomaly, Kind, Obs, Reported, WindowId, ALPHA, MAX_DECAY_WINDOWS, MAX_ROUTES_PER_DESTINATION,
    TOO_MANY_NAMES,
};

/// What one route of one destination has taught us about JSON field names.
#[derive(Default)]
struct RouteState {
    requests: u64,
    fields: HashSet<String>,
    overflow_window: Option<WindowId>,
}

impl RouteState {
    fn observe(&mut self, ob: &mut Obs<'_>, destination: &str, route: &str) {
        // Judged only once warm-up is complete before this request, so the warm-up requests
        // themselves are all learned silently.
        let judging = self.requests >= ob.t.field_warmup;
        self.requests = self.requests.saturating_add(1);
        for name in ob.ev.fields {
            if self.fields.contains(name.as_str()) {
                continue;
            }
            if self.fields.len() < ob.t.max_fields_per_route {
                self.fields.insert(name.clone());
                if judging {
                    ob.out.push(Anomaly::new_field(destination, route, name));
                }
            } else if judging && self.overflow_window != Some(ob.now) {
                // Learning has stopped; unknown names are summarised once per window rather than
                // reported (and remembered) one by one.
                self.overflow_window = Some(ob.now);
                ob.out.push(Anomaly::new_field(destination, route, TOO_MANY_NAMES));
            }
        }
    }
}

/// Everything learned about one destination; one small mutex each so destinations never
/// contend with each other.
#[derive(Default)]
pub(super) struct DestState {
    window: WindowId,
    requests: u64,
    auth_failures: u64,
    reported: Reported,
    baseline: f64,
    completed_windows: u64,
    bodies: u64,
    body_mean: f64,
    routes: HashMap<String, RouteState>,
}

impl DestState {
    /// A destination first seen in `window`.
    pub(super) fn starting(window: WindowId) -> DestState {
        DestState {
            window,
            ..DestState::default()
        }
    }

    /// Folds finished windows into the baseline and resets the per-window counters.
    fn roll(&mut self, now: WindowId) {
        if !is_new_window(self.window, now) {
            return;
        }
        if self.window.len == now.len {
            let count = self.requests as f64;
            self.baseline = if self.completed_windows == 0 {
                count
            } else {
                ALPHA * count + (1.0 - ALPHA) * self.baseline
            };
            let idle = now.index.saturating_sub(self.window.index).saturating_sub(1);
            let decay = i32::try_from(idle.min(MAX_DECAY_WINDOWS)).unwrap_or(0);
            self.baseline *= (1.0 - ALPHA).powi(decay);
            self.completed_windows = self.completed_windows.saturating_add(1).saturating_add(idle);
        } else {
            // A reload changed the window length: the partial window is dropped and the
            // baseline rescaled so the new windows are not all judged as spikes (or as quiet).
            let ratio = now.len.as_secs_f64() / self.window.len.as_secs_f64();
            if ratio.is_finite() {
                self.baseline *= ratio;
            }
        }
        self.window = now;
        self.requests = 0;
        self.auth_failures = 0;
        self.reported = Reported::default();
    }

    pub(super) fn observe(&mut self, ob: &mut Obs<'_>, name: &str) {
        self.roll(ob.now);
        self.requests = self.requests.saturating_add(1);
        self.check_rate(ob, name);
        let copies = ob.ev.client_credentials;
        if copies > 0 && self.reported.first(Kind::ClientCredentials) {
            let figures = vec![("copies", copies as f64)];
            ob.out.push(Anomaly::new(Kind::ClientCredentials, Some(name), figures));
        }
        if matches!(ob.ev.upstream_status, Some(401 | 403)) {
            self.auth_failures = self.auth_failures.saturating_add(1);
            if self.auth_failures >= ob.t.auth_failures && self.reported.first(Kind::UpstreamAuthFailures) {
                let figures = vec![("failures", self.auth_failures as f64)];
                ob.out
                    .push(Anomaly::new(Kind::UpstreamAuthFailures, Some(name), figures));
            }
        }
        if let Some(bytes) = ob.ev.body_bytes {
            self.check_body(ob, name, bytes);
        }
        if let Some(route) = ob.ev.route {
            self.check_fields(ob, name, route);
        }
    }

    fn check_rate(&mut self, ob: &mut Obs<'_>, name: &str) {
        if self.completed_windows < u64::from(ob.t.warmup_windows) {
            return;
        }
        let requests = self.requests as f64;
        if self.requests >= ob.t.spike_min_requests
            && requests > ob.t.spike_factor * self.baseline
            && self.reported.first(Kind::RateSpike)
        {
            let figures = vec![("requests", requests), ("baseline", self.baseline)];
            ob.out.push(Anomaly::new(Kind::RateSpike, Some(name), figures));
        }
    }

    fn check_body(&mut self, ob: &mut Obs<'_>, name: &str, bytes: u64) {
        let size = bytes as f64;
        if self.bodies >= ob.t.body_warmup {
            let limit = (ob.t.body_factor * self.body_mean).max(ob.t.body_min_bytes as f64);
            if size > limit {
                // Outliers are not learned, so a sustained exfiltration cannot teach the mean.
                if self.reported.first(Kind::BodySizeOutlier) {
                    let figures = vec![("bytes", size), ("mean", self.body_mean)];
                    ob.out.push(Anomaly::new(Kind::BodySizeOutlier, Some(name), figures));
                }
                return;
            }
        }
        self.bodies = self.bodies.saturating_add(1);
        // Incremental mean: no sum to overflow and no history to store.
        self.body_mean += (size - self.body_mean) / self.bodies as f64;
    }

    fn check_fields(&mut self, ob: &mut Obs<'_>, name: &str, route: &str) {
        if !self.routes.contains_key(route) {
            if self.routes.len() >= MAX_ROUTES_PER_DESTINATION {
                return;
            }
            self.routes.insert(route.to_owned(), RouteState::default());
        }
        if let Some(state) = self.routes.get_mut(route) {
            state.observe(ob, name, route);
        }
    }
}
