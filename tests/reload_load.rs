//! Reloads under load, in process: a policy flipping every few milliseconds
//! while requests run (each request sees one whole policy, never a mix), and
//! a key rotated through the real reload path while clients keep sending
//! (every request answered, the upstream sees the old key then the new one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

const HOST: &str = "api.shipper.test";
const BODY: &str = r#"{"a":1,"b":2,"c":3,"d":4}"#;

fn policy(upstream: &Upstream, ca: &TestCa, secret: &std::path::Path, allow: &[&str]) -> String {
    PolicyBuilder::new()
        .dest(
            Dest::new("shipper", HOST)
                .upstream(upstream, ca)
                .secret(secret)
                .route(Route::post("/v1/orders").allow(allow)),
        )
        .yaml()
}

/// Sends `n` orders on one keep-alive connection; each must be answered 200.
async fn client(proxy: std::net::SocketAddr, n: usize, phase: Arc<AtomicBool>, answered: Arc<AtomicUsize>) {
    let mut conn = RawConn::tcp(proxy).await;
    for _ in 0..n {
        let after = if phase.load(Ordering::SeqCst) {
            "after"
        } else {
            "before"
        };
        conn.send(&absolute(
            "POST",
            &format!("http://{HOST}/v1/orders"),
            &[("Content-Type", "application/json"), ("X-Phase", after)],
            BODY.as_bytes(),
        ))
        .await;
        let resp = conn.response().await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        answered.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_sees_one_whole_policy_while_it_flips() {
    let ca = TestCa::new();
    let upstream = Upstream::start(&ca, &[HOST]).await;
    let (key_a, key_b) = (secret_file("key-version-a"), secret_file("key-version-b"));
    let text_a = policy(&upstream, &ca, key_a.path(), &["a", "b"]);
    let text_b = policy(&upstream, &ca, key_b.path(), &["c", "d"]);
    let proxy = Proxy::start(&text_a).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (store, flag) = (proxy.store.clone(), stop.clone());
    let flipper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        let mut flips = 0usize;
        while !flag.load(Ordering::SeqCst) {
            tick.tick().await;
            let text = if flips.is_multiple_of(2) { &text_b } else { &text_a };
            store.replace(egress_guard::policy::compile(text).unwrap());
            flips += 1;
        }
        flips
    });
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(client(
                proxy.addr,
                40,
                Arc::new(AtomicBool::new(false)),
                answered.clone(),
            ))
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let flips = flipper.await.unwrap();
    assert!(flips >= 2, "the policy must have flipped during the run ({flips})");

    let seen = upstream.requests();
    assert_eq!(seen.len(), 160);
    let (mut a, mut b) = (0, 0);
    for r in &seen {
        let keys = r.header_values("x-api-key");
        let body = r.json();
        match keys.as_slice() {
            [k] if k == "key-version-a" => {
                assert_eq!(body, serde_json::json!({"a":1,"b":2}), "key A with another body");
                a += 1;
            }
            [k] if k == "key-version-b" => {
                assert_eq!(body, serde_json::json!({"c":3,"d":4}), "key B with another body");
                b += 1;
            }
            other => panic!("unexpected keys {other:?}"),
        }
    }
    assert!(a > 0 && b > 0, "both versions must have served: a={a} b={b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_takes_effect_without_failing_a_request() {
    let ca = TestCa::new();
    let upstream = Upstream::start(&ca, &[HOST]).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("shipper.key");
    std::fs::write(&key, "old-key-1111\n").unwrap();
    let policy_path = dir.path().join("policy.yaml");
    let text = policy(&upstream, &ca, &key, &["a"]);
    std::fs::write(&policy_path, &text).unwrap();
    let proxy = Proxy::start(&text).await;

    let after = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| tokio::spawn(client(proxy.addr, 30, after.clone(), answered.clone())))
        .collect();
    // Rotate once the load is well under way: replace the file, then reload.
    assert!(wait_until(Duration::from_secs(20), || answered.load(Ordering::SeqCst) >= 40).await);
    let tmp = dir.path().join("shipper.key.new");
    std::fs::write(&tmp, "new-key-2222\n").unwrap();
    std::fs::rename(&tmp, &key).unwrap();
    let generation = egress_guard::reload::reload_once(&policy_path, &proxy.store)
        .await
        .unwrap();
    assert_eq!(generation, 2);
    after.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }

    let seen = upstream.requests();
    assert_eq!(seen.len(), 120, "every request answered and forwarded");
    let mut counts = std::collections::HashMap::new();
    for r in &seen {
        let keys = r.header_values("x-api-key");
        assert_eq!(keys.len(), 1, "exactly one key: {keys:?}");
        assert!(keys[0] == "old-key-1111" || keys[0] == "new-key-2222", "unexpected key");
        if r.header("x-phase").as_deref() == Some("after") {
            assert_eq!(
                keys[0], "new-key-2222",
                "a request sent after the reload used the old key"
            );
        }
        *counts.entry(keys[0].clone()).or_insert(0) += 1;
    }
    assert!(counts.len() == 2, "both keys must have been used: {counts:?}");
}
