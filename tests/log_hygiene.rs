//! Invariant 1 and "logs carry names and figures, never values": the real
//! binary at `EGRESS_GUARD_LOG=debug` serves a mixed workload of orders full
//! of personal data (allow-list strip, deny-list strip, reject, report mode,
//! a card number, malformed JSON, an oversized body, a query string with an
//! email, a client-sent API key, an unknown host, a route that is not
//! allowed, curl), with an upstream that echoes the injected key and the
//! request back. After SIGTERM, nothing the process wrote to stdout or stderr,
//! and nothing on `/metrics`, holds the key, the client's key or any personal
//! value; yet every request has its audit line and the client key its anomaly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;

const HOST: &str = "api.shipper.test";
const SECRET: &str = "sk_live_HygieneSecret_7Qx9Lm2Vb8";
const CLIENT_KEY: &str = "client-side-key-987";
const MAX_BODY: usize = 4096;

/// Every personal value the workload sends, in bodies or query strings.
const PERSONAL: &[&str] = &[
    "Jane Quinella Doe",
    "Quinella",
    "jane.quinella@example.org",
    "+49 30 5550 1234",
    "030-5550-1234",
    "Lindenstrasse 42b",
    "Apartment 7, Hinterhaus",
    "Springfieldia",
    "4111 1111 1111 1111",
    "4111111111111111",
    "DE987654321",
    "please ring twice, the dog is friendly",
    "Jürgen Pölzl",
    "Pölzl",
    "mallory.malformed@broken.example",
    "Mallory Malformedova",
    "oversize.olga@big.example",
    "reject.rita@strict.example",
    "report.ronald@trial.example",
    "Ronald Reportmann",
    "jane.query@example.net",
    "jane.query%40example.net",
    "+4915550009876",
    "curl.carla@client.example",
    "Carla Curlingham",
    "delete.dora@nowhere.example",
    "unknown.ulf@evil.example",
];

fn policy(upstream: &Upstream, ca: &TestCa, key: &tempfile::NamedTempFile) -> String {
    let orders = [
        "order_id",
        "shipping.postcode",
        "shipping.country",
        "payment.reference",
        "items[].sku",
        "items[].quantity",
    ];
    let customers = [
        "customer.name",
        "customer.email",
        "customer.phone",
        "customer.address",
        "customer.vat_id",
        "notes",
    ];
    let strip = |r: Route| r.body("on_violation", "strip");
    let reject = |r: Route| r.body("on_violation", "reject");
    PolicyBuilder::new()
        .listen_any()
        .defaults("max_body_bytes", MAX_BODY)
        .dest(
            Dest::new("shop", HOST)
                .upstream(upstream, ca)
                .secret(key.path())
                .route(strip(Route::post("/v1/orders").allow(&orders)).scan(&["card_number"]))
                .route(strip(Route::post("/v1/customers").deny(&customers)))
                .route(reject(Route::post("/v1/strict").allow(&["order_id"])))
                .route(reject(Route::post("/v1/trial").mode("report").allow(&["order_id"])).scan(&["card_number"]))
                .route(Route::get("/v1/orders/*"))
                .route(Route::get("/v1/echo")),
        )
        .yaml()
}

/// An order as a shop would send it: personal data everywhere.
fn full_order(order_id: u32) -> String {
    serde_json::json!({
        "order_id": order_id,
        "customer": {
            "name": "Jane Quinella Doe",
            "email": "jane.quinella@example.org",
            "phone": "+49 30 5550 1234",
            "vat_id": "DE987654321",
        },
        "shipping": {
            "name": "Jürgen Pölzl",
            "street": "Lindenstrasse 42b",
            "street2": "Apartment 7, Hinterhaus",
            "city": "Springfieldia",
            "postcode": "10115",
            "country": "DE",
            "phone": "030-5550-1234",
        },
        "items": [{"sku": "SKU-1", "quantity": 2, "gift_message": "please ring twice, the dog is friendly"}],
        "notes": "please ring twice, the dog is friendly",
    })
    .to_string()
}

/// The upstream: echoes the injected key back on `/v1/echo` (header and
/// body), and echoes what it got (body, or path and query) everywhere else.
fn echo_handler() -> Handler {
    Arc::new(|r: &Recorded| {
        let key = r.header("x-api-key").unwrap_or_default();
        if r.path() == "/v1/echo" {
            let body = serde_json::json!({"your_key": key, "note": format!("key={key}")}).to_string();
            return Reply::json(200, &body).header("x-echo-key", &key);
        }
        let body = serde_json::json!({
            "seen_target": r.target,
            "seen_body": String::from_utf8_lossy(&r.body),
        })
        .to_string();
        Reply::json(200, &body)
    })
}

async fn send(addr: SocketAddr, raw: &[u8]) -> RawResponse {
    send_to(addr, raw).await
}

/// Every way a value could show up in a log line: as sent, lower-cased, and
/// with non-ASCII characters JSON- or Rust-escaped.
fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_owned(), value.to_lowercase()];
    let json = serde_json::to_string(value).unwrap();
    let json = json.trim_matches('"').to_owned();
    let ascii_json: String = value
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{:04x}", c as u32)
            }
        })
        .collect();
    let rust_debug = value.escape_debug().to_string();
    let rust_unicode: String = value
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect();
    out.extend([json, ascii_json, rust_debug, rust_unicode]);
    out.sort();
    out.dedup();
    out
}

/// The text, lower-cased, must hold none of the secrets nor personal values.
fn assert_clean(text: &str, what: &str) {
    let lower = text.to_lowercase();
    let mut forbidden: Vec<&str> = vec![SECRET, CLIENT_KEY];
    forbidden.extend_from_slice(PERSONAL);
    for value in forbidden {
        for form in forms(value) {
            let form = form.to_lowercase();
            if let Some(at) = lower.find(&form) {
                let start = lower[..at].rfind('\n').map_or(0, |i| i + 1);
                let end = lower[at..].find('\n').map_or(lower.len(), |i| at + i);
                panic!(
                    "{what} holds {value:?} (as {form:?}) in:\n{}",
                    &text[start.min(text.len())..end.min(text.len())]
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_personal_or_secret_reaches_logs_or_metrics_h2_upstream() {
    mixed_workload(true).await;
}

/// The same with an HTTP/1.1-only upstream: another client code path in the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_personal_or_secret_reaches_logs_or_metrics_h1_upstream() {
    mixed_workload(false).await;
}

async fn mixed_workload(h2: bool) {
    let ca = TestCa::new();
    let upstream = Upstream::start_with(ca.server_config(&[HOST], h2), echo_handler()).await;
    let key = secret_file(SECRET);
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.yaml");
    std::fs::write(&policy_path, policy(&upstream, &ca, &key)).unwrap();

    let mut p = Spawn::new(&policy_path).log("debug").start();
    let addr: SocketAddr = p.addr.parse().unwrap();
    let admin = p.admin();

    let url = |path: &str| format!("http://{HOST}{path}");
    let json_ct = [("Content-Type", "application/json")];
    let mut sent = 0usize;

    // 1. Allow-list route: everything but the listed fields is stripped.
    let r = send(addr, &post_json(&url("/v1/orders"), &full_order(1))).await;
    sent += 1;
    assert_eq!(r.status, 200, "allow-list order: {}", r.text());
    let got = upstream.wait_for(1).await;
    let forwarded = got[0].json();
    assert_eq!(
        forwarded["shipping"],
        serde_json::json!({"postcode": "10115", "country": "DE"})
    );
    assert!(forwarded.get("customer").is_none(), "{forwarded}");

    // 2. A card number in an allowed field: refused.
    let mut with_card: serde_json::Value = serde_json::from_str(&full_order(2)).unwrap();
    with_card["payment"] = serde_json::json!({"reference": "4111 1111 1111 1111"});
    let r = send(addr, &post_json(&url("/v1/orders"), &with_card.to_string())).await;
    sent += 1;
    assert_refusal(&r, 422, "sensitive_value", "card number");

    // 3. Deny-list route: the named fields go, the rest passes; the upstream echoes what it got.
    let r = send(addr, &post_json(&url("/v1/customers"), &full_order(3))).await;
    sent += 1;
    assert_eq!(r.status, 200, "deny-list order: {}", r.text());

    // 4. Reject route.
    let body = r#"{"order_id":4,"customer":{"email":"reject.rita@strict.example"},"notes":"DE987654321"}"#;
    let r = send(addr, &post_json(&url("/v1/strict"), body)).await;
    sent += 1;
    assert_refusal(&r, 422, "field_not_allowed", "reject route");

    // 5. Report-mode route: would refuse (fields and a card), passes unchanged.
    let body = serde_json::json!({
        "order_id": 5,
        "customer": {"name": "Ronald Reportmann", "email": "report.ronald@trial.example"},
        "card": "4111 1111 1111 1111",
    })
    .to_string();
    let r = send(addr, &post_json(&url("/v1/trial"), &body)).await;
    sent += 1;
    assert_eq!(r.status, 200, "report mode: {}", r.text());

    // 6. The client sends its own key, in two spellings.
    let order = full_order(6);
    let r = send(
        addr,
        &absolute(
            "POST",
            &url("/v1/orders"),
            &[
                ("Content-Type", "application/json"),
                ("X-API-KEY", CLIENT_KEY),
                ("x_api_key", CLIENT_KEY),
            ],
            order.as_bytes(),
        ),
    )
    .await;
    sent += 1;
    assert_eq!(r.status, 200, "client key: {}", r.text());

    // 7. Malformed JSON with personal data inside.
    let body = r#"{"order_id":7,"customer":{"name":"Mallory Malformedova","email":"mallory.malformed@broken.example""#;
    let r = send(addr, &post_json(&url("/v1/orders"), body)).await;
    sent += 1;
    assert_refusal(&r, 400, "malformed_body", "malformed JSON");

    // 8. Over max_body_bytes.
    let filler: Vec<String> = (0..200).map(|i| format!("oversize.olga@big.example #{i}")).collect();
    let body = serde_json::json!({"order_id": 8, "customers": filler}).to_string();
    assert!(body.len() > MAX_BODY);
    let r = send(addr, &post_json(&url("/v1/orders"), &body)).await;
    sent += 1;
    assert_refusal(&r, 413, "body_too_large", "oversized body");

    // 9. Unknown destination, with an email in the query.
    let r = send(
        addr,
        &absolute(
            "POST",
            "http://evil-unknown.example/collect?email=unknown.ulf@evil.example",
            &json_ct,
            br#"{"email":"unknown.ulf@evil.example"}"#,
        ),
    )
    .await;
    sent += 1;
    assert_refusal(&r, 403, "destination_not_allowed", "unknown destination");

    // 10. A route that is not allowed.
    let r = send(
        addr,
        &absolute(
            "DELETE",
            &url("/v1/orders?who=delete.dora@nowhere.example"),
            &json_ct,
            br#"{"email":"delete.dora@nowhere.example"}"#,
        ),
    )
    .await;
    sent += 1;
    assert_refusal(&r, 403, "route_not_allowed", "route not allowed");

    // 11. A query string with an email and a phone; the upstream echoes the target.
    let r = send(
        addr,
        &absolute(
            "GET",
            &url("/v1/orders/77?email=jane.query%40example.net&phone=%2B4915550009876"),
            &[],
            b"",
        ),
    )
    .await;
    sent += 1;
    assert_eq!(r.status, 200, "query string: {}", r.text());
    let r = send(
        addr,
        &absolute("GET", &url("/v1/orders/78?email=jane.query@example.net"), &[], b""),
    )
    .await;
    sent += 1;
    assert_eq!(r.status, 200, "query string: {}", r.text());

    // 12. The upstream echoes the injected key in a header and the body.
    let r = send(addr, &absolute("GET", &url("/v1/echo"), &[], b"")).await;
    sent += 1;
    assert_eq!(r.status, 200, "echo: {}", r.text());
    assert!(
        !r.head.contains(SECRET) && !r.text().contains(SECRET),
        "the key reached the client:\n{}\n{}",
        r.head,
        r.text()
    );
    let echoed = upstream
        .requests()
        .into_iter()
        .find(|q| q.path() == "/v1/echo")
        .unwrap();
    assert_eq!(echoed.version, if h2 { "HTTP/2.0" } else { "HTTP/1.1" });
    assert_eq!(
        echoed.header("x-api-key").as_deref(),
        Some(SECRET),
        "the key was not injected"
    );

    // 13. curl, as PHP's cURL would send it.
    let body = r#"{"order_id":13,"customer":{"name":"Carla Curlingham","email":"curl.carla@client.example"}}"#;
    let proxy_url = format!("http://{addr}");
    let target = url("/v1/customers?email=curl.carla@client.example");
    let o = curl(&[
        "-x",
        &proxy_url,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        &target,
    ])
    .await;
    sent += 1;
    assert!(o.status.success(), "{}", describe(&o));

    // Everything that was allowed reached the upstream over TLS, with our key only.
    let reached = upstream.wait_for(8).await;
    for q in &reached {
        assert_eq!(q.header_values("x-api-key"), vec![SECRET.to_owned()], "{q:?}");
        assert!(q.header("x_api_key").is_none(), "{q:?}");
    }

    // /metrics before stopping.
    let (status, scrape) = admin_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(scrape.contains("egress_guard_requests_total"), "{scrape}");
    assert_clean(&scrape, "/metrics");
    assert!(!scrape.contains("evil-unknown.example"), "{scrape}");

    // Stop it and collect everything it wrote.
    p.term();
    let status = p.wait_exit();
    let all = p.drained_output();
    assert!(status.success(), "exit {status:?}\n{}", p.err.text());

    assert_clean(&all, "the proxy's output");

    let audit_lines = all.lines().filter(|l| l.contains("\"message\":\"request\"")).count();
    assert!(
        audit_lines >= sent,
        "{audit_lines} audit lines for {sent} requests:\n{all}"
    );
    // Every answer was read to its end: each forwarded request's line says so.
    let allowed: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("\"message\":\"request\"") && l.contains("\"decision\":\"allow\""))
        .collect();
    assert!(!allowed.is_empty());
    for l in &allowed {
        assert!(
            l.contains("\"complete\":true"),
            "an answer read to its end logged as incomplete: {l}"
        );
    }
    let anomaly = all
        .lines()
        .find(|l| l.contains("egress_guard::anomaly") && l.contains("client_credentials"));
    assert!(anomaly.is_some(), "no client_credentials anomaly line:\n{all}");
    assert!(
        all.lines()
            .any(|l| l.contains("egress_guard::anomaly") && l.contains("unknown_destination")),
        "no unknown_destination anomaly line:\n{all}"
    );
    // Removed fields are named (names are fine, values are not).
    assert!(
        all.lines()
            .any(|l| l.contains("\"message\":\"request\"") && l.contains("customer.email")),
        "no audit line names a removed field:\n{all}"
    );
}
