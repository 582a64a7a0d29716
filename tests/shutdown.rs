//! Graceful shutdown of the real binary: SIGTERM while a slow request is in
//! flight. The request completes and reaches the upstream, new connections
//! are refused, and the process exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_egress-guard");
const HOST: &str = "api.shipper.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_request_finish() {
    let ca = TestCa::new();
    let upstream = Upstream::start(&ca, &[HOST]).await;
    let key = secret_file("shutdown-key");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: 1\nserver:\n  listen: 127.0.0.1:0\ndestinations:\n  shipper:\n    host: {HOST}\n    connect_to: {}\n    ca_file: {}\n    credential:\n      secret: file:{}\n    routes:\n      - methods: [POST]\n        path: /v1/orders\n        body:\n          allow: [order_id]\n",
            upstream.connect_to(),
            ca.pem_path(),
            path_str(key.path())
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--policy", &path_str(&policy)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    let find = |what: &str| lines.lock().unwrap().iter().find(|l| l.contains(what)).cloned();
    assert!(wait_until(Duration::from_secs(15), || find("\"message\":\"ready\"").is_some()).await);
    let listening: serde_json::Value = serde_json::from_str(&find("proxy listening").unwrap()).unwrap();
    let addr: std::net::SocketAddr = listening["listen"].as_str().unwrap().parse().unwrap();

    // A slow client: the head and half the body now, the rest after SIGTERM.
    let body = br#"{"order_id":42,"email":"x@y.example"}"#;
    let mut conn = RawConn::tcp(addr).await;
    let head = format!(
        "POST http://{HOST}/v1/orders HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.send(head.as_bytes()).await;
    conn.send(&body[..10]).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(wait_until(Duration::from_secs(15), || find("shutting down").is_some()).await);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a new connection was accepted after SIGTERM"
    );

    conn.send(&body[10..]).await;
    let resp = conn.response().await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(upstream.single().json(), serde_json::json!({"order_id": 42}));
    let exited = wait_until(Duration::from_secs(15), || matches!(child.try_wait(), Ok(Some(_)))).await;
    assert!(exited, "the proxy did not exit");
    assert!(child.wait().unwrap().success());
}
