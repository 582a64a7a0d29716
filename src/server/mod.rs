//! Accepting clients: the TCP forward-proxy port and the optional unix
//! socket, HTTP/1.1 with keep-alive. `run` takes its listeners and a shutdown
//! future, so tests hand it port-0 listeners; shutdown stops accepting, lets
//! requests and tunnels finish within a grace period, then cuts the rest.

pub(crate) mod admin;
pub mod framing;
pub(crate) mod guarded;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::proxy::{self, Conn, ProxyBody};
use crate::server::guarded::{Gate, GuardedIo};
use crate::store::PolicyStore;
use crate::vocab::Reason;

/// How long in-flight requests and tunnels get once shutdown starts.
pub const GRACE: Duration = Duration::from_secs(10);

/// A slow client may not hold a connection open by trickling its headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The sockets the proxy serves; at least one.
#[derive(Debug, Default)]
pub struct Listeners {
    pub tcp: Option<TcpListener>,
    pub unix: Option<UnixListener>,
    /// `/metrics`, `/healthz`, `/readyz`: a socket of its own.
    pub admin: Option<TcpListener>,
}

pub async fn run(
    listeners: Listeners,
    store: Arc<PolicyStore>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let tasks = TaskTracker::new();
    let draining = CancellationToken::new();
    let hard_stop = CancellationToken::new();
    let conn_for = |via_unix| {
        Arc::new(Conn {
            store: store.clone(),
            via_unix,
            tasks: tasks.clone(),
            hard_stop: hard_stop.clone(),
            draining: draining.clone(),
            intercepted: None,
        })
    };
    let (tcp_conn, unix_conn) = (conn_for(false), conn_for(true));
    note_own_addresses(&listeners, &store);
    store.telemetry.ready.store(true, std::sync::atomic::Ordering::Release);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = accept_tcp(listeners.admin.as_ref()) => {
                if let Some(stream) = accepted {
                    tasks.spawn(serve_admin(stream, store.clone(), draining.clone()));
                }
            }
            accepted = accept_tcp(listeners.tcp.as_ref()) => {
                if let Some(stream) = accepted {
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(serve(stream, tcp_conn.clone(), draining.clone()));
                }
            }
            accepted = accept_unix(listeners.unix.as_ref()) => {
                if let Some(stream) = accepted {
                    tasks.spawn(serve(stream, unix_conn.clone(), draining.clone()));
                }
            }
        }
    }
    store.telemetry.ready.store(false, std::sync::atomic::Ordering::Release);
    drop(listeners);
    drain(&store, &tasks, &draining, &hard_stop).await;
    Ok(())
}

/// Lets requests and tunnels in flight finish within the grace period, then
/// cuts what is left.
async fn drain(store: &PolicyStore, tasks: &TaskTracker, draining: &CancellationToken, hard_stop: &CancellationToken) {
    let snap = store.load();
    let (generation, hash) = (snap.generation, snap.policy.hash.as_str());
    tracing::info!(policy_generation = generation, policy_hash = %hash, in_flight = tasks.len(), "shutting down: no new connections");
    draining.cancel();
    tasks.close();
    if tokio::time::timeout(GRACE, tasks.wait()).await.is_err() {
        tracing::warn!(policy_generation = generation, policy_hash = %hash, cut = tasks.len(), "grace period over: cutting what is left");
        hard_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), tasks.wait()).await;
    }
}

/// Tells the dialers where the proxy serves, however its sockets came (bound
/// here, activated by systemd, handed in by a test), so no destination's DNS
/// answer leads back into the proxy.
fn note_own_addresses(listeners: &Listeners, store: &PolicyStore) {
    let Some(local) = listeners.tcp.as_ref().and_then(|l| l.local_addr().ok()) else {
        return;
    };
    let side = &store.load().policy.side;
    side.serving_on(&[local]);
    let (addrs, any_local) = side.own_addrs();
    let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    tracing::info!(own_addresses = %addrs.join(","), every_local_address = any_local, "upstreams may not be the proxy itself");
}

async fn accept_tcp(l: Option<&TcpListener>) -> Option<tokio::net::TcpStream> {
    match l {
        Some(l) => accepted(l.accept().await).await,
        None => std::future::pending().await,
    }
}

async fn accept_unix(l: Option<&UnixListener>) -> Option<tokio::net::UnixStream> {
    match l {
        Some(l) => accepted(l.accept().await).await,
        None => std::future::pending().await,
    }
}

/// Accept errors (out of file descriptors, a client gone before accept) are
/// logged and skipped after a short pause: one bad connection must not stop
/// the server, and a full descriptor table must not spin the loop.
async fn accepted<S, A>(result: std::io::Result<(S, A)>) -> Option<S> {
    match result {
        Ok((s, _)) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e.kind(), "accept failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
            None
        }
    }
}

/// Serves one client connection (or the decrypted stream of an intercepted
/// tunnel): the framing guard, HTTP/1.1 keep-alive, graceful drain.
pub(crate) async fn serve<S>(stream: S, conn: Arc<Conn>, draining: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let gate = Arc::new(Gate::default());
    let stream = GuardedIo::new(stream, gate.clone());
    let service = service_fn(move |req| guarded(req, conn.clone(), gate.clone()));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = draining.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn serve_admin(stream: tokio::net::TcpStream, store: Arc<PolicyStore>, draining: CancellationToken) {
    let service = service_fn(move |req| crate::server::admin::handle(req, store.clone()));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = draining.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// One request past the framing guard: the guard's stand-in for a head it
/// refused gets the JSON `bad_request`; the answer to a CONNECT tells the
/// guard whether the bytes after it are a tunnel or the next head.
async fn guarded(req: Request<Incoming>, conn: Arc<Conn>, gate: Arc<Gate>) -> Result<Response<ProxyBody>, Infallible> {
    if gate.refused() && req.headers().contains_key(crate::server::framing::REFUSED_MARKER) {
        return Ok(head_refusal(&conn.store));
    }
    let connect = req.method() == Method::CONNECT;
    let resp = proxy::handle(req, conn).await?;
    if connect {
        gate.connect_answered(resp.status().is_success());
    }
    Ok(resp)
}

/// The answer to a head the guard refused, with its own audit line; the
/// connection closes after it.
fn head_refusal(store: &PolicyStore) -> Response<ProxyBody> {
    let snap = store.load();
    let mut audit = crate::telemetry::audit::Audit::new(&snap, &store.telemetry, "-");
    let mut resp = crate::proxy::refusal::refusal(Reason::BadRequest, &audit.request_id, None);
    audit.refused(Reason::BadRequest, resp.status().as_u16());
    audit.finish();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp.map(|b| b.map_err(|never| match never {}).boxed())
}

/// Binds what the policy's `server` section names. A stale unix socket file
/// from an earlier run is replaced; its directory's and file's modes decide
/// who may connect.
pub async fn bind(cfg: &crate::policy::Server) -> std::io::Result<Listeners> {
    let tcp = match cfg.listen {
        Some(addr) => {
            let l = TcpListener::bind(addr).await?;
            let local = l.local_addr()?;
            tracing::info!(listen = %local, "proxy listening");
            Some(l)
        }
        None => None,
    };
    let unix = match &cfg.unix_socket {
        Some(path) => {
            if std::fs::symlink_metadata(path).is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            {
                std::fs::remove_file(path)?;
            }
            let l = UnixListener::bind(path)?;
            tracing::info!(unix_socket = %path.display(), "proxy listening");
            Some(l)
        }
        None => None,
    };
    Ok(Listeners {
        tcp,
        unix,
        admin: bind_admin(cfg).await?,
    })
}

/// Binds `server.admin` when the policy names it.
pub async fn bind_admin(cfg: &crate::policy::Server) -> std::io::Result<Option<TcpListener>> {
    let Some(addr) = cfg.admin else { return Ok(None) };
    let l = TcpListener::bind(addr).await?;
    tracing::info!(admin = %l.local_addr()?, "admin listening");
    Ok(Some(l))
}
