//! A raw HTTP/1.1 client: sends exactly the bytes a test gives (requests no
//! well-behaved client would send) and reads answers off the wire, with
//! every read bounded by a deadline.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::DEADLINE;

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

    /// A connection over any stream (a TLS stream inside a tunnel).
    pub fn over(io: Box<dyn Io>) -> RawConn {
        RawConn {
            io,
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

/// One request on a fresh TCP connection to `addr`; the complete answer.
pub async fn send_to(addr: SocketAddr, raw: &[u8]) -> RawResponse {
    let mut c = RawConn::tcp(addr).await;
    c.send(raw).await;
    c.response()
        .await
        .unwrap_or_else(|e| panic!("no complete answer from the proxy: {e}"))
}

/// GET `path` on an admin listener at `addr`: (status, body).
pub async fn admin_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = send_to(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    (r.status, r.text())
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
