//! The Spin HTTP entry point: hands the Spin request to the core's host layer
//! ([`portcullis_core::host`]: body limit, request id, the normalised request with its `Host`
//! header, the access-log line), starts Portcullis on this instance's seams (Spin makes an
//! instance per request; migrations and seeds are idempotent and cheap when up to date),
//! calls `Portcullis::handle_any`, then runs the core's amortised purge when it is due.
//! No OAuth logic lives here.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use portcullis_core::crypto::rustcrypto::RustCrypto;
use portcullis_core::host::{self, settings, Exchange, Runtime, StartFailure};
use portcullis_core::{Clock, Config, Env, Portcullis};
use spin_sdk::http::Request;

use crate::fetcher::SpinFetcher;
use crate::runtime::{SystemClock, WasiRng};
use crate::store_kv::SpinKv;
use crate::store_sqlite::SpinSqlite;

/// The Spin SQLite database and key-value store the component uses (spin.toml).
const STORE_LABEL: &str = "default";

#[spin_sdk::http_service]
async fn handle(req: Request) -> http::Response<Full<Bytes>> {
    let started = SystemClock.now_millis();
    let (head, body) = req.into_parts();
    let exchange = Exchange::begin(&head, &WasiRng);
    let resp = match host::body::read(&head.headers, body).await {
        Ok(body) => {
            let ip = client_ip(&head.headers);
            serve(exchange.request(head, body, ip)).await
        }
        Err(e) => e.response(),
    };
    let elapsed = SystemClock.now_millis().saturating_sub(started);
    let (resp, log) = exchange.finish(resp, elapsed as f64);
    // One line per request on the component's log (H3: no query, headers or bodies).
    eprintln!("portcullis: {log}");
    resp.map(Full::new)
}

/// The client address Spin reports (`spin-client-addr`, `ip:port`).
fn client_ip(headers: &http::HeaderMap) -> Option<IpAddr> {
    let v = headers.get("spin-client-addr")?.to_str().ok()?;
    v.parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| v.parse::<IpAddr>())
        .ok()
}

async fn serve(req: http::Request<Bytes>) -> http::Response<Bytes> {
    let (cfg, env) = match seams().await {
        Ok(seams) => seams,
        Err(failure) => return unavailable(&failure),
    };
    // Test builds: the SQL bridge runs on the bare store, without starting a server, so it
    // works whatever the data under test (the conformance suite stores placeholder keys a
    // server would refuse to load on its per-request start).
    #[cfg(feature = "sql-bridge")]
    if req.uri().path() == portcullis_core::sql_bridge::PATH {
        let key = cfg.admin_api_key.as_ref();
        return portcullis_core::sql_bridge::serve_store(env.sql.as_ref(), key, req).await;
    }
    let server = match Portcullis::start(env, cfg).await {
        Ok(server) => server,
        Err(e) => return unavailable(&e.into()),
    };
    let resp = server.handle_any(req).await;
    // Spin has no cron here: at most one bounded purge per storage.purge_interval_secs,
    // remembered in the key-value store, carried by whichever request comes (B1, B2).
    portcullis_core::maintenance::run_if_due(&server).await;
    resp
}

/// Logs why the server could not start and answers 503 without detail: the next request
/// tries again.
fn unavailable(failure: &StartFailure) -> http::Response<Bytes> {
    eprintln!("portcullis: {failure}");
    failure.response()
}

/// The configuration (Spin variables, [`settings::load_vars`]) and this instance's seams.
async fn seams() -> Result<(Config, Env), StartFailure> {
    let mut vars = HashMap::new();
    for name in Runtime::Spin.variables() {
        if let Ok(v) = spin_sdk::variables::get(&name).await {
            vars.insert(name, v);
        }
    }
    let cfg = settings::load_vars(Runtime::Spin, |name| vars.get(name).cloned())?;
    let binding = |what: &str, e: &dyn std::fmt::Display| {
        StartFailure::Binding(format!("opening Spin {what} `{STORE_LABEL}`: {e}"))
    };
    let sql = SpinSqlite::open(STORE_LABEL)
        .await
        .map_err(|e| binding("SQLite", &e))?;
    let kv = SpinKv::open(STORE_LABEL)
        .await
        .map_err(|e| binding("key-value", &e))?;
    let env = Env {
        clock: Arc::new(SystemClock),
        rng: Arc::new(WasiRng),
        sql: Arc::new(sql),
        kv: Arc::new(kv),
        crypto: Arc::new(RustCrypto),
        fetcher: Arc::new(SpinFetcher::new(&cfg)),
    };
    Ok((cfg, env))
}
