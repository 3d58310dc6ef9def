//! Outbound HTTP on Workers (client ID metadata documents, client and IdP JWKS) through the
//! runtime's `fetch`, under the core's URL-level SSRF policy ([`ssrf::check_url`]: https only,
//! no userinfo or fragment, IP literals in special-purpose ranges refused, loopback only when
//! `cimd.allow_loopback`). Redirects are not followed (S4), no cookies or inbound headers are
//! sent (S8), the body is limited while it streams in (S5), and a request is abandoned after
//! [`TIMEOUT_MS`].
//!
//! Unlike the native host there is no DNS step to check: a Worker cannot see the addresses
//! a name resolves to. Cloudflare's `fetch` egresses to the public Internet only, so a
//! name pointing at a private address does not reach the operator's network.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use portcullis_core::runtime::{FetchError, FetchResponse, Fetcher};
use portcullis_core::ssrf;
use worker::{AbortController, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

/// Total time allowed for one fetch, milliseconds.
pub const TIMEOUT_MS: u64 = 5_000;

/// `fetch` behind the core's [`Fetcher`] seam.
#[derive(Debug, Clone, Copy)]
pub struct WorkersFetcher {
    allow_loopback: bool,
}

impl WorkersFetcher {
    /// A fetcher; `allow_loopback` only for tests with a loopback issuer.
    pub fn new(allow_loopback: bool) -> Self {
        Self { allow_loopback }
    }

    async fn fetch(&self, url: &url::Url, max_bytes: usize) -> Result<FetchResponse, FetchError> {
        let headers = Headers::new();
        let header = |name: &str, value: &str| {
            headers
                .set(name, value)
                .map_err(|e| FetchError::Transport(e.to_string()))
        };
        header("accept", "application/json")?;
        header(
            "user-agent",
            concat!("portcullis/", env!("CARGO_PKG_VERSION")),
        )?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get)
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        let req = Request::new_with_init(url.as_str(), &init)
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        let controller = AbortController::default();
        let send = Fetch::Request(req);
        let signal = controller.signal();
        let call = async {
            let mut resp = send
                .send_with_signal(&signal)
                .await
                .map_err(|e| FetchError::Transport(e.to_string()))?;
            let header = |name: &str| resp.headers().get(name).ok().flatten();
            let declared = header("content-length").and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max_bytes as u64) {
                return Err(FetchError::TooLarge);
            }
            let content_type = header("content-type");
            let cache_control = header("cache-control");
            let status = resp.status_code();
            let mut body = Vec::new();
            if status != 204 && status != 304 {
                let mut stream = resp
                    .stream()
                    .map_err(|e| FetchError::Transport(e.to_string()))?;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| FetchError::Transport(e.to_string()))?;
                    if body.len() + chunk.len() > max_bytes {
                        return Err(FetchError::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
            }
            Ok(FetchResponse {
                status,
                content_type,
                cache_control,
                body,
            })
        };
        let timer = worker::Delay::from(Duration::from_millis(TIMEOUT_MS));
        futures_util::pin_mut!(call);
        match select(call, timer).await {
            Either::Left((result, _)) => result,
            Either::Right(((), _)) => {
                controller.abort();
                Err(FetchError::Timeout)
            }
        }
    }
}

#[async_trait(?Send)]
impl Fetcher for WorkersFetcher {
    async fn get(&self, url: &url::Url, max_bytes: usize) -> Result<FetchResponse, FetchError> {
        ssrf::check_url(url, self.allow_loopback)
            .map_err(|e| FetchError::Forbidden(e.to_string()))?;
        self.fetch(url, max_bytes).await
    }
}
