#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Issue 8 through the real proxy, where the request is read: hosts that
//! smuggle a second host past a wildcard (absolute form, origin form + `Host`,
//! CONNECT, TCP and unix socket), path parameters that hide dot segments,
//! request trailers toward h2 and HTTP/1.1 upstreams, method overrides (headers,
//! `_method` in the query, urlencoded and multipart bodies) and CONNECT rate limits.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use egress_guard::clock::Clock;
use http_body_util::BodyExt;

const KEY: &str = "sk_live_target_h_0123456789abcdef";
/// A host the client chooses; the upstream's certificate names it too, as an attacker's would.
const ATTACKER: &str = "attacker.example";
const PARTNER: &str = "api.partner.example";

fn policy(up: &str, ca: &TestCa, secret: &std::path::Path) -> String {
    PolicyBuilder::new()
        .defaults("request_timeout_ms", 5000)
        .defaults("connect_timeout_ms", 2000)
        .defaults("max_body_bytes", 65536)
        .dest(
            Dest::new("partner", "\"*.partner.example\"")
                .connect_to(up)
                .set("ca_file", &ca.pem_path())
                .credential("X-API-KEY", secret)
                .route(Route::get("/v1/x/*"))
                .route(Route::get("/v1/open/**"))
                .route(Route::post("/v1/orders"))
                .route(Route::new(&["POST", "PUT"], "/v1/items"))
                .route(Route::post("/v1/trial").mode("report")),
        )
        .dest(
            Dest::new("tunnel", "tunnel.example")
                .tunnel()
                .connect_to(up)
                .rate_limit(1, 2),
        )
        .dest(
            Dest::new("trial-tunnel", "trial.example")
                .tunnel()
                .mode("report")
                .connect_to(up)
                .rate_limit(1, 1),
        )
        .yaml()
}

struct Fx {
    _ca: TestCa,
    _secret: tempfile::NamedTempFile,
    up: Upstream,
    proxy: Proxy,
    clock: Clock,
}

async fn fixture() -> Fx {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[PARTNER, "*.partner.example", ATTACKER]).await;
    let secret = secret_file(KEY);
    let clock = Clock::manual();
    let yaml = policy(&up.connect_to(), &ca, secret.path());
    let proxy = Proxy::start_with_clock(&yaml, clock.clone()).await;
    Fx {
        _ca: ca,
        _secret: secret,
        up,
        proxy,
        clock,
    }
}

/// A `bad_request`: the proxy's own refusal, or hyper's bare 400 for a request
/// line it cannot parse at all; either way nothing reached the upstream.
fn assert_bad_request(resp: &RawResponse, what: &str) {
    if resp.reason().is_some() {
        assert_refusal(resp, 400, "bad_request", what);
    } else {
        assert_eq!(resp.status, 400, "{what}: {}", resp.head);
    }
    assert!(!resp.text().contains(KEY), "{what}: the key is in the answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_that_smuggle_another_host_are_bad_requests() {
    let fx = fixture().await;
    let smuggled = "attacker.example:x.partner.example:80";
    // (case, raw request) over TCP; origin-form rows are also sent on the unix socket.
    let origin = |host: &str| raw_request("GET", "/v1/x/1", &[("Host", host)], b"");
    let rows: Vec<(&str, Vec<u8>)> = vec![
        ("origin form, two colons", origin(smuggled)),
        (
            "origin form, two colons no port",
            origin("attacker.example:x.partner.example"),
        ),
        (
            "origin form, port then suffix",
            origin("attacker.example:80.partner.example"),
        ),
        ("origin form, empty port", origin("a.partner.example:")),
        ("origin form, plus port", origin("a.partner.example:+443")),
        ("origin form, userinfo", origin("attacker.example@x.partner.example")),
        (
            "origin form, percent escape",
            origin("attacker.example%3a.partner.example"),
        ),
        ("origin form, backslash", origin("attacker.example\\.partner.example")),
        ("origin form, underscore", origin("a_b.partner.example")),
        (
            "absolute form, two colons",
            raw_request("GET", &format!("http://{smuggled}/v1/x/1"), &[("Host", smuggled)], b""),
        ),
        (
            "absolute form, smuggling Host header",
            raw_request("GET", "http://a.partner.example/v1/x/1", &[("Host", smuggled)], b""),
        ),
        (
            "absolute form, userinfo",
            raw_request(
                "GET",
                "http://attacker.example@x.partner.example/v1/x/1",
                &[("Host", "x.partner.example")],
                b"",
            ),
        ),
        (
            "absolute form, empty port",
            raw_request("GET", "http://a.partner.example:/v1/x/1", &[], b""),
        ),
        (
            "CONNECT, two colons",
            raw_request("CONNECT", "attacker.example:x.tunnel.example:443", &[], b""),
        ),
    ];
    for (what, raw) in &rows {
        assert_bad_request(&fx.proxy.send(raw).await, what);
        if what.starts_with("origin") {
            let mut c = RawConn::unix(&fx.proxy.socket_path).await;
            c.send(raw).await;
            assert_bad_request(&c.response().await.unwrap(), &format!("{what} (unix socket)"));
        }
    }
    assert_eq!(
        fx.up.count(),
        0,
        "a smuggled host reached the upstream: {:#?}",
        fx.up.requests()
    );
    assert_eq!(fx.up.tls_failures(), 0, "the proxy connected somewhere");

    // The same wildcard still works, and the host matched is the host used everywhere.
    let resp = fx.proxy.send(&origin("b.partner.example")).await;
    assert_eq!(resp.status, 200, "{}", resp.head);
    let got = fx.up.single();
    assert_eq!(got.sni.as_deref(), Some("b.partner.example"));
    let host = got.header("host").or_else(|| got.header(":authority"));
    assert!(
        host.is_none() || host.as_deref() == Some("b.partner.example"),
        "{host:?}"
    );
    assert_eq!(got.header_values("x-api-key"), vec![KEY.to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_parameters_that_hide_dot_segments_are_bad_requests() {
    let fx = fixture().await;
    let paths = [
        ("dotdot param under *", "/v1/x/..;/admin"),
        ("dotdot param value under *", "/v1/x/..;x=1"),
        ("dot param", "/v1/x/.;jsessionid=x"),
        ("dotdot param under **", "/v1/open/..;/..;/admin"),
        ("encoded dotdot param", "/v1/open/%2e%2e;x/admin"),
        ("mixed case encoded", "/v1/open/%2E%2e;/admin"),
        ("half encoded", "/v1/open/.%2e;/admin"),
        ("encoded semicolon", "/v1/open/..%3b/admin"),
        ("empty segment param", "/v1/open/;x/admin"),
        ("double encoded dotdot", "/v1/open/%252e%252e/admin"),
        ("overlong utf-8 dot", "/v1/open/%c0%ae%c0%ae/admin"),
    ];
    for (what, path) in paths {
        let resp = fx
            .proxy
            .send(&absolute("GET", &format!("http://{PARTNER}{path}"), &[], b""))
            .await;
        assert_bad_request(&resp, what);
    }
    assert_eq!(fx.up.count(), 0, "{:#?}", fx.up.requests());
    let ok = absolute("GET", &format!("http://{PARTNER}/v1/x/7;v=2"), &[], b"");
    assert_eq!(fx.proxy.send(&ok).await.status, 200, "a parameter on a name passes");
}

/// What an upstream received: headers and the request's trailers.
type Seen = Arc<Mutex<Vec<(http::HeaderMap, Option<http::HeaderMap>)>>>;

/// A TLS upstream (h2 by ALPN when `h2`) that records request trailers, which
/// the shared recording upstream does not keep.
async fn trailer_upstream(ca: &TestCa, h2: bool) -> (std::net::SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config(&[PARTNER], h2));
    let seen: Seen = Arc::default();
    let rec = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(tls) = acceptor.clone().accept(tcp).await else {
                continue;
            };
            let is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let rec = rec.clone();
            let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let rec = rec.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let collected = body.collect().await?;
                    rec.lock().unwrap().push((parts.headers, collected.trailers().cloned()));
                    Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(
                        "{}",
                    ))))
                }
            });
            let io = hyper_util::rt::TokioIo::new(tls);
            tokio::spawn(async move {
                if is_h2 {
                    let b = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
                    let _ = b.serve_connection(io, svc).await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_trailers_never_reach_the_upstream() {
    for h2 in [true, false] {
        let ca = TestCa::new();
        let (addr, seen) = trailer_upstream(&ca, h2).await;
        let secret = secret_file(KEY);
        let proxy = Proxy::start(&policy(&addr.to_string(), &ca, secret.path())).await;
        let body = b"5\r\nhello\r\n0\r\nX-API-KEY: client-key\r\nx_api_key: client-key\r\nX-Trace: 1\r\n\r\n";
        let headers = [
            ("Host", PARTNER),
            ("Transfer-Encoding", "chunked"),
            ("Trailer", "X-API-KEY, x_api_key, X-Trace"),
            ("TE", "trailers"),
        ];
        let resp = proxy
            .send(&raw_request(
                "POST",
                &format!("http://{PARTNER}/v1/orders"),
                &headers,
                body,
            ))
            .await;
        assert_eq!(resp.status, 200, "h2={h2}: {}\n{}", resp.head, resp.text());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "h2={h2}");
        let (headers, trailers) = &seen[0];
        assert_eq!(headers.get_all("x-api-key").iter().count(), 1, "h2={h2}");
        assert_eq!(headers.get("x-api-key").unwrap(), KEY, "h2={h2}");
        assert!(
            trailers.as_ref().is_none_or(|t| t.is_empty()),
            "h2={h2}: trailers reached the upstream: {trailers:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_obeys_the_destinations_rate_limit() {
    let fx = fixture().await;
    let connect = |host: &'static str| {
        let addr = fx.proxy.addr;
        async move {
            let mut c = RawConn::tcp(addr).await;
            let target = format!("{host}:443");
            c.send(&raw_request("CONNECT", &target, &[("Host", &target)], b""))
                .await;
            c.head_only().await.unwrap()
        }
    };
    for i in 0..2 {
        assert_eq!(
            connect("tunnel.example").await.status,
            200,
            "tunnel {i} is within the burst"
        );
    }
    let mut c = RawConn::tcp(fx.proxy.addr).await;
    c.send(&raw_request(
        "CONNECT",
        "tunnel.example:443",
        &[("Host", "tunnel.example:443")],
        b"",
    ))
    .await;
    let limited = c.response().await.unwrap();
    assert_refusal(&limited, 429, "rate_limited", "third CONNECT in the same instant");
    assert_eq!(limited.header("retry-after"), Some("1"));
    fx.clock.advance(Duration::from_secs(1));
    assert_eq!(
        connect("tunnel.example").await.status,
        200,
        "a token is back after a second"
    );
    // Report mode notes the limit and lets the tunnel through.
    for i in 0..3 {
        assert_eq!(connect("trial.example").await.status, 200, "report-mode tunnel {i}");
    }
}

#[path = "hardening_target/overrides.rs"]
mod overrides;
