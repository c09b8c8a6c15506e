//! The send timeout: a client that stops reading is disconnected instead of holding its
//! deliveries, and its connection's buffers, for ever (RabbitMQ's
//! `tcp_listen_options.send_timeout` with `send_timeout_close`).
//!
//! [`SendTimeout`] wraps every accepted socket, below TLS and WebSocket, so every adapter gets
//! it without knowing. A write or flush the socket cannot take (`Pending`) arms a timer; any
//! write the socket takes, even of one byte, disarms it. Once the timer runs out while a
//! write is still pending, that write fails with [`io::ErrorKind::TimedOut`], and so does every
//! later one. Each adapter already ends its connection on a write error, and ending a
//! connection returns its unacknowledged deliveries to their queues, where the other
//! consumers take them.
//!
//! Invariants callers rely on: the timer lives in the wrapper, not in the write future, so an
//! adapter that drops its write future inside `select!` and makes a new one keeps the same
//! deadline; the timer's waker is the polling task's, so a task parked on a stuck socket is
//! woken when the deadline passes. An idle connection holds no timer (it is allocated on the
//! first stalled write and reused after).
//!
//! Runs on the connection's task.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::registry::ConnectionRegistry;

/// A socket whose writes fail once it has taken no byte for `timeout` while one was pending.
#[derive(Debug)]
pub struct SendTimeout<S> {
    inner: S,
    timeout: Duration,
    /// Allocated on the first stall; `armed` says whether it currently counts.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// Set when the timer ran out: the peer is gone for us, every later write fails too.
    expired: bool,
    /// Counts the connections closed this way.
    registry: Arc<ConnectionRegistry>,
}

impl<S> SendTimeout<S> {
    pub fn new(inner: S, timeout: Duration, registry: Arc<ConnectionRegistry>) -> Self {
        SendTimeout {
            inner,
            timeout,
            timer: None,
            armed: false,
            expired: false,
            registry,
        }
    }

    /// The socket, without the timer (an idle connection has none running).
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Passes on what the socket said, arming the timer on `Pending` and disarming it on
    /// progress; fails the write once the timer has run out.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if !polled.is_pending() {
            self.armed = false;
            return polled;
        }
        if !self.armed {
            self.armed = true;
            let deadline = Instant::now() + self.timeout;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let Some(timer) = self.timer.as_mut() else {
            return Poll::Pending;
        };
        ready!(timer.as_mut().poll(cx));
        self.expired = true;
        self.registry.slow_consumer_disconnected();
        Poll::Ready(Err(self.timed_out()))
    }

    fn timed_out(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client read nothing for {:?}", self.timeout),
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Err(this.timed_out()));
        }
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Err(this.timed_out()));
        }
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Err(this.timed_out()));
        }
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    /// Not bounded here: shutting a TCP socket down queues a FIN and returns at once, and the
    /// adapters bound their closing handshakes themselves.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(200);

    fn wrapped(
        capacity: usize,
    ) -> (
        SendTimeout<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
        Arc<ConnectionRegistry>,
    ) {
        let (near, far) = tokio::io::duplex(capacity);
        let registry = Arc::new(ConnectionRegistry::default());
        let stream = SendTimeout::new(near, TIMEOUT, Arc::clone(&registry));
        (stream, far, registry)
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_timeout_and_is_counted() {
        let (mut stream, _far, registry) = wrapped(16);
        let started = Instant::now();
        let error = stream.write_all(&[0; 64]).await.expect_err("nobody reads");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
        assert_eq!(registry.slow_consumer_disconnects(), 1);
        let again = stream.write_all(&[0]).await.expect_err("stays failed");
        assert_eq!(again.kind(), io::ErrorKind::TimedOut);
        assert_eq!(registry.slow_consumer_disconnects(), 1, "counted once");
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_survives_write_futures_that_are_dropped_and_made_again() {
        let (mut stream, _far, _registry) = wrapped(16);
        let started = Instant::now();
        stream.write_all(&[0; 16]).await.expect("fits");
        let error = loop {
            // As inside `select!`: each turn makes a new write future and drops it unfinished.
            let attempt = tokio::time::timeout(TIMEOUT / 4, stream.write_all(&[0; 8]));
            if let Ok(result) = attempt.await {
                break result.expect_err("nobody reads");
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_never_cut_off() {
        let (mut stream, mut far, registry) = wrapped(16);
        let reader = tokio::spawn(async move {
            let mut buf = [0; 4];
            let mut total = 0;
            while total < 256 {
                // Each read is well inside the timeout, though the whole transfer is not.
                tokio::time::sleep(TIMEOUT / 2).await;
                total += far.read(&mut buf).await.expect("read");
            }
        });
        stream.write_all(&[0; 256]).await.expect("every byte taken");
        reader.await.expect("reader");
        assert_eq!(registry.slow_consumer_disconnects(), 0);
    }
}
