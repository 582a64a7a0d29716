//! A guard in front of the HTTP/1 parser against request smuggling. The
//! parser quietly drops `Content-Length` when `Transfer-Encoding` is present
//! and answers differing lengths with a bare 400; this scanner follows the
//! message framing on the raw bytes and refuses such a head itself, with
//! the proxy's JSON `bad_request`, before the parser ever sees it.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest request head or chunk line followed; past it the parser's own
/// limits decide and the scanner steps aside.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    Ok,
    /// The head just completed frames its body ambiguously.
    Smuggling,
}

#[derive(Debug)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd(u8),
    Trailers,
    /// A tunnel, or framing the parser will refuse anyway: stop looking.
    Off,
}

/// Follows request framing across reads on one connection.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    line: Vec<u8>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Head,
            line: Vec::new(),
        }
    }
}

impl Scanner {
    /// Feeds the next bytes read from the client.
    pub fn scan(&mut self, mut bytes: &[u8]) -> Scan {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Off => return Scan::Ok,
                State::Body(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = bytes.get(n as usize..).unwrap_or_default();
                    if *left == 0 {
                        self.state = State::Head;
                    }
                }
                State::ChunkData(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = bytes.get(n as usize..).unwrap_or_default();
                    if *left == 0 {
                        self.state = State::ChunkEnd(2);
                    }
                }
                State::ChunkEnd(left) => {
                    *left -= 1;
                    bytes = bytes.get(1..).unwrap_or_default();
                    if *left == 0 {
                        self.state = State::ChunkSize;
                    }
                }
                State::Head | State::ChunkSize | State::Trailers => {
                    let Some(rest) = self.take_line_bytes(bytes) else {
                        return Scan::Ok;
                    };
                    bytes = rest;
                    if self.line_complete() && self.finish_line() == Scan::Smuggling {
                        return Scan::Smuggling;
                    }
                }
            }
        }
        Scan::Ok
    }

    /// Moves bytes into `line` up to the end of the current unit (a head or
    /// trailer section ends with an empty line, a chunk size with CRLF).
    fn take_line_bytes<'a>(&mut self, mut bytes: &'a [u8]) -> Option<&'a [u8]> {
        // A unit can only end at a LF: copy up to each LF in one go.
        while !bytes.is_empty() {
            let end = bytes.iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| i + 1);
            let (piece, rest) = bytes.split_at(end);
            self.line.extend_from_slice(piece);
            bytes = rest;
            if self.line.len() > MAX_LINE {
                self.state = State::Off;
                self.line = Vec::new();
                return None;
            }
            if piece.last() == Some(&b'\n') && self.line_complete() {
                return Some(bytes);
            }
        }
        Some(bytes)
    }

    fn line_complete(&self) -> bool {
        match self.state {
            State::ChunkSize => self.line.ends_with(b"\r\n"),
            // Empty lines before a request line are tolerated (RFC 9112 §2.2).
            State::Head if self.line == b"\r\n" => true,
            _ => self.line == b"\r\n" || self.line.ends_with(b"\r\n\r\n"),
        }
    }

    fn finish_line(&mut self) -> Scan {
        let line = std::mem::take(&mut self.line);
        self.state = match self.state {
            State::Head if line == b"\r\n" => State::Head,
            State::Head => match head_framing(&line) {
                Framing::Smuggling => return Scan::Smuggling,
                Framing::Tunnel | Framing::Unknown => State::Off,
                Framing::None => State::Head,
                Framing::Length(n) => State::Body(n),
                Framing::Chunked => State::ChunkSize,
            },
            State::ChunkSize => match chunk_size(&line) {
                Some(0) => State::Trailers,
                Some(n) => State::ChunkData(n),
                None => State::Off,
            },
            _ => State::Head,
        };
        Scan::Ok
    }
}

enum Framing {
    None,
    Length(u64),
    Chunked,
    Tunnel,
    Smuggling,
    Unknown,
}

fn head_framing(head: &[u8]) -> Framing {
    let Ok(text) = std::str::from_utf8(head) else {
        return Framing::Unknown;
    };
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    if request_line.starts_with("CONNECT ") {
        return Framing::Tunnel;
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Framing::Unknown;
        };
        if name.eq_ignore_ascii_case("content-length") {
            for v in value.split(',') {
                let Ok(n) = v.trim().parse::<u64>() else {
                    return Framing::Unknown;
                };
                if length.is_some_and(|l| l != n) {
                    return Framing::Smuggling;
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        }
    }
    match (length, chunked) {
        (Some(_), true) => Framing::Smuggling,
        (_, true) => Framing::Chunked,
        (Some(0) | None, false) => Framing::None,
        (Some(n), false) => Framing::Length(n),
    }
}

fn chunk_size(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?.trim_end_matches("\r\n");
    let hex = text.split(';').next()?.trim();
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A client connection whose reads pass through the [`Scanner`]. On a
/// smuggling head it withholds the head from the parser, writes the JSON
/// `bad_request` itself, and ends the stream.
pub struct GuardedIo<S> {
    inner: S,
    scanner: Scanner,
    refusal: Option<(Vec<u8>, usize)>,
    on_refuse: Option<Box<dyn FnOnce() -> Vec<u8> + Send>>,
}

impl<S> GuardedIo<S> {
    /// `on_refuse` builds the refusal bytes (and writes its audit line).
    pub fn new(inner: S, on_refuse: Box<dyn FnOnce() -> Vec<u8> + Send>) -> GuardedIo<S> {
        GuardedIo {
            inner,
            scanner: Scanner::default(),
            refusal: None,
            on_refuse: Some(on_refuse),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> GuardedIo<S> {
    /// Writes what is left of the refusal; `Ready` once all is out (or the client is gone).
    fn poll_refusal(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some((bytes, sent)) = self.refusal.as_mut() {
            let rest = bytes.get(*sent..).unwrap_or_default();
            if rest.is_empty() {
                return Poll::Ready(());
            }
            match Pin::new(&mut self.inner).poll_write(cx, rest) {
                Poll::Ready(Ok(n)) if n > 0 => *sent += n,
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.refusal.is_some() {
            // After the refusal the parser sees the end of the stream.
            return this.poll_refusal(cx).map(Ok);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let scan = this.scanner.scan(buf.filled().get(before..).unwrap_or_default());
        if scan == Scan::Smuggling {
            buf.set_filled(before);
            let bytes = this.on_refuse.take().map(|f| f()).unwrap_or_default();
            this.refusal = Some((bytes, 0));
            return this.poll_refusal(cx).map(Ok);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_CL: &str = "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    const GOOD_CHUNKED: &str =
        "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";

    #[test]
    fn framings() {
        let cases: &[(&str, String, Scan)] = &[
            ("plain get", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n".into(), Scan::Ok),
            ("content-length body", GOOD_CL.into(), Scan::Ok),
            ("chunked body", GOOD_CHUNKED.into(), Scan::Ok),
            ("cl then te", "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n".into(), Scan::Smuggling),
            ("te then cl", "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n".into(), Scan::Smuggling),
            ("differing lengths", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n".into(), Scan::Smuggling),
            ("differing in one list", "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n".into(), Scan::Smuggling),
            ("equal lengths", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello".into(), Scan::Ok),
            (
                "smuggling in the second pipelined request",
                format!("{GOOD_CL}{GOOD_CHUNKED}POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
                Scan::Smuggling,
            ),
            (
                "header text inside a body is not a head",
                "POST / HTTP/1.1\r\nContent-Length: 52\r\n\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
                Scan::Ok,
            ),
            ("connect tunnel bytes are not looked at", "CONNECT a:443 HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n".into(), Scan::Ok),
        ];
        for (name, input, want) in cases {
            let mut whole = Scanner::default();
            assert_eq!(whole.scan(input.as_bytes()), *want, "{name}: whole");
            // The same bytes one at a time, as a slow client sends them.
            let mut bytewise = Scanner::default();
            let got = input
                .as_bytes()
                .chunks(1)
                .map(|b| bytewise.scan(b))
                .find(|s| *s == Scan::Smuggling);
            assert_eq!(got.unwrap_or(Scan::Ok), *want, "{name}: byte by byte");
        }
    }
}
