#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! The in-process proxy driven over raw sockets on its TCP port (and its
//! unix socket), against a recording TLS upstream: every row of SPEC.md's
//! answer table that applies without rate limits, each refusal's exact shape
//! with nothing recorded upstream, and the invariants: secrets never reach
//! the client (headers, chunk-split and gzip bodies), every upstream request
//! over verified TLS with the right SNI, deny by default, field filtering
//! (allow/deny, duplicate keys, escaped keys, deep nesting, huge numbers),
//! credential binding, and address checks. Also path normalisation, the
//! query not deciding the route, report mode, keep-alive, and the proxy
//! serving on after a run of malformed requests.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{
    absolute, assert_refusal, closed_port, post_json, raw_request, secret_file, Proxy, RawConn, Recorded, Reply,
    TestCa, Upstream,
};
use serde_json::{json, Value};

const HOST: &str = "api.shipper.test";
const KEY: &str = "sk_test_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const SHIP: &str = "http://api.shipper.test/v1/shipments";

/// One CA, one recording upstream for `api.shipper.test` (and the other
/// test names), a secret file, and the proxy on a policy built by `policy`.
struct Fixture {
    _ca: TestCa,
    up: Upstream,
    _secret: tempfile::NamedTempFile,
    proxy: Proxy,
}

/// Overrides for the standard test policy.
#[derive(Default)]
struct Opts {
    /// `defaults:` entries replacing the test defaults.
    defaults: Vec<(&'static str, String)>,
    /// Extra destinations, YAML indented by four spaces under `destinations:`.
    extra: String,
    /// A `server:` section body (indented by two spaces).
    server: String,
    /// Whole-destination `mode:` for `shipper`.
    shipper_mode: Option<&'static str>,
}

fn policy_yaml(up: &Upstream, ca: &TestCa, secret: &str, opts: &Opts) -> String {
    let mut defaults: BTreeMap<&str, String> = BTreeMap::new();
    defaults.insert("request_timeout_ms", "5000".into());
    defaults.insert("connect_timeout_ms", "2000".into());
    defaults.insert("max_body_bytes", "1048576".into());
    for (k, v) in &opts.defaults {
        defaults.insert(k, v.clone());
    }
    let defaults: String = defaults.iter().map(|(k, v)| format!("  {k}: {v}\n")).collect();
    let server = if opts.server.is_empty() {
        String::new()
    } else {
        format!("server:\n{}\n", opts.server)
    };
    let mode = opts
        .shipper_mode
        .map(|m| format!("    mode: {m}\n"))
        .unwrap_or_default();
    let up = up.connect_to();
    let ca = ca.pem_path();
    let extra = &opts.extra;
    format!(
        r#"version: 1
{server}defaults:
{defaults}destinations:
  shipper:
    host: {HOST}
    connect_to: {up}
    ca_file: {ca}
{mode}    credential:
      header: X-API-KEY
      secret: file:{secret}
    routes:
      - methods: [POST]
        path: /v1/shipments
        body:
          allow: [order_id, shipping.postcode, shipping.country, "line_items[].sku", "line_items[].quantity"]
          on_violation: strip
          scan: [card_number]
      - methods: [POST]
        path: /v1/strict
        body:
          allow: [order_id, status]
          on_violation: reject
      - methods: [POST, PUT]
        path: /v1/customers
        body:
          deny: [email, billing.email, billing.phone, "meta_data[].value", "line_items[].price"]
      - methods: [GET]
        path: /v1/shipments/*
      - methods: [POST]
        path: /v1/raw
{extra}"#
    )
}

impl Fixture {
    async fn new(opts: Opts) -> Fixture {
        let ca = TestCa::new();
        let up = Upstream::start(&ca, &[HOST, "api.other.test", "api.report.test", "api.open.test"]).await;
        Fixture::with_upstream(ca, up, opts).await
    }

    async fn with_upstream(ca: TestCa, up: Upstream, opts: Opts) -> Fixture {
        let secret = secret_file(KEY);
        let yaml = policy_yaml(&up, &ca, secret.path().to_str().unwrap(), &opts);
        let proxy = Proxy::start(&yaml).await;
        Fixture {
            _ca: ca,
            up,
            _secret: secret,
            proxy,
        }
    }

    async fn send(&self, raw: &[u8]) -> common::RawResponse {
        self.proxy.send(raw).await
    }

    /// A refusal that must leave the upstream untouched.
    async fn refused(&self, raw: &[u8], status: u16, reason: &str, what: &str) {
        let before = self.up.count();
        let resp = self.send(raw).await;
        assert_refusal(&resp, status, reason, what);
        assert_eq!(
            self.up.count(),
            before,
            "{what}: the upstream recorded a refused request"
        );
        assert!(!resp.text().contains(KEY), "{what}: the secret is in a refusal");
    }
}

/// Waits until the upstream has `n` requests and returns the last one.
async fn last(up: &Upstream, n: usize) -> Recorded {
    up.wait_for(n).await.pop().unwrap()
}

fn woo_order() -> Value {
    json!({
        "order_id": 1042,
        "status": "processing",
        "currency": "EUR",
        "customer_note": "Bitte beim Nachbarn abgeben",
        "billing": {
            "first_name": "Erika", "last_name": "Mustermann", "company": "",
            "email": "erika.mustermann@example.org", "phone": "+49 30 1234567",
            "address_1": "Heidestrasse 17", "city": "Koeln", "postcode": "51147", "country": "DE"
        },
        "shipping": {
            "first_name": "Erika", "last_name": "Mustermann",
            "address_1": "Heidestrasse 17", "city": "Koeln", "postcode": "51147", "country": "DE"
        },
        "line_items": [
            {"id": 11, "sku": "MUG-RED", "name": "Tasse rot", "quantity": 2, "price": "9.90",
             "meta_data": [{"key": "engraving", "value": "Fuer Max"}]},
            {"id": 12, "sku": "TEE-M", "name": "T-Shirt M", "quantity": 1, "price": "19.00"}
        ],
        "meta_data": [
            {"id": 7, "key": "_customer_ip_address", "value": "203.0.113.9"},
            {"id": 8, "key": "_billing_vat_id", "value": "DE123456789"}
        ]
    })
}

fn assert_no_personal_data(body: &[u8], what: &str) {
    let text = String::from_utf8_lossy(body);
    for pii in [
        "erika.mustermann@example.org",
        "+49 30 1234567",
        "203.0.113.9",
        "DE123456789",
        "Heidestrasse",
        "Erika",
    ] {
        assert!(!text.contains(pii), "{what}: upstream received {pii:?}: {text}");
    }
}

// ---------------------------------------------------------------------------
// The way through
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_post_is_filtered_upgraded_and_carries_the_key() {
    let fx = Fixture::new(Opts::default()).await;
    let resp = fx.send(&post_json(SHIP, &woo_order().to_string())).await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    assert_eq!(resp.json(), json!({"ok": true}));
    let got = fx.up.single();
    assert_eq!(got.method, "POST");
    assert_eq!(got.target, "/v1/shipments");
    assert_eq!(got.sni.as_deref(), Some(HOST), "SNI");
    assert_eq!(
        got.header_values("x-api-key"),
        vec![KEY.to_owned()],
        "exactly the injected key"
    );
    assert_eq!(
        got.json(),
        json!({
            "order_id": 1042,
            "shipping": {"postcode": "51147", "country": "DE"},
            "line_items": [{"sku": "MUG-RED", "quantity": 2}, {"sku": "TEE-M", "quantity": 1}]
        })
    );
    assert_no_personal_data(&got.body, "allow mode");
    let len: usize = got
        .header("content-length")
        .map_or(got.body.len(), |v| v.parse().unwrap());
    assert_eq!(len, got.body.len(), "content-length matches the filtered body");
    assert!(got.header("proxy-connection").is_none() && got.header("proxy-authorization").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_origin_form_with_host() {
    let fx = Fixture::new(Opts::default()).await;
    let mut c = RawConn::unix(&fx.proxy.socket_path).await;
    let body = woo_order().to_string();
    c.send(&raw_request(
        "POST",
        "/v1/shipments",
        &[
            ("Host", HOST),
            ("Content-Type", "application/json"),
            ("X-API-KEY", "from-php"),
        ],
        body.as_bytes(),
    ))
    .await;
    let resp = c.response().await.unwrap();
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    assert_eq!(got.sni.as_deref(), Some(HOST));
    assert_eq!(got.header_values("x-api-key"), vec![KEY.to_owned()]);
    assert_eq!(got.json()["shipping"], json!({"postcode": "51147", "country": "DE"}));
    assert_no_personal_data(&got.body, "unix socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_two_requests_on_one_connection() {
    let fx = Fixture::new(Opts::default()).await;
    let mut c = RawConn::tcp(fx.proxy.addr).await;
    c.send(&absolute("GET", "http://api.shipper.test/v1/shipments/1", &[], b""))
        .await;
    let a = c.response().await.unwrap();
    assert_eq!(a.status, 200, "first: {}", a.head);
    c.send(&post_json(SHIP, r#"{"order_id":7,"email":"x@example.org"}"#))
        .await;
    let b = c.response().await.unwrap();
    assert_eq!(b.status, 200, "second: {}", b.head);
    let got = fx.up.wait_for(2).await;
    assert_eq!(got[0].target, "/v1/shipments/1");
    assert_eq!(got[1].json(), json!({"order_id": 7}));
    // A refusal on the same connection does not end it either.
    c.send(&absolute("GET", "http://unknown.test/", &[], b"")).await;
    let r = c.response().await.unwrap();
    assert_refusal(&r, 403, "destination_not_allowed", "refusal on a kept-alive connection");
    c.send(&absolute("GET", "http://api.shipper.test/v1/shipments/2", &[], b""))
        .await;
    assert_eq!(
        c.response().await.unwrap().status,
        200,
        "after a refusal, same connection"
    );
    assert_eq!(fx.up.wait_for(3).await[2].target, "/v1/shipments/2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_only_upstream_works_too() {
    let ca = TestCa::new();
    let up = Upstream::start_with(ca.server_config(&[HOST], false), Arc::new(|_: &Recorded| Reply::ok())).await;
    let fx = Fixture::with_upstream(ca, up, Opts::default()).await;
    let resp = fx
        .send(&post_json(SHIP, r#"{"order_id":1,"billing":{"email":"a@b.example"}}"#))
        .await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    assert_eq!(got.version, "HTTP/1.1");
    assert_eq!(got.sni.as_deref(), Some(HOST));
    assert_eq!(got.json(), json!({"order_id": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_is_normalised_before_matching_and_sending() {
    let fx = Fixture::new(Opts::default()).await;
    let cases = [
        "http://api.shipper.test/v1/./shipments",
        "http://api.shipper.test/v1//shipments",
        "http://api.shipper.test/v1/x/../shipments",
        "http://api.shipper.test/%76%31/shipments",
    ];
    for (i, url) in cases.iter().enumerate() {
        let resp = fx
            .send(&post_json(url, r#"{"order_id":5,"customer_note":"secret"}"#))
            .await;
        assert_eq!(resp.status, 200, "{url}: {}\n{}", resp.head, resp.text());
        let got = last(&fx.up, i + 1).await;
        assert_eq!(got.target, "/v1/shipments", "{url} reaches the normalised path");
        assert_eq!(
            got.json(),
            json!({"order_id": 5}),
            "{url}: the route's body policy applied"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_string_does_not_decide_the_route() {
    let fx = Fixture::new(Opts::default()).await;
    // The query names a route without a body policy; the path's policy applies.
    let url = "http://api.shipper.test/v1/shipments?next=/v1/raw&x=1";
    let resp = fx
        .send(&post_json(url, r#"{"order_id":9,"billing":{"email":"a@b.example"}}"#))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.head);
    let got = fx.up.single();
    assert_eq!(
        got.target, "/v1/shipments?next=/v1/raw&x=1",
        "query passed on unchanged"
    );
    assert_eq!(got.json(), json!({"order_id": 9}));
    // A path not allowed stays refused whatever the query says.
    fx.refused(
        &post_json("http://api.shipper.test/v1/admin?path=/v1/shipments", "{}"),
        403,
        "route_not_allowed",
        "query naming an allowed path",
    )
    .await;
    fx.refused(
        &absolute("GET", "http://api.shipper.test/v1/admin?/v1/shipments/1", &[], b""),
        403,
        "route_not_allowed",
        "query looking like a path",
    )
    .await;
}

// ---------------------------------------------------------------------------
// The answer table
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_not_allowed_deny_by_default() {
    let fx = Fixture::new(Opts::default()).await;
    for (what, raw) in [
        (
            "unknown host",
            absolute("GET", "http://unknown.test/v1/shipments/1", &[], b""),
        ),
        (
            "unknown host POST",
            post_json("http://evil.test/v1/shipments", r#"{"order_id":1}"#),
        ),
        (
            "suffix of the allowed host",
            absolute("GET", "http://x.api.shipper.test/v1/shipments/1", &[], b""),
        ),
        (
            "allowed host as a subdomain",
            absolute("GET", "http://api.shipper.test.evil.test/v1/shipments/1", &[], b""),
        ),
        (
            "IP literal",
            absolute("GET", &format!("http://{}/v1/shipments/1", fx.up.addr), &[], b""),
        ),
        (
            "other port",
            absolute("GET", "http://api.shipper.test:8443/v1/shipments/1", &[], b""),
        ),
        (
            "connect to unknown",
            raw_request("CONNECT", "unknown.test:443", &[("Host", "unknown.test:443")], b""),
        ),
    ] {
        fx.refused(&raw, 403, "destination_not_allowed", what).await;
    }
    assert_eq!(fx.up.tls_failures(), 0, "no connection was even tried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_not_allowed() {
    let fx = Fixture::new(Opts::default()).await;
    for (what, raw) in [
        ("GET on a POST route", absolute("GET", SHIP, &[], b"")),
        (
            "DELETE",
            absolute("DELETE", "http://api.shipper.test/v1/shipments/1", &[], b""),
        ),
        ("unlisted path", post_json("http://api.shipper.test/v1/refunds", "{}")),
        (
            "dots to an unlisted path",
            post_json("http://api.shipper.test/v1/shipments/1/../../admin", "{}"),
        ),
        (
            "deeper than *",
            absolute("GET", "http://api.shipper.test/v1/shipments/1/labels", &[], b""),
        ),
        (
            "trailing slash",
            post_json("http://api.shipper.test/v1/shipments/", "{}"),
        ),
        ("case differs", post_json("http://api.shipper.test/V1/Shipments", "{}")),
    ] {
        fx.refused(&raw, 403, "route_not_allowed", what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_refused_by_policy() {
    let fx = Fixture::new(Opts {
        defaults: vec![("plain_http", "refuse".into())],
        ..Opts::default()
    })
    .await;
    fx.refused(
        &post_json(SHIP, r#"{"order_id":1}"#),
        403,
        "plain_http_refused",
        "http:// with refuse",
    )
    .await;
    // An https:// URL in absolute form is meant as HTTPS and passes.
    let resp = fx
        .send(&post_json("https://api.shipper.test/v1/shipments", r#"{"order_id":1}"#))
        .await;
    assert_eq!(
        resp.status,
        200,
        "https:// absolute form: {}\n{}",
        resp.head,
        resp.text()
    );
    assert_eq!(fx.up.single().sni.as_deref(), Some(HOST));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_not_allowed_for_credential_destination() {
    let fx = Fixture::new(Opts::default()).await;
    let mut c = RawConn::tcp(fx.proxy.addr).await;
    c.send(&raw_request(
        "CONNECT",
        "api.shipper.test:443",
        &[("Host", "api.shipper.test:443")],
        b"",
    ))
    .await;
    let resp = c.response().await.unwrap();
    assert_refusal(&resp, 403, "tunnel_not_allowed", "CONNECT to a credential destination");
    assert!(
        resp.json()["hint"].as_str().unwrap_or("").contains("http://"),
        "the hint says to use http://"
    );
    assert_eq!(fx.up.count(), 0);
    assert_eq!(fx.up.tls_failures(), 0, "no TCP connection was opened to the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_not_allowed_for_loopback_dns_answer() {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &["localhost", HOST]).await;
    let port = up.addr.port();
    let capath = ca.pem_path();
    let extra = format!("  local:\n    host: localhost\n    port: {port}\n    ca_file: {capath}\n");
    let fx = Fixture::with_upstream(
        ca,
        up,
        Opts {
            extra,
            ..Opts::default()
        },
    )
    .await;
    for url in [
        "http://localhost/v1/anything".to_owned(),
        format!("http://localhost:{port}/v1/anything"),
        format!("https://localhost:{port}/v1/anything"),
    ] {
        fx.refused(&absolute("GET", &url, &[], b""), 403, "address_not_allowed", &url)
            .await;
    }
    assert_eq!(
        fx.up.tls_failures(),
        0,
        "the proxy never connected to the loopback address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_auth_required_with_challenge() {
    let token = secret_file("tok-3f9a1c");
    let server = format!("  client_token: file:{}", token.path().to_str().unwrap());
    let fx = Fixture::new(Opts {
        server,
        ..Opts::default()
    })
    .await;
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let url = "http://api.shipper.test/v1/shipments/1";
    for (what, auth) in [
        ("missing", None),
        ("wrong token", Some(format!("Basic {}", b64("shop:nope")))),
        ("token as user name", Some(format!("Basic {}", b64("tok-3f9a1c:")))),
    ] {
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Proxy-Authorization", a)])
            .unwrap_or_default();
        let resp = fx.send(&absolute("GET", url, &headers, b"")).await;
        assert_refusal(&resp, 407, "proxy_auth_required", what);
        assert_eq!(
            resp.header("proxy-authenticate"),
            Some("Basic realm=\"egress-guard\""),
            "{what}: challenge"
        );
    }
    assert_eq!(fx.up.count(), 0);
    let good = format!("Basic {}", b64("shop:tok-3f9a1c"));
    let resp = fx
        .send(&absolute("GET", url, &[("Proxy-Authorization", &good)], b""))
        .await;
    assert_eq!(resp.status, 200, "right token: {}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    assert!(
        got.header("proxy-authorization").is_none(),
        "the proxy credential is not passed on"
    );
    assert!(!got
        .headers
        .iter()
        .any(|(_, v)| v.contains("tok-3f9a1c") || v.contains(&b64("shop:tok-3f9a1c"))));
    // The unix socket relies on its file mode: no token needed.
    let mut c = RawConn::unix(&fx.proxy.socket_path).await;
    c.send(&raw_request("GET", "/v1/shipments/2", &[("Host", HOST)], b""))
        .await;
    assert_eq!(c.response().await.unwrap().status, 200, "unix socket without token");
}

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
            "form on a body route",
            absolute(
                "POST",
                SHIP,
                &[("Content-Type", "application/x-www-form-urlencoded")],
                b"order_id=1",
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

// ---------------------------------------------------------------------------
// The upstream failing
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_unavailable_closed_port() {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[HOST]).await;
    let closed = closed_port().await;
    let extra = format!(
        "  closed:\n    host: api.closed.test\n    connect_to: {closed}\n    ca_file: {}\n",
        ca.pem_path()
    );
    let fx = Fixture::with_upstream(
        ca,
        up,
        Opts {
            extra,
            ..Opts::default()
        },
    )
    .await;
    let resp = fx.send(&absolute("GET", "http://api.closed.test/x", &[], b"")).await;
    assert_refusal(&resp, 502, "upstream_unavailable", "closed port");
}

async fn assert_tls_refused(up_tls: Arc<rustls::ServerConfig>, trust: TestCa, what: &str) {
    let up = Upstream::start_with(up_tls, Arc::new(|_: &Recorded| Reply::ok())).await;
    let fx = Fixture::with_upstream(trust, up, Opts::default()).await;
    let resp = fx.send(&post_json(SHIP, r#"{"order_id":1}"#)).await;
    assert_refusal(&resp, 502, "upstream_unavailable", what);
    assert_eq!(fx.up.count(), 0, "{what}: no request may follow a failed verification");
    fx.up.wait_for_tls_failures(1).await;
    assert!(!resp.text().contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_unavailable_unknown_ca() {
    let other = TestCa::new();
    assert_tls_refused(
        other.server_config(&[HOST], true),
        TestCa::new(),
        "certificate from an unknown CA",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_unavailable_certificate_for_another_name() {
    let ca = TestCa::new();
    let cfg = ca.server_config(&["api.other.test"], true);
    assert_tls_refused(cfg, ca, "certificate for another name").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_timeout_when_it_never_answers() {
    let ca = TestCa::new();
    let up = Upstream::start_replying(&ca, &[HOST], Arc::new(|_: &Recorded| Reply::never())).await;
    let fx = Fixture::with_upstream(
        ca,
        up,
        Opts {
            defaults: vec![("request_timeout_ms", "300".into())],
            ..Opts::default()
        },
    )
    .await;
    let started = std::time::Instant::now();
    let resp = fx.send(&post_json(SHIP, r#"{"order_id":1}"#)).await;
    assert_refusal(&resp, 504, "upstream_timeout", "upstream never answers");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered in {:?}",
        started.elapsed()
    );
    assert_eq!(fx.up.count(), 1, "the request did reach the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_answer_body_is_cut_not_passed_as_complete() {
    let ca = TestCa::new();
    let up = Upstream::start_replying(
        &ca,
        &[HOST],
        Arc::new(|_: &Recorded| Reply::stalled(200, b"{\"partial\":")),
    )
    .await;
    let fx = Fixture::with_upstream(
        ca,
        up,
        Opts {
            defaults: vec![("request_timeout_ms", "300".into())],
            ..Opts::default()
        },
    )
    .await;
    let mut c = RawConn::tcp(fx.proxy.addr).await;
    c.send(&absolute("GET", "http://api.shipper.test/v1/shipments/1", &[], b""))
        .await;
    match c.response_within(Duration::from_secs(10)).await {
        Ok(resp) => assert!(
            resp.status == 504 && resp.reason() == Some("upstream_timeout"),
            "a stalled body arrived as a complete answer: {}\n{:?}",
            resp.head,
            resp.text()
        ),
        Err(e) => assert!(
            !e.contains("timed out"),
            "the stalled body was not cut within 10 s: {e}"
        ),
    }
}

// ---------------------------------------------------------------------------
// Invariant 1: secrets never reach the client
// ---------------------------------------------------------------------------

fn echo_key(r: &Recorded) -> Reply {
    let k = r.header("x-api-key").unwrap_or_default();
    let third = k.len() / 3;
    let (a, rest) = k.split_at(third);
    let (b, c) = rest.split_at(third);
    let body = format!("{{\"seen\":\"{k}\",\"again\":\"{k}{k}\"}}");
    match r.path() {
        "/v1/shipments/gzip" => Reply::gzip(200, body.as_bytes(), 4).header("x-echo", &k),
        "/v1/shipments/gzip-length" => {
            // One piece with its compressed Content-Length: that length must not reach the client.
            let r = Reply::gzip(200, body.as_bytes(), 1);
            let n = r.chunks.iter().map(Vec::len).sum::<usize>().to_string();
            r.header("content-length", &n)
        }
        "/v1/shipments/redirect" => {
            Reply::json(302, "{}").header("location", &format!("https://api.shipper.test/next?key={k}"))
        }
        "/v1/shipments/error" => Reply::json(401, &format!("{{\"error\":\"bad key {k}\"}}")),
        _ => Reply::chunks(
            200,
            "application/json",
            vec![
                format!("{{\"seen\":\"{a}").into_bytes(),
                b.as_bytes().to_vec(),
                format!("{c}\",\"other\":\"").into_bytes(),
                k.as_bytes()[..1].to_vec(),
                k.as_bytes()[1..].to_vec(),
                b"\"}".to_vec(),
            ],
        )
        .header("x-echo", &k)
        .header("set-cookie", &format!("session={k}; Path=/")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_echoed_by_upstream_never_reaches_the_client() {
    let ca = TestCa::new();
    let up = Upstream::start_replying(&ca, &[HOST], Arc::new(echo_key)).await;
    let fx = Fixture::with_upstream(ca, up, Opts::default()).await;
    for (i, path) in ["chunks", "gzip", "gzip-length", "redirect", "error"]
        .iter()
        .enumerate()
    {
        let url = format!("http://api.shipper.test/v1/shipments/{path}");
        let resp = fx
            .send(&absolute("GET", &url, &[("Accept-Encoding", "gzip")], b""))
            .await;
        let got = last(&fx.up, i + 1).await;
        assert_eq!(
            got.header("x-api-key").as_deref(),
            Some(KEY),
            "{path}: positive control: the key was injected"
        );
        for (k, v) in &resp.headers {
            assert!(!v.contains(KEY), "{path}: secret in answer header {k}: {v}");
        }
        let body = resp.decoded_body();
        assert!(
            !String::from_utf8_lossy(&body).contains(KEY),
            "{path}: secret in answer body: {:?}",
            String::from_utf8_lossy(&body)
        );
        assert!(!resp.head.contains(KEY), "{path}: secret in the raw head");
        assert!(
            !body.windows(KEY.len()).any(|w| w == KEY.as_bytes())
                && !resp.body.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "{path}: secret in raw body bytes"
        );
        match *path {
            "chunks" => {
                assert_eq!(resp.status, 200, "{path}");
                let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: {e}"));
                assert!(
                    v["seen"].is_string() && v["other"].is_string(),
                    "{path}: body otherwise intact: {v}"
                );
            }
            "gzip" | "gzip-length" => {
                assert_eq!(resp.status, 200, "{path}");
                let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: {e}"));
                assert!(v["seen"].is_string(), "{path}: decoded body intact: {v}");
            }
            "redirect" => {
                assert_eq!(resp.status, 302, "redirects pass back, not followed");
                assert!(resp
                    .header("location")
                    .is_some_and(|l| l.starts_with("https://api.shipper.test/next?key=")));
                assert_eq!(fx.up.count(), i + 1, "the proxy did not follow the redirect");
            }
            _ => assert_eq!(resp.status, 401, "{path}: upstream errors pass back"),
        }
    }
}

// ---------------------------------------------------------------------------
// Invariant 2: TLS to every upstream, with the right SNI
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_request_is_tls_with_the_right_sni() {
    let extra = "  other:\n    host: api.other.test\n    connect_to: UP\n    ca_file: CA\n".to_owned();
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[HOST, "api.other.test"]).await;
    let extra = extra.replace("UP", &up.connect_to()).replace("CA", &ca.pem_path());
    let fx = Fixture::with_upstream(
        ca,
        up,
        Opts {
            extra,
            ..Opts::default()
        },
    )
    .await;
    let reqs = [
        post_json(SHIP, r#"{"order_id":1}"#),
        absolute("GET", "http://api.shipper.test/v1/shipments/3", &[], b""),
        absolute("GET", "http://api.other.test/anything", &[], b""),
        absolute("GET", "https://api.other.test/anything", &[], b""),
    ];
    for r in &reqs {
        assert_eq!(fx.send(r).await.status, 200);
    }
    let got = fx.up.wait_for(4).await;
    let snis: Vec<_> = got.iter().map(|r| r.sni.clone().unwrap_or_default()).collect();
    assert_eq!(snis, [HOST, HOST, "api.other.test", "api.other.test"]);
    let hosts: Vec<_> = got
        .iter()
        .map(|r| r.header("host").or_else(|| r.header(":authority")).unwrap_or_default())
        .collect();
    for (h, s) in hosts.iter().zip(&snis) {
        assert!(
            h.is_empty() || h == s || h.starts_with(&format!("{s}:")),
            "Host {h} matches SNI {s}"
        );
    }
}

// ---------------------------------------------------------------------------
// Invariant 4: field filtering
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_mode_removes_listed_fields_and_keeps_the_rest() {
    let fx = Fixture::new(Opts::default()).await;
    let order = woo_order();
    let resp = fx
        .send(&post_json("http://api.shipper.test/v1/customers", &order.to_string()))
        .await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let mut want = order.clone();
    want.as_object_mut().unwrap().remove("email");
    let billing = want["billing"].as_object_mut().unwrap();
    billing.remove("email");
    billing.remove("phone");
    for m in want["meta_data"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("value");
    }
    for li in want["line_items"].as_array_mut().unwrap() {
        li.as_object_mut().unwrap().remove("price");
    }
    let got = fx.up.single();
    assert_eq!(got.json(), want);
    let text = String::from_utf8_lossy(&got.body);
    for gone in [
        "erika.mustermann@example.org",
        "+49 30 1234567",
        "203.0.113.9",
        "DE123456789",
        "9.90",
    ] {
        assert!(!text.contains(gone), "deny mode let {gone:?} through");
    }
    assert_eq!(got.header_values("x-api-key"), vec![KEY.to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_escaped_keys_are_filtered_like_plain_ones() {
    let fx = Fixture::new(Opts::default()).await;
    let cust = "http://api.shipper.test/v1/customers";
    let body = r#"{"\u0065mail":"erika.mustermann@example.org","name":"E","billing":{"ph\u006Fne":"+49 30 1234567","city":"Koeln"}}"#;
    let resp = fx.send(&post_json(cust, body)).await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    let v = got.json();
    assert!(v.get("email").is_none(), "escaped `email` passed: {v}");
    assert!(v["billing"].get("phone").is_none(), "escaped `phone` passed: {v}");
    assert_eq!(v["name"], "E");
    assert_eq!(v["billing"]["city"], "Koeln");
    assert_no_personal_data(&got.body, "escaped keys");
    // Allow mode: an escaped key outside the list is removed too.
    let resp = fx
        .send(&post_json(
            SHIP,
            r#"{"order_id":3,"\u0062illing":{"email":"erika.mustermann@example.org"}}"#,
        ))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(last(&fx.up, 2).await.json(), json!({"order_id": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers_pass_verbatim() {
    let fx = Fixture::new(Opts::default()).await;
    let cust = "http://api.shipper.test/v1/customers";
    let body = r#"{"id":123456789012345678901234567890,"total":0.1000000000000000055511151231257827,"big":1e400,"neg":-0.0,"email":"erika.mustermann@example.org"}"#;
    let resp = fx.send(&post_json(cust, body)).await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    let text = String::from_utf8_lossy(&got.body);
    for lit in [
        "123456789012345678901234567890",
        "0.1000000000000000055511151231257827",
        "1e400",
        "-0.0",
    ] {
        assert!(text.contains(lit), "number {lit} not passed verbatim: {text}");
    }
    assert!(!text.contains("erika"), "the denied field was removed: {text}");
    // Allow mode keeps a huge number it allows, verbatim.
    let resp = fx
        .send(&post_json(
            SHIP,
            r#"{"order_id":98765432109876543210987654321,"customer_note":"x"}"#,
        ))
        .await;
    assert_eq!(resp.status, 200);
    let got = last(&fx.up, 2).await;
    assert_eq!(
        String::from_utf8_lossy(&got.body).replace(' ', ""),
        r#"{"order_id":98765432109876543210987654321}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_passes_the_body_unchanged() {
    let fx = Fixture::new(Opts {
        shipper_mode: Some("report"),
        ..Opts::default()
    })
    .await;
    let body = woo_order().to_string();
    let resp = fx.send(&post_json(SHIP, &body)).await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    assert_eq!(got.body, body.as_bytes(), "report mode sends the body byte for byte");
    assert_eq!(
        got.header_values("x-api-key"),
        vec![KEY.to_owned()],
        "the route matched: key injected"
    );
    // What enforce mode would refuse passes too.
    let resp = fx
        .send(&post_json(
            "http://api.shipper.test/v1/strict",
            r#"{"order_id":1,"email":"a@b.example"}"#,
        ))
        .await;
    assert_eq!(resp.status, 200, "report mode does not reject");
    assert_eq!(last(&fx.up, 2).await.body, br#"{"order_id":1,"email":"a@b.example"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_route_only() {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &["api.report.test"]).await;
    let secret = secret_file("sk_report_1234567890abcdef");
    let yaml = format!(
        "version: 1\ndestinations:\n  rep:\n    host: api.report.test\n    connect_to: {}\n    ca_file: {}\n    \
         credential:\n      secret: file:{}\n    routes:\n      - methods: [POST]\n        path: /v1/orders\n        \
         mode: report\n        body:\n          allow: [order_id]\n",
        up.connect_to(),
        ca.pem_path(),
        secret.path().to_str().unwrap()
    );
    let proxy = Proxy::start(&yaml).await;
    let body = r#"{"order_id":1,"billing":{"email":"a@b.example"}}"#;
    let resp = proxy.send(&post_json("http://api.report.test/v1/orders", body)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(up.single().body, body.as_bytes());
    // The route's report mode does not open other routes.
    let resp = proxy.send(&post_json("http://api.report.test/v1/other", body)).await;
    assert_refusal(&resp, 403, "route_not_allowed", "unlisted route beside a report route");
    assert_eq!(up.count(), 1);
}

// ---------------------------------------------------------------------------
// Invariant 6: credential binding
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_copies_of_the_credential_header_are_replaced_by_exactly_one() {
    let fx = Fixture::new(Opts::default()).await;
    let headers: &[(&str, &str)] = &[
        ("Content-Type", "application/json"),
        ("X-API-KEY", "client-upper"),
        ("x_api_key", "client-underscore"),
        ("X-Api-Key", "client-dup-1"),
        ("X-Api-Key", "client-dup-2"),
        ("X_API-Key", "client-mixed"),
        ("Connection", "X-API-KEY"),
    ];
    let resp = fx.send(&absolute("POST", SHIP, headers, br#"{"order_id":1}"#)).await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.head, resp.text());
    let got = fx.up.single();
    let creds: Vec<_> = got
        .headers
        .iter()
        .filter(|(k, _)| k.replace('_', "-").eq_ignore_ascii_case("x-api-key"))
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(
        creds,
        vec![KEY.to_owned()],
        "exactly one credential header, the injected one: {:#?}",
        got.headers
    );
    assert!(
        !got.headers.iter().any(|(_, v)| v.starts_with("client-")),
        "a client value got through: {:#?}",
        got.headers
    );
    assert!(got.header("connection").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_header_cannot_drop_the_injected_key() {
    let fx = Fixture::new(Opts::default()).await;
    for conn in ["X-API-KEY", "x-api-key, keep-alive", "close, X_API_KEY"] {
        let resp = fx
            .send(&absolute(
                "GET",
                "http://api.shipper.test/v1/shipments/1",
                &[("Connection", conn)],
                b"",
            ))
            .await;
        assert_eq!(resp.status, 200, "{conn}");
    }
    for r in fx.up.wait_for(3).await {
        assert_eq!(r.header_values("x-api-key"), vec![KEY.to_owned()], "{:#?}", r.headers);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_only_after_a_matched_route_and_only_to_its_destination() {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[HOST, "api.report.test", "api.open.test"]).await;
    let other_secret = secret_file("sk_report_00112233445566778899");
    let extra = format!(
        "  reporter:\n    host: api.report.test\n    connect_to: {up}\n    ca_file: {ca}\n    mode: report\n    \
         credential:\n      secret: file:{s}\n    routes:\n      - methods: [POST]\n        path: /v1/shipments\n  \
         open:\n    host: api.open.test\n    connect_to: {up}\n    ca_file: {ca}\n",
        up = up.connect_to(),
        ca = ca.pem_path(),
        s = other_secret.path().to_str().unwrap()
    );
    let fx = Fixture::with_upstream(
        ca,
        up,
        Opts {
            extra,
            ..Opts::default()
        },
    )
    .await;
    // Report-mode destination, route matches: its own key.
    let r = fx
        .send(&post_json("http://api.report.test/v1/shipments", r#"{"a":1}"#))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        last(&fx.up, 1).await.header_values("x-api-key"),
        vec!["sk_report_00112233445566778899".to_owned()]
    );
    // Report-mode destination, route does not match: passes, without any key; the client's copy removed.
    let r = fx
        .send(&absolute(
            "POST",
            "http://api.report.test/v1/other",
            &[("X-API-KEY", "client-sent"), ("Content-Type", "application/json")],
            b"{}",
        ))
        .await;
    assert_eq!(r.status, 200, "report mode lets the unmatched route pass");
    let got = last(&fx.up, 2).await;
    assert!(
        got.header_values("x-api-key").is_empty(),
        "no key on an unmatched route: {:#?}",
        got.headers
    );
    // The shipper key goes nowhere but the shipper.
    assert_eq!(fx.send(&post_json(SHIP, r#"{"order_id":1}"#)).await.status, 200);
    assert_eq!(
        fx.send(&absolute("GET", "http://api.open.test/v1/shipments", &[], b""))
            .await
            .status,
        200
    );
    assert_eq!(
        fx.send(&absolute("GET", "http://api.report.test/v1/shipments", &[], b""))
            .await
            .status,
        200
    );
    let all = fx.up.wait_for(5).await;
    for r in &all {
        let carries = r.headers.iter().any(|(_, v)| v.contains(KEY)) || String::from_utf8_lossy(&r.body).contains(KEY);
        assert_eq!(
            carries,
            r.sni.as_deref() == Some(HOST),
            "shipper key only to the shipper: {} {:?}",
            r.target,
            r.sni
        );
    }
}
