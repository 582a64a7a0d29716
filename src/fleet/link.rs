//! The connection to the fleet's Redis, kept by one background task: requests
//! only ever use a connection that is up, and never wait for a (re)connection.
//! A request that sees the connection fail hands it back here; the task then
//! reconnects with backoff and says once that the store was lost, once that it is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use prometheus_client::metrics::gauge::Gauge;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Script};
use tokio::sync::Notify;

/// A connection attempt (TCP or unix, AUTH, SELECT, loading the script) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often a task waiting on an up connection checks that anyone still needs it.
const IDLE_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct Link {
    conn: ArcSwapOption<MultiplexedConnection>,
    lost: Notify,
    /// The WARN was said and the INFO "back" is owed.
    said_down: AtomicBool,
    /// A server-side error was reported (once: it is the same every time).
    said_server_error: AtomicBool,
    up: Gauge,
}

impl Link {
    pub(super) fn new(up: Gauge) -> Link {
        up.set(0);
        Link {
            conn: ArcSwapOption::empty(),
            lost: Notify::new(),
            said_down: AtomicBool::new(false),
            said_server_error: AtomicBool::new(false),
            up,
        }
    }

    /// The connection, if it is up; never waits.
    pub(super) fn current(&self) -> Option<Arc<MultiplexedConnection>> {
        self.conn.load_full()
    }

    /// `conn` failed a request (`cause` names how, nothing more). Unless the
    /// task already replaced it, it is dropped and the task reconnects.
    pub(super) fn lose(&self, conn: &Arc<MultiplexedConnection>, cause: &'static str) {
        let prev = self.conn.compare_and_swap(conn, None::<Arc<MultiplexedConnection>>);
        if prev.as_ref().is_some_and(|p| Arc::ptr_eq(p, conn)) {
            self.up.set(0);
            if !self.said_down.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    cause,
                    "fleet store lost: fleet-scoped limits fall back to on_unavailable"
                );
            }
            self.lost.notify_one();
        }
    }

    /// Redis answered with an error of its own (a full memory, a key of another
    /// type): this request falls back; the connection itself is fine.
    pub(super) fn server_error(&self, e: &RedisError) {
        if !self.said_server_error.swap(true, Ordering::AcqRel) {
            let code = e.code().unwrap_or("unknown");
            tracing::warn!(
                code,
                "the fleet store refused a limit check; such requests fall back to on_unavailable"
            );
        }
    }

    fn set_up(&self, conn: MultiplexedConnection) {
        self.conn.store(Some(Arc::new(conn)));
        self.up.set(1);
        if self.said_down.swap(false, Ordering::AcqRel) {
            tracing::info!("fleet store back: fleet-scoped limits are shared again");
        } else {
            tracing::info!("fleet store connected");
        }
    }

    fn say_down(&self, cause: &'static str) {
        if !self.said_down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                cause,
                "fleet store unavailable: fleet-scoped limits fall back to on_unavailable"
            );
        }
    }
}

/// How a Redis call failed, in words that carry nothing from the URL or the server.
pub(super) fn cause(e: &RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connection_refusal() {
        "connection refused"
    } else if e.is_connection_dropped() {
        "connection dropped"
    } else if e.is_io_error() {
        "i/o error"
    } else {
        "redis error"
    }
}

/// Whether the error came from the server over a working connection.
pub(super) fn is_server_error(e: &RedisError) -> bool {
    !(e.is_timeout()
        || e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error())
        && e.code().is_some()
}

/// Keeps `link` connected for as long as it exists.
pub(super) async fn supervise(link: Weak<Link>, client: Client, script: Script) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(l) = link.upgrade() else { return };
        if l.current().is_some() {
            tokio::select! {
                () = l.lost.notified() => {}
                () = tokio::time::sleep(IDLE_CHECK) => {}
            }
            continue;
        }
        match connect(&client, &script).await {
            Ok(conn) => {
                l.set_up(conn);
                backoff = BACKOFF_MIN;
            }
            Err(cause) => {
                l.say_down(cause);
                drop(l);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// A new connection with the script loaded, so that requests need one round trip.
async fn connect(client: &Client, script: &Script) -> Result<MultiplexedConnection, &'static str> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CONNECT_TIMEOUT));
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        script.prepare_invoke().load_async(&mut conn).await?;
        Ok::<_, RedisError>(conn)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(cause(&e)),
        Err(_) => Err("timeout"),
    }
}
