#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! Interception seen from a raw TLS client and curl, against the in-process
//! proxy: the SNI must name the CONNECT host, a request inside must address
//! it (the framing guard reads the decrypted bytes too), a client that does not trust the CA sends nothing upstream, and no
//! leaf is minted for any host the policy does not intercept.

mod common;

use common::intercept::{client_config, connect, inside, setup, tls, HOST, KEY};
use common::{assert_refusal, curl, describe, path_str, raw_request};
use rustls::pki_types::ServerName;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_inside_the_tunnel_are_forwarded_with_the_key_and_scrubbed() {
    let s = setup().await;
    let mut c = inside(&s).await;
    for i in 0..3 {
        let body = format!(
            "{{\"order_id\":{i},\"shipping\":{{\"country\":\"DE\",\"city\":\"Koeln\"}},\"email\":\"e@example.org\"}}"
        );
        let headers = [
            ("Host", HOST),
            ("Content-Type", "application/json"),
            ("X-Api-Key", "client-own"),
        ];
        c.send(&raw_request("POST", "/v1/shipments", &headers, body.as_bytes()))
            .await;
        let resp = c.response().await.unwrap();
        assert_eq!(resp.status, 200, "request {i}: {}\n{}", resp.head, resp.text());
        assert!(
            !resp.text().contains(KEY),
            "request {i}: the echoed key was not scrubbed: {}",
            resp.text()
        );
    }
    let got = s.up.wait_for(3).await;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(
            r.header_values("x-api-key"),
            vec![KEY.to_owned()],
            "request {i}: key injected, client's removed"
        );
        assert_eq!(
            r.json(),
            serde_json::json!({"order_id": i, "shipping": {"country": "DE"}}),
            "request {i}"
        );
        assert_eq!(r.sni.as_deref(), Some(HOST), "request {i}: verified HTTPS upstream");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sni_must_name_the_connect_host() {
    let s = setup().await;
    let cases: [(&str, ServerName<'static>, bool); 3] = [
        ("the CONNECT host", ServerName::try_from(HOST).unwrap(), true),
        ("another host", ServerName::try_from("api.plain.test").unwrap(), false),
        (
            "no SNI (an IP address)",
            ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            false,
        ),
    ];
    for (what, name, ok) in cases {
        let io = connect(&s.proxy, HOST).await;
        let shaken = tls(io, client_config(None), name).await;
        assert_eq!(shaken.is_ok(), ok, "{what}: {:?}", shaken.err());
    }
    assert_eq!(s.up.count(), 0, "nothing reaches the upstream without a request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_inside_must_address_the_connect_host() {
    let s = setup().await;
    let get = |target: &str, host: Option<&str>| {
        let headers: Vec<(&str, &str)> = host.map(|h| ("Host", h)).into_iter().collect();
        raw_request("GET", target, &headers, b"")
    };
    let cases = [
        ("another Host", get("/v1/echo", Some("api.plain.test"))),
        ("another port", get("/v1/echo", Some("api.shipper.test:8443"))),
        ("no Host", get("/v1/echo", None)),
        (
            "absolute http:// URL",
            get("http://api.shipper.test/v1/echo", Some(HOST)),
        ),
        (
            "absolute URL to another host",
            get("https://api.plain.test/v1/echo", Some("api.plain.test")),
        ),
        (
            "CONNECT inside the tunnel",
            raw_request("CONNECT", "api.plain.test:443", &[("Host", "api.plain.test:443")], b""),
        ),
        // The framing guard reads the decrypted bytes as it reads a plain connection's.
        (
            "smuggling: Content-Length and Transfer-Encoding",
            raw_request(
                "POST",
                "/v1/shipments",
                &[
                    ("Host", HOST),
                    ("Content-Length", "4"),
                    ("Transfer-Encoding", "chunked"),
                ],
                b"0\r\n\r\n",
            ),
        ),
    ];
    for (what, raw) in cases {
        let mut c = inside(&s).await;
        c.send(&raw).await;
        let resp = c.response().await.unwrap();
        assert_refusal(&resp, 400, "bad_request", what);
    }
    assert_eq!(s.up.count(), 0, "a refused request reached the upstream");
    let mut c = inside(&s).await;
    c.send(&get("/v1/echo", Some(HOST))).await;
    assert_eq!(c.response().await.unwrap().status, 200, "the CONNECT host itself");
    assert_eq!(s.up.wait_for(1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_ca_sends_nothing_upstream() {
    let s = setup().await;
    let url = format!("https://{HOST}/v1/echo");
    let proxy = s.proxy.url();
    let upstream_ca = s.ca.pem_path();
    let cases: [(&str, Vec<&str>); 2] = [
        ("system store only", vec!["-x", &proxy, &url]),
        ("another CA", vec!["-x", &proxy, "--cacert", &upstream_ca, &url]),
    ];
    for (what, args) in cases {
        let out = curl(&args).await;
        assert_eq!(
            out.status.code(),
            Some(60),
            "{what}: curl must fail verification: {}",
            describe(&out)
        );
    }
    let out = curl(&["-x", &proxy, "--cacert", &path_str(&s.ca_pem()), &url]).await;
    assert!(out.status.success(), "trusting the CA: {}", describe(&out));
    assert_eq!(s.up.wait_for(1).await.len(), 1, "only the trusting client's request");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(KEY),
        "the echoed key is scrubbed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_leaf_is_minted_for_a_host_the_policy_does_not_intercept() {
    let s = setup().await;
    let refused = [
        (
            "not intercepted, no tunnel",
            "api.plain.test",
            403,
            "tunnel_not_allowed",
        ),
        (
            "intercepted, outside the CA's constraints",
            "api.outside.test",
            403,
            "tunnel_not_allowed",
        ),
        ("unknown host", "api.unknown.test", 403, "destination_not_allowed"),
    ];
    for (what, host, status, reason) in refused {
        let raw = format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n");
        assert_refusal(&s.proxy.send(raw.as_bytes()).await, status, reason, what);
    }
    // A blind tunnel is allowed, and mints nothing either.
    let _blind = connect(&s.proxy, "api.tunnel.test").await;
    assert_eq!(s.leaves(), 0, "a leaf was minted for a host not intercepted");
    let _ok = inside(&s).await;
    assert_eq!(s.leaves(), 1, "the intercepted host's leaf");
    let _again = inside(&s).await;
    assert_eq!(s.leaves(), 1, "the leaf is cached");
}
