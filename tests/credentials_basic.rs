//! Basic credentials, the credential shapes a policy may write, the shipped
//! PHP examples (a Basic-auth partner and a PayPal-style OAuth2 order, each
//! run on its own policy snippet with PHP's cURL), and the real binary's logs
//! holding no token, client secret or password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod credentials;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::*;
use credentials::*;
use serde_json::json;

const PARTNER: &str = "api.klarna.example";
const USER: &str = "PK12345_shopuser";
const PASSWORD: &str = "pw_KlarnaBasicSecret_31x";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/php")
        .join(name)
}

fn snippet(name: &str) -> String {
    std::fs::read_to_string(example(name)).unwrap()
}

/// The shipped Basic snippet, pointed at the local upstream and test secrets.
fn klarna_policy(up: &Upstream, ca: &TestCa, user: &str, pass: &str) -> String {
    snippet("klarna-session.policy.yaml")
        .replace(
            "host: api.klarna.com",
            &format!(
                "host: {PARTNER}\n    connect_to: {}\n    ca_file: {}",
                up.connect_to(),
                ca.pem_path()
            ),
        )
        .replace("env:KLARNA_USERNAME", &format!("file:{user}"))
        .replace("credential:klarna-password", &format!("file:{pass}"))
}

/// A partner upstream that echoes the Authorization it got (header and body).
async fn partner(ca: &TestCa) -> Upstream {
    let handler: Handler = Arc::new(|r: &Recorded| {
        let auth = r.header("authorization").unwrap_or_default();
        let body = json!({"session_id": "sess-1", "seen": auth, "note": format!("pw={PASSWORD}")});
        Reply::json(200, &body.to_string()).header("x-echo-auth", &auth)
    });
    Upstream::start_replying(ca, &[PARTNER], handler).await
}

struct Basic {
    ca: TestCa,
    up: Upstream,
    proxy: Proxy,
    _files: (tempfile::NamedTempFile, tempfile::NamedTempFile),
}

async fn basic_setup() -> Basic {
    let ca = TestCa::new();
    let up = partner(&ca).await;
    let (u, p) = (secret_file(USER), secret_file(PASSWORD));
    let proxy = Proxy::start(&klarna_policy(&up, &ca, &path_str(u.path()), &path_str(p.path()))).await;
    Basic {
        ca,
        up,
        proxy,
        _files: (u, p),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_basic_injected_and_its_own_authorization_removed() {
    let s = basic_setup().await;
    let out = curl(&[
        "-x",
        &s.proxy.url(),
        "-H",
        "Authorization: Basic Zm9yZ2VkOnZhbHVl",
        "-H",
        "authorization: Bearer second-copy",
        "-H",
        "Content-Type: application/json",
        "--data",
        "{}",
        &format!("http://{PARTNER}/payments/v1/sessions"),
    ])
    .await;
    assert!(out.status.success(), "{}", describe(&out));
    let got = s.up.single();
    assert_eq!(
        got.header_values("authorization"),
        vec![format!("Basic {}", b64(&format!("{USER}:{PASSWORD}")))],
        "exactly the proxy's own: {:?}",
        got.headers
    );
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(!answer.contains(PASSWORD), "{answer}");
    assert!(!answer.contains(&b64(&format!("{USER}:{PASSWORD}"))), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_basic_partner_example() {
    let s = basic_setup().await;
    let out = php(
        &example("klarna-session.php"),
        &[("EGRESS_GUARD_PROXY", &s.proxy.url()), ("KLARNA_API_HOST", PARTNER)],
    )
    .await;
    assert!(out.status.success(), "{}", describe(&out));
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let result: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["body"]["session_id"], "sess-1");
    let seen = result["body"]["seen"].as_str().unwrap();
    assert!(
        seen.starts_with("Basic ") && seen.trim_start_matches("Basic ").bytes().all(|b| b == b'*'),
        "{seen}"
    );
    let got = s.up.single();
    assert_eq!((got.method.as_str(), got.path()), ("POST", "/payments/v1/sessions"));
    assert_eq!(got.sni.as_deref(), Some(PARTNER));
    assert_eq!(got.json()["order_amount"], 4250);
    assert_eq!(
        got.header_values("authorization"),
        vec![format!("Basic {}", b64(&format!("{USER}:{PASSWORD}")))]
    );
    drop(s.ca);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_paypal_order_example() {
    let ca = TestCa::new();
    let endpoint = TokenEndpoint::start(&ca).await;
    let api = api(&ca, Arc::new(Mutex::new(HashSet::new()))).await;
    let (id, secret) = (secret_file(CLIENT_ID), secret_file(CLIENT_SECRET));
    let yaml = snippet("paypal-order.policy.yaml")
        .replace(
            "host: api-m.paypal.com",
            &format!(
                "host: {API}\n    connect_to: {}\n    ca_file: {}",
                api.connect_to(),
                ca.pem_path()
            ),
        )
        .replace(
            "token_url: https://api-m.paypal.com/v1/oauth2/token",
            &format!(
                "token_url: https://{AUTH}/v1/oauth2/token\n        connect_to: {}\n        ca_file: {}",
                endpoint.up.connect_to(),
                ca.pem_path()
            ),
        )
        .replace("credential:paypal-client-id", &format!("file:{}", path_str(id.path())))
        .replace(
            "credential:paypal-client-secret",
            &format!("file:{}", path_str(secret.path())),
        );
    let proxy = Proxy::start(&yaml).await;
    let env = [("EGRESS_GUARD_PROXY", proxy.url()), ("PAYPAL_API_HOST", API.to_owned())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for _ in 0..2 {
        let out = php(&example("paypal-order.php"), &env).await;
        assert!(out.status.success(), "{}", describe(&out));
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        let result: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(result["status"], 201, "{result}");
        assert_eq!(result["body"]["status"], "CREATED");
        assert!(!line.contains(&token(1)) && !line.contains(CLIENT_SECRET), "{line}");
    }
    assert_eq!(endpoint.fetches(), 1, "two orders, one token");
    for got in api.requests() {
        assert_eq!(got.path(), "/v2/checkout/orders");
        assert_eq!(got.header_values("authorization"), vec![format!("Bearer {}", token(1))]);
        assert_eq!(got.json()["purchase_units"][0]["amount"]["value"], "42.50");
    }
}

#[test]
fn credential_shapes() {
    let secret = secret_file("s3cret-value");
    let s = path_str(secret.path());
    let oauth = |extra: &str| {
        format!("oauth2: {{token_url: \"https://auth.example/token\", client_id: \"file:{s}\", client_secret: \"file:{s}\"{extra}}}")
    };
    let with_colon = secret_file("user:name");
    let rows: Vec<(&str, String, Option<&str>)> = vec![
        ("header shape", format!("{{header: X-API-KEY, secret: \"file:{s}\"}}"), None),
        ("basic", format!("{{basic: {{username: \"file:{s}\", password: \"file:{s}\"}}}}"), None),
        ("oauth2", format!("{{{}}}", oauth("")), None),
        ("oauth2 body auth", format!("{{{}}}", oauth(", client_auth: body, scope: \"a b\"")), None),
        ("nothing", "{}".into(), Some("needs `secret`")),
        ("both shapes", format!("{{basic: {{username: \"file:{s}\", password: \"file:{s}\"}}, {}}}", oauth("")), Some("one of")),
        ("basic with header", format!("{{header: X-K, basic: {{username: \"file:{s}\", password: \"file:{s}\"}}}}"), Some("one of")),
        ("oauth2 with secret", format!("{{secret: \"file:{s}\", {}}}", oauth("")), Some("one of")),
        ("unknown key in oauth2", format!("{{{}}}", oauth(", audience: x")), Some("unknown field")),
        ("unknown key in basic", format!("{{basic: {{username: \"file:{s}\", password: \"file:{s}\", realm: x}}}}"), Some("unknown field")),
        ("bad client_auth", format!("{{{}}}", oauth(", client_auth: jwt")), Some("unknown variant")),
        ("http token url", format!("{{oauth2: {{token_url: \"http://auth.example/token\", client_id: \"file:{s}\", client_secret: \"file:{s}\"}}}}"), Some("https://")),
        ("user info in url", format!("{{oauth2: {{token_url: \"https://u:p@auth.example/token\", client_id: \"file:{s}\", client_secret: \"file:{s}\"}}}}"), Some("user info")),
        ("quote in scope", format!("{{{}}}", oauth(", scope: 'a\"b'")), Some("scope")),
        ("bad connect_to", format!("{{{}}}", oauth(", connect_to: nowhere")), Some("address")),
        ("missing secret file", format!("{{basic: {{username: \"file:{s}\", password: \"file:/nonexistent/pw\"}}}}"), Some("cannot read")),
        ("colon in user", format!("{{basic: {{username: \"file:{}\", password: \"file:{s}\"}}}}", path_str(with_colon.path())), Some("no `:`")),
    ];
    for (name, cred, want_err) in rows {
        let yaml =
            format!("version: 1\ndestinations:\n  partner:\n    host: api.partner.example\n    credential: {cred}\n");
        match (egress_guard::policy::compile(&yaml), want_err) {
            (Ok(_), None) => {}
            (Err(e), Some(w)) => {
                let text = e.to_string();
                assert!(text.contains(w), "{name}: error {text:?} lacks {w:?}");
                assert!(!text.contains("s3cret-value"), "{name}: the secret in an error: {text}");
            }
            (Ok(_), Some(w)) => panic!("{name}: accepted, want an error with {w:?}"),
            (Err(e), None) => panic!("{name}: refused: {e}\n{yaml}"),
        }
    }
}

#[test]
fn shipped_snippets_parse() {
    for name in ["paypal-order.policy.yaml", "klarna-session.policy.yaml"] {
        if let Err(e) = egress_guard::policy::raw::parse(&snippet(name)) {
            panic!("{name}: {e}");
        }
    }
}
