//! What the credential tests share: a local HTTPS OAuth2 token endpoint that
//! counts its fetches and issues numbered tokens, an API upstream that echoes
//! the credential it got (to prove the scrubber masks it) and refuses revoked
//! tokens with 401, and the policy YAML for both.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::*;

pub const API: &str = "api.paypal.example";
pub const AUTH: &str = "auth.paypal.example";
pub const CLIENT_ID: &str = "AcmeShopClientId01";
pub const CLIENT_SECRET: &str = "cs_EGuardClientSecret_9Zq4";

/// The n-th token the endpoint issues: distinct, long enough to be scrubbed.
pub fn token(n: usize) -> String {
    format!("A21AAFtok{n}xQ7mZp3Lw9Rt")
}

/// The token endpoint. `reply` (when set) overrides the normal answer.
pub struct TokenEndpoint {
    pub up: Upstream,
    pub expires_in: Arc<AtomicU64>,
    pub reply: Arc<Mutex<Option<Reply>>>,
}

impl TokenEndpoint {
    pub async fn start(ca: &TestCa) -> TokenEndpoint {
        let expires_in = Arc::new(AtomicU64::new(3600));
        let reply: Arc<Mutex<Option<Reply>>> = Arc::default();
        let issued = Arc::new(AtomicU64::new(0));
        let (e, r) = (expires_in.clone(), reply.clone());
        let handler: Handler = Arc::new(move |_req: &Recorded| {
            if let Some(r) = r.lock().unwrap().clone() {
                return r;
            }
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            let body = serde_json::json!({
                "scope": "https://uri.paypal.com/services/payments",
                "access_token": token(n as usize),
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": e.load(Ordering::SeqCst),
            });
            Reply::json(200, &body.to_string())
        });
        let up = Upstream::start_replying(ca, &[AUTH], handler).await;
        TokenEndpoint { up, expires_in, reply }
    }

    /// Token requests received so far (failed ones included).
    pub fn fetches(&self) -> usize {
        self.up.count()
    }

    pub fn fail_with(&self, r: Option<Reply>) {
        *self.reply.lock().unwrap() = r;
    }
}

/// The API: 401 for a revoked token; otherwise echoes the `Authorization`
/// it got in a header and in the body, and the client secret in the body.
pub async fn api(ca: &TestCa, revoked: Arc<Mutex<HashSet<String>>>) -> Upstream {
    let handler: Handler = Arc::new(move |r: &Recorded| {
        let auth = r.header("authorization").unwrap_or_default();
        let bearer = auth.strip_prefix("Bearer ").unwrap_or_default();
        if revoked.lock().unwrap().contains(bearer) {
            return Reply::json(401, r#"{"name":"AUTHENTICATION_FAILURE"}"#);
        }
        let body = serde_json::json!({
            "id": "5O190127TN364715T",
            "status": "CREATED",
            "seen_authorization": auth,
            "seen_token": bearer,
            "debug": format!("client_secret={CLIENT_SECRET}"),
        });
        Reply::json(201, &body.to_string()).header("x-echo-auth", &auth)
    });
    Upstream::start_replying(ca, &[API], handler).await
}

/// The `oauth2:` block's settings a test varies.
#[derive(Clone)]
pub struct Block {
    pub scope: String,
    pub client_auth: &'static str,
    pub token_connect_to: String,
    pub id_file: String,
    pub secret_file: String,
}

/// A policy with `paypal` (OAuth2) and an unrelated `other` destination.
pub fn policy(api: &Upstream, ca: &TestCa, b: &Block, extra: &str) -> String {
    format!(
        "version: 1\nserver:\n  listen: 127.0.0.1:0\n  admin: 127.0.0.1:0\ndestinations:\n  paypal:\n    host: {API}\n    connect_to: {api}\n    ca_file: {ca}\n    credential:\n      oauth2:\n        token_url: https://{AUTH}/v1/oauth2/token\n        client_id: file:{id}\n        client_secret: file:{secret}\n        scope: \"{scope}\"\n        client_auth: {auth}\n        connect_to: {token}\n        ca_file: {ca}\n{extra}",
        api = api.connect_to(),
        ca = ca.pem_path(),
        id = b.id_file,
        secret = b.secret_file,
        scope = b.scope,
        auth = b.client_auth,
        token = b.token_connect_to,
    )
}

/// A GET for `path` on the API through the proxy, with extra header lines.
pub fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET http://{API}{path} HTTP/1.1\r\nHost: {API}\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}
