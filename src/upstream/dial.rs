//! The dialer: TCP to a destination's fixed `connect_to`, or to DNS answers
//! that all pass the address check, each connection counted while it lives.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::addr;
use crate::telemetry::metrics::UPSTREAM_CONNECTIONS;

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

/// Dials TCP for one destination: its fixed `connect_to`, or DNS answers
/// that all pass the address check.
#[derive(Clone)]
pub struct Dialer {
    pub(super) connect_to: Option<SocketAddr>,
    pub(super) timeout: Duration,
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
