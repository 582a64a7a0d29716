#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! The clients our users have, run for real against the in-process proxy and
//! a recording TLS upstream: the curl command line (TCP proxy port with `-x`,
//! the unix socket with `--unix-socket`, `https://` URLs through CONNECT,
//! refused or tunnelled), PHP's cURL extension through php-cli
//! (CURLOPT_PROXY, CURLOPT_UNIX_SOCKET_PATH, CURLOPT_PROXYUSERPWD against a
//! `client_token`), and the shipped example `examples/php/run-example.php`.

mod common;

use std::path::PathBuf;

use common::{curl, describe, path_str, php, secret_file, Dest, PolicyBuilder, Proxy, Route, TestCa, Upstream};
use serde_json::{json, Value};

const SHIPPER: &str = "api.shipper.example";
const OPEN: &str = "api.open.example";
const KEY: &str = "sk_live_client_tests_4c1f0e9d8b7a6352";
const TOKEN: &str = "ct-8d3e2a7f41b0";

struct Setup {
    ca: TestCa,
    up: Upstream,
    proxy: Proxy,
    _secret: tempfile::NamedTempFile,
    _token: tempfile::NamedTempFile,
}

/// The repo's policy shape for the shipper, pointed at the test upstream,
/// plus a `tunnel: true` destination. `with_token` adds a `client_token`.
async fn setup(with_token: bool) -> Setup {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[SHIPPER, OPEN]).await;
    let secret = secret_file(KEY);
    let token = secret_file(TOKEN);
    let shipments = [
        "order_id",
        "shipping.first_name",
        "shipping.last_name",
        "shipping.address_1",
        "shipping.city",
        "shipping.postcode",
        "shipping.country",
        "line_items[].sku",
        "line_items[].quantity",
    ];
    let mut policy = PolicyBuilder::new();
    if with_token {
        policy = policy.server("client_token", &format!("file:{}", path_str(token.path())));
    }
    let yaml = policy
        .defaults("plain_http", "upgrade")
        .defaults("request_timeout_ms", 5000)
        .dest(
            Dest::new("shipper", SHIPPER)
                .upstream(&up, &ca)
                .credential("X-API-KEY", secret.path())
                .route(
                    Route::post("/v1/shipments")
                        .allow(&shipments)
                        .body("on_violation", "strip")
                        .scan(&["card_number"]),
                )
                .route(Route::get("/v1/shipments/*")),
        )
        .dest(Dest::new("open", OPEN).connect_to(&up.connect_to()).tunnel())
        .yaml();
    let proxy = Proxy::start(&yaml).await;
    Setup {
        ca,
        up,
        proxy,
        _secret: secret,
        _token: token,
    }
}

const ORDER: &str = r#"{"order_id":1042,"status":"processing","billing":{"email":"erika.mustermann@example.org","phone":"+49 221 1234567"},"shipping":{"first_name":"Max","last_name":"Mustermann","address_1":"Am Markt 3","city":"Bonn","postcode":"53111","country":"DE","phone":"+49 228 7654321"},"line_items":[{"sku":"MUG-RED","quantity":2,"price":"9.90"}],"meta_data":[{"key":"_customer_ip_address","value":"203.0.113.9"}]}"#;

fn filtered_order() -> Value {
    json!({
        "order_id": 1042,
        "shipping": {"first_name": "Max", "last_name": "Mustermann", "address_1": "Am Markt 3", "city": "Bonn", "postcode": "53111", "country": "DE"},
        "line_items": [{"sku": "MUG-RED", "quantity": 2}]
    })
}

/// `body` then a last line with the status, as `-w '\n%{http_code}'` prints it.
fn split_status(out: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(out).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (body.to_owned(), code.trim().to_owned())
}

fn assert_key_injected_and_filtered(up: &Upstream, what: &str) {
    let got = up.single();
    assert_eq!(got.method, "POST", "{what}");
    assert_eq!(got.target, "/v1/shipments", "{what}");
    assert_eq!(got.sni.as_deref(), Some(SHIPPER), "{what}: SNI");
    assert_eq!(
        got.header_values("x-api-key"),
        vec![KEY.to_owned()],
        "{what}: exactly the injected key: {:#?}",
        got.headers
    );
    assert_eq!(got.json(), filtered_order(), "{what}: filtered body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_the_tcp_port() {
    let s = setup(false).await;
    let proxy = s.proxy.url();
    let out = curl(&[
        "-x",
        &proxy,
        "-H",
        "Content-Type: application/json",
        "-H",
        "X-API-KEY: php-should-not-have-this",
        "--data-binary",
        ORDER,
        "-w",
        "\n%{http_code}",
        "http://api.shipper.example/v1/shipments",
    ])
    .await;
    let (body, code) = split_status(&out.stdout);
    assert_eq!(code, "200", "{}", describe(&out));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"ok": true}));
    assert_key_injected_and_filtered(&s.up, "curl -x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_the_unix_socket() {
    let s = setup(false).await;
    let sock = s.proxy.socket();
    let out = curl(&[
        "--unix-socket",
        &sock,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        ORDER,
        "-w",
        "\n%{http_code}",
        "http://api.shipper.example/v1/shipments",
    ])
    .await;
    let (_, code) = split_status(&out.stdout);
    assert_eq!(code, "200", "{}", describe(&out));
    assert_key_injected_and_filtered(&s.up, "curl --unix-socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_https_to_a_credential_destination_is_refused_at_connect() {
    let s = setup(false).await;
    let proxy = s.proxy.url();
    let ca = s.ca.pem_path();
    let out = curl(&[
        "-x",
        &proxy,
        "--cacert",
        &ca,
        "-w",
        "%{http_connect}",
        "-o",
        "/dev/null",
        "https://api.shipper.example/v1/shipments/1",
    ])
    .await;
    assert!(!out.status.success(), "curl must fail: {}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "403",
        "the CONNECT answer: {}",
        describe(&out)
    );
    assert_eq!(s.up.count(), 0, "nothing reached the upstream");
    assert_eq!(s.up.tls_failures(), 0, "no connection to the upstream at all");
    // The refusal itself, as curl shows it with -v.
    let out = curl(&[
        "-v",
        "-x",
        &proxy,
        "--cacert",
        &ca,
        "https://api.shipper.example/v1/shipments/1",
    ])
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("x-egress-guard-reason: tunnel_not_allowed"),
        "reason header on the CONNECT answer:\n{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_https_to_a_tunnel_destination_verifies_end_to_end() {
    let s = setup(false).await;
    let proxy = s.proxy.url();
    let ca = s.ca.pem_path();
    let out = curl(&[
        "-x",
        &proxy,
        "--cacert",
        &ca,
        "-H",
        "X-Trace: 1",
        "-w",
        "\n%{http_code} %{http_connect}",
        "https://api.open.example/v1/anything?q=1",
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text.trim_end().ends_with("200 200"),
        "answer and CONNECT status: {}",
        describe(&out)
    );
    let got = s.up.single();
    assert_eq!(got.sni.as_deref(), Some(OPEN), "TLS was end to end: curl's own SNI");
    assert_eq!(got.target, "/v1/anything?q=1");
    assert!(got.header("x-api-key").is_none(), "never a key through a tunnel");
    assert_eq!(
        got.header("x-trace").as_deref(),
        Some("1"),
        "the tunnel carries curl's request untouched"
    );
    // Without the test CA, curl itself refuses the upstream: the proxy does not terminate TLS.
    let out = curl(&["-x", &proxy, "-o", "/dev/null", "https://api.open.example/v1/anything"]).await;
    assert!(
        !out.status.success(),
        "curl must not trust the test CA by default: {}",
        describe(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_proxy_user_against_client_token() {
    let s = setup(true).await;
    let proxy = s.proxy.url();
    let url = "http://api.shipper.example/v1/shipments";
    let base = [
        "-x",
        &proxy,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        ORDER,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ];
    let out = curl(&[&base[..], &[url]].concat()).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "407",
        "no token: {}",
        describe(&out)
    );
    let bad = format!("shop:{TOKEN}x");
    let out = curl(&[&base[..], &["-U", &bad, url]].concat()).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "407",
        "wrong token: {}",
        describe(&out)
    );
    assert_eq!(s.up.count(), 0);
    // Preemptive Basic, and the challenge-first way (WordPress's cURL).
    let good = format!("shop:{TOKEN}");
    let out = curl(&[&base[..], &["-U", &good, url]].concat()).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "token, basic: {}",
        describe(&out)
    );
    let out = curl(&[&base[..], &["--proxy-anyauth", "-U", &good, url]].concat()).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "token after the challenge: {}",
        describe(&out)
    );
    let got = s.up.wait_for(2).await;
    for r in &got {
        assert!(r.header("proxy-authorization").is_none());
        assert_eq!(r.json(), filtered_order());
    }
    // The challenges named no destination, yet tried no unknown host.
    let m = s.proxy.metrics().await;
    assert_eq!(
        m.get("egress_guard_anomalies_total{kind=\"unknown_destination\"}"),
        Some(0.0),
        "a 407 challenge raised unknown_destination:\n{}",
        m.text
    );
}

// ---------------------------------------------------------------------------
// PHP
// ---------------------------------------------------------------------------

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/php")
        .join(name)
}

/// run-example.php's one line of JSON.
fn php_result(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("run-example.php printed no JSON ({e}): {}", describe(out)))
}

/// What the example sends, after the policy: only the allowed fields.
fn assert_example_received(up: &Upstream, what: &str) {
    let got = up.single();
    assert_eq!(got.method, "POST", "{what}");
    assert_eq!(got.target, "/v1/shipments", "{what}");
    assert_eq!(got.sni.as_deref(), Some(SHIPPER), "{what}: SNI");
    assert_eq!(
        got.header_values("x-api-key"),
        vec![KEY.to_owned()],
        "{what}: injected key: {:#?}",
        got.headers
    );
    assert_eq!(
        got.json(),
        json!({
            "order_id": 1042,
            "shipping": {"first_name": "Max", "last_name": "Mustermann", "address_1": "Am Markt 3", "city": "Bonn", "postcode": "53111", "country": "DE"},
            "line_items": [{"sku": "MUG-RED", "quantity": 2}, {"sku": "TEE-M", "quantity": 1}]
        }),
        "{what}: filtered payload"
    );
    let text = String::from_utf8_lossy(&got.body);
    for personal in [
        "Erika",
        "erika.mustermann@example.org",
        "+49 221",
        "Heidestrasse",
        "203.0.113.9",
        "DE123456789",
        "Schmidt",
        "Mozilla",
        "Fuer Max",
    ] {
        assert!(!text.contains(personal), "{what}: {personal:?} left the shop: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_example_through_curlopt_proxy() {
    let s = setup(false).await;
    let proxy = s.proxy.url();
    let out = php(&example("run-example.php"), &[("EGRESS_GUARD_PROXY", &proxy)]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let result = php_result(&out);
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["body"], json!({"ok": true}), "the decoded answer");
    assert_example_received(&s.up, "PHP CURLOPT_PROXY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_example_through_the_unix_socket() {
    let s = setup(false).await;
    let sock = s.proxy.socket();
    // A proxy URL that goes nowhere: the socket must be what is used.
    let out = php(
        &example("run-example.php"),
        &[
            ("EGRESS_GUARD_SOCKET", &sock),
            ("EGRESS_GUARD_PROXY", "http://127.0.0.1:1"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(php_result(&out)["status"], 200);
    assert_example_received(&s.up, "PHP CURLOPT_UNIX_SOCKET_PATH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_example_with_client_token() {
    let s = setup(true).await;
    let proxy = s.proxy.url();
    let script = example("run-example.php");
    let out = php(&script, &[("EGRESS_GUARD_PROXY", &proxy)]).await;
    let result = php_result(&out);
    assert_eq!(result["status"], 407, "no token: {}", describe(&out));
    assert_eq!(result["body"]["error"], "proxy_auth_required");
    assert!(!out.status.success());
    let out = php(
        &script,
        &[("EGRESS_GUARD_PROXY", &proxy), ("EGRESS_GUARD_TOKEN", "wrong-token")],
    )
    .await;
    assert_eq!(php_result(&out)["status"], 407, "wrong token: {}", describe(&out));
    assert_eq!(s.up.count(), 0, "nothing reached the upstream without the token");
    let out = php(
        &script,
        &[("EGRESS_GUARD_PROXY", &proxy), ("EGRESS_GUARD_TOKEN", TOKEN)],
    )
    .await;
    assert!(
        out.status.success(),
        "with CURLOPT_PROXYUSERPWD shop:<token>: {}",
        describe(&out)
    );
    assert_eq!(php_result(&out)["status"], 200);
    assert_example_received(&s.up, "PHP with client token");
}

/// A bare PHP cURL call as SPEC.md shows it, a key PHP sets anyway included,
/// with CURLOPT_PROXYUSERPWD sent preemptively (CURLAUTH_BASIC, cURL's default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_plain_curl_snippet_with_preemptive_basic() {
    let s = setup(true).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("send.php");
    std::fs::write(
        &script,
        r#"<?php
$ch = curl_init('http://api.shipper.example/v1/shipments');
curl_setopt_array($ch, [
    CURLOPT_PROXY          => getenv('PROXY'),
    CURLOPT_PROXYUSERPWD   => 'shop:' . getenv('TOKEN'),
    CURLOPT_POST           => true,
    CURLOPT_HTTPHEADER     => ['Content-Type: application/json', 'X-API-KEY: leaked-in-php', 'X_API_KEY: again'],
    CURLOPT_POSTFIELDS     => getenv('ORDER'),
    CURLOPT_RETURNTRANSFER => true,
    CURLOPT_TIMEOUT        => 10,
]);
$body = curl_exec($ch);
echo json_encode(['status' => curl_getinfo($ch, CURLINFO_RESPONSE_CODE), 'body' => json_decode((string) $body, true)]), "\n";
"#,
    )
    .unwrap();
    let proxy = s.proxy.url();
    let out = php(&script, &[("PROXY", &proxy), ("TOKEN", TOKEN), ("ORDER", ORDER)]).await;
    assert_eq!(php_result(&out)["status"], 200, "{}", describe(&out));
    assert_key_injected_and_filtered(&s.up, "PHP snippet");
}

#[test]
fn examples_hold_no_credential() {
    for name in ["woocommerce-sender.php", "run-example.php"] {
        let text = std::fs::read_to_string(example(name)).unwrap();
        assert!(!text.contains("X-API-KEY:"), "{name} sets a credential header");
        assert!(
            !text.to_ascii_lowercase().contains("https://api.shipper"),
            "{name} uses https: the proxy cannot filter a tunnel"
        );
        assert!(text.contains("http://api.shipper.example/v1/shipments") || name == "run-example.php");
    }
}
