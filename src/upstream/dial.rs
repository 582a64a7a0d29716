//! The dialer: TCP to a destination's fixed `connect_to`, or to DNS answers
//! that all pass the address check, each connection counted while it lives.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::addr;
use super::ProxySide;
use crate::vocab::Reason;

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

impl ConnectError {
    /// The refusal a failed dial gets: the one mapping, for pooled requests and tunnels.
    pub fn reason(self) -> Reason {
        match self {
            ConnectError::AddressNotAllowed => Reason::AddressNotAllowed,
            ConnectError::Dns | ConnectError::Connect | ConnectError::Timeout => Reason::UpstreamUnavailable,
        }
    }
}

/// Dials TCP for one destination: its fixed `connect_to`, or DNS answers
/// that all pass the address check.
#[derive(Clone)]
pub struct Dialer {
    pub(super) connect_to: Option<SocketAddr>,
    pub(super) timeout: Duration,
    pub(super) side: Arc<ProxySide>,
}

impl Dialer {
    pub async fn dial(&self, host: &str, port: u16) -> Result<Counted, ConnectError> {
        let addrs: Vec<SocketAddr> = match self.connect_to {
            Some(a) => vec![a],
            None => resolve_checked(host, port, self.timeout, &self.side).await?,
        };
        let mut last = ConnectError::Connect;
        for a in addrs {
            match tokio::time::timeout(self.timeout, TcpStream::connect(a)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok(Counted::new(s, self.side.clone()));
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
async fn resolve_checked(
    host: &str,
    port: u16,
    timeout: Duration,
    side: &ProxySide,
) -> Result<Vec<SocketAddr>, ConnectError> {
    let lookup = tokio::net::lookup_host((host, port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(it)) => it.collect(),
        Ok(Err(_)) => return Err(ConnectError::Dns),
        Err(_) => return Err(ConnectError::Timeout),
    };
    if addrs.is_empty() {
        return Err(ConnectError::Dns);
    }
    if addrs.iter().any(|a| address_forbidden(a.ip(), side)) {
        return Err(ConnectError::AddressNotAllowed);
    }
    Ok(addrs)
}

/// Forbidden classes, and the addresses the proxy itself serves on.
pub fn address_forbidden(ip: IpAddr, side: &ProxySide) -> bool {
    addr::classify(ip).is_some() || side.is_own(ip)
}

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
pub struct Counted(TcpStream, Arc<ProxySide>);

impl Counted {
    fn new(s: TcpStream, side: Arc<ProxySide>) -> Counted {
        side.open.fetch_add(1, Ordering::Relaxed);
        Counted(s, side)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.open.fetch_sub(1, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxys_own_address_is_refused_by_value() {
        // Public addresses no class forbids stand for the proxy's own and a partner's.
        let own: IpAddr = "8.8.4.4".parse().unwrap();
        let other: IpAddr = "8.8.8.8".parse().unwrap();
        let side = ProxySide::default();
        assert!(!address_forbidden(own, &side), "nothing recorded yet");
        side.serving_on(&[SocketAddr::new(own, 3128)]);
        assert!(address_forbidden(own, &side), "its own address");
        assert!(!address_forbidden(other, &side), "another public address");
    }

    #[test]
    fn an_unspecified_listen_makes_every_local_address_its_own() {
        let side = ProxySide::default();
        side.serving_on(&["0.0.0.0:3128".parse().unwrap()]);
        // Loopback is local on every host (and forbidden by class anyway).
        assert!(side.is_own("127.0.0.1".parse().unwrap()));
        assert!(
            !side.is_own("203.0.113.8".parse().unwrap()),
            "not an address of this host"
        );
    }
}
