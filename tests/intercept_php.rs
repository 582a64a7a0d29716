#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! PHP's cURL keeps its `https://` URL: through the real binary with an
//! interception CA made by `ca init`, several requests on one cURL handle
//! (one CONNECT, one keep-alive tunnel) get the key injected, their bodies
//! filtered, the client's own key removed, the echoed key scrubbed, and one
//! audit line each. The CA key shows up in no log line, metric or output.

mod common;

use std::sync::Arc;

use common::daemon::run_once;
use common::{
    describe, path_str, php, secret_file, Daemon, Dest, PolicyBuilder, Recorded, Reply, Route, TestCa, Upstream,
};
use serde_json::{json, Value};

const HOST: &str = "api.shipper.test";
const KEY: &str = "sk_intercept_php_77e1c0ffee5a";

const SCRIPT: &str = r#"<?php
$order = json_encode(['order_id' => 1042, 'shipping' => ['country' => 'DE', 'city' => 'Koeln'],
                      'billing' => ['email' => 'erika@example.org']]);
$ch = curl_init();
$steps = [['POST', '/v1/shipments'], ['GET', '/v1/echo'], ['POST', '/v1/shipments']];
foreach ($steps as [$method, $path]) {
    curl_setopt_array($ch, [
        CURLOPT_URL            => 'https://' . getenv('EG_HOST') . $path,   // unchanged https:// URL
        CURLOPT_PROXY          => getenv('EG_PROXY'),
        CURLOPT_CAINFO         => getenv('EG_CAINFO'),
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_HTTPHEADER     => ['Content-Type: application/json', 'X-API-KEY: php-own-key'],
    ]);
    if ($method === 'POST') {
        curl_setopt($ch, CURLOPT_POSTFIELDS, $order);
    } else {
        curl_setopt($ch, CURLOPT_HTTPGET, true);
    }
    $body = curl_exec($ch);
    echo json_encode(['status' => curl_getinfo($ch, CURLINFO_RESPONSE_CODE), 'body' => $body,
                      'new_connections' => curl_getinfo($ch, CURLINFO_NUM_CONNECTS), 'error' => curl_error($ch)]), "\n";
}
"#;

/// Echoes the key it received: the answer must come back scrubbed.
fn echo() -> common::Handler {
    Arc::new(|r: &Recorded| {
        let got = r.header("x-api-key").unwrap_or_default();
        Reply::json(200, &format!("{{\"seen_key\":\"{got}\"}}"))
    })
}

struct Setup {
    up: Upstream,
    daemon: Daemon,
    dir: tempfile::TempDir,
    _ca: TestCa,
    _secret: tempfile::NamedTempFile,
}

/// The policy first (it names the CA files), then `ca init --policy` makes
/// the CA from it, then the daemon serves it.
async fn setup() -> Setup {
    let ca = TestCa::new();
    let up = Upstream::start_replying(&ca, &[HOST], echo()).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(KEY);
    let (cert, key) = (dir.path().join("ca/ca.pem"), dir.path().join("ca/ca.key"));
    let policy = dir.path().join("policy.yaml");
    PolicyBuilder::new()
        .listen_any()
        .server(
            "intercept_ca",
            &format!("{{cert: {}, key: \"file:{}\"}}", path_str(&cert), path_str(&key)),
        )
        .defaults("request_timeout_ms", 5000)
        .dest(
            Dest::new("shipper", HOST)
                .upstream(&up, &ca)
                .set("intercept", "true")
                .credential("X-API-KEY", secret.path())
                .route(Route::post("/v1/shipments").allow(&["order_id", "shipping.country"]))
                .route(Route::get("/v1/echo")),
        )
        .write(&policy);
    let made = run_once(
        &[
            "ca",
            "init",
            "--dir",
            &path_str(&dir.path().join("ca")),
            "--policy",
            &path_str(&policy),
        ],
        None,
    );
    assert!(made.status.success(), "ca init: {}", describe(&made));
    let daemon = Daemon::spawn(&policy);
    Setup {
        up,
        daemon,
        dir,
        _ca: ca,
        _secret: secret,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_curl_keeps_its_https_url_and_every_rule_applies() {
    let s = setup().await;
    let script = s.dir.path().join("intercept.php");
    std::fs::write(&script, SCRIPT).unwrap();
    let proxy = format!("http://{}", s.daemon.addr);
    let cainfo = path_str(&s.dir.path().join("ca/ca.pem"));
    let out = php(
        &script,
        &[("EG_HOST", HOST), ("EG_PROXY", &proxy), ("EG_CAINFO", &cainfo)],
    )
    .await;
    assert!(out.status.success(), "{}", describe(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", describe(&out));
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["status"], 200, "request {i}: {l}");
        assert!(
            !l["body"].as_str().unwrap().contains(KEY),
            "request {i}: echoed key not scrubbed: {l}"
        );
    }
    let masked = format!("{{\"seen_key\":\"{}\"}}", "*".repeat(KEY.len()));
    assert_eq!(lines[1]["body"], masked.as_str(), "the echo, masked");
    assert_eq!(lines[1]["new_connections"], 0, "the handle reused its tunnel");
    assert_eq!(lines[2]["new_connections"], 0, "the handle reused its tunnel");

    let got = s.up.wait_for(3).await;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(
            r.header_values("x-api-key"),
            vec![KEY.to_owned()],
            "request {i}: only the proxy's key"
        );
    }
    for i in [0, 2] {
        assert_eq!(
            got[i].json(),
            json!({"order_id": 1042, "shipping": {"country": "DE"}}),
            "request {i}"
        );
    }
    let audit = |l: &str| l.contains("\"message\":\"request\"") && l.contains("\"intercepted\":true");
    s.daemon.wait_count(4, audit, "three requests and their CONNECT");
    let connects = |l: &str| audit(l) && l.contains("\"method\":\"CONNECT\"");
    assert_eq!(s.daemon.count_lines(connects), 1, "one tunnel for the whole handle");
    let inner = |l: &str| audit(l) && !l.contains("\"method\":\"CONNECT\"") && l.contains("\"status\":200");
    assert_eq!(
        s.daemon.count_lines(inner),
        3,
        "one audit line per request:\n{}",
        s.daemon.err.text()
    );
    assert_ca_key_nowhere(&s).await;
}

/// No line of the CA key's PEM body in the log, the metrics, or the output
/// of `check` and `explain` on the same policy.
async fn assert_ca_key_nowhere(s: &Setup) {
    let key_pem = std::fs::read_to_string(s.dir.path().join("ca/ca.key")).unwrap();
    let secret_lines: Vec<&str> = key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!secret_lines.is_empty());
    let (status, metrics) = common::admin_get(s.daemon.admin(), "/metrics").await;
    assert_eq!(status, 200);
    let policy = path_str(&s.dir.path().join("policy.yaml"));
    let check = run_once(&["check", &policy], None);
    assert!(check.status.success(), "{}", describe(&check));
    let url = format!("https://{HOST}/v1/echo");
    let explain = run_once(
        &["explain", "--policy", &policy, "--method", "GET", "--url", &url],
        None,
    );
    let texts = [
        ("log", s.daemon.err.text()),
        ("metrics", metrics),
        ("check", describe(&check)),
        ("explain", describe(&explain)),
    ];
    for (what, text) in texts {
        for l in &secret_lines {
            assert!(!text.contains(l), "{what} holds a line of the CA key");
        }
        assert!(!text.contains("PRIVATE KEY"), "{what} mentions the private key PEM");
    }
}
