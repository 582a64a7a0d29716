//! Issue 8, class 8: the framing guard never stops looking. After every head
//! it used to give up on (a non-UTF-8 value, a refused CONNECT, bare-LF line
//! ends) a pipelined request with both `Content-Length` and
//! `Transfer-Encoding` is still a JSON `bad_request` and never reaches the
//! upstream; every head it cannot follow is refused, in JSON; an invalid
//! chunk size is `bad_request`, not `upstream_unavailable`; an HTTP/1.1
//! request without `Host` is `bad_request`; an accepted tunnel is not read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

const HOST: &str = "api.shipper.test";
const FIRST: &str = "http://api.shipper.test/v1/first";

/// The smuggling request: both framings, with a request hidden in the body
/// for whichever parser reads it by `Content-Length`.
const SMUGGLE: &[u8] = b"POST http://api.shipper.test/v1/smuggle HTTP/1.1\r\nHost: api.shipper.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://api.shipper.test/v1/first?smuggled=1 HTTP/1.1\r\nHost: api.shipper.test\r\n\r\n";

struct Fixture {
    _ca: TestCa,
    up: Upstream,
    _secret: tempfile::NamedTempFile,
    proxy: Proxy,
    _echo: tokio::task::JoinHandle<()>,
}

impl Fixture {
    async fn new() -> Fixture {
        let ca = TestCa::new();
        let up = Upstream::start(&ca, &[HOST]).await;
        let secret = secret_file("sk_framing_key_0123456789");
        let (echo_addr, echo) = echo_server().await;
        let yaml = PolicyBuilder::new()
            .defaults("request_timeout_ms", 5000)
            .dest(
                Dest::new("shipper", HOST)
                    .upstream(&up, &ca)
                    .credential("X-API-KEY", secret.path())
                    .route(Route::get("/v1/first"))
                    .route(Route::post("/v1/raw"))
                    .route(Route::post("/v1/smuggle"))
                    .route(Route::post("/v1/orders").allow(&["order_id"])),
            )
            .dest(
                Dest::new("updates", "updates.test")
                    .tunnel()
                    .connect_to(&echo_addr.to_string()),
            )
            .yaml();
        let proxy = Proxy::start(&yaml).await;
        Fixture {
            _ca: ca,
            up,
            _secret: secret,
            proxy,
            _echo: echo,
        }
    }

    /// No request the upstream got came from the smuggling request.
    fn assert_nothing_smuggled(&self, what: &str) {
        for r in self.up.requests() {
            assert!(
                r.path() != "/v1/smuggle" && !r.target.contains("smuggled"),
                "{what}: the upstream got {} {} {:?}",
                r.method,
                r.target,
                r.headers
            );
        }
    }
}

/// A TCP echo server standing in for a tunnel's far end.
async fn echo_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, task)
}

/// First heads the old guard did not understand, each with the status it gets.
fn confusing_heads() -> Vec<(&'static str, Vec<u8>, u16)> {
    vec![
        (
            "non-UTF-8 header value",
            [
                b"GET http://api.shipper.test/v1/first HTTP/1.1\r\nHost: api.shipper.test\r\nX-Note: caf\xe9\r\n\r\n"
                    .as_slice(),
            ]
            .concat(),
            200,
        ),
        (
            "refused CONNECT",
            raw_request(
                "CONNECT",
                "api.shipper.test:443",
                &[("Host", "api.shipper.test:443")],
                b"",
            ),
            403,
        ),
        (
            "bare LF line ends",
            b"GET http://api.shipper.test/v1/first HTTP/1.1\nHost: api.shipper.test\n\n".to_vec(),
            200,
        ),
        (
            "empty lines before the request line",
            [b"\r\n\n".as_slice(), &absolute("GET", FIRST, &[], b"")].concat(),
            200,
        ),
        (
            "chunked body with an extension and a trailer",
            raw_request(
                "POST",
                "http://api.shipper.test/v1/raw",
                &[("Host", HOST), ("Transfer-Encoding", "chunked")],
                b"2;ext=1\r\nhi\r\n0\r\nX-Trailer: 1\r\n\r\n",
            ),
            200,
        ),
        (
            "header names in odd case",
            raw_request(
                "POST",
                "http://api.shipper.test/v1/raw",
                &[("hOsT", HOST), ("cOnTeNt-LeNgTh", "2")],
                b"hi",
            ),
            200,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cl_te_after_any_first_head_is_refused_and_never_forwarded() {
    let fx = Fixture::new().await;
    let mut failures = Vec::new();
    for (what, first, status) in confusing_heads() {
        // Both in one write, as a pipelining client sends them; then apart.
        for split in [false, true] {
            let mut c = RawConn::tcp(fx.proxy.addr).await;
            if split {
                c.send(&first).await;
            } else {
                c.send(&[first.as_slice(), SMUGGLE].concat()).await;
            }
            let r1 = c.response().await;
            if split {
                c.send(SMUGGLE).await;
            }
            let r2 = c.response().await;
            match (r1, r2) {
                (Ok(r1), Ok(r2)) if r1.status == status => {
                    assert_refusal(&r2, 400, "bad_request", what);
                    assert!(
                        c.closed().await,
                        "{what}: the connection stays open after a refused head"
                    );
                }
                (r1, r2) => failures.push(format!("{what} (split {split}): first {r1:?}, second {r2:?}")),
            }
            fx.assert_nothing_smuggled(what);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Heads the guard cannot follow, or whose framing is ambiguous: each a JSON
/// `bad_request` from the proxy, never hyper's bare 400 or a forward.
fn refused_heads() -> Vec<(&'static str, Vec<u8>)> {
    let post = |headers: &[(&str, &str)], body: &[u8]| {
        let mut h = vec![("Host", HOST)];
        h.extend_from_slice(headers);
        raw_request("POST", "http://api.shipper.test/v1/raw", &h, body)
    };
    let chunked = b"2\r\nhi\r\n0\r\n\r\n";
    vec![
        ("Transfer-Encoding gzip, chunked", post(&[("Transfer-Encoding", "gzip, chunked")], chunked)),
        ("Transfer-Encoding chunked, identity", post(&[("Transfer-Encoding", "chunked, identity")], chunked)),
        (
            "Transfer-Encoding twice",
            post(&[("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], chunked),
        ),
        ("Content-Length twice, equal", post(&[("Content-Length", "2"), ("Content-Length", "2")], b"hi")),
        ("Content-Length as a list", post(&[("Content-Length", "2, 2")], b"hi")),
        ("Content-Length with a plus", post(&[("Content-Length", "+2")], b"hi")),
        ("Content_Length beside chunked", post(&[("Content_Length", "2"), ("Transfer-Encoding", "chunked")], chunked)),
        // Alone: hyper would see no body and read the next bytes as a head the guard skipped.
        ("Content_Length alone", post(&[("Content_Length", "2")], b"hi")),
        ("Transfer_Encoding alone", post(&[("Transfer_Encoding", "chunked")], chunked)),
        (
            "Transfer-Encoding in HTTP/1.0",
            b"POST http://api.shipper.test/v1/raw HTTP/1.0\r\nHost: api.shipper.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "blank before the colon",
            b"POST http://api.shipper.test/v1/raw HTTP/1.1\r\nHost: api.shipper.test\r\nTransfer-Encoding : chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "obs-fold",
            b"POST http://api.shipper.test/v1/raw HTTP/1.1\r\nHost: api.shipper.test\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
        ),
        (
            "HTTP/1.1 absolute-form without Host",
            b"GET http://api.shipper.test/v1/first HTTP/1.1\r\n\r\n".to_vec(),
        ),
        ("lone CR before the request line", [b"\rX".as_slice(), &absolute("GET", FIRST, &[], b"")].concat()),
        (
            "CONNECT with a body",
            raw_request(
                "CONNECT",
                "updates.test:443",
                &[("Host", "updates.test:443"), ("Content-Length", "2")],
                b"hi",
            ),
        ),
        ("head over 64 KiB", absolute("GET", FIRST, &[("X-Long", &"x".repeat(70_000))], b"")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_the_guard_cannot_follow_are_json_bad_requests() {
    let fx = Fixture::new().await;
    for (what, raw) in refused_heads() {
        let resp = fx.proxy.send(&raw).await;
        assert_refusal(&resp, 400, "bad_request", what);
    }
    assert_eq!(
        fx.up.count(),
        0,
        "a refused head reached the upstream: {:#?}",
        fx.up.requests()
    );
    // HTTP/1.0 needs no Host: absolute-form names the target on its own.
    let resp = fx
        .proxy
        .send(b"GET http://api.shipper.test/v1/first HTTP/1.0\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200, "HTTP/1.0 without Host: {}", resp.head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_chunk_sizes_are_bad_requests_on_every_route() {
    let fx = Fixture::new().await;
    let bodies: &[(&str, &[u8])] = &[
        ("not hex", b"2\r\nhi\r\nzz\r\nhello\r\n0\r\n\r\n"),
        ("overflow", b"1ffffffffffffffff\r\nhi\r\n0\r\n\r\n"),
        ("0x prefix", b"0x2\r\nhi\r\n0\r\n\r\n"),
        ("negative", b"-2\r\nhi\r\n0\r\n\r\n"),
        ("bare LF after the size", b"2\nhi\r\n0\r\n\r\n"),
        ("data longer than its size", b"2\r\nhiX\r\n0\r\n\r\n"),
    ];
    for route in ["/v1/raw", "/v1/orders"] {
        for (what, body) in bodies {
            let raw = raw_request(
                "POST",
                &format!("http://{HOST}{route}"),
                &[
                    ("Host", HOST),
                    ("Content-Type", "application/json"),
                    ("Transfer-Encoding", "chunked"),
                ],
                body,
            );
            let resp = fx.proxy.send(&raw).await;
            assert_refusal(&resp, 400, "bad_request", &format!("{route}: {what}"));
        }
    }
    assert_eq!(
        fx.up.count(),
        0,
        "a broken body was recorded upstream: {:#?}",
        fx.up.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_refused_connect_the_connection_goes_on_and_a_tunnel_is_not_read() {
    let fx = Fixture::new().await;
    let mut c = RawConn::tcp(fx.proxy.addr).await;
    c.send(&raw_request(
        "CONNECT",
        "api.shipper.test:443",
        &[("Host", "api.shipper.test:443")],
        b"",
    ))
    .await;
    assert_refusal(&c.response().await.unwrap(), 403, "tunnel_not_allowed", "CONNECT");
    c.send(&absolute("GET", FIRST, &[], b"")).await;
    assert_eq!(
        c.response().await.unwrap().status,
        200,
        "the request after a refused CONNECT"
    );

    // Inside an accepted tunnel, the same bytes are the tunnel's: echoed, not refused.
    let mut t = RawConn::tcp(fx.proxy.addr).await;
    let connect = raw_request("CONNECT", "updates.test:443", &[("Host", "updates.test:443")], b"");
    t.send(&[connect.as_slice(), SMUGGLE].concat()).await;
    let head = t.head_only().await.unwrap();
    assert_eq!(head.status, 200, "{}", head.head);
    let (mut echoed, mut io) = t.into_rest_and_io();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while echoed.len() < SMUGGLE.len() {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, tokio::io::AsyncReadExt::read(&mut io, &mut buf))
            .await
            .expect("the tunnel echoes within the deadline")
            .unwrap();
        assert!(n > 0, "the tunnel closed after {} bytes", echoed.len());
        echoed.extend_from_slice(&buf[..n]);
    }
    assert_eq!(echoed, SMUGGLE);
    fx.assert_nothing_smuggled("tunnel");
}
