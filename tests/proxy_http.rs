#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! The in-process proxy driven over raw sockets on its TCP port (and its
//! unix socket), against a recording TLS upstream: the way through (filter,
//! upgrade, key; unix socket; keep-alive; path normalisation; the query not
//! deciding the route) and the answer table's policy refusals, each with its
//! exact shape and nothing recorded upstream. The shipper fixture lives in
//! tests/common/shipper.rs; malformed requests, upstream failures and field
//! filtering have their own proxy_* files.
mod common;

use std::sync::Arc;

use common::shipper::*;
use common::*;
use serde_json::json;

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
    let extra = vec![Dest::new("local", "localhost")
        .set("port", &port.to_string())
        .set("ca_file", &ca.pem_path())];
    let fx = Fixture::with_upstream(ca, up, Opts::extra(extra)).await;
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
    let server = vec![("client_token", format!("file:{}", path_str(token.path())))];
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
