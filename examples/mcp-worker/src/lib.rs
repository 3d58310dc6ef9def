//! An MCP server on Cloudflare Workers protected by `portcullis-resource-server`: the crate's
//! tower layer (RFC 9728 metadata, RFC 6750 / RFC 9449 §7 challenges, RFC 9068 verification,
//! per-tool scopes) around a minimal MCP endpoint ([`mcp`]). The issuer's metadata and JWKS
//! are fetched with the Worker's `fetch` and cached per isolate (the layer lives in a static,
//! built on the first request). Two vars: `MCP_AUTH_ISSUER` and `MCP_RESOURCE_URL`.

mod mcp;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use portcullis_resource_server::layer::ResourceServerLayer;
use portcullis_resource_server::{Clock, Config, FetchError, HttpFetch, Verifier};
use tower_layer::Layer as _;
use tower_service::Service as _;
use worker::{event, Context, Env, Fetch, Method, Request, Response, Result};

/// Largest metadata or JWKS document accepted.
const MAX_DOCUMENT: usize = 512 * 1024;

/// `GET` through the Workers runtime's `fetch`: 2xx only, size-capped.
struct WorkersFetch;

#[async_trait::async_trait(?Send)]
impl HttpFetch for WorkersFetch {
    async fn get(&self, url: &str) -> std::result::Result<Vec<u8>, FetchError> {
        let err = |e: worker::Error| FetchError(format!("GET {url}: {e}"));
        let mut req_init = worker::RequestInit::new();
        req_init.with_method(Method::Get);
        let headers = worker::Headers::new();
        headers.set("accept", "application/json").map_err(err)?;
        req_init.with_headers(headers);
        let req = Request::new_with_init(url, &req_init).map_err(err)?;
        let mut res = Fetch::Request(req).send().await.map_err(err)?;
        if !(200..300).contains(&res.status_code()) {
            return Err(FetchError(format!(
                "GET {url}: status {}",
                res.status_code()
            )));
        }
        let body = res.bytes().await.map_err(err)?;
        if body.len() > MAX_DOCUMENT {
            return Err(FetchError(format!("GET {url}: the document is too large")));
        }
        Ok(body)
    }
}

/// `Date.now()` (`SystemTime::now()` panics on wasm32-unknown-unknown).
struct WorkersClock;

impl Clock for WorkersClock {
    fn now(&self) -> i64 {
        i64::try_from(worker::Date::now().as_millis() / 1000).unwrap_or(i64::MAX)
    }
}

/// The layer, built once per isolate: its verifier caches the issuer's keys.
static LAYER: OnceLock<ResourceServerLayer> = OnceLock::new();

fn layer(env: &Env) -> Result<&'static ResourceServerLayer> {
    if let Some(l) = LAYER.get() {
        return Ok(l);
    }
    let issuer = env.var("MCP_AUTH_ISSUER")?.to_string();
    let resource = env.var("MCP_RESOURCE_URL")?.to_string();
    let config = Config::new(&issuer, &resource)
        .map_err(|e| worker::Error::RustError(e.to_string()))?
        .required_scopes(["mcp:read"])
        .tool("whoami", ["mcp:read"])
        .tool("write_note", ["mcp:write"]);
    let verifier = Verifier::new(config, Arc::new(WorkersFetch), Arc::new(WorkersClock));
    Ok(LAYER.get_or_init(|| ResourceServerLayer::new(Arc::new(verifier))))
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let layer = layer(&env)?;
    // worker::Request -> http::Request (the layer and the MCP handler are runtime-agnostic).
    let mut builder = http::Request::builder()
        .method(req.method().as_ref())
        .uri(req.url()?.as_str());
    for (name, value) in req.headers() {
        builder = builder.header(name, value);
    }
    let body = req.bytes().await?;
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| worker::Error::RustError(e.to_string()))?;

    let mcp = tower::service_fn(|req: http::Request<Full<Bytes>>| async move {
        let (parts, body) = req.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Ok::<_, std::convert::Infallible>(mcp::handle(&parts, &bytes))
    });
    let response = match layer.layer(mcp).call(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };

    // http::Response -> worker::Response.
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let headers = worker::Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            headers.append(name.as_str(), v)?;
        }
    }
    Ok(Response::from_bytes(bytes.to_vec())?
        .with_status(parts.status.as_u16())
        .with_headers(headers))
}
