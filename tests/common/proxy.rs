//! The proxy in process: `egress_guard::server::run` on port-0 TCP, admin
//! and unix-socket listeners, for one compiled policy; stops when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::{path_str, RawResponse};

/// The proxy serving one policy on 127.0.0.1:0 and on a unix socket in a
/// temp directory. Shuts down when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin: SocketAddr,
    pub socket_path: PathBuf,
    pub store: Arc<egress_guard::store::PolicyStore>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    pub async fn start(yaml: &str) -> Proxy {
        Proxy::start_with_clock(yaml, egress_guard::clock::Clock::system()).await
    }

    /// The proxy with rate limits and anomaly windows on `clock` (a test drives it).
    pub async fn start_with_clock(yaml: &str, clock: egress_guard::clock::Clock) -> Proxy {
        let policy = match egress_guard::policy::compile(yaml) {
            Ok(p) => p,
            Err(e) => panic!("test policy does not compile:\n{e}\n--- policy ---\n{yaml}"),
        };
        let store = Arc::new(egress_guard::store::PolicyStore::with_clock(policy, clock));
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = admin_listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let socket_path = dir.path().join("proxy.sock");
        let unix = tokio::net::UnixListener::bind(&socket_path).unwrap();
        let listeners = egress_guard::server::Listeners {
            tcp: Some(tcp),
            unix: Some(unix),
            admin: Some(admin_listener),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(egress_guard::server::run(listeners, store.clone(), async move {
            let _ = rx.await;
        }));
        Proxy {
            addr,
            admin,
            socket_path,
            store,
            shutdown: Some(tx),
            _dir: dir,
        }
    }

    /// GET on the admin listener: (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        super::admin_get(self.admin, path).await
    }

    /// The admin `/metrics`, parsed; the scrape must answer 200.
    pub async fn metrics(&self) -> super::Exposition {
        let (status, text) = self.admin_get("/metrics").await;
        assert_eq!(status, 200, "{text}");
        super::Exposition::parse(&text)
    }

    /// The proxy on a built policy.
    pub async fn start_policy(p: &super::PolicyBuilder) -> Proxy {
        Proxy::start(&p.yaml()).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn socket(&self) -> String {
        path_str(&self.socket_path)
    }

    /// One request on a fresh TCP connection.
    pub async fn send(&self, raw: &[u8]) -> RawResponse {
        super::send_to(self.addr, raw).await
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
