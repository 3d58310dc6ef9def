//! One native listener: the accept loop and each connection's life, with the limits that keep
//! slow or greedy clients from exhausting the server (docs/security.md):
//!
//! - a cap on concurrent connections (L3): a semaphore permit is taken *before* `accept`, so
//!   at the cap new connections wait in the kernel's backlog instead of being served;
//! - a header-read timeout (L1): hyper's `http1::Builder::header_read_timeout` with tokio's
//!   timer; it also bounds how long an idle keep-alive connection waits for its next request;
//! - a per-connection request limit (L2): the response to the last allowed request carries
//!   `Connection: close`, which makes hyper end the connection after writing it;
//! - a lingering close (L4): when a connection ends normally, the write side is shut down
//!   first and unread input is discarded for a bounded time and size before the socket is
//!   closed, so a client still sending a refused body reads the response (e.g. a 413)
//!   instead of a reset (closing with unread input makes the kernel send RST, which also
//!   discards the response the client has not read yet).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Limits of each listener (public and admin separately), from the `[server]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection waits for the next request (`header_read_timeout_secs`).
    pub header_read_timeout: Duration,
    /// Requests served on one connection before it is closed (`max_requests_per_connection`).
    pub max_requests_per_connection: u32,
    /// Concurrent connections of one listener (`max_connections`).
    pub max_connections: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            max_requests_per_connection: DEFAULT_MAX_REQUESTS_PER_CONNECTION,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Default of `header_read_timeout_secs`.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default of `max_requests_per_connection`.
pub const DEFAULT_MAX_REQUESTS_PER_CONNECTION: u32 = 1000;
/// Default of `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1024;

/// Lingering close: the longest time spent discarding a client's unread input.
const LINGER_TOTAL: Duration = Duration::from_secs(10);
/// Lingering close: stop when the client sends nothing for this long.
const LINGER_IDLE: Duration = Duration::from_secs(2);
/// Lingering close: the most input discarded (a refused body larger than this is cut off).
const LINGER_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Pause after an accept error that is not about one connection (e.g. out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);

/// The response type of a handler.
pub type HttpResponse = Response<Full<Bytes>>;

/// What serves one request: the request and the peer address in, a response out.
pub trait Handler: Clone + Send + Sync + Unpin + 'static {
    /// Answers `req` from `peer`.
    fn call(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = HttpResponse> + Send>>;
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

/// Accepts connections on `listener` until `stop` turns true, then waits for the open
/// connections to finish (they are told to close after their current request).
pub async fn run<H: Handler>(
    listener: TcpListener,
    limits: Limits,
    handler: H,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let cap = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(cap as usize));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stopped(&mut stop) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // A connection that failed before we took it is its client's problem; anything
                // else (out of file descriptors) gets a short pause instead of a busy loop.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionRefused
                ) {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(
            tcp,
            peer,
            builder.clone(),
            limits.max_requests_per_connection.max(1),
            handler.clone(),
            stop.clone(),
            permit,
        ));
    }
    // Every connection holds a permit until it is closed: all of them back means all done.
    let _ = permits.acquire_many(cap).await;
    Ok(())
}

/// Serves one connection, then closes it with a lingering close.
async fn connection<H: Handler>(
    tcp: TcpStream,
    peer: SocketAddr,
    builder: http1::Builder,
    max_requests: u32,
    handler: H,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let served = Arc::new(AtomicU32::new(0));
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let n = served.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let answer = handler.call(req, peer);
        let boxed: Pin<Box<dyn Future<Output = Result<HttpResponse, Infallible>> + Send>> =
            Box::pin(async move {
                let mut resp = answer.await;
                if n >= max_requests {
                    resp.headers_mut()
                        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok(resp)
            });
        boxed
    });
    let mut conn = builder.serve_connection(TokioIo::new(tcp), service);
    let mut stopping = false;
    let done = loop {
        tokio::select! {
            r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break r,
            () = stopped(&mut stop), if !stopping => {
                Pin::new(&mut conn).graceful_shutdown();
                stopping = true;
            }
        }
    };
    match done {
        Ok(()) => linger(conn.into_parts().io.into_inner()).await,
        // Header-read timeout, malformed request, reset by the client: just close.
        Err(e) => tracing::debug!(error = %e, peer = %peer, "connection ended"),
    }
}

/// Shuts down the write side (the client sees the end of the response), then reads and
/// discards what the client still sends (bounded by [`LINGER_TOTAL`], [`LINGER_IDLE`] and
/// [`LINGER_MAX_BYTES`]) before closing, so that the close does not reset the connection.
pub async fn linger(mut tcp: TcpStream) {
    if tcp.shutdown().await.is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + LINGER_TOTAL;
    let mut buf = vec![0u8; 16 * 1024];
    let mut discarded = 0usize;
    while discarded < LINGER_MAX_BYTES {
        let idle = tokio::time::Instant::now() + LINGER_IDLE;
        let read = tokio::time::timeout_at(deadline.min(idle), tcp.read(&mut buf));
        match read.await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => break,
        }
    }
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
