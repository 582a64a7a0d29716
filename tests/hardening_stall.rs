//! Issue 8, class 9: a client that sends a head and part of its body, then
//! falls silent (or trickles), gets `request_timeout` (408) once
//! `request_timeout_ms` has passed since its head was read, on a body-policy
//! route (buffered) and on a streamed route (where the stalled upload must
//! not hold the upstream either). The test waits for the answer with a
//! deadline; it never sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;

const HOST: &str = "api.shipper.test";
/// The policy's `request_timeout_ms`.
const TIMEOUT_MS: u64 = 300;
/// The answer must come well within this.
const WITHIN: Duration = Duration::from_secs(5);

async fn proxy() -> (TestCa, Upstream, Proxy, tempfile::NamedTempFile) {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[HOST]).await;
    let secret = secret_file("sk_stall_key_0123456789");
    let proxy = Proxy::start_policy(
        &PolicyBuilder::new().defaults("request_timeout_ms", TIMEOUT_MS).dest(
            Dest::new("shipper", HOST)
                .upstream(&up, &ca)
                .credential("X-API-KEY", secret.path())
                .route(Route::post("/v1/orders").allow(&["order_id"]))
                .route(Route::post("/v1/raw")),
        ),
    )
    .await;
    (ca, up, proxy, secret)
}

/// A head and the first bytes of a body that never ends.
fn partial(route: &str, chunked: bool) -> Vec<u8> {
    let framing = if chunked {
        ("Transfer-Encoding", "chunked")
    } else {
        ("Content-Length", "100")
    };
    let start: &[u8] = if chunked { b"5\r\n{\"ord" } else { b"{\"order_id\":" };
    raw_request(
        "POST",
        &format!("http://{HOST}{route}"),
        &[("Host", HOST), ("Content-Type", "application/json"), framing],
        start,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_request_timeout_in_time() {
    let (_ca, up, proxy, _secret) = proxy().await;
    let rows: &[(&str, &str, bool)] = &[
        ("body-policy route, length", "/v1/orders", false),
        ("body-policy route, chunked", "/v1/orders", true),
        ("streamed route, length", "/v1/raw", false),
        ("streamed route, chunked", "/v1/raw", true),
    ];
    for (what, route, chunked) in rows {
        let mut c = RawConn::tcp(proxy.addr).await;
        let started = Instant::now();
        c.send(&partial(route, *chunked)).await;
        let resp = c
            .response_within(WITHIN)
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer within {WITHIN:?}: {e}"));
        assert_refusal(&resp, 408, "request_timeout", what);
        assert!(
            started.elapsed() >= Duration::from_millis(TIMEOUT_MS),
            "{what}: answered before request_timeout_ms"
        );
        assert!(c.closed().await, "{what}: the connection is closed after the timeout");
    }
    assert_eq!(up.count(), 0, "a partial body was recorded upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_gets_request_timeout_too() {
    let (_ca, up, proxy, _secret) = proxy().await;
    for (what, route) in [("body-policy route", "/v1/orders"), ("streamed route", "/v1/raw")] {
        let c = RawConn::tcp(proxy.addr).await;
        let mut c = c;
        c.send(&partial(route, false)).await;
        // One byte every 20 ms: never silent, never done. This is load, not a wait.
        let mut io = c.into_io();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let deadline = tokio::time::Instant::now() + WITHIN;
        let mut answer = Vec::new();
        loop {
            let mut buf = [0u8; 1024];
            tokio::select! {
                _ = tick.tick() => {
                    let _ = tokio::io::AsyncWriteExt::write_all(&mut io, b"1").await;
                }
                n = tokio::io::AsyncReadExt::read(&mut io, &mut buf) => {
                    let n = n.unwrap_or(0);
                    answer.extend_from_slice(&buf[..n]);
                    if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                () = tokio::time::sleep_until(deadline) => panic!("{what}: no answer within {WITHIN:?}"),
            }
        }
        let head = String::from_utf8_lossy(&answer);
        assert!(head.starts_with("HTTP/1.1 408"), "{what}: {head}");
        assert!(
            head.contains("x-egress-guard-reason: request_timeout"),
            "{what}: {head}"
        );
    }
    assert_eq!(up.count(), 0, "a partial body was recorded upstream");
}
