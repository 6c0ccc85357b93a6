//! Body types of the proxy. Bodies stream frame by frame in both directions;
//! nothing is buffered whole.
//!
//! - [`RequestBody`]: the client's body on its way to an instance, cut off at the size limit.
//! - [`ProxyBody`]: what the client gets: a proxy page, or the instance's body,
//!   which returns its connection to the pool and ends the in-flight count when done.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::instance::InFlight;
use crate::pool::Sender;

/// Errors of a client body being forwarded.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The client sent more than the body limit.
    #[error("request body is larger than {limit} bytes; send a smaller body")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Reading from the client failed.
    #[error("reading the request body from the client failed: {0}")]
    Client(#[from] hyper::Error),
}

/// The client's request body, forwarded with a size limit.
#[derive(Debug)]
pub struct RequestBody {
    inner: Option<Incoming>,
    remaining: u64,
    limit: u64,
}

impl RequestBody {
    pub(crate) fn new(inner: Incoming, limit: u64) -> Self {
        Self {
            inner: Some(inner),
            remaining: limit,
            limit,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        let frame = match frame {
            None => return Poll::Ready(None),
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            Some(Ok(frame)) => frame,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            if len > self.remaining {
                self.inner = None;
                return Poll::Ready(Some(Err(BodyError::TooLarge { limit: self.limit })));
            }
            self.remaining -= len;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// The body the client gets.
#[derive(Debug)]
pub struct ProxyBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Upstream(Upstream),
}

/// An instance's response body; on a clean end the connection goes back to the pool.
#[derive(Debug)]
struct Upstream {
    inner: Incoming,
    conn: Option<Sender>,
    in_flight: Option<InFlight>,
}

impl Upstream {
    /// The response is complete: reuse the connection, end the in-flight count.
    fn finish(&mut self) {
        if let (Some(conn), Some(in_flight)) = (self.conn.take(), self.in_flight.as_ref()) {
            in_flight.instance().pool.put(conn);
        }
        self.in_flight = None;
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // hyper stops polling once `is_end_stream` says so; a body dropped
        // before its end closes the connection instead (it may hold unread bytes).
        if self.inner.is_end_stream() {
            self.finish();
        }
    }
}

impl ProxyBody {
    /// A body made of one chunk.
    pub fn full(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full(Some(bytes)),
        }
    }

    /// No body.
    pub fn empty() -> Self {
        Self {
            kind: Kind::Full(None),
        }
    }

    pub(crate) fn upstream(inner: Incoming, conn: Option<Sender>, in_flight: InFlight) -> Self {
        Self {
            kind: Kind::Upstream(Upstream {
                inner,
                conn,
                in_flight: Some(in_flight),
            }),
        }
    }

    /// The bytes of a page body (tests look at error pages).
    #[cfg(test)]
    pub(crate) fn as_full(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Full(bytes) => bytes.as_ref(),
            Kind::Upstream(_) => None,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Upstream(up) => {
                let frame = ready!(Pin::new(&mut up.inner).poll_frame(cx));
                match &frame {
                    None => up.finish(),
                    Some(Ok(_)) if up.inner.is_end_stream() => up.finish(),
                    Some(Ok(_)) => {}
                    Some(Err(_)) => {
                        up.conn = None;
                        up.in_flight = None;
                    }
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Upstream(up) => up.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Upstream(up) => up.inner.size_hint(),
        }
    }
}
