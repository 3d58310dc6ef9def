//! The native HTTP host: two hyper listeners ([`crate::listener`], with connection limits;
//! public → [`Portcullis::handle`], admin → [`Portcullis::handle_admin`]) that convert
//! requests to `http::Request<Bytes>` through the core's host layer ([`host`]: the body limit
//! (G2), the request id, one access-log line per request without query strings, headers or
//! bodies (H3)), add the peer address, and shut down gracefully on SIGTERM or Ctrl-C.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use ipnet::IpNet;
use portcullis_core::error::{Error, ErrorCode};
use portcullis_core::host::{self, BodyError, Exchange};
use portcullis_core::response::error_json;
use portcullis_core::store::MemoryKv;
use portcullis_core::{Clock, Env, Portcullis, Rng};
use tokio::net::TcpListener;

use crate::config::{LogFormat, Settings};
use crate::crypto_ring::RingCrypto;
use crate::fetcher::{FetcherConfig, HttpFetcher};
use crate::listener::{self, HttpResponse, Limits};
use crate::metrics::HttpMetrics;

/// How long a client may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight requests.
const DRAIN: Duration = Duration::from_secs(10);

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
    async fn sleep_ms(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&self, buf: &mut [u8]) {
        // Without OS randomness no secret can be minted safely: stop rather than go on.
        getrandom::getrandom(buf).expect("operating system randomness unavailable");
    }
}

/// Connects storage and assembles the runtime seams for `settings`.
pub async fn build_env(settings: &Settings) -> anyhow::Result<Env> {
    let sql = crate::store::open(&settings.host.database_url)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "database ({}): {e}",
                redact_url(&settings.host.database_url)
            )
        })?;
    let fetcher = HttpFetcher::new(&FetcherConfig::from_config(&settings.core))?;
    Ok(Env {
        clock: Arc::new(SystemClock),
        rng: Arc::new(OsRng),
        sql,
        kv: Arc::new(MemoryKv::default()),
        crypto: Arc::new(RingCrypto::new()),
        fetcher: Arc::new(fetcher),
    })
}

/// Connects storage and starts the core (validation, migrations, seeds, signing key).
pub async fn start(settings: &Settings) -> anyhow::Result<Portcullis> {
    // Refuse unsafe settings before touching storage.
    settings.check(false)?;
    let env = build_env(settings).await?;
    Portcullis::start(env, settings.core.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[derive(Clone)]
struct App {
    server: Portcullis,
    admin: bool,
    proxies: Arc<Vec<IpNet>>,
    metrics: HttpMetrics,
}

impl listener::Handler for App {
    fn call(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = HttpResponse> + Send>> {
        Box::pin(handle(self.clone(), peer, req))
    }
}

/// Serves the public and admin listeners (each with `limits`) until `shutdown` completes,
/// then drains in-flight requests (for at most a few seconds). `trusted_proxies` may set the
/// client address through `X-Forwarded-For` (see [`client_ip`]).
pub async fn serve(
    server: Portcullis,
    public: TcpListener,
    admin: TcpListener,
    trusted_proxies: Vec<IpNet>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let proxies = Arc::new(trusted_proxies);
    let metrics = HttpMetrics::new();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let app = |admin: bool| App {
        server: server.clone(),
        admin,
        proxies: proxies.clone(),
        metrics: metrics.clone(),
    };
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let purge = tokio::spawn(purge_periodically(server.clone(), stop(rx.clone())));
    let public = listener::run(public, limits, app(false), rx.clone());
    let admin = listener::run(admin, limits, app(true), rx);
    let both = async { tokio::try_join!(public, admin).map(|_| ()) };
    tokio::pin!(both);
    tokio::select! {
        r = &mut both => return r,
        () = shutdown => {}
    }
    tracing::info!("shutting down");
    let _ = tx.send(true);
    let drained = async {
        let r = both.await;
        let _ = purge.await;
        r
    };
    match tokio::time::timeout(DRAIN, drained).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("in-flight requests did not finish in time");
            Ok(())
        }
    }
}

/// Purges expired rows every `storage.purge_interval_secs` (B1, B2) until `stop` completes.
/// A purge that has started finishes (it is bounded); storage failures are logged and the
/// next tick tries again. A purge that ran out of its statement budget with dead rows left
/// (a backlog: a busy deployment, a lowered retention) runs again after a second instead
/// of a whole interval (`maintenance::next_purge_in`), so the purge keeps up with any write rate; each of its deletes still
/// lets waiting requests take the writer first.
async fn purge_periodically(server: Portcullis, stop: impl Future<Output = ()>) {
    let every = Duration::from_secs(server.config().storage.purge_interval_secs.max(1) as u64);
    tokio::pin!(stop);
    let mut wait = every;
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
        }
        let report = portcullis_core::maintenance::run(&server)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "storage purge failed"))
            .ok();
        let secs =
            portcullis_core::maintenance::next_purge_in(report.as_ref(), every.as_secs() as i64);
        wait = Duration::from_secs(secs.unsigned_abs());
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Installs the log subscriber on stderr (filter from `PORTCULLIS_LOG` or `RUST_LOG`, else
/// `default_filter`); JSON lines unless `format` says text or stderr is a terminal.
pub fn init_logging(format: Option<LogFormat>, default_filter: &str) {
    use std::io::IsTerminal;
    let filter = std::env::var("PORTCULLIS_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default_filter.into());
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        Some(f) => f == LogFormat::Json,
        None => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}

async fn handle(app: App, peer: SocketAddr, req: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let (head, body) = req.into_parts();
    let exchange = Exchange::begin(&head, &OsRng);
    let resp = match read_body(&head.headers, body).await {
        Ok(bytes) => {
            let ip = client_ip(peer.ip(), &head.headers, &app.proxies);
            let mut req = exchange.request(head, bytes, Some(ip));
            let server = &app.server;
            let metrics_path = app.admin && is_metrics_path(req.uri().path());
            if metrics_path {
                *req.uri_mut() = http::Uri::from_static(portcullis_core::metrics::PATH);
            }
            let process_metrics = &app.metrics;
            let call = async move {
                if !app.admin {
                    return server.handle(req).await;
                }
                let resp = server.handle_admin(req).await;
                if metrics_path && resp.status() == http::StatusCode::OK {
                    // The core's cluster-wide counters, then this process's histogram.
                    resp.map(|core| {
                        let mut text = core.to_vec();
                        text.extend_from_slice(process_metrics.render().as_bytes());
                        Bytes::from(text)
                    })
                } else {
                    resp
                }
            };
            // Every log line the request causes carries its request and trace ids.
            let span = tracing::info_span!(
                "request",
                request_id = %exchange.id(),
                trace_id = %exchange.trace_id()
            );
            // A panic in one request becomes a 500 for that request only.
            match AssertUnwindSafe(tracing::Instrument::instrument(call, span))
                .catch_unwind()
                .await
            {
                Ok(resp) => resp,
                Err(_) => {
                    tracing::error!(request_id = %exchange.id(), "request handler panicked");
                    error_json(&Error::new(ErrorCode::ServerError, "internal error"))
                }
            }
        }
        Err(resp) => resp,
    };
    let (resp, log) = exchange.finish(resp, started.elapsed().as_secs_f64() * 1000.0);
    app.metrics.observe(&log);
    tracing::info!(
        target: "portcullis::access",
        listener = if app.admin { "admin" } else { "public" },
        method = %log.method,
        path = %log.path,
        route = log.route,
        status = log.status,
        latency_ms = log.latency_ms,
        request_id = %log.request_id,
        trace_id = %log.trace_id,
    );
    resp.map(Full::new)
}

/// `/metrics` (the conventional scrape path) or `/admin/metrics`, on the admin listener.
fn is_metrics_path(path: &str) -> bool {
    path == "/metrics" || path == portcullis_core::metrics::PATH
}

/// The client address: the peer, unless the peer is a trusted proxy; then the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy (entries further left can be
/// forged by the client). A malformed entry stops the walk at the last trusted hop.
pub fn client_ip(peer: IpAddr, headers: &http::HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(v) = v.to_str() else {
            return peer;
        };
        hops.extend(v.split(','));
    }
    let mut ip = peer;
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(h) => {
                ip = h;
                if !trusted(&h) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    ip
}

/// Reads the body up to the core's limit ([`host::body::read`]: 413 beyond it, by
/// `Content-Length` or while reading), 408 when it does not arrive within [`BODY_TIMEOUT`].
/// Every refusal carries `Connection: close`: the rest of the body is never read, so the
/// connection cannot carry another request; it ends with a lingering close
/// ([`listener::linger`]) so that a client still sending reads the answer.
async fn read_body<B>(headers: &http::HeaderMap, body: B) -> Result<Bytes, Response<Bytes>>
where
    B: http_body::Body<Data = Bytes>,
{
    let read = tokio::time::timeout(BODY_TIMEOUT, host::body::read(headers, body));
    let read = read.await.unwrap_or(Err(BodyError::TimedOut));
    read.map_err(|e| {
        let mut resp = e.response();
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        resp
    })
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
