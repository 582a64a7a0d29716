//! The two things systemd hands a service: a `NOTIFY_SOCKET` to say
//! READY/RELOADING/STOPPING on (`Type=notify`), and listening sockets through
//! `LISTEN_FDS` (socket activation). Both are optional: outside systemd this
//! module does nothing. `sd-notify` (0.5) was considered and not used: it cannot reach
//! an abstract `@` socket, which sd_notify(3) allows, and ends every message with a newline.

use std::os::unix::net::UnixDatagram;

/// Sends state changes to systemd when it asked for them.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
}

impl Notifier {
    /// `None` when the service was not started with `NOTIFY_SOCKET`.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let addr = socket_addr(path.as_encoded_bytes())?;
        let socket = UnixDatagram::unbound().ok()?;
        Some(Notifier { socket, addr })
    }

    /// Sends one message (`READY=1`, ...). A lost message only costs systemd's patience.
    pub fn send(&self, msg: &str) {
        if let Err(e) = self.socket.send_to_addr(msg.as_bytes(), &self.addr) {
            tracing::warn!(error = %e.kind(), "sd_notify failed");
        }
    }

    pub fn ready(&self) {
        self.send("READY=1\nSTATUS=serving");
    }

    /// RELOADING=1 carries the monotonic time systemd uses to match the READY=1 after it.
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

fn socket_addr(path: &[u8]) -> Option<std::os::unix::net::SocketAddr> {
    match path.split_first() {
        Some((b'@', name)) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name).ok()
        }
        Some((b'/', _)) => {
            use std::os::unix::ffi::OsStrExt;
            std::os::unix::net::SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(path)).ok()
        }
        _ => None,
    }
}

fn monotonic_usec() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u128) * 1_000_000 + (t.tv_nsec as u128) / 1_000
}

/// Listening sockets passed by systemd (`LISTEN_FDS`/`LISTEN_PID`), in order:
/// each becomes the TCP or the unix listener by its kind.
pub fn activated_listeners() -> std::io::Result<Option<crate::server::Listeners>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let mut listeners = crate::server::Listeners::default();
    for i in 0..fds.len() {
        if let Ok(Some(l)) = fds.take_tcp_listener(i) {
            l.set_nonblocking(true)?;
            tracing::info!(listen = %l.local_addr()?, "proxy listening on a socket from systemd");
            listeners.tcp = Some(tokio::net::TcpListener::from_std(l)?);
        } else if let Ok(Some(l)) = fds.take_unix_listener(i) {
            l.set_nonblocking(true)?;
            tracing::info!("proxy listening on a unix socket from systemd");
            listeners.unix = Some(tokio::net::UnixListener::from_std(l)?);
        }
    }
    Ok(Some(listeners))
}
