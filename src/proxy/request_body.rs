//! A client's body on its way upstream: `Capped` streams it and fails past
//! the size bound, past its deadline, or when it cannot be read, and
//! `BodyFate` remembers which, so a failed send is blamed on the right side.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::upstream::BoxError;
use crate::vocab::Reason;

/// The request body went over `max_body_bytes` while streaming.
#[derive(Debug, thiserror::Error)]
#[error("request body over the size bound")]
pub struct TooLarge;

/// The client's body could not be read (broken framing, the client gone):
/// the client's fault, not the upstream's.
#[derive(Debug, thiserror::Error)]
#[error("request body unreadable")]
pub struct BadBody;

/// The client did not send its whole body before the request's deadline.
#[derive(Debug, thiserror::Error)]
#[error("request body not received in time")]
pub struct BodyTimeout;

/// What became of a client's body on its way upstream. The send's own error
/// cannot tell (an HTTP/2 client reports only that it reset the stream), so
/// the caller asks this whose fault a failed send was.
#[derive(Debug, Default)]
pub struct BodyFate {
    failed: OnceLock<Reason>,
    done: AtomicBool,
}

impl BodyFate {
    /// The whole body was read.
    pub fn set_done(&self) {
        self.done.store(true, Ordering::Release);
    }

    /// The client's share in a failed send: why its body failed, or, when
    /// the request's time ran out, that its body had not ended by then.
    pub fn blame(&self, timed_out: bool) -> Option<Reason> {
        match self.failed.get() {
            Some(r) => Some(*r),
            None if timed_out && !self.done.load(Ordering::Acquire) => Some(Reason::RequestTimeout),
            None => None,
        }
    }
}

/// A streamed request body that errors once it passes `left` bytes, when
/// it cannot be read, and when it is not whole by `deadline`: a stalled
/// upload must not hold the upstream connection open. `fate` learns why.
/// It never carries trailers (the buffered path drops them too: `collect`
/// keeps only data).
pub struct Capped<B> {
    inner: B,
    left: u64,
    deadline: Pin<Box<Sleep>>,
    fate: Arc<BodyFate>,
}

impl<B: Body> Capped<B> {
    pub fn new(inner: B, max: u64, deadline: Instant, fate: Arc<BodyFate>) -> Capped<B> {
        if inner.is_end_stream() {
            fate.set_done();
        }
        Capped {
            inner,
            left: max,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            fate,
        }
    }
}

impl<B> Capped<B> {
    fn fail(&self, reason: Reason, e: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let _ = self.fate.failed.set(reason);
        Poll::Ready(Some(Err(e)))
    }
}

impl<B> Body for Capped<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        // Checked first: a client trickling bytes is as late as a silent one.
        if this.deadline.as_mut().poll(cx).is_ready() {
            return this.fail(Reason::RequestTimeout, Box::new(BodyTimeout));
        }
        loop {
            return match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                // Request trailers are dropped: a client's `X-API-KEY` trailer
                // would otherwise reach an h2 upstream past every header rule.
                Some(Ok(frame)) if frame.is_trailers() => continue,
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let n = data.len() as u64;
                        if n > this.left {
                            return this.fail(Reason::BodyTooLarge, Box::new(TooLarge));
                        }
                        this.left -= n;
                    }
                    // A sender that knows the length stops polling at its end.
                    if this.inner.is_end_stream() {
                        this.fate.set_done();
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Some(Err(_)) => this.fail(Reason::BadRequest, Box::new(BadBody)),
                None => {
                    this.fate.set_done();
                    Poll::Ready(None)
                }
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
