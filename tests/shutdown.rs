//! Graceful shutdown of the real binary: SIGTERM while a slow request is in
//! flight. The request completes and reaches the upstream, new connections
//! are refused, and the process exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

const HOST: &str = "api.shipper.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_request_finish() {
    let ca = TestCa::new();
    let upstream = Upstream::start(&ca, &[HOST]).await;
    let key = secret_file("shutdown-key");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    PolicyBuilder::new()
        .server("listen", "127.0.0.1:0")
        .dest(
            Dest::new("shipper", HOST)
                .upstream(&upstream, &ca)
                .secret(key.path())
                .route(Route::post("/v1/orders").allow(&["order_id"])),
        )
        .write(&policy);
    let mut p = Daemon::spawn(&policy);
    let addr: std::net::SocketAddr = p.addr.parse().unwrap();

    // A slow client: the head and half the body now, the rest after SIGTERM.
    let body = br#"{"order_id":42,"email":"x@y.example"}"#;
    let mut conn = RawConn::tcp(addr).await;
    let head = format!(
        "POST http://{HOST}/v1/orders HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.send(head.as_bytes()).await;
    conn.send(&body[..10]).await;
    p.term();
    p.wait_line(|l| l.contains("shutting down"));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a new connection was accepted after SIGTERM"
    );

    conn.send(&body[10..]).await;
    let resp = conn.response().await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(upstream.single().json(), serde_json::json!({"order_id": 42}));
    assert!(p.wait_exit().success());
}
