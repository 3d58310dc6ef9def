//! Prometheus metrics (text exposition format 0.0.4) at `GET /admin/metrics`: the counters of
//! the [`catalogue`], derived from the audit log, so every replica and every edge isolate
//! serves the same totals (`store::repo::metrics`). A scrape first folds audit rows older
//! than [`FOLD_GRACE_SECS`] into the counters (bounded), then reads folded totals and newer
//! rows in one statement. The native host appends its own process metrics (the HTTP request
//! duration histogram) to this text. Access: the admin API key or the read-only
//! `metrics_token`, as a bearer token (RFC 6750 §2.1).

pub mod catalogue;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use prometheus::{Encoder, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::admin_key::presents_key;
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::store::repo::metrics as repo;

/// The path of the metrics on the admin API.
pub const PATH: &str = "/admin/metrics";

/// Audit rows younger than this are read live at each scrape instead of folded, so that a
/// row written by a slow concurrent request is never skipped by a fold.
pub const FOLD_GRACE_SECS: i64 = 60;

/// Most audit rows one scrape folds (maintenance folds the rest).
pub const FOLD_ROWS_PER_SCRAPE: i64 = 20_000;

/// The challenge sent with a 401.
const CHALLENGE: &str = "Bearer realm=\"portcullis-metrics\"";

/// Whether the request carries the admin API key or the metrics token.
pub fn authorized(ctx: &Context, req: &Request<Bytes>) -> bool {
    let cfg = ctx.config();
    [cfg.admin_api_key.as_ref(), cfg.metrics_token.as_ref()]
        .into_iter()
        .flatten()
        .any(|key| presents_key(req.headers(), key))
}

/// The refusal of a request without the admin key or the metrics token.
pub fn unauthorized() -> Error {
    Error::new(
        ErrorCode::Unauthorized,
        "the admin API key or the metrics token is required (Authorization: Bearer <token>)",
    )
    .with_header(header::WWW_AUTHENTICATE, CHALLENGE)
}

/// `GET /admin/metrics`, once [`authorized`] (or from the trusted local CLI).
pub async fn serve(ctx: &Context) -> Result<Response<Bytes>> {
    fold(ctx, FOLD_ROWS_PER_SCRAPE).await?;
    let db = ctx.env().sql.as_ref();
    let tallies = repo::totals(db).await?;
    let providers: Vec<String> = crate::store::repo::providers::list(db)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let text = render(&catalogue::aggregate(&tallies, &providers))?;
    let mut resp = Response::new(Bytes::from(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}

/// Folds audit rows older than the grace period into the counters, at most `max_rows`.
pub async fn fold(ctx: &Context, max_rows: i64) -> Result<repo::Folded> {
    let fold_id = crate::runtime::random_token(ctx.env().rng.as_ref(), 16);
    let before = ctx.now() - FOLD_GRACE_SECS;
    Ok(repo::fold(ctx.env().sql.as_ref(), before, max_rows, &fold_id).await?)
}

/// The exposition text of `samples`, with every counter of the catalogue declared (and the
/// outcome-only counters at 0 for both outcomes until they move), plus `portcullis_build_info`.
pub fn render(samples: &[catalogue::Sample]) -> Result<String> {
    let registry = Registry::new();
    let internal = |e: prometheus::Error| Error::new(ErrorCode::ServerError, e.to_string());
    let mut vecs = Vec::new();
    for counter in catalogue::CATALOGUE {
        let vec = IntCounterVec::new(Opts::new(counter.name, counter.help), counter.labels)
            .map_err(internal)?;
        registry.register(Box::new(vec.clone())).map_err(internal)?;
        match counter.labels {
            [] => {
                vec.with_label_values::<&str>(&[]);
            }
            ["outcome"] => {
                for outcome in ["success", "failure"] {
                    vec.with_label_values(&[outcome]);
                }
            }
            _ => {}
        }
        vecs.push((counter.name, vec));
    }
    for s in samples {
        if let Some((_, vec)) = vecs.iter().find(|(name, _)| *name == s.counter.name) {
            let labels: Vec<&str> = s.labels.iter().map(String::as_str).collect();
            vec.with_label_values(&labels)
                .inc_by(u64::try_from(s.value).unwrap_or(0));
        }
    }
    let build = IntGauge::with_opts(
        Opts::new(
            "portcullis_build_info",
            "The Portcullis version serving the metrics.",
        )
        .const_label("version", env!("CARGO_PKG_VERSION")),
    )
    .map_err(internal)?;
    build.set(1);
    registry.register(Box::new(build)).map_err(internal)?;
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .map_err(internal)?;
    String::from_utf8(out).map_err(|e| Error::new(ErrorCode::ServerError, e.to_string()))
}
