//! The Cloudflare Workers adapter: the `fetch` event converts a `worker::Request` into an
//! `http::Request<Bytes>` (body limit, client address from `CF-Connecting-IP`, request id),
//! calls [`Portcullis::handle_any`] and converts the answer back. One server per isolate,
//! started on the first request; a failed start answers 503 and is retried on the next
//! request. The `scheduled` event (the cron trigger in wrangler.toml) runs the core's purge
//! of expired rows (B1, B2). Everything OAuth lives in portcullis-core; this crate only
//! supplies the runtime seams (D1, KV, fetch, WebCrypto, clock, randomness) and maps
//! configuration.

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
use portcullis_core::error::{Error, ErrorCode};
use portcullis_core::{Env, Portcullis, RemoteAddr, RequestId, Rng as _};
use worker::{event, Context, Headers, Method};

/// Largest request body accepted (G2), as on the native host.
pub const MAX_BODY: usize = 64 * 1024;

/// The D1 binding holding the system of record.
const DB_BINDING: &str = "DB";
/// The KV binding holding caches.
const KV_BINDING: &str = "CACHE";

thread_local! {
    /// The started server of this isolate (a Worker isolate runs one thread).
    static SERVER: RefCell<Option<Portcullis>> = const { RefCell::new(None) };
}

#[event(fetch)]
async fn fetch(
    req: worker::Request,
    env: worker::Env,
    _ctx: Context,
) -> worker::Result<worker::Response> {
    let id = request_id();
    let method = req.method();
    let path = req.path();
    let started = worker::Date::now().as_millis();
    let resp = match to_http(req, &id).await {
        Ok(req) => match server(&env).await {
            Ok(server) => server.handle_any(req).await,
            Err(message) => unavailable(&message),
        },
        Err(resp) => resp,
    };
    // One line per request, without query strings, headers or bodies (H3).
    worker::console_log!(
        "{} {} {} {}ms request_id={}",
        method.as_ref(),
        path,
        resp.status().as_u16(),
        worker::Date::now().as_millis().saturating_sub(started),
        id
    );
    to_worker(resp, &id)
}

/// The cron trigger (`[triggers] crons` in wrangler.toml): one bounded purge of expired rows
/// and of audit events past retention (`portcullis_core::maintenance`). What is left over
/// waits for the next trigger; failures go to the Worker's logs.
#[event(scheduled)]
async fn cron(_event: worker::ScheduledEvent, env: worker::Env, _ctx: worker::ScheduleContext) {
    let server = match server(&env).await {
        Ok(server) => server,
        Err(message) => {
            worker::console_error!("portcullis: scheduled purge skipped: {message}");
            return;
        }
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

/// The isolate's server, started now if there is none yet. A failure is not cached: the
/// next request tries again (storage may have been unavailable for a moment).
async fn server(env: &worker::Env) -> Result<Portcullis, String> {
    if let Some(server) = SERVER.with(|s| s.borrow().clone()) {
        return Ok(server);
    }
    let server = start(env).await?;
    // Two requests arriving together may both start one; the first stored wins.
    Ok(SERVER.with(|s| s.borrow_mut().get_or_insert(server).clone()))
}

/// Reads the configuration, connects the bindings and starts the core.
async fn start(env: &worker::Env) -> Result<Portcullis, String> {
    // The reason goes to the Worker's logs only: clients learn nothing about the settings.
    let settings = config::load(env).map_err(|e| {
        worker::console_error!("portcullis: configuration refused: {e}");
        "the server is not configured correctly; see the Worker logs".to_owned()
    })?;
    let sql = d1::D1Store::new(
        env.d1(DB_BINDING)
            .map_err(|e| binding_error(DB_BINDING, "D1 database", &e))?,
    );
    let kv = kv::KvCache::new(
        env.kv(KV_BINDING)
            .map_err(|e| binding_error(KV_BINDING, "KV namespace", &e))?,
    );
    let crypto = settings.crypto.provider();
    let fetcher = fetcher::WorkersFetcher::new(settings.core.cimd.allow_loopback);
    let core_env = Env {
        clock: Arc::new(runtime::WorkersClock),
        rng: Arc::new(runtime::JsRng),
        sql: Arc::new(sql),
        kv: Arc::new(kv),
        crypto,
        fetcher: Arc::new(fetcher),
    };
    let server = Portcullis::start(core_env, settings.core)
        .await
        .map_err(|e| {
            worker::console_error!("portcullis: start failed: {e}");
            "the server could not start; see the Worker logs".to_owned()
        })?;
    // Bring wrangler's migration ledger in line with the core's (see d1::record_applied).
    if let Err(e) = d1::record_applied(&server).await {
        worker::console_warn!("portcullis: could not update d1_migrations: {e}");
    }
    Ok(server)
}

fn binding_error(name: &str, what: &str, e: &worker::Error) -> String {
    worker::console_error!(
        "portcullis: the {what} binding `{name}` is missing (see wrangler.toml): {e}"
    );
    "the server is not configured correctly; see the Worker logs".to_owned()
}

/// A fresh request id (12 random bytes, base64url).
fn request_id() -> String {
    let mut buf = [0u8; 12];
    runtime::JsRng.fill(&mut buf);
    portcullis_core::crypto::b64(buf)
}

/// Converts the Worker request, reading the body up to [`MAX_BODY`] (413 beyond it).
async fn to_http(
    mut req: worker::Request,
    id: &str,
) -> Result<http::Request<Bytes>, http::Response<Bytes>> {
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let url = req
        .url()
        .map_err(|_| bad_request("the request URL could not be read"))?;
    let mut target = url.path().to_owned();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let mut builder = http::Request::builder()
        .method(http_method(&req.method()))
        .uri(target);
    for (name, value) in req.headers().entries() {
        builder = builder.header(name, value);
    }
    let ip = client_ip(req.headers());
    let body = match req.method() {
        Method::Get | Method::Head | Method::Options => Vec::new(),
        _ => req
            .bytes()
            .await
            .map_err(|_| bad_request("the request body could not be read"))?,
    };
    if body.len() > MAX_BODY {
        return Err(too_large());
    }
    let mut req = builder
        .body(Bytes::from(body))
        .map_err(|_| bad_request("the request could not be parsed"))?;
    if let Some(ip) = ip {
        req.extensions_mut().insert(RemoteAddr(ip));
    }
    req.extensions_mut().insert(RequestId(id.to_owned()));
    Ok(req)
}

/// The client address Cloudflare's edge puts in `CF-Connecting-IP` (the Worker sees no
/// socket). Clients cannot forge it on Cloudflare: the edge overwrites it.
fn client_ip(headers: &Headers) -> Option<IpAddr> {
    headers
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse().ok())
}

fn http_method(m: &Method) -> http::Method {
    http::Method::from_bytes(m.as_ref().as_bytes()).unwrap_or(http::Method::GET)
}

/// Converts the core's answer, adding the request id.
fn to_worker(resp: http::Response<Bytes>, id: &str) -> worker::Result<worker::Response> {
    let (parts, body) = resp.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            // `append` keeps repeated headers (Set-Cookie) apart.
            headers.append(name.as_str(), v)?;
        }
    }
    headers.set("x-request-id", id)?;
    let builder = worker::ResponseBuilder::new()
        .with_status(parts.status.as_u16())
        .with_headers(headers);
    Ok(if body.is_empty() {
        builder.empty()
    } else {
        builder.fixed(body.to_vec())
    })
}

fn too_large() -> http::Response<Bytes> {
    portcullis_core::http_util::error_json(&Error::new(
        ErrorCode::PayloadTooLarge,
        "the request body is larger than 64 KiB",
    ))
}

fn bad_request(message: &str) -> http::Response<Bytes> {
    portcullis_core::http_util::error_json(&Error::new(ErrorCode::InvalidRequest, message))
}

/// 503 problem details for a server that could not start (retried on the next request).
fn unavailable(message: &str) -> http::Response<Bytes> {
    portcullis_core::http_util::error_json(&Error::new(ErrorCode::TemporarilyUnavailable, message))
}
