//! The Spin HTTP entry point: maps the Spin request to an `http::Request<Bytes>` (body
//! limited to the core's 64 KiB, the client address from `spin-client-addr`, a request id),
//! starts Portcullis on this instance's seams (Spin makes an instance per request; migrations
//! and seeds are idempotent and cheap when up to date), calls `Portcullis::handle_any` and
//! maps the response back, then runs the core's amortised purge when it is due. No OAuth
//! logic lives here.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use portcullis_core::crypto::rustcrypto::RustCrypto;
use portcullis_core::error::{Error, ErrorCode};
use portcullis_core::http_util::{error_json, MAX_BODY_BYTES};
use portcullis_core::{Env, Portcullis, RemoteAddr, RequestId};
use spin_sdk::http::Request;

use crate::fetcher::SpinFetcher;
use crate::runtime::{random_id, SystemClock, WasiRng};
use crate::store_kv::SpinKv;
use crate::store_sqlite::SpinSqlite;

/// The Spin SQLite database and key-value store the component uses (spin.toml).
const STORE_LABEL: &str = "default";

#[spin_sdk::http_service]
async fn handle(req: Request) -> http::Response<Full<Bytes>> {
    let id = random_id();
    let mut resp = match serve(req, &id).await {
        Ok(resp) => resp,
        Err(resp) => resp,
    };
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp.map(Full::new)
}

fn problem(code: ErrorCode, message: impl Into<String>) -> http::Response<Bytes> {
    error_json(&Error::new(code, message))
}

/// The client address Spin reports (`spin-client-addr`, `ip:port`).
fn client_ip(headers: &http::HeaderMap) -> Option<IpAddr> {
    let v = headers.get("spin-client-addr")?.to_str().ok()?;
    v.parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| v.parse::<IpAddr>())
        .ok()
}

async fn serve(req: Request, id: &str) -> Result<http::Response<Bytes>, http::Response<Bytes>> {
    let (mut parts, body) = req.into_parts();
    let too_large = || {
        problem(
            ErrorCode::PayloadTooLarge,
            format!(
                "the request body is larger than {} KiB",
                MAX_BODY_BYTES / 1024
            ),
        )
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large())
        }
        Err(_) => {
            return Err(problem(
                ErrorCode::InvalidRequest,
                "the request body could not be read",
            ))
        }
    };
    if let Some(ip) = client_ip(&parts.headers) {
        parts.extensions.insert(RemoteAddr(ip));
    }
    parts.extensions.insert(RequestId(id.to_owned()));
    let req = http::Request::from_parts(parts, body);

    let (cfg, env) = seams().await?;
    // Test builds: the SQL bridge runs on the bare store, without starting a server, so it
    // works whatever the data under test (the conformance suite stores placeholder keys a
    // server would refuse to load on its per-request start).
    #[cfg(feature = "sql-bridge")]
    if req.uri().path() == portcullis_core::sql_bridge::PATH {
        return Ok(portcullis_core::sql_bridge::serve_store(
            env.sql.as_ref(),
            cfg.admin_api_key.as_ref(),
            req,
        )
        .await);
    }
    let server = Portcullis::start(env, cfg)
        .await
        .map_err(|e| unavailable("start refused", &e))?;
    let resp = server.handle_any(req).await;
    // Spin has no cron here: at most one bounded purge per storage.purge_interval_secs,
    // remembered in the key-value store, carried by whichever request comes (B1, B2).
    portcullis_core::maintenance::run_if_due(&server).await;
    Ok(resp)
}

/// Logs a configuration, storage or start failure in full and answers 503 without detail
/// (as the Worker does): the next request tries again.
fn unavailable(what: &str, e: &dyn std::fmt::Display) -> http::Response<Bytes> {
    eprintln!("portcullis: {what}: {e}");
    problem(
        ErrorCode::TemporarilyUnavailable,
        "the server could not start (see the component log)",
    )
}

/// The configuration and this instance's Spin seams. A broken configuration or an
/// unreachable store is the operator's problem: logged in full, answered without detail.
async fn seams() -> Result<(portcullis_core::Config, Env), http::Response<Bytes>> {
    let cfg =
        crate::settings::load(|name| async move { spin_sdk::variables::get(&name).await.ok() })
            .await
            .map_err(|e| unavailable("configuration refused", &e))?;
    if cfg.cimd.extra_ca_file.is_some() {
        return Err(unavailable(
            "configuration refused",
            &"cimd.extra_ca_file: not supported on Spin (the component has no filesystem; \
              outbound TLS uses the host's trust store)",
        ));
    }
    let sql = SpinSqlite::open(STORE_LABEL)
        .await
        .map_err(|e| unavailable("opening Spin SQLite", &e))?;
    let kv = SpinKv::open(STORE_LABEL)
        .await
        .map_err(|e| unavailable("opening Spin key-value", &e))?;
    let env = Env {
        clock: Arc::new(SystemClock),
        rng: Arc::new(WasiRng),
        sql: Arc::new(sql),
        kv: Arc::new(kv),
        crypto: Arc::new(RustCrypto),
        fetcher: Arc::new(SpinFetcher {
            allow_loopback: cfg.cimd.allow_loopback,
        }),
    };
    Ok((cfg, env))
}
