//! A recording TLS upstream (tokio-rustls + hyper, HTTP/1.1 and h2): every
//! request it gets is kept exactly as received, and a handler says what to
//! answer (`Reply`), including stalls and answers that never come.

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{TestCa, DEADLINE};

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
