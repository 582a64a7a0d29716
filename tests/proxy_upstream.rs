#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! The upstream failing (closed port, unknown CA, wrong name, no answer, a
//! stalled body) and the invariants about it: a secret the upstream echoes
//! never reaches the client, and every upstream request is TLS with the
//! right SNI.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::shipper::*;
use common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------
// The upstream failing
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_unavailable_closed_port() {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[HOST]).await;
    let closed = closed_port().await;
    let extra = vec![Dest::new("closed", "api.closed.test")
        .connect_to(&closed.to_string())
        .set("ca_file", &ca.pem_path())];
    let fx = Fixture::with_upstream(ca, up, Opts::extra(extra)).await;
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
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[HOST, "api.other.test"]).await;
    let extra = vec![Dest::new("other", "api.other.test").upstream(&up, &ca)];
    let fx = Fixture::with_upstream(ca, up, Opts::extra(extra)).await;
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
