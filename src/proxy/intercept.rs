//! CONNECT to an `intercept: true` destination: after the 200 the proxy
//! completes the client's TLS handshake itself (the SNI must name the CONNECT
//! host), then serves the decrypted stream with the same server and handler
//! as any client connection, so every request inside takes the http:// path.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use super::host::Host;
use super::target::Target;
use super::{Conn, Refused};
use crate::intercept::{Grant, MintError};
use crate::policy::Destination;
use crate::proxy::decide::Scheme;
use crate::store::Snapshot;
use crate::telemetry::audit::Audit;
use crate::vocab::Reason;

/// How long the client has to finish its TLS handshake after the 200.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the connection inside an intercepted tunnel knows of its CONNECT.
#[derive(Debug)]
pub struct Inside {
    host: Host,
    port: u16,
}

impl Inside {
    /// A request inside the tunnel may only address the CONNECT's host and
    /// port (origin-form with that `Host`, or an `https://` URL naming it);
    /// it then goes on as an `https://` request to it. Anything else is `bad_request`.
    pub(super) fn bind(&self, mut target: Target, uri: &Uri) -> Result<Target, Refused> {
        let plain = uri.scheme_str().is_some_and(|s| s != "https");
        if plain || target.host != self.host || target.port.unwrap_or(443) != self.port {
            return Err(Reason::BadRequest.into());
        }
        target.scheme = Scheme::Https;
        target.port = Some(self.port);
        Ok(target)
    }
}

/// An intercepted tunnel ready to start: the TLS config with the host's leaf.
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
    inside: Arc<Inside>,
}

/// Mints (or takes from the cache) the leaf for a CONNECT the policy decided
/// to intercept. A host the CA may not vouch for is refused before the 200.
pub(super) fn prepare(target: &Target, dest: &Destination, snap: &Snapshot, audit: &mut Audit) -> Result<Tls, Refused> {
    audit.intercepted = true;
    let ca = snap
        .policy
        .server
        .intercept_ca
        .as_ref()
        .ok_or(Reason::TunnelNotAllowed)?;
    let grant = Grant::for_decided(dest, target.host.as_str()).ok_or(Reason::TunnelNotAllowed)?;
    let config = ca.server_config(&grant).map_err(|e| {
        let why = match e {
            MintError::NotPermitted => "the CA's name constraints do not permit this host",
            MintError::Signing => "signing failed",
        };
        tracing::warn!(request_id = %audit.request_id, destination = %dest.name, "no certificate for an intercepted host: {why}");
        Reason::TunnelNotAllowed
    })?;
    let port = target.port.ok_or(Reason::BadRequest)?;
    Ok(Tls {
        config,
        inside: Arc::new(Inside {
            host: target.host.clone(),
            port,
        }),
    })
}

impl Tls {
    /// Once the client has its 200: the handshake, then the decrypted stream
    /// served like a client connection until either side ends it or shutdown.
    /// The CONNECT's audit line is written when the handshake is decided.
    pub(super) fn serve(
        self,
        req: Request<Incoming>,
        mut audit: Audit,
        conn: &Conn,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let inner = Arc::new(Conn {
            store: conn.store.clone(),
            via_unix: conn.via_unix,
            tasks: conn.tasks.clone(),
            hard_stop: conn.hard_stop.clone(),
            draining: conn.draining.clone(),
            intercepted: Some(self.inside.clone()),
        });
        async move {
            let (hard_stop, draining) = (inner.hard_stop.clone(), inner.draining.clone());
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                audit.complete = false;
                audit.finish();
                return;
            };
            let shake = tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                handshake(TokioIo::new(upgraded), self.config, &self.inside.host),
            );
            let stream = tokio::select! {
                r = shake => r.unwrap_or(Err(Failed::Timeout)),
                () = hard_stop.cancelled() => Err(Failed::Timeout),
            };
            let stream = match stream {
                Ok(s) => s,
                Err(why) => {
                    audit.complete = false;
                    tracing::warn!(request_id = %audit.request_id, destination = audit.destination.as_deref().unwrap_or("-"), failure = why.as_str(), "intercepted tunnel: the client's TLS handshake did not complete");
                    audit.finish();
                    return;
                }
            };
            audit.finish();
            tokio::select! {
                () = crate::server::serve(stream, inner, draining) => {}
                () = hard_stop.cancelled() => {}
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Failed {
    /// No SNI, or one naming another host than the CONNECT did.
    Sni,
    Handshake,
    Timeout,
}

impl Failed {
    fn as_str(self) -> &'static str {
        match self {
            Failed::Sni => "sni_mismatch",
            Failed::Handshake => "handshake_failed",
            Failed::Timeout => "handshake_timeout",
        }
    }
}

/// Reads the ClientHello; only an SNI equal to the CONNECT host gets the leaf.
async fn handshake<IO>(io: IO, config: Arc<rustls::ServerConfig>, host: &Host) -> Result<TlsStream<IO>, Failed>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
        .await
        .map_err(|_| Failed::Handshake)?;
    let sni = start
        .client_hello()
        .server_name()
        .map(|s| s.trim_end_matches('.').to_ascii_lowercase());
    if sni.as_deref() != Some(host.as_str()) {
        return Err(Failed::Sni);
    }
    start.into_stream(config).await.map_err(|_| Failed::Handshake)
}
