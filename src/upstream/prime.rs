//! One TLS record per small streamed request: the body's first frame is
//! awaited before the request goes to hyper, so hyper writes head and body in
//! one vectored write (one record, one segment) instead of flushing the head
//! alone whenever the body is a moment behind it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

/// Bodies up to this declared length are primed: a TLS record holds at most
/// 16 KiB, and a body that small comes with its head anyway.
pub const PRIME_MAX: u64 = 16 * 1024;

/// A body whose first frame is already in hand.
pub struct Primed<B> {
    first: Option<Frame<Bytes>>,
    rest: B,
}

/// Awaits the first frame of a streamed body of small known length; any
/// other body comes back as it was. The body's own bounds (size, deadline)
/// still apply while waiting, and its error is returned as it came.
pub async fn prime<B>(mut body: B) -> Result<Primed<B>, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let small = body.size_hint().exact().is_some_and(|n| n > 0 && n <= PRIME_MAX);
    if !small || body.is_end_stream() {
        return Ok(Primed {
            first: None,
            rest: body,
        });
    }
    let first = match body.frame().await {
        Some(Ok(frame)) => Some(frame),
        Some(Err(e)) => return Err(e),
        None => None,
    };
    Ok(Primed { first, rest: body })
}

impl<B> Body for Primed<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(frame) = self.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    /// The rest's hint plus the frame in hand: hyper frames the request by it.
    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let held = self
            .first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |d| d.remaining() as u64);
        if held == 0 {
            return rest;
        }
        let mut hint = SizeHint::new();
        // Upper first: `set_lower` requires lower <= upper.
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(held));
        }
        hint.set_lower(rest.lower().saturating_add(held));
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    /// One chunk of a length nobody declared.
    struct Unknown(Option<Bytes>);

    impl Body for Unknown {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn a_small_body_is_primed_and_keeps_its_length() {
        let primed = prime(Full::new(Bytes::from_static(b"hello"))).await.unwrap();
        assert!(primed.first.is_some(), "first frame in hand");
        assert_eq!(primed.size_hint().exact(), Some(5));
        assert!(!primed.is_end_stream());
        assert_eq!(primed.collect().await.unwrap().to_bytes(), "hello");
    }

    #[tokio::test]
    async fn large_empty_and_unknown_bodies_are_left_alone() {
        let big = Full::new(Bytes::from(vec![b'x'; PRIME_MAX as usize + 1]));
        assert!(prime(big).await.unwrap().first.is_none(), "larger than a record");
        assert!(prime(Full::new(Bytes::new())).await.unwrap().first.is_none(), "empty");
        let primed = prime(Unknown(Some(Bytes::from_static(b"a")))).await.unwrap();
        assert!(primed.first.is_none(), "unknown length");
        assert_eq!(primed.collect().await.unwrap().to_bytes(), "a");
    }
}
