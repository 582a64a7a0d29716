//! An upstream answer on its way to the client: `ScrubbedBody` streams it, decoding it in bounded steps, scrubbing
//! secrets, cutting a stalled or undecodable body (an error, never a clean
//! end), counting bytes, and writing the audit line.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::decode::{Decoder, Step};
use crate::scrub::Scrubber;
use crate::telemetry::audit::Audit;
use crate::upstream::BoxError;
use crate::vocab::Reason;

/// The upstream stopped sending its answer's body for too long.
#[derive(Debug, thiserror::Error)]
#[error("upstream body stalled")]
pub struct Stalled;

/// Why an answer that failed before its head was sent is refused.
pub fn refusal_reason(e: &BoxError) -> Reason {
    if e.downcast_ref::<Stalled>().is_some() {
        Reason::UpstreamTimeout
    } else {
        Reason::UpstreamUnavailable
    }
}

/// An upstream answer on its way to the client.
pub struct ScrubbedBody<B> {
    inner: B,
    scrubber: Option<Scrubber>,
    decoder: Option<Decoder>,
    stall: Duration,
    timer: Pin<Box<Sleep>>,
    /// Attached once the head is decided; written when the answer ends.
    audit: Option<Audit>,
    bytes_out: u64,
    /// The first frame, read before the head was sent.
    primed: Option<Frame<Bytes>>,
    /// Trailers waiting for the decoded and held bytes to go out first.
    trailers: Option<HeaderMap>,
    /// The upstream body ended (or sent its trailers).
    upstream_done: bool,
    /// Every data byte is out: only `primed` and `trailers` may follow.
    done: bool,
    /// An error held back for one poll, so hyper flushes what it buffered
    /// (the head included) before it drops the connection.
    failed: Option<BoxError>,
}

impl<B> ScrubbedBody<B> {
    pub fn new(inner: B, scrubber: Option<Scrubber>, decoder: Option<Decoder>, stall: Duration) -> ScrubbedBody<B> {
        ScrubbedBody {
            inner,
            scrubber,
            decoder,
            stall,
            timer: Box::pin(tokio::time::sleep(stall)),
            audit: None,
            bytes_out: 0,
            primed: None,
            trailers: None,
            upstream_done: false,
            done: false,
            failed: None,
        }
    }

    /// From now on the answer writes the request's audit line when it ends.
    pub fn attach(&mut self, audit: Audit) {
        self.audit = Some(audit);
    }

    fn finish(&mut self, complete: bool) {
        if let Some(mut audit) = self.audit.take() {
            audit.bytes_out = self.bytes_out;
            audit.complete = complete;
            audit.finish();
        }
    }

    fn ended(&self) -> bool {
        self.done && self.primed.is_none() && self.trailers.is_none() && self.failed.is_none()
    }

    /// Hands a frame (or the end) to hyper; the audit line is written with the last one.
    fn out(&mut self, frame: Option<Frame<Bytes>>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.ended() {
            self.finish(true);
        }
        Poll::Ready(frame.map(Ok))
    }

    /// Cuts the answer. The error goes out on the next poll: hyper writes
    /// out its buffer when the body is pending, but not when it fails, and a
    /// client must see a head and a cut body, not a closed connection.
    fn fail(&mut self, e: BoxError, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        self.trailers = None;
        self.primed = None;
        self.finish(false);
        self.failed = Some(e);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn scrub(scrubber: &mut Option<Scrubber>, bytes_out: &mut u64, data: Bytes) -> Bytes {
        let data = match scrubber.as_mut() {
            Some(s) => s.push(data),
            None => data,
        };
        *bytes_out += data.len() as u64;
        data
    }

    /// All data is in: what the scrubber still holds.
    fn end(&mut self) -> Bytes {
        self.done = true;
        let rest = self.scrubber.as_mut().map(Scrubber::finish).unwrap_or_default();
        self.bytes_out += rest.len() as u64;
        rest
    }

    fn upstream_ended(&mut self) {
        self.upstream_done = true;
        if let Some(d) = self.decoder.as_mut() {
            d.end_input();
        }
    }

    /// Decoded bytes ready without new input, scrubbed; `None` when the
    /// decoder needs input or is done. Each call inflates a bounded amount.
    fn drain(&mut self) -> Result<Option<Bytes>, BoxError> {
        let Some(d) = self.decoder.as_mut() else {
            return Ok(None);
        };
        loop {
            match d.step()? {
                Step::Data(b) => {
                    let out = Self::scrub(&mut self.scrubber, &mut self.bytes_out, b);
                    if !out.is_empty() {
                        return Ok(Some(out));
                    }
                }
                Step::NeedInput | Step::Done => return Ok(None),
            }
        }
    }
}

impl<B> ScrubbedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// Reads (and decodes) up to the first frame before the head goes out, so
    /// an answer that fails at once gets a refusal rather than a head and a cut.
    pub async fn prime(&mut self) -> Result<(), BoxError> {
        match std::future::poll_fn(|cx| Pin::new(&mut *self).poll_frame(cx)).await {
            Some(Ok(frame)) => self.primed = Some(frame),
            Some(Err(e)) => return Err(e),
            None => {}
        }
        Ok(())
    }

    /// One frame from the upstream: plain data comes back scrubbed (with the
    /// held rest when it was the last), coded data goes to the decoder,
    /// trailers wait. A body silent for `stall` is an error.
    fn pull(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, BoxError>> {
        let item = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => {
                if self.timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(Box::new(Stalled)));
                }
                return Poll::Pending;
            }
            Poll::Ready(item) => item,
        };
        let deadline = Instant::now() + self.stall;
        self.timer.as_mut().reset(deadline);
        let frame = match item {
            None => {
                self.upstream_ended();
                return Poll::Ready(Ok(None));
            }
            Some(Err(e)) => return Poll::Ready(Err(e.into())),
            Some(Ok(frame)) => frame,
        };
        match frame.into_data() {
            Ok(data) => Poll::Ready(Ok(self.take_data(data))),
            Err(frame) => {
                if let Ok(mut trailers) = frame.into_trailers() {
                    let forms = self.scrubber.as_ref().map(Scrubber::forms);
                    crate::proxy::headers::inbound(&mut trailers, forms);
                    self.trailers = Some(trailers);
                    self.upstream_ended();
                }
                Poll::Ready(Ok(None))
            }
        }
    }

    fn take_data(&mut self, data: Bytes) -> Option<Bytes> {
        // hyper stops polling once a known length is out: the last frame of
        // a plain body carries the scrubber's rest.
        let last = self.inner.is_end_stream();
        if let Some(d) = self.decoder.as_mut() {
            d.feed(data);
            if last {
                self.upstream_ended();
            }
            return None;
        }
        let mut out = Self::scrub(&mut self.scrubber, &mut self.bytes_out, data);
        if last {
            self.upstream_ended();
            let rest = self.end();
            if !rest.is_empty() {
                out = Bytes::from([out, rest].concat());
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

impl<B> Drop for ScrubbedBody<B> {
    fn drop(&mut self) {
        // Dropped before the end: the client went away or the stream was cut.
        self.finish(false);
    }
}

impl<B> Body for ScrubbedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if let Some(frame) = this.primed.take() {
            return this.out(Some(frame));
        }
        loop {
            if this.done {
                let trailers = this.trailers.take().map(Frame::trailers);
                return this.out(trailers);
            }
            match this.drain() {
                Err(e) => return this.fail(e, cx),
                Ok(Some(data)) => return this.out(Some(Frame::data(data))),
                Ok(None) => {}
            }
            if this.upstream_done {
                let rest = this.end();
                if !rest.is_empty() {
                    return this.out(Some(Frame::data(rest)));
                }
                continue;
            }
            match this.pull(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return this.fail(e, cx),
                Poll::Ready(Ok(Some(data))) => return this.out(Some(Frame::data(data))),
                Poll::Ready(Ok(None)) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended()
    }

    fn size_hint(&self) -> SizeHint {
        // Decompressing changes the length: the compressed one must not
        // become the client's Content-Length.
        if self.decoder.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}
