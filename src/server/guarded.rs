//! The client connection as the HTTP parser reads it: every byte passes the
//! framing guard first. A refused head reaches the parser as a stand-in
//! request the handler answers with `bad_request`, in order; after a CONNECT
//! the guard waits for the handler's answer to know whether a tunnel follows.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::server::framing::{Scanner, Step, KEEP_CAPACITY, REFUSED_HEAD};

/// Bytes read from the client per read.
const READ_SIZE: usize = 8 * 1024;

/// What the handler tells the guard of one connection, and the guard tells it.
#[derive(Debug, Default)]
pub struct Gate {
    inner: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    /// The answer to the pending CONNECT: `true` when it opened a tunnel.
    connect: Option<bool>,
    waker: Option<Waker>,
    refused: bool,
}

impl Gate {
    /// The handler answered a CONNECT; `tunnel` when with 2xx (hyper then
    /// hands the connection over and the bytes after the head are the tunnel's).
    pub fn connect_answered(&self, tunnel: bool) {
        let waker = self.inner.lock().ok().and_then(|mut g| {
            g.connect = Some(tunnel);
            g.waker.take()
        });
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether the guard refused a head on this connection: only then is a
    /// request with the stand-in marker the guard's.
    pub fn refused(&self) -> bool {
        self.inner.lock().is_ok_and(|g| g.refused)
    }

    fn set_refused(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.refused = true;
        }
    }

    /// The CONNECT answer if there is one; otherwise wakes `waker` when it comes.
    fn take_connect(&self, waker: &Waker) -> Option<bool> {
        let mut g = self.inner.lock().ok()?;
        let answer = g.connect.take();
        if answer.is_none() {
            g.waker = Some(waker.clone());
        }
        answer
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    /// A head was refused: the stand-in request is the last thing the parser
    /// reads; it closes the connection after answering it.
    Hold,
    /// A body broke its framing: the parser sees the end of the stream, so the
    /// request's body fails and its handler answers.
    Eof,
}

/// A client stream whose reads pass through the [`Scanner`].
pub struct GuardedIo<S> {
    inner: S,
    scanner: Scanner,
    gate: Arc<Gate>,
    /// Bytes the guard let through, not yet read by the parser.
    out: Vec<u8>,
    sent: usize,
    /// Bytes after a CONNECT head, until the handler answered it.
    held: Vec<u8>,
    awaiting_connect: bool,
    tunnel: bool,
    end: End,
}

impl<S> GuardedIo<S> {
    pub fn new(inner: S, gate: Arc<Gate>) -> GuardedIo<S> {
        GuardedIo {
            inner,
            scanner: Scanner::default(),
            gate,
            out: Vec::new(),
            sent: 0,
            held: Vec::new(),
            awaiting_connect: false,
            tunnel: false,
            end: End::Open,
        }
    }

    /// Runs `bytes` through the guard.
    fn absorb(&mut self, bytes: &[u8]) {
        match self.scanner.feed(bytes, &mut self.out) {
            Step::Done => {}
            Step::Connect { rest } => {
                self.awaiting_connect = true;
                self.held
                    .extend_from_slice(bytes.get(bytes.len() - rest..).unwrap_or_default());
            }
            Step::RefusedHead => {
                self.out.extend_from_slice(REFUSED_HEAD);
                self.gate.set_refused();
                self.end = End::Hold;
            }
            Step::RefusedBody => self.end = End::Eof,
        }
    }

    /// Applies the handler's answer to a CONNECT, once there is one.
    fn connect_decided(&mut self, cx: &Context<'_>) -> bool {
        let Some(tunnel) = self.gate.take_connect(cx.waker()) else {
            return false;
        };
        self.awaiting_connect = false;
        if tunnel {
            self.scanner.tunnel();
            self.tunnel = true;
        } else {
            self.scanner.connect_refused();
        }
        let held = std::mem::take(&mut self.held);
        self.absorb(&held);
        true
    }

    /// Copies what the guard let through into `buf`.
    fn deliver(&mut self, buf: &mut ReadBuf<'_>) {
        let rest = self.out.get(self.sent..).unwrap_or_default();
        let n = rest.len().min(buf.remaining());
        buf.put_slice(rest.get(..n).unwrap_or_default());
        self.sent += n;
        if self.sent >= self.out.len() {
            self.out.clear();
            self.sent = 0;
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = Vec::new();
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.sent < this.out.len() {
                this.deliver(buf);
                return Poll::Ready(Ok(()));
            }
            match this.end {
                // Never woken: the parser closes the connection after its answer.
                End::Hold => return Poll::Pending,
                End::Eof => return Poll::Ready(Ok(())),
                End::Open => {}
            }
            if this.awaiting_connect {
                if !this.connect_decided(cx) {
                    return Poll::Pending;
                }
                continue;
            }
            if this.tunnel {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            // Uninitialised on purpose: zeroing 8 KiB on every poll was a fifth of
            // the header-only path's instructions (callgrind); ReadBuf hands back
            // only the bytes the socket filled.
            let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); READ_SIZE];
            let mut read = ReadBuf::uninit(&mut scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.absorb(read.filled());
        }
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
