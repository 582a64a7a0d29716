//! Rate limits, metrics and anomalies end to end, on a clock the test drives:
//! 429 with Retry-After and per-destination isolation, a byte budget, the
//! counters a scrape shows after known traffic, the admin port unreachable
//! through the proxy port, and each anomaly kind raised (and a normal
//! workload raising none).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use egress_guard::clock::Clock;

const A: &str = "api.a.test";
const B: &str = "api.b.test";

/// The rate limit of both destinations in most tests.
const RATE: &str = "{per_second: 1, burst: 2}";

fn policy(upstream: &Upstream, ca: &TestCa, rate: &str) -> PolicyBuilder {
    // The key file outlives the test: the proxy reads it when it compiles
    // the policy, after this returns.
    let key = secret_file("obs-key-0001").into_temp_path().keep().unwrap();
    PolicyBuilder::new()
        .dest(
            Dest::new("a", A)
                .upstream(upstream, ca)
                .secret(&key)
                .set("rate_limit", rate)
                .route(Route::post("/v1/orders").deny(&["email", "note"]))
                .route(Route::get("/v1/**")),
        )
        .dest(Dest::new("b", B).upstream(upstream, ca).set("rate_limit", rate))
}

async fn get(proxy: &Proxy, host: &str, path: &str) -> RawResponse {
    proxy
        .send(&absolute("GET", &format!("http://{host}{path}"), &[], b""))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_and_does_not_touch_other_destinations() {
    let ca = TestCa::new();
    let upstream = Upstream::start(&ca, &[A, B]).await;
    let clock = Clock::manual();
    let proxy = Proxy::start_with_clock(&policy(&upstream, &ca, RATE).yaml(), clock.clone()).await;
    for i in 0..2 {
        assert_eq!(
            get(&proxy, A, "/v1/x").await.status,
            200,
            "request {i} is within the burst"
        );
    }
    let limited = get(&proxy, A, "/v1/x").await;
    assert_refusal(&limited, 429, "rate_limited", "third request in the same instant");
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(
        get(&proxy, B, "/x").await.status,
        200,
        "another destination keeps its own budget"
    );
    assert_eq!(upstream.count(), 3, "the refused request never reached the upstream");
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        get(&proxy, A, "/v1/x").await.status,
        200,
        "a token is back after a second"
    );

    let m = proxy.metrics().await;
    assert_eq!(m.get("egress_guard_rate_limited_total{destination=\"a\"}"), Some(1.0));
    assert_eq!(m.get("egress_guard_rate_limited_total{destination=\"b\"}"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_budget_refuses_slow_exfiltration() {
    let ca = TestCa::new();
    let upstream = Upstream::start(&ca, &[A]).await;
    let text = policy(&upstream, &ca, "{per_second: 100, burst: 100, bytes_per_minute: 100}").yaml();
    let clock = Clock::manual();
    let proxy = Proxy::start_with_clock(&text, clock.clone()).await;
    let body = format!(r#"{{"order_id":1,"pad":"{}"}}"#, "x".repeat(50));
    let req = post_json(&format!("http://{A}/v1/orders"), &body);
    assert_eq!(proxy.send(&req).await.status, 200);
    let refused = proxy.send(&req).await;
    assert_refusal(&refused, 429, "rate_limited", "over the byte budget");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    clock.advance(Duration::from_secs(60));
    assert_eq!(proxy.send(&req).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_what_was_sent() {
    let ca = TestCa::new();
    let upstream = Upstream::start(&ca, &[A, B]).await;
    let proxy = Proxy::start_with_clock(&policy(&upstream, &ca, RATE).yaml(), Clock::manual()).await;
    let order = r#"{"order_id":7,"email":"jane@example.org","note":"ring twice","qty":2}"#;
    assert_eq!(
        proxy
            .send(&post_json(&format!("http://{A}/v1/orders"), order))
            .await
            .status,
        200
    );
    assert_eq!(get(&proxy, A, "/nope").await.status, 403);
    assert_eq!(get(&proxy, "unknown.example", "/").await.status, 403);

    let m = proxy.metrics().await;
    let want = [
        ("egress_guard_requests_total{destination=\"a\",route=\"0\",outcome=\"allow\",reason=\"-\"}", 1.0),
        ("egress_guard_requests_total{destination=\"a\",route=\"-\",outcome=\"refuse\",reason=\"route_not_allowed\"}", 1.0),
        ("egress_guard_requests_total{destination=\"(none)\",route=\"-\",outcome=\"refuse\",reason=\"destination_not_allowed\"}", 1.0),
        ("egress_guard_fields_removed_total{destination=\"a\",route=\"0\",field=\"email\"}", 1.0),
        ("egress_guard_fields_removed_total{destination=\"a\",route=\"0\",field=\"note\"}", 1.0),
        ("egress_guard_upstream_latency_seconds_count{destination=\"a\"}", 1.0),
        ("egress_guard_proxy_overhead_seconds_count{destination=\"a\"}", 1.0),
        ("egress_guard_policy_generation", 1.0),
        ("egress_guard_reload_failures_total", 0.0),
    ];
    for (name, value) in want {
        assert_eq!(m.get(name), Some(value), "{name}");
    }
    let open = m.get("egress_guard_upstream_connections_open").unwrap_or(0.0);
    assert!(open >= 1.0, "the pooled upstream connection is counted: {open}");
    let sent = upstream.single().body.len() as f64;
    assert_eq!(m.get("egress_guard_request_bytes_total{destination=\"a\"}"), Some(sent));
    let hash = &proxy.store.load().policy.hash;
    assert_eq!(
        m.get(&format!("egress_guard_policy_info{{hash=\"{hash}\"}}")),
        Some(1.0)
    );
    assert!(!m.keys().any(|k| k.contains("unknown.example") || k.contains("/nope")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_is_not_reachable_through_the_proxy_port() {
    let ca = TestCa::new();
    let upstream = Upstream::start(&ca, &[A]).await;
    let text = policy(&upstream, &ca, RATE)
        .dest(Dest::new("local", "localhost"))
        .yaml();
    let proxy = Proxy::start_with_clock(&text, Clock::manual()).await;
    let admin = proxy.admin;
    let by_ip = get(&proxy, &admin.to_string(), "/metrics").await;
    assert_refusal(&by_ip, 403, "destination_not_allowed", "admin address by IP");
    let by_name = get(&proxy, &format!("localhost:{}", admin.port()), "/metrics").await;
    assert_eq!(by_name.status, 403, "{}", by_name.text());
    let origin = proxy
        .send(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(
        origin.status,
        403,
        "origin-form /metrics on the proxy port: {}",
        origin.text()
    );
    let (status, body) = proxy.admin_get("/readyz").await;
    assert_eq!((status, body.starts_with("ready generation=1")), (200, true), "{body}");
    assert_eq!(proxy.admin_get("/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_anomaly_kind_is_raised_and_counted() {
    let ca = TestCa::new();
    let upstream = Upstream::start_replying(
        &ca,
        &[A, B],
        std::sync::Arc::new(|r: &Recorded| {
            if r.path() == "/v1/revoked" {
                Reply::status(401)
            } else {
                Reply::ok()
            }
        }),
    )
    .await;
    let clock = Clock::manual();
    let text = policy(&upstream, &ca, "{per_second: 1000, burst: 1000}").yaml();
    let proxy = Proxy::start_with_clock(&text, clock.clone()).await;
    let order = |extra: &str| format!(r#"{{"order_id":1,"qty":2{extra}}}"#);
    let post = |body: String| post_json(&format!("http://{A}/v1/orders"), &body);

    // Warm-up: three quiet windows of normal orders teach rates, sizes and fields.
    for _ in 0..3 {
        for _ in 0..8 {
            assert_eq!(proxy.send(&post(order(""))).await.status, 200);
        }
        clock.advance(Duration::from_secs(60));
    }
    let quiet = proxy.metrics().await;
    for kind in Kind::all() {
        assert_eq!(quiet.anomalies(kind), 0.0, "{kind} raised by a normal workload");
    }

    proxy.send(&post(order(r#","iban":"x""#))).await; // new_field
    proxy
        .send(&post(order(&format!(r#","iban":"{}""#, "x".repeat(20_000)))))
        .await; // body_size_outlier
    for _ in 0..40 {
        proxy.send(&post(order(""))).await; // rate_spike
    }
    proxy
        .send(&absolute(
            "GET",
            &format!("http://{A}/v1/x"),
            &[("X-Api-Key", "mine")],
            b"",
        ))
        .await; // client_credentials
    for _ in 0..5 {
        get(&proxy, A, "/v1/revoked").await; // upstream_auth_failures
    }
    get(&proxy, "unknown.example", "/").await; // unknown_destination
    for _ in 0..20 {
        get(&proxy, A, "/refused").await; // refusal_burst
    }
    let m = proxy.metrics().await;
    for kind in Kind::all() {
        assert_eq!(m.anomalies(kind), 1.0, "{kind}: reported once in the window");
    }
}

struct Kind;
impl Kind {
    fn all() -> [&'static str; 7] {
        [
            "rate_spike",
            "refusal_burst",
            "unknown_destination",
            "client_credentials",
            "upstream_auth_failures",
            "body_size_outlier",
            "new_field",
        ]
    }
}
