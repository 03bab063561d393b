//! A request body that must arrive whole within a deadline: the body-read timeout. The idle
//! timeout alone lets a client keep a connection (and a handler) forever by sending one byte
//! now and then; with this, the body's last byte is due a fixed time after its headers.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};
use tokio::time::Sleep;

/// The body did not arrive within the deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?} (HTTP_BODY_READ_TIMEOUT)")]
pub struct TooSlow(pub Duration);

/// `inner`, failing with [`TooSlow`] once `timeout` has passed since it was wrapped and its
/// end has not been reached.
pub struct Deadline {
    inner: Body,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    /// The end was reached (or the deadline passed): no more timing.
    done: bool,
    /// The deadline passed: the body ends here, with the error already given.
    expired: bool,
}

impl Deadline {
    /// `body` as an axum body that must end within `timeout` from now.
    pub fn wrap(body: hyper::body::Incoming, timeout: Duration) -> Body {
        Body::new(Self::new(Body::new(body), timeout))
    }

    fn new(inner: Body, timeout: Duration) -> Self {
        Self {
            done: inner.is_end_stream(),
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            expired: false,
        }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(None);
        }
        if this.done {
            return Pin::new(&mut this.inner).poll_frame(cx);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() || this.inner.is_end_stream() {
                this.done = true;
            }
            return Poll::Ready(frame);
        }
        ready!(this.sleep.as_mut().poll(cx));
        this.done = true;
        this.expired = true;
        tracing::debug!(timeout = ?this.timeout, "request body too slow; cut");
        Poll::Ready(Some(Err(axum::Error::new(TooSlow(this.timeout)))))
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
