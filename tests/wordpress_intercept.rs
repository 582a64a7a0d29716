#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! A stock WordPress keeps its `https://` partner URL: `WP_PROXY_HOST` points
//! at the real binary with `intercept: true` and a CA made by
//! `ca init --policy`. WordPress's HTTP API (Requests on cURL) tunnels
//! `https://` through the proxy with CONNECT; with the shipped must-use plugin
//! it trusts the CA and every rule applies (key injected, body filtered, the
//! plugin's own key gone, audit `intercepted: true`); without the plugin the
//! handshake fails and the upstream receives nothing.
mod common;
#[path = "wordpress/site.rs"]
#[allow(dead_code)] // cached_bundles and sslcertificates serve tests/wordpress.rs
mod site;

use std::sync::Arc;

use common::daemon::run_once;
use common::{describe, path_str, secret_file, Daemon, Dest, PolicyBuilder, Recorded, Reply, Route, TestCa, Upstream};
use serde_json::json;
use site::{Answer, Call, WordPress};

const HOST: &str = "api.shipper.test";
const KEY: &str = "sk_wp_intercept_5e7d1c0ffee9";

struct Setup {
    up: Upstream,
    daemon: Daemon,
    dir: tempfile::TempDir,
    _ca: TestCa,
    _secret: tempfile::NamedTempFile,
}

/// Echoes the key it received: the answer WordPress gets must be scrubbed.
fn echo() -> common::Handler {
    Arc::new(|r: &Recorded| {
        let got = r.header("x-api-key").unwrap_or_default();
        Reply::json(200, &format!("{{\"seen_key\":\"{got}\"}}"))
    })
}

/// The policy (naming the CA files), then `ca init --policy` makes the CA
/// from it, then the daemon serves it.
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
                .route(Route::post("/v1/shipments").allow(&["order_id", "shipping.country"])),
        )
        .write(&policy);
    let ca_dir = path_str(&dir.path().join("ca"));
    let made = run_once(&["ca", "init", "--dir", &ca_dir, "--policy", &path_str(&policy)], None);
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

/// `wp_remote_post(url)` with a JSON order and the plugin's own idea of an
/// API key (the proxy must replace it).
async fn wp_post(wp: &WordPress, url: &str, call: &Call) -> Answer {
    let order = json!({
        "order_id": 1042,
        "shipping": {"country": "DE", "city": "Koeln"},
        "billing": {"email": "erika@example.org"}
    });
    let headers = [
        ("Content-Type", "application/json"),
        ("X-API-KEY", "key-typed-into-a-plugin"),
    ];
    wp.request("POST", url, &headers, &order.to_string(), call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wp_remote_post_keeps_its_https_url_through_interception() {
    let s = setup().await;
    let wp = WordPress::install().await;
    let url = format!("https://{HOST}/v1/shipments");
    let ca = path_str(&s.dir.path().join("ca/ca.pem"));
    let without = Call {
        proxy: Some(s.daemon.addr.parse().unwrap()),
        ca: Some(ca),
        ..Call::default()
    };
    let with_plugin = Call {
        plugin: true,
        ..without.clone()
    };

    // Without the plugin WordPress verifies against its own bundle only: the
    // minted leaf is not trusted, the handshake fails, nothing goes out.
    let refused = wp_post(&wp, &url, &without).await;
    let err = refused.error.clone().unwrap_or_default();
    assert!(
        refused.code.is_none() && err.contains("SSL"),
        "must fail verification: {refused:?}"
    );
    assert_eq!(refused.sslverify, json!(true), "{refused:?}");
    assert_eq!(s.up.count(), 0, "the upstream received a request");

    let got = wp_post(&wp, &url, &with_plugin).await;
    assert_eq!(got.code, Some(200), "{got:?}");
    assert_eq!(got.sslverify, json!(true), "verification stays on: {got:?}");
    let masked = format!("{{\"seen_key\":\"{}\"}}", "*".repeat(KEY.len()));
    assert_eq!(got.body, masked, "the echoed key comes back scrubbed");

    let up = s.up.wait_for(1).await;
    assert_eq!(up.len(), 1, "exactly one request reached the upstream");
    let r = &up[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/v1/shipments"));
    assert_eq!(r.sni.as_deref(), Some(HOST), "verified HTTPS to the partner");
    assert_eq!(
        r.header_values("x-api-key"),
        vec![KEY.to_owned()],
        "only the injected key"
    );
    assert_eq!(r.json(), json!({"order_id": 1042, "shipping": {"country": "DE"}}));
    assert!(
        r.header("user-agent").unwrap_or_default().starts_with("WordPress/"),
        "the request came from WordPress's HTTP API: {:?}",
        r.header("user-agent")
    );

    // It went through the proxy's CONNECT, and the inner request was audited
    // as intercepted.
    let audit = |l: &str| l.contains("\"message\":\"request\"") && l.contains("\"intercepted\":true");
    let inner = |l: &str| audit(l) && l.contains("\"method\":\"POST\"") && l.contains("\"status\":200");
    s.daemon.wait_count(1, inner, "the intercepted POST");
    let connect = |l: &str| l.contains("\"message\":\"request\"") && l.contains("\"method\":\"CONNECT\"");
    assert!(
        s.daemon.count_lines(connect) >= 1,
        "no CONNECT in the log:\n{}",
        s.daemon.err.text()
    );
    let log = s.daemon.err.text();
    assert!(!log.contains(KEY), "the key is in the log");
    assert!(
        !log.contains("key-typed-into-a-plugin"),
        "the plugin's key is in the log"
    );
    assert!(!log.contains("erika@example.org"), "a personal value is in the log");
}
