#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! Interception seen from a raw TLS client and curl, against the in-process
//! proxy: the SNI must name the CONNECT host, a request inside must address
//! it, a client that does not trust the CA sends nothing upstream, and no
//! leaf is minted for any host the policy does not intercept.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{
    assert_refusal, curl, describe, path_str, raw_request, secret_file, Dest, Io, PolicyBuilder, Proxy, RawConn,
    Recorded, Reply, Route, TestCa, Upstream,
};
use rustls::pki_types::ServerName;

const HOST: &str = "api.shipper.test";
const KEY: &str = "sk_intercept_tls_0a1b2c3d4e5f";

struct Setup {
    ca: TestCa,
    up: Upstream,
    proxy: Proxy,
    ca_dir: tempfile::TempDir,
    _secret: tempfile::NamedTempFile,
}

impl Setup {
    fn ca_pem(&self) -> PathBuf {
        self.ca_dir.path().join("ca.pem")
    }

    fn leaves(&self) -> usize {
        let snap = self.proxy.store.load();
        snap.policy.server.intercept_ca.as_ref().unwrap().cached_leaves()
    }
}

/// Echoes the credential it received, so a test sees whether the answer is scrubbed.
fn echo() -> common::Handler {
    Arc::new(|r: &Recorded| {
        let got = r.header("x-api-key").unwrap_or_default();
        Reply::json(200, &format!("{{\"seen_key\":\"{got}\"}}"))
    })
}

/// `shipper` intercepted (in the CA's constraints), `outside` intercepted but
/// outside them, `tunnel` a blind tunnel, `plain` neither.
async fn setup() -> Setup {
    let ca = TestCa::new();
    let names = [HOST, "api.outside.test", "api.tunnel.test", "api.plain.test"];
    let up = Upstream::start_replying(&ca, &names, echo()).await;
    let ca_dir = tempfile::tempdir().unwrap();
    egress_guard::intercept::init::write(ca_dir.path(), &[HOST.to_owned()], false).unwrap();
    let secret = secret_file(KEY);
    let intercept_ca = format!(
        "{{cert: {}, key: \"file:{}\"}}",
        path_str(&ca_dir.path().join("ca.pem")),
        path_str(&ca_dir.path().join("ca.key"))
    );
    let yaml = PolicyBuilder::new()
        .server("intercept_ca", &intercept_ca)
        .defaults("request_timeout_ms", 5000)
        .dest(
            Dest::new("shipper", HOST)
                .upstream(&up, &ca)
                .set("intercept", "true")
                .credential("X-API-KEY", secret.path())
                .route(Route::post("/v1/shipments").allow(&["order_id", "shipping.country"]))
                .route(Route::get("/v1/echo")),
        )
        .dest(
            Dest::new("outside", "api.outside.test")
                .upstream(&up, &ca)
                .set("intercept", "true"),
        )
        .dest(Dest::new("tunnel", "api.tunnel.test").upstream(&up, &ca).tunnel())
        .dest(Dest::new("plain", "api.plain.test").upstream(&up, &ca))
        .yaml();
    let proxy = Proxy::start(&yaml).await;
    Setup {
        ca,
        up,
        proxy,
        ca_dir,
        _secret: secret,
    }
}

/// CONNECT `host:443`; the stream once the proxy answered 200.
async fn connect(proxy: &Proxy, host: &str) -> Box<dyn Io> {
    let mut c = RawConn::tcp(proxy.addr).await;
    c.send(format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n").as_bytes())
        .await;
    let resp = c.head_only().await.unwrap();
    assert_eq!(resp.status, 200, "CONNECT {host}: {}", resp.head);
    let (rest, io) = c.into_rest_and_io();
    assert!(rest.is_empty());
    io
}

/// A client config that trusts `ca_pem`, or (with `None`) any certificate at
/// all, so a failed handshake can only be the proxy's refusal.
fn client_config(ca_pem: Option<&PathBuf>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let mut cfg = match ca_pem {
        Some(p) => {
            let mut roots = rustls::RootCertStore::empty();
            let der = rustls::pki_types::pem::PemObject::from_pem_file(p).unwrap();
            roots.add(der).unwrap();
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

async fn tls(
    io: Box<dyn Io>,
    cfg: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
) -> std::io::Result<Box<dyn Io>> {
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let s = tokio::time::timeout(common::DEADLINE, connector.connect(name, io))
        .await
        .expect("the handshake neither completed nor failed")?;
    Ok(Box::new(s))
}

/// An intercepted tunnel to `HOST` with a completed handshake, as a raw connection.
async fn inside(s: &Setup) -> RawConn {
    let io = connect(&s.proxy, HOST).await;
    let name = ServerName::try_from(HOST).unwrap();
    RawConn::over(tls(io, client_config(Some(&s.ca_pem())), name).await.unwrap())
}

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

/// Accepts any certificate: only for showing that the proxy itself refused a handshake.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
