//! Interception tests' shared setup: a CA made by `ca init`'s library code,
//! a policy with `shipper` intercepted (and hosts that are not), raw CONNECT
//! and TLS clients over the proxy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;

use super::{path_str, secret_file, Dest, Io, PolicyBuilder, Proxy, RawConn, Recorded, Reply, Route, TestCa, Upstream};

pub const HOST: &str = "api.shipper.test";
pub const KEY: &str = "sk_intercept_tls_0a1b2c3d4e5f";

pub struct Setup {
    pub ca: TestCa,
    pub up: Upstream,
    pub proxy: Proxy,
    pub ca_dir: tempfile::TempDir,
    pub secret: tempfile::NamedTempFile,
}

impl Setup {
    pub fn ca_pem(&self) -> PathBuf {
        self.ca_dir.path().join("ca.pem")
    }

    pub fn leaves(&self) -> usize {
        let snap = self.proxy.store.load();
        snap.policy.server.intercept_ca.as_ref().unwrap().cached_leaves()
    }
}

/// Echoes the credential it received, so a test sees whether the answer is scrubbed.
pub fn echo() -> super::Handler {
    Arc::new(|r: &Recorded| {
        let got = r.header("x-api-key").unwrap_or_default();
        Reply::json(200, &format!("{{\"seen_key\":\"{got}\"}}"))
    })
}

/// `shipper` intercepted (in the CA's constraints), `outside` intercepted but
/// outside them, `tunnel` a blind tunnel, `plain` neither.
pub async fn setup() -> Setup {
    setup_with(|p| p).await
}

/// `setup`, with `more` adding to the policy (a `client_token`, say).
pub async fn setup_with(more: impl Fn(PolicyBuilder) -> PolicyBuilder) -> Setup {
    let ca = TestCa::new();
    let names = [HOST, "api.outside.test", "api.tunnel.test", "api.plain.test"];
    let up = Upstream::start_replying(&ca, &names, echo()).await;
    let ca_dir = tempfile::tempdir().unwrap();
    egress_guard::intercept::init::write(ca_dir.path(), &[HOST.to_owned()], false).unwrap();
    let secret = secret_file(KEY);
    let yaml = more(policy(&up, &ca, ca_dir.path(), secret.path(), true)).yaml();
    let proxy = Proxy::start(&yaml).await;
    Setup {
        ca,
        up,
        proxy,
        ca_dir,
        secret,
    }
}

/// The test policy; `intercept` false turns interception off for `shipper`.
pub fn policy(up: &Upstream, ca: &TestCa, ca_dir: &Path, secret: &Path, intercept: bool) -> PolicyBuilder {
    let intercept_ca = format!(
        "{{cert: {}, key: \"file:{}\"}}",
        path_str(&ca_dir.join("ca.pem")),
        path_str(&ca_dir.join("ca.key"))
    );
    PolicyBuilder::new()
        .server("intercept_ca", &intercept_ca)
        .defaults("request_timeout_ms", 5000)
        .dest(
            Dest::new("shipper", HOST)
                .upstream(up, ca)
                .set("intercept", if intercept { "true" } else { "false" })
                .credential("X-API-KEY", secret)
                .route(Route::post("/v1/shipments").allow(&["order_id", "shipping.country"]))
                .route(Route::get("/v1/echo")),
        )
        .dest(
            Dest::new("outside", "api.outside.test")
                .upstream(up, ca)
                .set("intercept", "true"),
        )
        .dest(Dest::new("tunnel", "api.tunnel.test").upstream(up, ca).tunnel())
        .dest(Dest::new("plain", "api.plain.test").upstream(up, ca))
}

/// CONNECT `host:443`; the stream once the proxy answered 200.
pub async fn connect(proxy: &Proxy, host: &str) -> Box<dyn Io> {
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
pub fn client_config(ca_pem: Option<&PathBuf>) -> Arc<rustls::ClientConfig> {
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

pub async fn tls(
    io: Box<dyn Io>,
    cfg: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
) -> std::io::Result<Box<dyn Io>> {
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let s = tokio::time::timeout(super::DEADLINE, connector.connect(name, io))
        .await
        .expect("the handshake neither completed nor failed")?;
    Ok(Box::new(s))
}

/// An intercepted tunnel to `HOST` with a completed handshake, as a raw connection.
pub async fn inside(s: &Setup) -> RawConn {
    let io = connect(&s.proxy, HOST).await;
    let name = ServerName::try_from(HOST).unwrap();
    RawConn::over(tls(io, client_config(Some(&s.ca_pem())), name).await.unwrap())
}

/// Accepts any certificate: only for showing that the proxy itself refused a handshake.
#[derive(Debug)]
pub struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

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
