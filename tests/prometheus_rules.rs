//! The Prometheus examples against the real exposition: every metric name the
//! alerting rules in `examples/prometheus/alerts.yml` use is one the proxy
//! really exports at the admin `/metrics`, the scrape config's job is the one
//! the "down" alert watches, and every destination/route/field label value in
//! the scrape comes from the policy, never from a host, path or field a
//! client made up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::metrics::parse_sample;
use common::*;

const HOST: &str = "api.shipper.test";
const KEY: &str = "prom-rules-secret-key-5150";
const ALERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/prometheus/alerts.yml");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/prometheus/prometheus.yml");

/// Every `egress_guard_...` name in a PromQL expression.
fn metric_names_in(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = expr[i..].find("egress_guard_") {
        let start = i + off;
        let boundary = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start + "egress_guard_".len();
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            out.push(expr[start..end].to_owned());
        }
        i = end;
    }
    out
}

struct Rule {
    alert: String,
    expr: String,
}

fn alert_rules() -> Vec<Rule> {
    let text = std::fs::read_to_string(ALERTS).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let groups = doc["groups"].as_sequence().expect("alerts.yml: groups");
    let mut rules = Vec::new();
    for g in groups {
        for r in g["rules"].as_sequence().expect("alerts.yml: rules") {
            let alert = r["alert"].as_str().expect("every rule is an alerting rule").to_owned();
            let expr = r["expr"].as_str().unwrap_or_else(|| panic!("{alert}: expr")).to_owned();
            assert!(r["for"].as_str().is_some(), "{alert}: no `for`");
            let severity = r["labels"]["severity"].as_str().unwrap_or_default();
            assert!(
                ["critical", "warning", "info"].contains(&severity),
                "{alert}: severity {severity:?}"
            );
            let summary = r["annotations"]["summary"].as_str().unwrap_or_default();
            assert!(!summary.is_empty(), "{alert}: no summary");
            // Only policy-made labels may be templated into a summary; no `$value` of a sample
            // and no label that could carry what a client sent.
            for part in summary.split("{{").skip(1) {
                let inner = part.split("}}").next().unwrap_or_default().trim();
                assert!(
                    [
                        "$labels.destination",
                        "$labels.route",
                        "$labels.kind",
                        "$labels.reason",
                        "$labels.instance",
                        "$labels.job"
                    ]
                    .contains(&inner),
                    "{alert}: summary templates {inner:?}"
                );
            }
            rules.push(Rule { alert, expr });
        }
    }
    rules
}

fn policy(upstream: &Upstream, ca: &TestCa, key: &tempfile::NamedTempFile) -> String {
    PolicyBuilder::new()
        .dest(
            Dest::new("shipper", HOST)
                .upstream(upstream, ca)
                .secret(key.path())
                .set("rate_limit", "{per_second: 0.001, burst: 4}")
                .route(
                    Route::post("/v1/orders")
                        .deny(&["customer.email", "customer.phone"])
                        .body("on_violation", "strip"),
                )
                .route(
                    Route::post("/v1/parcels")
                        .allow(&["order_id", "items[].sku"])
                        .body("on_violation", "strip"),
                ),
        )
        .yaml()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_use_only_exported_metrics_and_labels_come_from_the_policy() {
    let ca = TestCa::new();
    let upstream = Upstream::start(&ca, &[HOST]).await;
    let key = secret_file(KEY);
    let proxy = Proxy::start(&policy(&upstream, &ca, &key)).await;

    // Allowed: a deny-list route and an allow-list route, each stripping fields
    // (one of them a name the client made up).
    let r = proxy
        .send(&post_json(
            &format!("http://{HOST}/v1/orders"),
            r#"{"order_id":1,"customer":{"email":"a@b.example","phone":"+1 555 0100"}}"#,
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = proxy
        .send(&post_json(
            &format!("http://{HOST}/v1/parcels"),
            r#"{"order_id":2,"items":[{"sku":"A1","zz_client_field_777":"x"}],"notes":"leave at door"}"#,
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(upstream.wait_for(2).await.len(), 2);

    // Refused: an unknown destination, and a path no route names.
    let r = proxy
        .send(&absolute(
            "GET",
            "http://evil-unknown.example/secret-path-123",
            &[],
            b"",
        ))
        .await;
    assert_refusal(&r, 403, "destination_not_allowed", "unknown destination");
    let r = proxy
        .send(&absolute("GET", &format!("http://{HOST}/secret-path-123"), &[], b""))
        .await;
    assert_refusal(&r, 403, "route_not_allowed", "unknown route");

    // Rate-limited: the burst of 4 is spent by the requests above that reached the limiter,
    // so at most a few more pass before a 429.
    let mut limited = false;
    for i in 0..8 {
        let r = proxy
            .send(&post_json(
                &format!("http://{HOST}/v1/orders"),
                &format!(r#"{{"order_id":{}}}"#, 10 + i),
            ))
            .await;
        if r.status == 429 {
            assert_refusal(&r, 429, "rate_limited", "rate limit");
            limited = true;
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(limited, "the rate limit never refused");

    let (status, scrape) = proxy.admin_get("/metrics").await;
    assert_eq!(status, 200, "{scrape}");
    let expo = Exposition::parse(&scrape);
    let names = expo.names();

    // The families the alerts rely on have samples from the traffic above.
    assert!(
        expo.with_name("egress_guard_requests_total")
            .any(|s| s.labels.get("outcome").map(String::as_str) == Some("refuse")),
        "no refusal counted:\n{scrape}"
    );
    assert!(
        expo.with_name("egress_guard_requests_total")
            .any(|s| s.labels.get("outcome").map(String::as_str) == Some("allow")),
        "no allowed request counted:\n{scrape}"
    );
    assert!(
        expo.with_name("egress_guard_requests_total")
            .any(|s| s.labels.get("reason").map(String::as_str) == Some("rate_limited")),
        "no rate_limited request counted:\n{scrape}"
    );
    assert!(
        expo.with_name("egress_guard_rate_limited_total").next().is_some(),
        "{scrape}"
    );
    assert!(
        expo.with_name("egress_guard_fields_removed_total").next().is_some(),
        "{scrape}"
    );
    assert!(
        expo.with_name("egress_guard_anomalies_total")
            .any(|s| s.labels.get("kind").map(String::as_str) == Some("unknown_destination")),
        "{scrape}"
    );

    // Every metric name an alert expression uses is exported.
    let rules = alert_rules();
    let mut used = BTreeSet::new();
    for rule in &rules {
        for name in metric_names_in(&rule.expr) {
            assert!(
                names.contains(&name),
                "alert {} uses {name}, which the proxy does not export; exported: {names:#?}",
                rule.alert
            );
            used.insert(name);
        }
    }
    for needed in [
        "egress_guard_anomalies_total",
        "egress_guard_requests_total",
        "egress_guard_reload_failures_total",
        "egress_guard_rate_limited_total",
    ] {
        assert!(used.contains(needed), "no alert uses {needed}");
    }
    // Label values the alerts match on are ones the proxy really writes.
    for (label, value) in [
        ("outcome", "refuse"),
        ("reason", "upstream_unavailable"),
        ("reason", "upstream_timeout"),
    ] {
        assert!(
            rules.iter().any(|r| r.expr.contains(value)),
            "no alert matches {label}={value}"
        );
    }

    // The "down" alert watches the job the scrape config defines, at the admin port.
    let config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(CONFIG).unwrap()).unwrap();
    let job = &config["scrape_configs"][0];
    let job_name = job["job_name"].as_str().unwrap();
    assert_eq!(job["metrics_path"].as_str(), Some("/metrics"));
    assert_eq!(job["static_configs"][0]["targets"][0].as_str(), Some("127.0.0.1:9750"));
    assert_eq!(config["rule_files"][0].as_str(), Some("alerts.yml"));
    assert!(
        rules.iter().any(|r| r
            .expr
            .replace(' ', "")
            .contains(&format!("up{{job=\"{job_name}\"}}==0"))),
        "no alert on up{{job=\"{job_name}\"}} == 0"
    );

    // Labels come from the policy: destination names, route indexes, policy field paths.
    let destinations = ["shipper", "(none)"];
    let routes = ["-", "0", "1"];
    let fields = ["customer.email", "customer.phone", "(other)"];
    let mut seen_fields = BTreeSet::new();
    for s in &expo.samples {
        if let Some(d) = s.labels.get("destination") {
            assert!(destinations.contains(&d.as_str()), "destination label {d:?} in {s:?}");
        }
        if let Some(r) = s.labels.get("route") {
            assert!(routes.contains(&r.as_str()), "route label {r:?} in {s:?}");
        }
        if let Some(f) = s.labels.get("field") {
            assert!(fields.contains(&f.as_str()), "field label {f:?} in {s:?}");
            seen_fields.insert(f.clone());
        }
    }
    assert!(
        seen_fields.contains("customer.email") && seen_fields.contains("(other)"),
        "removed fields not counted by policy path: {seen_fields:?}\n{scrape}"
    );
    for client_made in [
        "evil-unknown.example",
        "secret-path-123",
        "zz_client_field_777",
        "notes",
        KEY,
    ] {
        assert!(
            !scrape.contains(client_made),
            "the scrape holds {client_made:?}:\n{scrape}"
        );
    }
}

#[test]
fn metric_names_in_finds_whole_names_only() {
    assert_eq!(
        metric_names_in("sum by (kind) (increase(egress_guard_anomalies_total[10m])) > 0"),
        vec!["egress_guard_anomalies_total"]
    );
    assert_eq!(
        metric_names_in("rate(x_egress_guard_nope[1m]) + egress_guard_a_total{reason=\"b\"}"),
        vec!["egress_guard_a_total"]
    );
    let s = parse_sample(r#"egress_guard_requests_total{destination="a\"b",route="0"} 3"#);
    assert_eq!(s.name, "egress_guard_requests_total");
    assert_eq!(s.labels["destination"], "a\"b");
    assert_eq!(s.labels["route"], "0");
}
