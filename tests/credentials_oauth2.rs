//! OAuth2 client credentials through the proxy, against a local HTTPS token
//! endpoint: one fetch for many waiting requests, expiry on a driven clock, a
//! 401 that drops the token, a failing endpoint as `credential_unavailable`
//! and recovery, reloads that keep or renew the token, and the token and the
//! client secret masked in every answer. What the endpoint and the upstream
//! received is the judge.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod credentials;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use common::*;
use credentials::*;

struct Fixture {
    ca: TestCa,
    endpoint: TokenEndpoint,
    api: Upstream,
    revoked: Arc<Mutex<HashSet<String>>>,
    block: Block,
    _files: (tempfile::NamedTempFile, tempfile::NamedTempFile),
}

impl Fixture {
    async fn new() -> Fixture {
        let ca = TestCa::new();
        let endpoint = TokenEndpoint::start(&ca).await;
        let revoked: Arc<Mutex<HashSet<String>>> = Arc::default();
        let api = api(&ca, revoked.clone()).await;
        let (id, secret) = (secret_file(CLIENT_ID), secret_file(CLIENT_SECRET));
        let block = Block {
            scope: "https://uri.paypal.com/services/payments".into(),
            client_auth: "basic",
            token_connect_to: endpoint.up.connect_to(),
            id_file: path_str(id.path()),
            secret_file: path_str(secret.path()),
        };
        Fixture {
            ca,
            endpoint,
            api,
            revoked,
            block,
            _files: (id, secret),
        }
    }

    fn yaml(&self) -> String {
        policy(&self.api, &self.ca, &self.block, "")
    }

    async fn proxy(&self) -> Proxy {
        Proxy::start(&self.yaml()).await
    }
}

fn compile(yaml: &str) -> egress_guard::policy::Policy {
    egress_guard::policy::compile(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// The bearer header each request the upstream got carried, in order.
fn bearers(api: &Upstream) -> Vec<Vec<String>> {
    api.requests()
        .iter()
        .map(|r| r.header_values("authorization"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_first_requests_fetch_one_token() {
    let f = Fixture::new().await;
    let proxy = f.proxy().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let addr = proxy.addr;
        tasks.spawn(async move { send_to(addr, &get(&format!("/v1/echo/{i}"), "")).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().status, 201);
    }
    assert_eq!(f.endpoint.fetches(), 1, "one token fetch for fifty waiting requests");
    let want = format!("Bearer {}", token(1));
    assert!(
        bearers(&f.api).iter().all(|b| *b == vec![want.clone()]),
        "{:?}",
        bearers(&f.api)
    );
    // The token request, as RFC 6749 4.4 and 2.3.1 (client_secret_basic) write it.
    let t = f.endpoint.up.single();
    assert_eq!((t.method.as_str(), t.target.as_str()), ("POST", "/v1/oauth2/token"));
    assert_eq!(t.sni.as_deref(), Some(AUTH), "verified TLS to the named host");
    assert_eq!(
        t.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(t.header_values("authorization"), vec![format!("Basic {basic}")]);
    assert_eq!(
        String::from_utf8_lossy(&t.body),
        "grant_type=client_credentials&scope=https%3A%2F%2Furi.paypal.com%2Fservices%2Fpayments"
    );
    let m = proxy.metrics().await;
    let ok = [("destination", "paypal"), ("outcome", "ok")];
    assert_eq!(m.sum("egress_guard_credential_fetches_total", &ok), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_post_sends_the_pair_in_the_body() {
    let mut f = Fixture::new().await;
    f.block.client_auth = "body";
    f.block.scope = String::new();
    let proxy = f.proxy().await;
    assert_eq!(proxy.send(&get("/v1/echo", "")).await.status, 201);
    let t = f.endpoint.up.single();
    assert!(t.header("authorization").is_none(), "{:?}", t.headers);
    assert_eq!(
        String::from_utf8_lossy(&t.body),
        format!("grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_refresh_on_the_driven_clock() {
    let f = Fixture::new().await;
    f.endpoint.expires_in.store(100, std::sync::atomic::Ordering::SeqCst);
    let clock = egress_guard::clock::Clock::manual();
    let proxy = Proxy::start_with_clock(&f.yaml(), clock.clone()).await;
    assert_eq!(proxy.send(&get("/v1/echo", "")).await.status, 201);
    // A 100 s token is refreshed 25 s early (a quarter of short lifetimes).
    clock.advance(Duration::from_secs(74));
    assert_eq!(proxy.send(&get("/v1/echo", "")).await.status, 201);
    assert_eq!(f.endpoint.fetches(), 1, "still fresh at 74 s");
    clock.advance(Duration::from_secs(2));
    assert_eq!(proxy.send(&get("/v1/echo", "")).await.status, 201);
    assert_eq!(f.endpoint.fetches(), 2, "refreshed at 76 s");
    let got = bearers(&f.api);
    assert_eq!(got.last().unwrap(), &vec![format!("Bearer {}", token(2))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_401_drops_the_token() {
    let f = Fixture::new().await;
    let proxy = f.proxy().await;
    f.revoked.lock().unwrap().insert(token(1));
    let first = proxy.send(&get("/v1/echo", "")).await;
    assert_eq!(first.status, 401, "the upstream's answer passes back unchanged");
    let second = proxy.send(&get("/v1/echo", "")).await;
    assert_eq!(second.status, 201, "{}", second.text());
    assert_eq!(f.endpoint.fetches(), 2, "a fresh token after the 401");
    assert_eq!(bearers(&f.api).last().unwrap(), &vec![format!("Bearer {}", token(2))]);
    assert_eq!(proxy.send(&get("/v1/echo", "")).await.status, 201);
    assert_eq!(f.endpoint.fetches(), 2, "the fresh token is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_endpoint_is_credential_unavailable_then_recovers() {
    let f = Fixture::new().await;
    let huge = format!(r#"{{"access_token":"{}","token_type":"Bearer"}}"#, "a".repeat(70_000));
    let rows: Vec<(&str, Reply, &str)> = vec![
        ("endpoint 503", Reply::status(503), "refused"),
        (
            "endpoint 401",
            Reply::json(401, r#"{"error":"invalid_client"}"#),
            "refused",
        ),
        (
            "CRLF in the token",
            Reply::json(200, r#"{"access_token":"abc\r\nX-Evil: 1","token_type":"Bearer"}"#),
            "bad_response",
        ),
        (
            "mac token",
            Reply::json(200, r#"{"access_token":"abc","token_type":"mac"}"#),
            "bad_response",
        ),
        ("answer too large", Reply::json(200, &huge), "bad_response"),
        ("not JSON", Reply::json(200, "access_token=abc"), "bad_response"),
        ("no answer", Reply::never(), "timeout"),
    ];
    let mut yaml = f.yaml();
    // Bounds the fetch that never gets an answer: one second, not ten.
    yaml = yaml.replace("destinations:", "defaults:\n  request_timeout_ms: 1000\ndestinations:");
    for (name, reply, outcome) in rows {
        let proxy = Proxy::start(&yaml).await;
        let (before, api_before) = (f.endpoint.fetches(), f.api.count());
        f.endpoint.fail_with(Some(reply));
        for attempt in 0..2 {
            let r = proxy.send(&get("/v1/echo", "")).await;
            assert_refusal(&r, 502, "credential_unavailable", name);
            assert_eq!(
                f.endpoint.fetches(),
                before + attempt + 1,
                "{name}: each request tries again"
            );
        }
        assert_eq!(f.api.count(), api_before, "{name}: nothing reached the upstream");
        let m = proxy.metrics().await;
        let labels = [("destination", "paypal"), ("outcome", outcome)];
        assert_eq!(m.sum("egress_guard_credential_fetches_total", &labels), 2.0, "{name}");
        f.endpoint.fail_with(None);
        assert_eq!(proxy.send(&get("/v1/echo", "")).await.status, 201, "{name}: back");
        assert_eq!(f.api.count(), api_before + 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_token_endpoint_is_credential_unavailable() {
    let mut f = Fixture::new().await;
    f.block.token_connect_to = closed_port().await.to_string();
    let proxy = f.proxy().await;
    let r = proxy.send(&get("/v1/echo", "")).await;
    assert_refusal(&r, 502, "credential_unavailable", "closed port");
    let m = proxy.metrics().await;
    let labels = [("destination", "paypal"), ("outcome", "unreachable")];
    assert_eq!(m.sum("egress_guard_credential_fetches_total", &labels), 1.0);
    assert_eq!(f.api.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_and_the_client_secret_never_reach_the_client() {
    let f = Fixture::new().await;
    let proxy = f.proxy().await;
    // The client's own Authorization, in any case and count, is removed first.
    let r = proxy
        .send(&get(
            "/v1/echo",
            "Authorization: Bearer forged\r\nAUTHORIZATION: Basic eDp5\r\n",
        ))
        .await;
    assert_eq!(r.status, 201);
    let sent = f.api.single();
    assert_eq!(
        sent.header_values("authorization"),
        vec![format!("Bearer {}", token(1))]
    );
    let answer = format!("{}\n{}", r.head, r.text());
    for secret in [token(1), CLIENT_SECRET.to_owned()] {
        assert!(!answer.contains(&secret), "{secret} reached the client:\n{answer}");
    }
    assert!(answer.contains("client_secret=*"), "masked in place: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_the_token_of_an_unchanged_block() {
    let mut f = Fixture::new().await;
    let proxy = f.proxy().await;
    assert_eq!(proxy.send(&get("/v1/echo", "")).await.status, 201);
    // Same block, another destination added: the token stays.
    let other = "  other:\n    host: api.other.example\n";
    proxy.store.replace(compile(&policy(&f.api, &f.ca, &f.block, other)));
    assert_eq!(proxy.send(&get("/v1/echo", "")).await.status, 201);
    assert_eq!(f.endpoint.fetches(), 1, "unchanged block keeps its token");
    // Scope changed: the block is another one, its token fetched anew.
    f.block.scope = "openid".into();
    proxy.store.replace(compile(&policy(&f.api, &f.ca, &f.block, "")));
    assert_eq!(proxy.send(&get("/v1/echo", "")).await.status, 201);
    assert_eq!(f.endpoint.fetches(), 2, "changed block fetches anew");
    // The client secret rotated (same text in the policy): anew again.
    std::fs::write(&f.block.secret_file, "cs_RotatedSecret_77\n").unwrap();
    proxy.store.replace(compile(&policy(&f.api, &f.ca, &f.block, "")));
    assert_eq!(proxy.send(&get("/v1/echo", "")).await.status, 201);
    assert_eq!(f.endpoint.fetches(), 3, "rotated secret fetches anew");
}

/// Invariant 1 through the real binary at debug level: tokens, the client
/// secret and a Basic password reach no log line, no answer and no metric,
/// through successes, a 401, a failing token endpoint and a client-sent
/// Authorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_no_token_secret_or_password() {
    const PARTNER: &str = "api.partner.example";
    const PASSWORD: &str = "pw_PartnerBasicSecret_58q";
    let f = Fixture::new().await;
    let partner = Upstream::start(&f.ca, &[PARTNER]).await;
    let (user, pass) = (secret_file("partner-user"), secret_file(PASSWORD));
    let basic = format!(
        "  partner:\n    host: {PARTNER}\n    connect_to: {}\n    ca_file: {}\n    credential:\n      basic: {{username: \"file:{}\", password: \"file:{}\"}}\n",
        partner.connect_to(),
        f.ca.pem_path(),
        path_str(user.path()),
        path_str(pass.path()),
    );
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.yaml");
    std::fs::write(&policy_path, policy(&f.api, &f.ca, &f.block, &basic)).unwrap();
    let mut d = Spawn::new(&policy_path).log("debug").start();
    let addr: std::net::SocketAddr = d.addr.parse().unwrap();
    let mut answers = String::new();
    let mut ask = |r: RawResponse| answers.push_str(&format!("{}\n{}\n", r.head, r.text()));
    ask(send_to(addr, &get("/v1/echo", "Authorization: Bearer client-own\r\n")).await);
    f.revoked.lock().unwrap().insert(token(1));
    ask(send_to(addr, &get("/v1/echo", "")).await);
    ask(send_to(addr, &get("/v1/echo", "")).await);
    f.endpoint.fail_with(Some(Reply::json(
        200,
        r#"{"access_token":"x y","token_type":"Bearer"}"#,
    )));
    f.revoked.lock().unwrap().insert(token(2));
    ask(send_to(addr, &get("/v1/echo", "")).await);
    ask(send_to(addr, &get("/v1/echo", "")).await);
    let partner_req = format!("GET http://{PARTNER}/x HTTP/1.1\r\nHost: {PARTNER}\r\nConnection: close\r\n\r\n");
    ask(send_to(addr, partner_req.as_bytes()).await);
    assert_eq!(partner.count(), 1);
    let (status, metrics) = admin_get(d.admin(), "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("egress_guard_credential_fetches_total{"), "{metrics}");
    d.term();
    d.wait_exit();
    let logs = d.drained_output();
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let basic_pair = base64::engine::general_purpose::STANDARD.encode(format!("partner-user:{PASSWORD}"));
    let secrets = [
        token(1),
        token(2),
        CLIENT_SECRET.to_owned(),
        pair,
        PASSWORD.to_owned(),
        basic_pair,
    ];
    for (what, text) in [("logs", &logs), ("answers", &answers), ("metrics", &metrics)] {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{s} in the {what}:\n{text}");
        }
    }
    assert!(
        logs.contains("OAuth2 token fetch failed"),
        "the failure is logged by outcome"
    );
    assert!(answers.contains("credential_unavailable"), "{answers}");
}

/// Without `connect_to`, the token endpoint's name goes through the same
/// address check as any upstream's: a name that resolves to loopback is
/// refused before any connection is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_resolving_to_loopback_is_refused() {
    let f = Fixture::new().await;
    let port = f.endpoint.up.addr.port();
    let yaml = f
        .yaml()
        .replace(&format!("        connect_to: {}\n", f.endpoint.up.connect_to()), "")
        .replace(
            &format!("https://{AUTH}/v1/oauth2/token"),
            &format!("https://localhost:{port}/v1/oauth2/token"),
        );
    assert!(!yaml.contains(&f.endpoint.up.connect_to()), "{yaml}");
    let proxy = Proxy::start(&yaml).await;
    let r = proxy.send(&get("/v1/echo", "")).await;
    assert_refusal(&r, 502, "credential_unavailable", "loopback by DNS");
    assert_eq!(
        (f.endpoint.fetches(), f.endpoint.up.tls_failures()),
        (0, 0),
        "never dialled"
    );
    let m = proxy.metrics().await;
    let labels = [("destination", "paypal"), ("outcome", "unreachable")];
    assert_eq!(m.sum("egress_guard_credential_fetches_total", &labels), 1.0);
}

/// Requests that wait through a fetch share its failure: twenty requests
/// arriving while the endpoint hangs cost one fetch, not twenty timeouts in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_requests_share_one_failed_fetch() {
    let f = Fixture::new().await;
    f.endpoint.fail_with(Some(Reply::never()));
    let yaml = f
        .yaml()
        .replace("destinations:", "defaults:\n  request_timeout_ms: 3000\ndestinations:");
    let proxy = Proxy::start(&yaml).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let addr = proxy.addr;
        tasks.spawn(async move { send_to(addr, &get("/v1/echo", "")).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_refusal(&r.unwrap(), 502, "credential_unavailable", "shared failure");
    }
    assert_eq!(f.endpoint.fetches(), 1, "one token request reached the endpoint");
    let m = proxy.metrics().await;
    let labels = [("destination", "paypal"), ("outcome", "timeout")];
    assert_eq!(
        m.sum("egress_guard_credential_fetches_total", &labels),
        1.0,
        "one fetch for twenty"
    );
}
