#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! Requests no well-behaved client sends, against the in-process proxy: each
//! malformed request, smuggling framing and oversized body gets its refusal
//! with the exact shape, nothing reaches the upstream, and service goes on.
mod common;

use common::shipper::*;
use common::*;
use serde_json::{json, Value};

/// Requests no well-behaved client sends, each with the answer it must get.
fn malformed_cases() -> Vec<(&'static str, Vec<u8>, u16, &'static str)> {
    let order = r#"{"order_id":1}"#;
    let deep = format!("{{\"order_id\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    vec![
        (
            "Host disagrees with the URL",
            raw_request(
                "GET",
                "http://api.shipper.test/v1/shipments/1",
                &[("Host", "evil.test")],
                b"",
            ),
            400,
            "bad_request",
        ),
        (
            "Host port disagrees with the URL",
            raw_request(
                "GET",
                "http://api.shipper.test/v1/shipments/1",
                &[("Host", "api.shipper.test:8080")],
                b"",
            ),
            400,
            "bad_request",
        ),
        (
            "two Host headers",
            raw_request(
                "GET",
                "http://api.shipper.test/v1/shipments/1",
                &[("Host", HOST), ("Host", HOST)],
                b"",
            ),
            400,
            "bad_request",
        ),
        (
            "origin form without Host on TCP",
            raw_request("GET", "/v1/shipments/1", &[], b""),
            400,
            "bad_request",
        ),
        (
            "userinfo in the URL",
            absolute("GET", "http://user@api.shipper.test/v1/shipments/1", &[], b""),
            400,
            "bad_request",
        ),
        (
            "encoded slash",
            absolute(
                "GET",
                "http://api.shipper.test/v1/shipments/1%2F..%2F..%2Fadmin",
                &[],
                b"",
            ),
            400,
            "bad_request",
        ),
        (
            "encoded slash lower",
            post_json("http://api.shipper.test/v1%2fshipments", order),
            400,
            "bad_request",
        ),
        (
            "dot-dot above the root",
            absolute("GET", "http://api.shipper.test/../v1/shipments/1", &[], b""),
            400,
            "bad_request",
        ),
        (
            "encoded dot-dot above the root",
            absolute("GET", "http://api.shipper.test/%2e%2e/%2E%2E/v1/shipments/1", &[], b""),
            400,
            "bad_request",
        ),
        (
            "ftp scheme",
            absolute("GET", "ftp://api.shipper.test/v1/shipments/1", &[], b""),
            400,
            "bad_request",
        ),
        (
            "malformed JSON",
            post_json(SHIP, r#"{"order_id": 1,"#),
            400,
            "malformed_body",
        ),
        ("not JSON at all", post_json(SHIP, "order_id=1"), 400, "malformed_body"),
        (
            "duplicate keys",
            post_json(SHIP, r#"{"order_id":1,"order_id":2}"#),
            400,
            "malformed_body",
        ),
        (
            "duplicate keys nested",
            post_json(SHIP, r#"{"shipping":{"country":"DE","country":"US"}}"#),
            400,
            "malformed_body",
        ),
        (
            "duplicate keys by escape",
            post_json(
                "http://api.shipper.test/v1/customers",
                r#"{"email":"a@b.example","\u0065mail":"c@d.example"}"#,
            ),
            400,
            "malformed_body",
        ),
        ("deep nesting", post_json(SHIP, &deep), 400, "malformed_body"),
        (
            "text/plain on a body route",
            absolute("POST", SHIP, &[("Content-Type", "text/plain")], order.as_bytes()),
            415,
            "unsupported_media_type",
        ),
        (
            // Urlencoded forms are filtered now (tests/form_bodies.rs); multipart never is.
            "multipart on a body route",
            absolute(
                "POST",
                SHIP,
                &[("Content-Type", "multipart/form-data; boundary=x")],
                b"--x\r\nContent-Disposition: form-data; name=\"order_id\"\r\n\r\n1\r\n--x--\r\n",
            ),
            415,
            "unsupported_media_type",
        ),
        (
            "gzip on a body route",
            absolute(
                "POST",
                SHIP,
                &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
                &gzip(order.as_bytes()),
            ),
            415,
            "unsupported_media_type",
        ),
        (
            "field outside the policy, reject",
            post_json(
                "http://api.shipper.test/v1/strict",
                r#"{"order_id":1,"email":"a@b.example"}"#,
            ),
            422,
            "field_not_allowed",
        ),
        (
            "card number with spaces",
            post_json(
                SHIP,
                r#"{"order_id":1,"line_items":[{"sku":"4111 1111 1111 1111","quantity":1}]}"#,
            ),
            422,
            "sensitive_value",
        ),
        (
            "card number plain",
            post_json(SHIP, r#"{"order_id":1,"shipping":{"postcode":"4111111111111111"}}"#),
            422,
            "sensitive_value",
        ),
        (
            "unknown destination",
            absolute("GET", "http://unknown.test/", &[], b""),
            403,
            "destination_not_allowed",
        ),
        (
            "route not allowed",
            absolute("DELETE", "http://api.shipper.test/v1/shipments/1", &[], b""),
            403,
            "route_not_allowed",
        ),
    ]
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_and_bodies_each_get_their_refusal_then_service_goes_on() {
    let fx = Fixture::new(Opts::default()).await;
    let mut failures = Vec::new();
    for (what, raw, status, reason) in malformed_cases() {
        let resp = fx.send(&raw).await;
        let ok = resp.status == status
            && resp.reason() == Some(reason)
            && serde_json::from_slice::<Value>(&resp.body)
                .is_ok_and(|v| v["error"] == reason && v["request_id"].is_string());
        if !ok {
            failures.push(format!(
                "{what}: want {status} {reason}, got {} {:?} body {:?}",
                resp.status,
                resp.reason(),
                resp.text()
            ));
        }
    }
    assert_eq!(
        fx.up.count(),
        0,
        "the upstream recorded a refused request: {:#?}",
        fx.up.requests()
    );
    // The proxy keeps serving.
    let resp = fx
        .send(&post_json(SHIP, r#"{"order_id":77,"billing":{"email":"a@b.example"}}"#))
        .await;
    assert_eq!(resp.status, 200, "good request after the malformed ones: {}", resp.head);
    assert_eq!(fx.up.single().json(), json!({"order_id": 77}));
    assert!(
        failures.is_empty(),
        "{} of {} cases answered wrongly:\n{}",
        failures.len(),
        malformed_cases().len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_cases_each_get_the_full_refusal() {
    let fx = Fixture::new(Opts::default()).await;
    for (what, raw, status, reason) in malformed_cases() {
        if status == 400 && reason == "bad_request" {
            fx.refused(&raw, status, reason, what).await;
        }
    }
}

/// Smuggling attempts: two framings. hyper parses these before the proxy
/// sees them, so the proxy must make sure they still end as `bad_request`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_framings_are_bad_requests() {
    let fx = Fixture::new(Opts::default()).await;
    let body = b"{\"order_id\":1}";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "Content-Length and Transfer-Encoding",
            raw_request(
                "POST",
                "http://api.shipper.test/v1/raw",
                &[
                    ("Host", HOST),
                    ("Content-Type", "application/json"),
                    ("Content-Length", "14"),
                    ("Transfer-Encoding", "chunked"),
                ],
                b"e\r\n{\"order_id\":1}\r\n0\r\n\r\n",
            ),
        ),
        (
            "Transfer-Encoding then Content-Length",
            raw_request(
                "POST",
                "http://api.shipper.test/v1/raw",
                &[
                    ("Host", HOST),
                    ("Content-Type", "application/json"),
                    ("Transfer-Encoding", "chunked"),
                    ("Content-Length", "14"),
                ],
                b"e\r\n{\"order_id\":1}\r\n0\r\n\r\n",
            ),
        ),
        (
            "two differing Content-Lengths",
            raw_request(
                "POST",
                "http://api.shipper.test/v1/raw",
                &[
                    ("Host", HOST),
                    ("Content-Type", "application/json"),
                    ("Content-Length", "14"),
                    ("Content-Length", "3"),
                ],
                body,
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (what, raw) in cases {
        let resp = fx.send(&raw).await;
        if resp.status != 400 || resp.reason() != Some("bad_request") {
            failures.push(format!(
                "{what}: got {} {:?} {:?}",
                resp.status,
                resp.reason(),
                resp.text()
            ));
        }
    }
    let reached: Vec<String> = fx
        .up
        .requests()
        .iter()
        .map(|r| format!("{} {} {:?}", r.method, r.target, r.headers))
        .collect();
    assert!(
        failures.is_empty() && reached.is_empty(),
        "wrong answers:\n{}\nreached the upstream:\n{}",
        failures.join("\n"),
        reached.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_too_large() {
    let fx = Fixture::new(Opts {
        defaults: vec![("max_body_bytes", "1000".into())],
        ..Opts::default()
    })
    .await;
    let big = format!("{{\"order_id\":1,\"customer_note\":\"{}\"}}", "x".repeat(2000));
    fx.refused(
        &post_json(SHIP, &big),
        413,
        "body_too_large",
        "declared length over the bound",
    )
    .await;
    fx.refused(
        &post_json("http://api.shipper.test/v1/raw", &big),
        413,
        "body_too_large",
        "no body policy, declared",
    )
    .await;
    let chunked = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    fx.refused(
        &raw_request(
            "POST",
            SHIP,
            &[
                ("Host", HOST),
                ("Content-Type", "application/json"),
                ("Transfer-Encoding", "chunked"),
            ],
            chunked.as_bytes(),
        ),
        413,
        "body_too_large",
        "chunked over the bound on a body route",
    )
    .await;
    // Under the bound still passes.
    let resp = fx.send(&post_json(SHIP, r#"{"order_id":2}"#)).await;
    assert_eq!(resp.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_refusal_has_the_exact_shape() {
    let fx = Fixture::new(Opts::default()).await;
    let strict = "http://api.shipper.test/v1/strict";
    fx.refused(
        &post_json(SHIP, "{\"order_id\":"),
        400,
        "malformed_body",
        "truncated JSON",
    )
    .await;
    fx.refused(
        &absolute("POST", SHIP, &[("Content-Type", "text/plain")], b"hello"),
        415,
        "unsupported_media_type",
        "text/plain",
    )
    .await;
    fx.refused(
        &absolute(
            "POST",
            SHIP,
            &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
            &gzip(br#"{"order_id":1}"#),
        ),
        415,
        "unsupported_media_type",
        "gzip request body",
    )
    .await;
    fx.refused(
        &post_json(strict, r#"{"order_id":1,"status":"x","email":"a@b.example"}"#),
        422,
        "field_not_allowed",
        "reject",
    )
    .await;
    fx.refused(
        &post_json(
            SHIP,
            r#"{"order_id":1,"line_items":[{"sku":"4111 1111 1111 1111","quantity":1}]}"#,
        ),
        422,
        "sensitive_value",
        "card",
    )
    .await;
    // The reject route lets a conforming body through unchanged.
    let resp = fx.send(&post_json(strict, r#"{"order_id":1,"status":"done"}"#)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(fx.up.single().json(), json!({"order_id": 1, "status": "done"}));
}
