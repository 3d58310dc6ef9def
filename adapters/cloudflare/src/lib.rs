//! The Cloudflare Workers adapter: the `fetch` event converts a `worker::Request` into the
//! request head and body the core's host layer ([`portcullis_core::host`]) turns into the
//! core's request (body limit, request id, client address from `CF-Connecting-IP`), calls
//! [`Portcullis::handle_any`] and converts the answer back. One server per isolate, started
//! on the first request; a failed start answers 503 and is retried on the next request. The
//! `scheduled` event (the cron trigger in wrangler.toml) runs the core's purge of expired
//! rows (B1, B2). This crate only supplies the runtime seams (D1, KV, fetch, WebCrypto,
//! clock, randomness) and translates types.

mod config;
mod d1;
mod fetcher;
mod kv;
mod runtime;
mod webcrypto;

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method};
use portcullis_core::host::{BodyError, Exchange, RequestBody, StartFailure};
use portcullis_core::{Env, Portcullis};
use worker::{event, Context, Headers};

/// The D1 binding holding the system of record.
const DB_BINDING: &str = "DB";
/// The KV binding holding caches.
const KV_BINDING: &str = "CACHE";

thread_local! {
    /// The started server of this isolate (a Worker isolate runs one thread).
    static SERVER: RefCell<Option<Portcullis>> = const { RefCell::new(None) };
}

/// The request is taken as the runtime's own `web_sys::Request`: the `worker` crate's
/// `Request` converts `request.cf` on every request, about 5% of the isolate's time per
/// token in the profile (BENCHMARKS.md), and Portcullis never reads it.
#[event(fetch)]
async fn fetch(
    req: web_sys::Request,
    env: worker::Env,
    _ctx: Context,
) -> worker::Result<worker::Response> {
    let started = worker::Date::now().as_millis();
    let head = head(&req);
    let exchange = Exchange::begin(&head, &runtime::JsRng);
    let resp = match read_body(req, &head).await {
        Ok(body) => {
            let ip = client_ip(&head.headers);
            let req = exchange.request(head, body, ip);
            match server(&env).await {
                Ok(server) => server.handle_any(req).await,
                Err(failure) => failure.response(),
            }
        }
        Err(e) => e.response(),
    };
    let elapsed = worker::Date::now().as_millis().saturating_sub(started);
    let (resp, log) = exchange.finish(resp, elapsed as f64);
    worker::console_log!("{log}");
    to_worker(resp)
}

/// The cron trigger (`[triggers] crons` in wrangler.toml): one bounded purge of expired rows
/// and of audit events past retention (`portcullis_core::maintenance`). What is left over
/// waits for the next trigger; failures go to the Worker's logs.
#[event(scheduled)]
async fn cron(_event: worker::ScheduledEvent, env: worker::Env, _ctx: worker::ScheduleContext) {
    let server = match server(&env).await {
        Ok(server) => server,
        Err(_) => return worker::console_error!("portcullis: scheduled purge skipped"),
    };
    match portcullis_core::maintenance::run(&server).await {
        Ok(report) => worker::console_log!(
            "portcullis: purge deleted {} rows (complete: {}) {:?}",
            report.total(),
            report.complete,
            report.deleted
        ),
        Err(e) => worker::console_error!("portcullis: purge failed: {e}"),
    }
}

/// The isolate's server, started now if there is none yet. A failure is logged and not
/// cached: the next request tries again (storage may have been unavailable for a moment).
async fn server(env: &worker::Env) -> Result<Portcullis, StartFailure> {
    if let Some(server) = SERVER.with(|s| s.borrow().clone()) {
        return Ok(server);
    }
    let server = start(env).await.inspect_err(|failure| {
        worker::console_error!("portcullis: {failure}");
    })?;
    // Two requests arriving together may both start one; the first stored wins.
    Ok(SERVER.with(|s| s.borrow_mut().get_or_insert(server).clone()))
}

/// Reads the configuration, connects the bindings and starts the core.
async fn start(env: &worker::Env) -> Result<Portcullis, StartFailure> {
    let (settings, crypto) = config::load(env)?;
    let binding = |name: &str, what: &str, e: worker::Error| {
        StartFailure::Binding(format!(
            "the {what} binding `{name}` is missing (see wrangler.toml): {e}"
        ))
    };
    let sql = env
        .d1(DB_BINDING)
        .map_err(|e| binding(DB_BINDING, "D1 database", e))?;
    let kv = env
        .kv(KV_BINDING)
        .map_err(|e| binding(KV_BINDING, "KV namespace", e))?;
    let core_env = Env {
        clock: Arc::new(runtime::WorkersClock),
        rng: Arc::new(runtime::JsRng),
        sql: Arc::new(d1::D1Store::new(sql)),
        kv: Arc::new(kv::KvCache::new(kv)),
        crypto,
        fetcher: Arc::new(fetcher::WorkersFetcher::new(&settings)),
    };
    let server = Portcullis::start(core_env, settings).await?;
    // Bring wrangler's migration ledger in line with the core's, so `wrangler d1 migrations
    // apply` and the core's own migration on start agree whichever runs first.
    let ledger = portcullis_core::store::migrations::wrangler_ledger_statements();
    if let Err(e) = server.env().sql.batch(&ledger).await {
        worker::console_warn!("portcullis: could not update d1_migrations: {e}");
    }
    Ok(server)
}

/// The request head: method, the absolute URL (the host layer takes `Host` from it) and the
/// headers. JavaScript header values are byte strings: each character is one byte.
fn head(req: &web_sys::Request) -> Parts {
    let method = Method::from_bytes(req.method().as_bytes()).unwrap_or(Method::GET);
    let url = req.url();
    let mut head = http::Request::new(()).into_parts().0;
    head.method = method;
    head.uri = url.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    for (name, value) in Headers(req.headers()).entries() {
        let bytes: Vec<u8> = value
            .chars()
            .map(|c| u8::try_from(c).unwrap_or(b'?'))
            .collect();
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&bytes),
        ) {
            head.headers.append(n, v);
        }
    }
    head
}

/// Streams the body in under the core's limit.
async fn read_body(req: web_sys::Request, head: &Parts) -> Result<Bytes, BodyError> {
    let mut buf = RequestBody::new(&head.headers)?;
    if let Some(body) = req.body() {
        let mut stream = worker::ByteStream::from(body);
        while let Some(chunk) = stream.next().await {
            buf.push(&chunk.map_err(|_| BodyError::Unreadable)?)?;
        }
    }
    Ok(buf.finish())
}

/// The client address Cloudflare's edge puts in `CF-Connecting-IP` (the Worker sees no
/// socket). Clients cannot forge it on Cloudflare: the edge overwrites it.
fn client_ip(headers: &http::HeaderMap) -> Option<IpAddr> {
    let v = headers.get("cf-connecting-ip")?.to_str().ok()?;
    v.trim().parse().ok()
}

/// Converts the answer; `append` keeps repeated headers (Set-Cookie) apart.
fn to_worker(resp: http::Response<Bytes>) -> worker::Result<worker::Response> {
    let (parts, body) = resp.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            headers.append(name.as_str(), v)?;
        }
    }
    let builder = worker::ResponseBuilder::new()
        .with_status(parts.status.as_u16())
        .with_headers(headers);
    Ok(if body.is_empty() {
        builder.empty()
    } else {
        builder.fixed(body.to_vec())
    })
}
