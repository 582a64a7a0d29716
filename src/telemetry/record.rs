//! The fan-out of a finished request: Prometheus counters and histograms,
//! then the anomaly detector (whose findings are counted and logged). The
//! audit line itself is `audit`'s alone.

use std::time::Duration;

use super::anomaly::Event;
use super::audit::{loggable_name, Audit, Outcome};
use super::metrics::{DestinationLabel, FieldLabels, KindLabel, RequestLabels};
use crate::vocab::Reason;

/// Counts a finished request and shows it to the anomaly detector.
pub(crate) fn record(a: &Audit, latency: Duration) {
    let m = &a.telemetry.metrics;
    // The snapshot's handles: no label string built, nothing hashed.
    let Some(d) =
        (a.metric_handles.dest(a.destination.as_deref())).filter(|d| d.count_request(m, a.route, a.decision, a.reason))
    else {
        return record_by_labels(a, latency);
    };
    if let Some(up) = a.upstream_latency {
        d.upstream_latency(m).observe(up.as_secs_f64());
        d.overhead(m).observe(latency.saturating_sub(up).as_secs_f64());
        d.request_bytes(m).inc_by(a.bytes_in);
        d.response_bytes(m).inc_by(a.bytes_out);
    }
    for field in &a.field_labels {
        d.count_field(m, a.route, field);
    }
    if a.reason == Some(Reason::RateLimited) {
        d.rate_limited(m).inc();
    }
    observe_anomalies(a, d.route_label(a.route));
}

/// The same by label sets, for a record whose destination or route its
/// snapshot's handles do not know.
fn record_by_labels(a: &Audit, latency: Duration) {
    let m = &a.telemetry.metrics;
    let destination = a.destination.clone().unwrap_or_else(|| "(none)".to_owned());
    let route = a.route.map_or_else(|| "-".to_owned(), |r| r.to_string());
    let labels = RequestLabels {
        destination: destination.clone(),
        route: route.clone(),
        outcome: a.decision.as_str().to_owned(),
        reason: a.reason.map_or("-", Reason::code).to_owned(),
    };
    m.requests.get_or_create(&labels).inc();
    let dest = DestinationLabel {
        destination: destination.clone(),
    };
    if let Some(up) = a.upstream_latency {
        m.upstream_latency.get_or_create(&dest).observe(up.as_secs_f64());
        m.overhead
            .get_or_create(&dest)
            .observe(latency.saturating_sub(up).as_secs_f64());
        m.request_bytes.get_or_create(&dest).inc_by(a.bytes_in);
        m.response_bytes.get_or_create(&dest).inc_by(a.bytes_out);
    }
    for field in &a.field_labels {
        let l = FieldLabels {
            destination: destination.clone(),
            route: route.clone(),
            field: field.clone(),
        };
        m.fields_removed.get_or_create(&l).inc();
    }
    if a.reason == Some(Reason::RateLimited) {
        m.rate_limited.get_or_create(&dest).inc();
    }
    observe_anomalies(a, &route);
}

fn observe_anomalies(a: &Audit, route: &str) {
    let t = &a.telemetry;
    let event = Event {
        destination: a.destination.as_deref(),
        route: a.route.map(|_| route),
        // The 407 challenge is the normal start of an authenticated client's first request.
        refused: a.decision == Outcome::Refuse && a.reason != Some(Reason::ProxyAuthRequired),
        unknown_host: a.reason == Some(Reason::DestinationNotAllowed) && a.destination.is_none(),
        client_credentials: a.client_credentials,
        upstream_status: a.upstream_latency.map(|_| a.status),
        body_bytes: (a.bytes_in > 0).then_some(a.bytes_in),
        fields: &a.fields,
    };
    for found in t.detector.observe(t.clock.now(), &event) {
        t.metrics
            .anomalies
            .get_or_create(&KindLabel {
                kind: found.kind.as_str().to_owned(),
            })
            .inc();
        let figures: Vec<String> = found.figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tracing::warn!(
            target: "egress_guard::anomaly",
            kind = found.kind.as_str(),
            destination = found.destination.as_deref().unwrap_or("-"),
            route = found.route.as_deref().unwrap_or("-"),
            field = %found.field.as_deref().map_or("-".into(), loggable_name),
            figures = %figures.join(" "),
            policy_generation = a.generation,
            policy_hash = %a.policy_hash,
            request_id = %a.request_id,
            "anomaly"
        );
    }
}
