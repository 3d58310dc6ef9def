//! An MCP server as a Spin component protected by `portcullis-resource-server`: the crate's
//! tower layer (RFC 9728 metadata, RFC 6750 / RFC 9449 §7 challenges, RFC 9068 verification,
//! per-tool scopes) around the same minimal MCP endpoint as the Worker example. The issuer's
//! metadata and JWKS are fetched with Spin's outbound HTTP (`allowed_outbound_hosts` must
//! name the issuer) and, since Spin makes an instance per request, cached across requests in
//! the `default` key-value store. Two variables: `mcp_auth_issuer`, `mcp_resource_url`.

#[path = "../../mcp-worker/src/mcp.rs"]
mod mcp;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use portcullis_resource_server::layer::ResourceServerLayer;
use portcullis_resource_server::{Clock, Config, FetchError, HttpFetch, Verifier};
use spin_sdk::key_value::Store;
use tower_layer::Layer as _;
use tower_service::Service as _;

/// Largest metadata or JWKS document accepted, and largest request body.
const MAX_DOCUMENT: usize = 512 * 1024;
const MAX_BODY: usize = 4 * 1024 * 1024;
/// How long a cached document is used before it is fetched again (the crate's own key-cache
/// age), and the shortest time between two fetches of one URL (its refetch floor).
const MAX_AGE: u64 = 3600;
const FLOOR: u64 = 10;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The system clock (WASI wall clock).
struct WasiClock;

impl Clock for WasiClock {
    fn now(&self) -> i64 {
        i64::try_from(now()).unwrap_or(i64::MAX)
    }
}

/// `GET` through Spin's outbound HTTP, with the answers kept in the key-value store as
/// `fetched-at (8 bytes, big-endian) ‖ body`. An instance's first request for a URL is served
/// from the store while fresh; a second one in the same instance means the verifier wants new
/// keys (an unknown `kid`), which are fetched unless the stored copy is under 10 s old.
#[derive(Default)]
struct SpinFetch {
    asked: Mutex<HashSet<String>>,
}

async fn stored(key: &str) -> Option<(u64, Vec<u8>)> {
    let store = Store::open_default().await.ok()?;
    let raw = store.get(key).await.ok()??;
    let at = u64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
    Some((at, raw[8..].to_vec()))
}

async fn fetch(url: &str) -> Result<Vec<u8>, FetchError> {
    let err = |e: &dyn std::fmt::Display| FetchError(format!("GET {url}: {e}"));
    let req = http::Request::get(url)
        .header("accept", "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|e| err(&e))?;
    let res = spin_sdk::http::send(req).await.map_err(|e| err(&e))?;
    if !res.status().is_success() {
        return Err(FetchError(format!("GET {url}: status {}", res.status())));
    }
    let body = Limited::new(res.into_body(), MAX_DOCUMENT)
        .collect()
        .await
        .map_err(|e| err(&e))?;
    Ok(body.to_bytes().to_vec())
}

#[async_trait::async_trait(?Send)]
impl HttpFetch for SpinFetch {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let key = format!("mcp-example-doc:{url}");
        let again = !self
            .asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url.to_owned());
        let now = now();
        if let Some((at, body)) = stored(&key).await {
            let age = now.saturating_sub(at);
            if age < FLOOR || (!again && age < MAX_AGE) {
                return Ok(body);
            }
        }
        let body = fetch(url).await?;
        let mut value = now.to_be_bytes().to_vec();
        value.extend_from_slice(&body);
        // Best effort: a failed write costs a fetch on a later request, nothing else.
        if let Ok(store) = Store::open_default().await {
            let _ = store.set(&key, &value).await;
        }
        Ok(body)
    }
}

async fn variable(name: &str) -> Result<String, String> {
    spin_sdk::variables::get(name)
        .await
        .map_err(|e| format!("variable {name}: {e}"))
}

async fn layer() -> Result<ResourceServerLayer, String> {
    let issuer = variable("mcp_auth_issuer").await?;
    let resource = variable("mcp_resource_url").await?;
    let config = Config::new(&issuer, &resource)
        .map_err(|e| e.to_string())?
        .required_scopes(["mcp:read"])
        .tool("whoami", ["mcp:read"])
        .tool("write_note", ["mcp:write"]);
    let verifier = Verifier::new(config, Arc::new(SpinFetch::default()), Arc::new(WasiClock));
    Ok(ResourceServerLayer::new(Arc::new(verifier)))
}

fn plain(status: http::StatusCode, text: &str) -> http::Response<Full<Bytes>> {
    let mut res = http::Response::new(Full::new(Bytes::from(text.to_owned())));
    *res.status_mut() = status;
    res
}

#[spin_sdk::http_service]
async fn handle(req: spin_sdk::http::Request) -> http::Response<Full<Bytes>> {
    let layer = match layer().await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mcp-spin: {e}");
            return plain(http::StatusCode::INTERNAL_SERVER_ERROR, "misconfigured");
        }
    };
    let (head, body) = req.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        return plain(http::StatusCode::BAD_REQUEST, "unreadable body");
    };
    let request = http::Request::from_parts(head, Full::new(body.to_bytes()));
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
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    http::Response::from_parts(parts, Full::new(bytes))
}
