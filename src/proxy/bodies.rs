//! Bodies in motion. `Capped` streams a request body and fails past the size
//! bound, past its deadline, or when it cannot be read; `Answer` streams an
//! upstream answer to the client, scrubbing secrets, cutting a stalled body
//! (an error, never a clean end), counting bytes, and writing the request's
//! audit line when it is done.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::answer::Reason;
use crate::audit::Audit;
use crate::scrub::Scrubber;
use crate::upstream::BoxError;

/// The request body went over `max_body_bytes` while streaming.
#[derive(Debug, thiserror::Error)]
#[error("request body over the size bound")]
pub struct TooLarge;

/// The upstream stopped sending its answer's body for too long.
#[derive(Debug, thiserror::Error)]
#[error("upstream body stalled")]
pub struct Stalled;

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

/// An upstream answer on its way to the client.
pub struct Answer<B> {
    inner: B,
    scrubber: Option<Scrubber>,
    decoder: Option<Decoder>,
    stall: Duration,
    timer: Pin<Box<Sleep>>,
    audit: Option<Audit>,
    done: bool,
}

impl<B> Answer<B> {
    pub fn new(
        inner: B,
        scrubber: Option<Scrubber>,
        decoder: Option<Decoder>,
        stall: Duration,
        audit: Audit,
    ) -> Answer<B> {
        Answer {
            inner,
            scrubber,
            decoder,
            stall,
            timer: Box::pin(tokio::time::sleep(stall)),
            audit: Some(audit),
            done: false,
        }
    }

    fn finish(&mut self, complete: bool) {
        if let Some(mut audit) = self.audit.take() {
            audit.complete = complete;
            audit.emit();
        }
    }

    /// The end of the answer: what the decoder and the scrubber still hold,
    /// and the audit line written as complete.
    fn end(&mut self) -> Result<Bytes, BoxError> {
        self.done = true;
        let tail = self.decoder.take().map(Decoder::finish).transpose()?;
        let rest = match (self.scrubber.as_mut(), tail) {
            (Some(s), Some(t)) => Bytes::from([s.push(t), s.finish()].concat()),
            (Some(s), None) => s.finish(),
            (None, t) => t.unwrap_or_default(),
        };
        self.count(rest.len());
        self.finish(true);
        Ok(rest)
    }

    fn fail(&mut self, e: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        self.finish(false);
        Poll::Ready(Some(Err(e)))
    }

    fn count(&mut self, n: usize) {
        if let Some(a) = self.audit.as_mut() {
            a.bytes_out += n as u64;
        }
    }
}

impl<B: Body<Data = Bytes>> Answer<B> {
    /// One data frame: decoded, scrubbed, counted; at the known end of the
    /// answer (hyper stops polling once a known length is out) with the rest
    /// the decoder and scrubber still hold.
    fn data_frame(&mut self, data: Bytes) -> Result<Bytes, BoxError> {
        let data = match self.decoder.as_mut() {
            Some(d) => d.push(&data)?,
            None => data,
        };
        let data = match self.scrubber.as_mut() {
            Some(s) => s.push(data),
            None => data,
        };
        self.count(data.len());
        if !self.inner.is_end_stream() {
            return Ok(data);
        }
        let rest = self.end()?;
        Ok(if rest.is_empty() {
            data
        } else {
            Bytes::from([data, rest].concat())
        })
    }

    /// Trailers, scrubbed like headers; any other frame kind becomes an empty data frame.
    fn other_frame(&self, frame: Frame<Bytes>) -> Frame<Bytes> {
        match frame.into_trailers() {
            Ok(mut trailers) => {
                if let Some(s) = self.scrubber.as_ref() {
                    crate::proxy::headers::inbound(&mut trailers, s.secrets());
                }
                Frame::trailers(trailers)
            }
            Err(_) => Frame::data(Bytes::new()),
        }
    }
}

impl<B> Drop for Answer<B> {
    fn drop(&mut self) {
        // Dropped before the end: the client went away or the stream was cut.
        self.finish(false);
    }
}

impl<B> Body for Answer<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let item = match polled {
            Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.done = true;
                    this.finish(false);
                    return Poll::Ready(Some(Err(Box::new(Stalled))));
                }
                return Poll::Pending;
            }
            Poll::Ready(item) => item,
        };
        let deadline = Instant::now() + this.stall;
        this.timer.as_mut().reset(deadline);
        match item {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => match this.data_frame(data) {
                    Ok(out) => Poll::Ready(Some(Ok(Frame::data(out)))),
                    Err(e) => this.fail(e),
                },
                Err(frame) => Poll::Ready(Some(Ok(this.other_frame(frame)))),
            },
            Some(Err(e)) => this.fail(e.into()),
            None => {
                let rest = match this.end() {
                    Ok(r) => r,
                    Err(e) => return this.fail(e),
                };
                if rest.is_empty() {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Ok(Frame::data(rest))))
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
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

/// Decompresses a gzip or deflate answer so the scrubber sees plain bytes.
pub enum Decoder {
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
}

impl Decoder {
    /// For a `Content-Encoding` value; `None` for one the proxy cannot read.
    pub fn for_encoding(encoding: &str) -> Option<Decoder> {
        match encoding.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new()))),
            "deflate" => Some(Decoder::Deflate(flate2::write::ZlibDecoder::new(Vec::new()))),
            _ => None,
        }
    }

    fn push(&mut self, data: &[u8]) -> Result<Bytes, BoxError> {
        use std::io::Write;
        let out = match self {
            Decoder::Gzip(d) => {
                d.write_all(data)?;
                std::mem::take(d.get_mut())
            }
            Decoder::Deflate(d) => {
                d.write_all(data)?;
                std::mem::take(d.get_mut())
            }
        };
        Ok(Bytes::from(out))
    }

    fn finish(self) -> Result<Bytes, BoxError> {
        let out = match self {
            Decoder::Gzip(d) => d.finish()?,
            Decoder::Deflate(d) => d.finish()?,
        };
        Ok(Bytes::from(out))
    }
}

use std::future::Future;
