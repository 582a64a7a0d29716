//! The way out: one pooled HTTPS client per destination (HTTP/2 when the
//! upstream offers it by ALPN), certificates verified against the system's
//! roots plus the destination's `ca_file`, and a connector that checks every
//! address it dials, so the address checked is the address connected to.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::combinators::BoxBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::sync::atomic::Ordering;

use hyper_util::client::legacy::connect::{Connected, Connection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::metrics::UPSTREAM_CONNECTIONS;

use crate::addr;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type OutBody = BoxBody<Bytes, BoxError>;

/// Why no connection was made. The proxy finds it in an error's source chain.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    #[error("the upstream name resolved to an address that is not allowed")]
    AddressNotAllowed,
    #[error("the upstream name did not resolve")]
    Dns,
    #[error("the upstream refused or dropped the connection")]
    Connect,
    #[error("connecting to the upstream timed out")]
    Timeout,
}

/// The system's trust roots, read once per process.
#[derive(Clone)]
pub struct TrustRoots(Arc<RootCertStore>);

impl TrustRoots {
    pub fn system() -> Result<TrustRoots, String> {
        static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
        let roots = ROOTS.get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            Arc::new(store)
        });
        Ok(TrustRoots(roots.clone()))
    }
}

/// Dials TCP for one destination: its fixed `connect_to`, or DNS answers
/// that all pass the address check.
#[derive(Clone)]
pub struct Dialer {
    connect_to: Option<SocketAddr>,
    timeout: Duration,
}

impl Dialer {
    pub async fn dial(&self, host: &str, port: u16) -> Result<Counted, ConnectError> {
        let addrs: Vec<SocketAddr> = match self.connect_to {
            Some(a) => vec![a],
            None => resolve_checked(host, port, self.timeout).await?,
        };
        let mut last = ConnectError::Connect;
        for a in addrs {
            match tokio::time::timeout(self.timeout, TcpStream::connect(a)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok(Counted::new(s));
                }
                Ok(Err(_)) => last = ConnectError::Connect,
                Err(_) => last = ConnectError::Timeout,
            }
        }
        Err(last)
    }
}

/// Resolves `host` and refuses the whole answer if any address is in a
/// forbidden class: a mixed answer is how rebinding attacks start.
async fn resolve_checked(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, ConnectError> {
    let lookup = tokio::net::lookup_host((host, port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(it)) => it.collect(),
        Ok(Err(_)) => return Err(ConnectError::Dns),
        Err(_) => return Err(ConnectError::Timeout),
    };
    if addrs.is_empty() {
        return Err(ConnectError::Dns);
    }
    if addrs.iter().any(|a| address_forbidden(a.ip())) {
        return Err(ConnectError::AddressNotAllowed);
    }
    Ok(addrs)
}

/// Forbidden classes, and the proxy's own listening address.
pub fn address_forbidden(ip: IpAddr) -> bool {
    addr::classify(ip).is_some() || SELF_ADDRS.get().is_some_and(|own| own.contains(&ip))
}

/// The proxy's own addresses, registered by the server when it binds.
pub static SELF_ADDRS: OnceLock<Vec<IpAddr>> = OnceLock::new();

impl tower_service::Service<Uri> for Dialer {
    type Response = TokioIo<Counted>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let dialer = self.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or(ConnectError::Dns)?
                .trim_start_matches('[')
                .trim_end_matches(']');
            let port = uri.port_u16().unwrap_or(443);
            dialer.dial(host, port).await.map(TokioIo::new)
        })
    }
}

/// An upstream TCP connection, counted in `egress_guard_upstream_connections_open`
/// for as long as it lives (pooled and tunnel connections alike).
pub struct Counted(TcpStream);

impl Counted {
    fn new(s: TcpStream) -> Counted {
        UPSTREAM_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        Counted(s)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        UPSTREAM_CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connection for Counted {
    fn connected(&self) -> Connected {
        self.0.connected()
    }
}

/// A destination's way out: the HTTPS client and the raw dialer for tunnels.
#[derive(Clone)]
pub struct Upstream {
    pub client: Client<HttpsConnector<Dialer>, OutBody>,
    pub dialer: Dialer,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upstream")
    }
}

impl Upstream {
    pub fn new(
        roots: &TrustRoots,
        ca_file: Option<&str>,
        connect_to: Option<SocketAddr>,
        connect_timeout_ms: u64,
    ) -> Result<Upstream, String> {
        let mut store = (*roots.0).clone();
        if let Some(path) = ca_file {
            for cert in read_pem_certs(path)? {
                store
                    .add(cert)
                    .map_err(|_| format!("{path}: a certificate is not a usable trust root"))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| "TLS setup failed".to_owned())?
            .with_root_certificates(store)
            .with_no_client_auth();
        let dialer = Dialer {
            connect_to,
            timeout: Duration::from_millis(connect_timeout_ms),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(dialer.clone());
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(Upstream { client, dialer })
    }
}

fn read_pem_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {}", e.kind()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{path}: not a PEM certificate file"))?;
    if certs.is_empty() {
        return Err(format!("{path}: holds no certificate"));
    }
    Ok(certs)
}
