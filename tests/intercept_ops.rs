#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! An intercepted tunnel among the proxy's operations: a reload that turns
//! interception off applies to new tunnels only, shutdown ends an idle tunnel
//! at once, and the client token is asked for at the CONNECT, not inside.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::intercept::{inside, policy, setup, setup_with, HOST};
use common::{assert_refusal, path_str, raw_request, secret_file, RawConn};

fn get() -> Vec<u8> {
    raw_request("GET", "/v1/echo", &[("Host", HOST)], b"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_turns_interception_off_applies_to_new_tunnels() {
    let s = setup().await;
    let mut open = inside(&s).await;
    open.send(&get()).await;
    assert_eq!(open.response().await.unwrap().status, 200, "before the reload");
    let off = policy(&s.up, &s.ca, s.ca_dir.path(), s.secret.path(), false).yaml();
    s.proxy.store.replace(egress_guard::policy::compile(&off).unwrap());
    open.send(&get()).await;
    assert_eq!(
        open.response().await.unwrap().status,
        200,
        "the open tunnel keeps serving"
    );
    let raw = format!("CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n");
    assert_refusal(
        &s.proxy.send(raw.as_bytes()).await,
        403,
        "tunnel_not_allowed",
        "a new tunnel",
    );
    assert_eq!(s.up.wait_for(2).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_an_idle_intercepted_tunnel_without_waiting_for_the_grace_period() {
    let s = setup().await;
    let mut c = inside(&s).await;
    c.send(&get()).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    let started = Instant::now();
    drop(s.proxy);
    assert!(c.closed().await, "the tunnel stayed open after shutdown");
    assert!(
        started.elapsed() < egress_guard::server::GRACE - Duration::from_secs(2),
        "an idle tunnel waited for the grace period: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_token_is_asked_for_at_the_connect() {
    let token = secret_file("ct-intercept-5e6f");
    let spec = format!("file:{}", path_str(token.path()));
    let s = setup_with(|p| p.server("client_token", &spec)).await;
    let raw = format!("CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n");
    assert_refusal(
        &s.proxy.send(raw.as_bytes()).await,
        407,
        "proxy_auth_required",
        "CONNECT without the token",
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("shop:ct-intercept-5e6f");
    let mut c = RawConn::tcp(s.proxy.addr).await;
    let authed =
        format!("CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\nProxy-Authorization: Basic {basic}\r\n\r\n");
    c.send(authed.as_bytes()).await;
    assert_eq!(c.head_only().await.unwrap().status, 200, "CONNECT with the token");
    let (_, io) = c.into_rest_and_io();
    let name = rustls::pki_types::ServerName::try_from(HOST).unwrap();
    let stream = common::intercept::tls(io, common::intercept::client_config(Some(&s.ca_pem())), name).await;
    let mut inner = RawConn::over(stream.unwrap());
    inner.send(&get()).await;
    assert_eq!(inner.response().await.unwrap().status, 200, "inside, no token needed");
}
