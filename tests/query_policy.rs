#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! A route's `query:` policy, through the real proxy to a recording TLS upstream (PHP's
//! cURL for the realistic call, raw sockets for the rest), the real binary for the audit
//! line and `explain`. What the upstream received is the judge: kept parameters byte for
//! byte, in order; without `query` the query string passes unchanged.

mod common;

use common::daemon::{closed_port_sync, run_once};
use common::{absolute, assert_refusal, describe, php, Daemon, Dest, PolicyBuilder, Proxy, Route, TestCa, Upstream};

const HOST: &str = "api.crm.test";

fn dest() -> Dest {
    Dest::new("crm", HOST)
        .route(
            Route::get("/v1/customers")
                .query("allow", "[limit, starting_after, email, \"expand[]\"]")
                .query("on_violation", "strip")
                .query("scan", "[card_number]"),
        )
        .route(
            Route::get("/v1/search")
                .query("deny", "[email, filter.email, \"*.phone\"]")
                .query("on_violation", "reject"),
        )
        .route(Route::get("/v1/report").mode("report").query("allow", "[limit]"))
        .route(Route::get("/v1/open"))
}

async fn setup() -> (TestCa, Upstream, Proxy) {
    let ca = TestCa::new();
    let up = Upstream::start(&ca, &[HOST]).await;
    let proxy = Proxy::start_policy(&PolicyBuilder::new().dest(dest().upstream(&up, &ca))).await;
    (ca, up, proxy)
}

async fn get(up: &Upstream, proxy: &Proxy, target: &str) -> (common::RawResponse, Option<String>) {
    let before = up.count();
    let resp = proxy
        .send(&absolute("GET", &format!("http://{HOST}{target}"), &[], b""))
        .await;
    let got = if resp.status == 200 {
        Some(up.wait_for(before + 1).await.pop().unwrap().target)
    } else {
        assert_eq!(up.count(), before, "a refused request reached the upstream");
        None
    };
    (resp, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_forwards_kept_parameters_byte_for_byte() {
    let (_ca, up, proxy) = setup().await;
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("all kept", "/v1/customers?limit=3&email=a%40b.example", "/v1/customers?limit=3&email=a%40b.example"),
        ("one removed, order kept", "/v1/customers?token=x&limit=%33&starting_after=cus_1+x", "/v1/customers?limit=%33&starting_after=cus_1+x"),
        ("all removed: no query", "/v1/customers?token=x&Limit=1", "/v1/customers"),
        ("bracket notation", "/v1/customers?expand[]=a&expand%5B%5D=b&expand[0][x]=c&meta[a]=1", "/v1/customers?expand[]=a&expand%5B%5D=b&expand[0][x]=c"),
        ("no policy: unchanged, even what a policy refuses", "/v1/open?a=1&a=%zz;b", "/v1/open?a=1&a=%zz;b"),
        ("report mode: unchanged", "/v1/report?limit=1&email=x", "/v1/report?limit=1&email=x"),
        ("deny passes the rest", "/v1/search?q=shoes&page=2", "/v1/search?q=shoes&page=2"),
        ("no query at all", "/v1/customers", "/v1/customers"),
    ];
    for (label, target, want) in cases {
        let (resp, got) = get(&up, &proxy, target).await;
        assert_eq!(resp.status, 200, "{label}: {}", resp.text());
        assert_eq!(got.as_deref(), Some(*want), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    let (_ca, up, proxy) = setup().await;
    #[rustfmt::skip]
    let cases: &[(&str, &str, u16, &str)] = &[
        ("reject a denied parameter", "/v1/search?q=a&email=x", 422, "field_not_allowed"),
        ("reject folds case", "/v1/search?EMAIL=x", 422, "field_not_allowed"),
        ("reject nested", "/v1/search?filter%5Bemail%5D=x", 422, "field_not_allowed"),
        ("reject any key", "/v1/search?billing[phone]=1", 422, "field_not_allowed"),
        ("card in a kept value", "/v1/customers?email=4111111111111111", 422, "sensitive_value"),
        ("bad percent", "/v1/customers?limit=%zz", 400, "bad_request"),
        ("same parameter twice", "/v1/customers?limit=1&limit=2", 400, "bad_request"),
        ("php reads dot as underscore", "/v1/search?e.mail=x", 400, "bad_request"),
        ("nul in a name", "/v1/search?email%00=x", 400, "bad_request"),
        ("raw semicolon", "/v1/search?q=1;email=x", 400, "bad_request"),
        ("unbalanced", "/v1/search?filter[email=x", 400, "bad_request"),
    ];
    for (label, target, status, reason) in cases {
        let (resp, _) = get(&up, &proxy, target).await;
        assert_refusal(&resp, *status, reason, label);
    }
}

/// PHP's cURL with an http_build_query query string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_curl_query() {
    let (_ca, up, proxy) = setup().await;
    let script = tempfile::Builder::new().suffix(".php").tempfile().unwrap();
    std::fs::write(
        script.path(),
        r#"<?php
$q = http_build_query(['limit' => 10, 'email' => 'jane@example.org', 'api_token' => 'tok', 'expand' => ['data.customer']]);
$ch = curl_init('http://api.crm.test/v1/customers?' . $q);
curl_setopt_array($ch, [CURLOPT_PROXY => getenv('EGRESS_GUARD_PROXY'), CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 10]);
curl_exec($ch);
echo curl_getinfo($ch, CURLINFO_RESPONSE_CODE), "\n";
"#,
    )
    .unwrap();
    let out = php(script.path(), &[("EGRESS_GUARD_PROXY", &proxy.url())]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200", "{}", describe(&out));
    assert_eq!(
        up.single().target,
        "/v1/customers?limit=10&email=jane%40example.org&expand%5B0%5D=data.customer"
    );
}

/// The real binary's audit line names removed parameters, never values, and logs the path
/// without its query; `explain` shows what the query policy does.
#[test]
fn audit_line_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let closed = format!("127.0.0.1:{}", closed_port_sync());
    PolicyBuilder::new()
        .server("listen", "127.0.0.1:0")
        .dest(dest().connect_to(&closed))
        .write(&path);
    let p = Daemon::spawn(&path);
    let (_, reason) = p.get("http://api.crm.test/v1/customers?limit=2&api_token=SECRETVALUE&ssn=078051120");
    assert_eq!(reason, "upstream_unavailable");
    let (_, reason) = p.get("http://api.crm.test/v1/search?email=jane%40example.org");
    assert_eq!(reason, "field_not_allowed");
    p.wait_count(2, |l| l.contains("\"message\":\"request\""), "two audit lines");
    let audit: Vec<serde_json::Value> = p
        .lines()
        .iter()
        .filter(|l| l.contains("\"message\":\"request\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(audit[0]["path"], "/v1/customers");
    assert_eq!(audit[0]["removed_query"], "api_token,ssn");
    assert_eq!(audit[1]["path"], "/v1/search");
    assert_eq!(audit[1]["removed_query"], "email");
    assert_eq!(audit[1]["reason"], "field_not_allowed");
    let all = p.lines().join("\n");
    for value in ["SECRETVALUE", "078051120", "jane", "limit=2"] {
        assert!(!all.contains(value), "{value:?} in the log:\n{all}");
    }
    let policy = path.to_str().unwrap();
    let out = run_once(
        &[
            "explain",
            "--policy",
            policy,
            "--method",
            "GET",
            "--url",
            "http://api.crm.test/v1/customers?limit=2&api_token=x",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text.contains("removed query parameters: api_token\n"), "{text}");
    assert!(
        text.contains("GET https://api.crm.test/v1/customers?limit=2\n"),
        "{text}"
    );
    let out = run_once(
        &[
            "explain",
            "--policy",
            policy,
            "--method",
            "GET",
            "--url",
            "http://api.crm.test/v1/search?email=x",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("field_not_allowed") && text.contains("removed query parameters: email"),
        "{text}"
    );
    let out = run_once(&["check", policy], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("query filtered (allow, on_violation: strip, scan: card_number)"),
        "{text}"
    );
}
