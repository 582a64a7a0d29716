//! The test harness shared by the integration tests: a test CA (rcgen), a
//! recording TLS upstream (tokio-rustls + hyper), the in-process proxy on
//! port-0 listeners, a raw HTTP/1.1 client for requests no well-behaved
//! client would send, and wrappers for the real clients curl and php.
//!
//! Every wait is bounded by a deadline; nothing here sleeps to "let things
//! settle". All traffic stays on loopback.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long any single wait in a test may take before it counts as a failure.
pub const DEADLINE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// A certificate authority made for one test; its PEM lives in a temp file
/// that a policy's `ca_file` (or curl's `--cacert`) can name.
pub struct TestCa {
    key: KeyPair,
    cert: rcgen::Certificate,
    pem_file: tempfile::NamedTempFile,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "egress-guard test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let mut pem_file = tempfile::Builder::new()
            .prefix("test-ca-")
            .suffix(".pem")
            .tempfile()
            .unwrap();
        pem_file.write_all(cert.pem().as_bytes()).unwrap();
        pem_file.flush().unwrap();
        TestCa { key, cert, pem_file }
    }

    /// Path of the CA certificate in PEM, for `ca_file` and `--cacert`.
    pub fn pem_path(&self) -> String {
        self.pem_file.path().to_str().unwrap().to_owned()
    }

    /// A leaf certificate for `names`, signed by this CA, as a rustls server
    /// config. `h2` also offers HTTP/2 by ALPN (HTTP/1.1 is always offered).
    pub fn server_config(&self, names: &[&str], h2: bool) -> Arc<rustls::ServerConfig> {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "egress-guard test upstream");
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&leaf_key, &self.cert, &self.key).unwrap();
        let chain = vec![CertificateDer::from(leaf.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        cfg.alpn_protocols = if h2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Arc::new(cfg)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// A secret file as an operator writes it (`echo KEY > file`: one trailing newline).
pub fn secret_file(value: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().prefix("secret-").tempfile().unwrap();
    writeln!(f, "{value}").unwrap();
    f.flush().unwrap();
    f
}

pub fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// The recording upstream
// ---------------------------------------------------------------------------

/// One request exactly as the upstream received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Every header line in order, names lower-case, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The TLS SNI name the client sent.
    pub sni: Option<String>,
    /// "HTTP/1.1" or "HTTP/2.0".
    pub version: String,
}

impl Recorded {
    /// Every value of header `name`, matched case-blind.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.header_values(name).into_iter().next()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "upstream body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// What the upstream answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Body chunks, sent as separate writes (the body yields between them).
    pub chunks: Vec<Vec<u8>>,
    /// After the chunks, the body neither ends nor sends more.
    pub stall: bool,
    /// No answer at all: not even headers.
    pub never: bool,
}

impl Reply {
    /// The default answer: 200 `{"ok":true}`.
    pub fn ok() -> Reply {
        Reply::json(200, r#"{"ok":true}"#)
    }

    pub fn json(status: u16, body: &str) -> Reply {
        Reply::chunks(status, "application/json", vec![body.as_bytes().to_vec()])
    }

    pub fn status(status: u16) -> Reply {
        Reply::json(status, r#"{"status":"fixed"}"#)
    }

    pub fn chunks(status: u16, content_type: &str, chunks: Vec<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            chunks,
            stall: false,
            never: false,
        }
    }

    /// `body` gzip-compressed, the compressed bytes split into `parts` chunks.
    pub fn gzip(status: u16, body: &[u8], parts: usize) -> Reply {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body).unwrap();
        let gz = enc.finish().unwrap();
        let step = gz.len().div_ceil(parts.max(1)).max(1);
        let chunks = gz.chunks(step).map(<[u8]>::to_vec).collect();
        Reply::chunks(status, "application/json", chunks).header("content-encoding", "gzip")
    }

    /// Headers (announcing `content_length` bytes), `first` bytes of body, then nothing.
    pub fn stalled(content_length: usize, first: &[u8]) -> Reply {
        let mut r = Reply::chunks(200, "application/json", vec![first.to_vec()]);
        r.headers.push(("content-length".into(), content_length.to_string()));
        r.stall = true;
        r
    }

    /// Never answers.
    pub fn never() -> Reply {
        let mut r = Reply::ok();
        r.never = true;
        r
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A response body that yields `Pending` once between chunks, so each chunk
/// is flushed on its own, and that can stall forever after its chunks.
struct ReplyBody {
    chunks: VecDeque<Bytes>,
    stall: bool,
    yielded: bool,
    first: bool,
}

impl http_body::Body for ReplyBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.chunks.is_empty() {
            return if this.stall { Poll::Pending } else { Poll::Ready(None) };
        }
        if !this.first && !this.yielded {
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.first = false;
        this.yielded = false;
        let chunk = this.chunks.pop_front().unwrap_or_default();
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<Recorded>>,
    tls_failures: Mutex<usize>,
    changed: Notify,
}

/// A real HTTPS server on 127.0.0.1:0 that records every request it gets.
/// It records only after a TLS handshake and a complete request, so a
/// recorded request proves it came over TLS.
pub struct Upstream {
    pub addr: SocketAddr,
    recorder: Arc<Recorder>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// HTTP/1.1 and h2, certificate for `names` from `ca`, default answer.
    pub async fn start(ca: &TestCa, names: &[&str]) -> Upstream {
        Upstream::start_with(ca.server_config(names, true), Arc::new(|_: &Recorded| Reply::ok())).await
    }

    pub async fn start_replying(ca: &TestCa, names: &[&str], handler: Handler) -> Upstream {
        Upstream::start_with(ca.server_config(names, true), handler).await
    }

    pub async fn start_with(tls: Arc<rustls::ServerConfig>, handler: Handler) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorder = Arc::new(Recorder::default());
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let rec = recorder.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let rec = rec.clone();
                let handler = handler.clone();
                conns.spawn(async move { serve_upstream_conn(stream, acceptor, rec, handler).await });
                while conns.try_join_next().is_some() {}
            }
        });
        Upstream { addr, recorder, task }
    }

    /// `127.0.0.1:PORT`, for a policy's `connect_to`.
    pub fn connect_to(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.recorder.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.recorder.requests.lock().unwrap().len()
    }

    pub fn tls_failures(&self) -> usize {
        *self.recorder.tls_failures.lock().unwrap()
    }

    /// Waits (bounded) until at least `n` requests were recorded.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let notified = self.recorder.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "upstream got {} requests, expected {n} within {DEADLINE:?}",
                    self.count()
                );
            }
        }
    }

    /// Waits (bounded) until the upstream saw at least `n` failed TLS handshakes.
    pub async fn wait_for_tls_failures(&self, n: usize) -> usize {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let notified = self.recorder.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.tls_failures();
            if got >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("upstream saw {got} failed TLS handshakes, expected {n}");
            }
        }
    }

    /// The only request recorded; fails if there is not exactly one.
    pub fn single(&self) -> Recorded {
        let got = self.requests();
        assert_eq!(got.len(), 1, "expected exactly one upstream request, got {got:#?}");
        got.into_iter().next().unwrap()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_upstream_conn(
    stream: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    rec: Arc<Recorder>,
    handler: Handler,
) {
    let tls = match acceptor.accept(stream).await {
        Ok(t) => t,
        Err(_) => {
            *rec.tls_failures.lock().unwrap() += 1;
            rec.changed.notify_waiters();
            return;
        }
    };
    let (_, session) = tls.get_ref();
    let sni = session.server_name().map(str::to_owned);
    let h2 = session.alpn_protocol() == Some(b"h2");
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let rec = rec.clone();
        let handler = handler.clone();
        let sni = sni.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await?.to_bytes().to_vec();
            let recorded = Recorded {
                method: parts.method.to_string(),
                target: parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body,
                sni,
                version: format!("{:?}", parts.version),
            };
            let reply = handler(&recorded);
            rec.requests.lock().unwrap().push(recorded);
            rec.changed.notify_waiters();
            if reply.never {
                std::future::pending::<()>().await;
            }
            let mut resp = hyper::Response::new(ReplyBody {
                chunks: reply.chunks.into_iter().map(Bytes::from).collect(),
                stall: reply.stall,
                yielded: false,
                first: true,
            });
            *resp.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap();
            for (k, v) in reply.headers {
                resp.headers_mut().append(
                    hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    hyper::header::HeaderValue::from_str(&v).unwrap(),
                );
            }
            Ok::<_, hyper::Error>(resp)
        }
    });
    let io = TokioIo::new(tls);
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await;
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

// ---------------------------------------------------------------------------
// The proxy, in process
// ---------------------------------------------------------------------------

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
        let mut c = RawConn::tcp(self.admin).await;
        c.send(format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes())
            .await;
        let r = c.response().await.unwrap();
        (r.status, r.text())
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn socket(&self) -> String {
        path_str(&self.socket_path)
    }

    /// One request on a fresh TCP connection.
    pub async fn send(&self, raw: &[u8]) -> RawResponse {
        let mut c = RawConn::tcp(self.addr).await;
        c.send(raw).await;
        c.response()
            .await
            .unwrap_or_else(|e| panic!("no complete answer from the proxy: {e}"))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1
// ---------------------------------------------------------------------------

/// A complete answer as read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// De-chunked, still content-encoded if the answer was.
    pub body: Vec<u8>,
    /// The head exactly as received.
    pub head: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn reason(&self) -> Option<&str> {
        self.header("x-egress-guard-reason")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("answer body is not JSON ({e}): {}\n{}", self.text(), self.head))
    }

    /// The body with any gzip content-encoding undone.
    pub fn decoded_body(&self) -> Vec<u8> {
        if self
            .header("content-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"))
        {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&self.body[..]), &mut out).unwrap();
            out
        } else {
            self.body.clone()
        }
    }
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One client connection to the proxy, speaking bytes.
pub struct RawConn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    eof: bool,
}

impl RawConn {
    pub async fn tcp(addr: SocketAddr) -> RawConn {
        let s = TcpStream::connect(addr).await.unwrap();
        RawConn {
            io: Box::new(s),
            buf: Vec::new(),
            eof: false,
        }
    }

    pub async fn unix(path: &Path) -> RawConn {
        let s = UnixStream::connect(path).await.unwrap();
        RawConn {
            io: Box::new(s),
            buf: Vec::new(),
            eof: false,
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
        self.io.flush().await.unwrap();
    }

    /// Reads more bytes; false at end of stream.
    async fn fill(&mut self, deadline: tokio::time::Instant) -> Result<bool, String> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout_at(deadline, self.io.read(&mut chunk)).await {
            Err(_) => Err("timed out waiting for the proxy".into()),
            Ok(Err(e)) => {
                self.eof = true;
                Err(format!("read error: {e}"))
            }
            Ok(Ok(0)) => {
                self.eof = true;
                Ok(false)
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
        }
    }

    async fn need(&mut self, n: usize, deadline: tokio::time::Instant) -> Result<(), String> {
        while self.buf.len() < n {
            if !self.fill(deadline).await? {
                return Err(format!("connection closed after {} of {n} bytes", self.buf.len()));
            }
        }
        Ok(())
    }

    async fn line(&mut self, deadline: tokio::time::Instant) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if !self.fill(deadline).await? {
                return Err("connection closed in the middle of a line".into());
            }
        }
    }

    /// Reads one complete answer (skipping 1xx). An answer whose body ends
    /// early (connection closed, last chunk missing) is an `Err`.
    pub async fn response(&mut self) -> Result<RawResponse, String> {
        self.response_within(DEADLINE).await
    }

    pub async fn response_within(&mut self, within: Duration) -> Result<RawResponse, String> {
        let deadline = tokio::time::Instant::now() + within;
        self.response_to(deadline, false).await
    }

    /// The answer to a HEAD or CONNECT: head only.
    pub async fn head_only(&mut self) -> Result<RawResponse, String> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        self.response_to(deadline, true).await
    }

    async fn response_to(&mut self, deadline: tokio::time::Instant, head_only: bool) -> Result<RawResponse, String> {
        loop {
            let end = loop {
                if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i;
                }
                if !self.fill(deadline).await? {
                    return Err(format!(
                        "connection closed before a full head: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ));
                }
            };
            let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            self.buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or("");
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad status line {status_line:?}"))?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            if (100..200).contains(&status) {
                continue;
            }
            let mut resp = RawResponse {
                status,
                headers,
                body: Vec::new(),
                head,
            };
            if head_only || status == 204 || status == 304 {
                return Ok(resp);
            }
            if resp
                .header("transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
            {
                loop {
                    let size_line = self.line(deadline).await?;
                    let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| format!("bad chunk size {size_line:?}"))?;
                    if size == 0 {
                        // Trailers, then the empty line.
                        while !self.line(deadline).await?.is_empty() {}
                        break;
                    }
                    self.need(size + 2, deadline).await?;
                    resp.body.extend_from_slice(&self.buf[..size]);
                    self.buf.drain(..size + 2);
                }
            } else if let Some(len) = resp.header("content-length") {
                let len: usize = len.parse().map_err(|_| format!("bad content-length {len:?}"))?;
                self.need(len, deadline).await?;
                resp.body = self.buf.drain(..len).collect();
            } else {
                while self.fill(deadline).await? {}
                resp.body = std::mem::take(&mut self.buf);
            }
            return Ok(resp);
        }
    }

    /// Waits (bounded) for the other side to close; true if it did.
    pub async fn closed(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match self.fill(deadline).await {
                Ok(true) => continue,
                Ok(false) => return true,
                Err(e) => return !e.contains("timed out"),
            }
        }
    }

    pub fn into_io(self) -> Box<dyn Io> {
        self.io
    }

    /// The stream, and what was read past the last response taken from it
    /// (a tunnel's first bytes can arrive with the 200's head).
    pub fn into_rest_and_io(self) -> (Vec<u8>, Box<dyn Io>) {
        (self.buf, self.io)
    }
}

/// A request in absolute form (what cURL sends to a proxy), with `Host` and
/// `Content-Length` added. `extra` headers go in as given, in order.
pub fn absolute(method: &str, url: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
    let mut headers = vec![("Host", host)];
    headers.extend_from_slice(extra);
    raw_request(method, url, &headers, body)
}

/// A request line, exactly the headers given, `Content-Length` when there
/// is a body and none was given, and the body.
pub fn raw_request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    let has_len = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding"));
    if !body.is_empty() && !has_len {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A JSON POST in absolute form.
pub fn post_json(url: &str, body: &str) -> Vec<u8> {
    absolute("POST", url, &[("Content-Type", "application/json")], body.as_bytes())
}

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

/// Polls `cond` until it holds or `deadline` passes; returns whether it held.
pub async fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::task::yield_now().await;
    }
}

// ---------------------------------------------------------------------------
// Real clients
// ---------------------------------------------------------------------------

/// Runs `curl -sS --max-time 10 ARGS...` off the async threads.
pub async fn curl(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(&args)
            .output()
            .expect("curl must be installed")
    })
    .await
    .unwrap()
}

/// Runs `php SCRIPT` with `env` added, bounded by 30 s.
pub async fn php(script: &Path, env: &[(&str, &str)]) -> Output {
    let script = script.to_path_buf();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .arg("30")
            .arg("php")
            .arg(&script)
            .envs(env)
            .output()
            .expect("php must be installed")
    })
    .await
    .unwrap()
}

/// stdout and stderr of a finished process, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ---------------------------------------------------------------------------
// Refusal checks
// ---------------------------------------------------------------------------

/// Asserts the SPEC's refusal shape: status, reason header, JSON body with
/// `error` and `request_id` (and at most a `hint`), nothing internal.
pub fn assert_refusal(resp: &RawResponse, status: u16, reason: &str, what: &str) {
    assert_eq!(
        resp.status,
        status,
        "{what}: status; answer:\n{}\n{}",
        resp.head,
        resp.text()
    );
    assert_eq!(
        resp.reason(),
        Some(reason),
        "{what}: x-egress-guard-reason; answer:\n{}\n{}",
        resp.head,
        resp.text()
    );
    let v = resp.json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: refusal body is not an object: {v}"));
    assert_eq!(
        obj.get("error").and_then(|e| e.as_str()),
        Some(reason),
        "{what}: body error: {v}"
    );
    let id = obj.get("request_id").and_then(|e| e.as_str()).unwrap_or_default();
    assert!(!id.is_empty(), "{what}: request_id missing or empty: {v}");
    for k in obj.keys() {
        assert!(
            ["error", "request_id", "hint"].contains(&k.as_str()),
            "{what}: unexpected key {k:?} in refusal {v}"
        );
    }
    let text = resp.text().to_ascii_lowercase();
    for internal in [
        "127.0.0.1",
        "/tmp",
        "error:",
        "rustls",
        "certificate",
        "os error",
        "panicked",
        ".pem",
        "hyper",
        "connection refused",
    ] {
        assert!(
            !text.contains(internal),
            "{what}: refusal tells something internal ({internal:?}): {text}"
        );
    }
}
