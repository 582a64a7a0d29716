//! What the proxy exposes to Prometheus at the admin listener's `/metrics`.
//! Every label value comes from the policy or from a fixed set (reason
//! codes, anomaly kinds): never a host, path or field a client made up.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub destination: String,
    pub route: String,
    pub outcome: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabel {
    pub destination: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FieldLabels {
    pub destination: String,
    pub route: String,
    pub field: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    pub destination: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub hash: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 26 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

/// The proxy's metrics and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub overhead: Family<DestinationLabel, Histogram, fn() -> Histogram>,
    pub upstream_latency: Family<DestinationLabel, Histogram, fn() -> Histogram>,
    pub request_bytes: Family<DestinationLabel, Counter>,
    pub response_bytes: Family<DestinationLabel, Counter>,
    pub fields_removed: Family<FieldLabels, Counter>,
    pub rate_limited: Family<DestinationLabel, Counter>,
    pub anomalies: Family<KindLabel, Counter>,
    pub policy_generation: Gauge,
    pub policy_info: Family<PolicyLabel, Gauge>,
    pub reload_failures: Counter,
    upstream_connections: Gauge,
    pub credential_fetches: Family<FetchLabels, Counter>,
    /// Audit records that did not reach the audit file (queue full, write failed).
    pub audit_file_dropped: Counter,
    pub shared_limit_errors: Counter,
    pub shared_limits_up: Gauge,
    /// Seconds since each credential's secret file last changed (`telemetry::key_age`).
    pub credential_age: Family<DestinationLabel, Gauge>,
    /// The current generation's pre-resolved handles (`metric_handles`).
    pub(crate) handles: arc_swap::ArcSwapOption<super::metric_handles::Handles>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("egress_guard"),
            requests: Family::default(),
            overhead: Family::new_with_constructor(latency_histogram),
            upstream_latency: Family::new_with_constructor(latency_histogram),
            request_bytes: Family::default(),
            response_bytes: Family::default(),
            fields_removed: Family::default(),
            rate_limited: Family::default(),
            anomalies: Family::default(),
            policy_generation: Gauge::default(),
            policy_info: Family::default(),
            reload_failures: Counter::default(),
            upstream_connections: Gauge::default(),
            credential_fetches: Family::default(),
            audit_file_dropped: Counter::default(),
            shared_limit_errors: Counter::default(),
            shared_limits_up: Gauge::default(),
            credential_age: Family::default(),
            handles: arc_swap::ArcSwapOption::empty(),
        };
        let r = &mut m.registry;
        r.register(
            "requests",
            "Requests by destination, route, outcome and reason",
            m.requests.clone(),
        );
        r.register(
            "proxy_overhead_seconds",
            "Time spent in the proxy, upstream wait excluded",
            m.overhead.clone(),
        );
        r.register(
            "upstream_latency_seconds",
            "Time from sending upstream to the answer's headers",
            m.upstream_latency.clone(),
        );
        r.register(
            "request_bytes",
            "Request body bytes sent upstream",
            m.request_bytes.clone(),
        );
        r.register(
            "response_bytes",
            "Answer body bytes sent to clients",
            m.response_bytes.clone(),
        );
        r.register(
            "fields_removed",
            "Fields removed by body policies",
            m.fields_removed.clone(),
        );
        r.register(
            "rate_limited",
            "Requests refused by a rate limit or byte budget",
            m.rate_limited.clone(),
        );
        r.register("anomalies", "Anomalies reported, by kind", m.anomalies.clone());
        r.register(
            "policy_generation",
            "Generation of the policy in force",
            m.policy_generation.clone(),
        );
        r.register(
            "policy_info",
            "Hash of the policy in force (value 1)",
            m.policy_info.clone(),
        );
        r.register(
            "reload_failures",
            "Policy reloads refused as invalid",
            m.reload_failures.clone(),
        );
        r.register(
            "upstream_connections_open",
            "Upstream connections open now",
            m.upstream_connections.clone(),
        );
        r.register(
            "credential_fetches",
            "OAuth2 token fetches by destination and outcome",
            m.credential_fetches.clone(),
        );
        r.register(
            "audit_file_dropped",
            "Audit records that did not reach the audit file (queue full, write failed)",
            m.audit_file_dropped.clone(),
        );
        r.register(
            "shared_limit_errors",
            "Fleet-scoped limit checks the shared store did not answer in time (on_unavailable decided)",
            m.shared_limit_errors.clone(),
        );
        r.register(
            "shared_limits_up",
            "1 while the connection to the fleet's shared store is up",
            m.shared_limits_up.clone(),
        );
        r.register(
            "credential_age_seconds",
            "Seconds since the credential's secret file last changed",
            m.credential_age.clone(),
        );
        for kind in crate::telemetry::anomaly::Kind::ALL {
            let _ = m.anomalies.get_or_create(&KindLabel {
                kind: kind.as_str().to_owned(),
            });
        }
        m
    }

    /// The policy now in force.
    pub fn set_policy(&self, generation: u64, hash: &str) {
        self.policy_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        self.policy_info.clear();
        self.policy_info
            .get_or_create(&PolicyLabel { hash: hash.to_owned() })
            .set(1);
    }

    /// One OAuth2 token fetch ended with `outcome` (a fixed word).
    pub fn credential_fetch(&self, destination: &str, outcome: &str) {
        self.credential_fetches
            .get_or_create(&FetchLabels {
                destination: destination.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    /// `open_connections` is read from the dialers' shared side at each scrape.
    pub fn render(&self, open_connections: i64) -> String {
        self.upstream_connections.set(open_connections);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
