//! The way out: one pooled HTTPS client per destination (HTTP/2 when the
//! upstream offers it by ALPN), certificates verified against the system's
//! roots plus the destination's `ca_file`; connections come from the `dial`er,
//! which checks every address it dials, so the address checked is the address
//! connected to.

pub mod addr;
mod dial;
pub mod prime;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

pub use dial::{ConnectError, Counted, Dialer};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type OutBody = BoxBody<Bytes, BoxError>;

/// The proxy's own side of every upstream connection, shared by every
/// destination's dialer and by each policy a reload installs: the addresses
/// the proxy serves on (a DNS answer naming one is refused, so a destination
/// cannot loop back into the proxy) and the count of open connections.
#[derive(Debug, Default)]
pub struct ProxySide {
    own: RwLock<OwnAddrs>,
    open: AtomicI64,
}

#[derive(Debug, Default)]
struct OwnAddrs {
    addrs: Vec<IpAddr>,
    /// Listening on an unspecified address: every address of this host is ours.
    any_local: bool,
}

impl ProxySide {
    /// Records where the proxy serves, whichever way its sockets came
    /// (bound from the policy, activated by systemd, handed in by a test).
    pub fn serving_on(&self, listening: &[SocketAddr]) {
        let mut own = self.own.write().unwrap_or_else(PoisonError::into_inner);
        for a in listening {
            if a.ip().is_unspecified() {
                own.any_local = true;
            } else if !own.addrs.contains(&a.ip()) {
                own.addrs.push(a.ip());
            }
        }
    }

    /// The addresses recorded, and whether every local address counts.
    pub fn own_addrs(&self) -> (Vec<IpAddr>, bool) {
        let own = self.own.read().unwrap_or_else(PoisonError::into_inner);
        (own.addrs.clone(), own.any_local)
    }

    /// Whether `ip` is where the proxy itself serves.
    pub fn is_own(&self, ip: IpAddr) -> bool {
        let own = self.own.read().unwrap_or_else(PoisonError::into_inner);
        own.addrs.contains(&ip) || (own.any_local && is_local(ip))
    }

    /// Upstream connections open now (pooled and tunnel alike).
    pub fn open_connections(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }
}

/// An address of this host: only those can be bound. No packet is sent.
fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
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
        side: &Arc<ProxySide>,
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
            side: side.clone(),
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
            // One flat buffer per write: the TLS stream is vectored, but rustls
            // gathers a vectored write into a fresh Vec first; copying head and
            // a small body into hyper's buffer costs ~2k instructions less per
            // request (docs/performance.md). Either way it is one TLS record.
            .http1_writev(false)
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
