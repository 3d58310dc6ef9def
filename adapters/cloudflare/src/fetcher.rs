//! Outbound HTTP on Workers (client ID metadata documents, client and IdP JWKS) through the
//! runtime's `fetch`, with the core's shared fetch rules ([`outbound`]: the URL-level SSRF
//! check, `Accept` and `User-Agent` only (S8), the body limited while it streams in (S5),
//! abandoned after [`outbound::TIMEOUT_MS`]). Redirects are not followed (S4).
//!
//! Unlike the native host there is no DNS step to check: a Worker cannot see the addresses
//! a name resolves to. Cloudflare's `fetch` egresses to the public Internet only, so a
//! name pointing at a private address does not reach the operator's network.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use portcullis_core::host::outbound::{self, ResponseBody};
use portcullis_core::runtime::{ConfiguredRequest, FetchError, FetchResponse, Fetcher};
use worker::{AbortController, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

/// `fetch` behind the core's [`Fetcher`] seam.
#[derive(Debug, Clone, Copy)]
pub struct WorkersFetcher {
    allow_loopback: bool,
}

fn transport(e: worker::Error) -> FetchError {
    FetchError::Transport(e.to_string())
}

impl WorkersFetcher {
    /// A fetcher under `cfg`'s loopback rule ([`portcullis_core::remote::allow_loopback`]).
    pub fn new(cfg: &portcullis_core::Config) -> Self {
        Self {
            allow_loopback: portcullis_core::remote::allow_loopback(cfg),
        }
    }

    /// Sends a GET (no `body`) or a POST of `body` (its content type, its text) with extra
    /// `extra` headers, under the shared rules.
    async fn fetch(
        &self,
        url: &url::Url,
        extra: &[(&str, &str)],
        body: Option<(&str, &str)>,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        let headers = Headers::new();
        headers.set("accept", outbound::ACCEPT).map_err(transport)?;
        headers
            .set("user-agent", outbound::USER_AGENT)
            .map_err(transport)?;
        for (name, value) in extra {
            headers.set(name, value).map_err(transport)?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Get);
        if let Some((content_type, body)) = body {
            headers
                .set("content-type", content_type)
                .map_err(transport)?;
            init.with_method(Method::Post)
                .with_body(Some(wasm_bindgen::JsValue::from_str(body)));
        }
        init.with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        let req = Request::new_with_init(url.as_str(), &init).map_err(transport)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let call = async {
            let mut resp = Fetch::Request(req)
                .send_with_signal(&signal)
                .await
                .map_err(transport)?;
            let header = |name: &str| resp.headers().get(name).ok().flatten();
            let mut body = ResponseBody::new(header("content-length").as_deref(), max_bytes)?;
            let (content_type, cache_control) = (header("content-type"), header("cache-control"));
            let status = resp.status_code();
            if outbound::has_body(status) {
                let mut stream = resp.stream().map_err(transport)?;
                while let Some(chunk) = stream.next().await {
                    body.push(&chunk.map_err(transport)?)?;
                }
            }
            Ok(body.finish(status, content_type, cache_control))
        };
        let timer = worker::Delay::from(Duration::from_millis(outbound::TIMEOUT_MS));
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
        outbound::check_destination(url, self.allow_loopback)?;
        self.fetch(url, &[], None, max_bytes).await
    }

    async fn post_form(
        &self,
        url: &url::Url,
        headers: &[(String, String)],
        body: &str,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        outbound::check_destination(url, self.allow_loopback)?;
        let extra: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let form = ("application/x-www-form-urlencoded", body);
        self.fetch(url, &extra, Some(form), max_bytes).await
    }

    async fn send_configured(
        &self,
        r: ConfiguredRequest<'_>,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        // The destination is operator configuration (the KMS), not input: no SSRF check.
        if !matches!(r.url.scheme(), "https" | "http") {
            return Err(FetchError::Forbidden(format!("scheme {}", r.url.scheme())));
        }
        let body = match (r.method, r.json) {
            ("POST", json) => Some(("application/json", json.unwrap_or("{}"))),
            _ => None,
        };
        self.fetch(r.url, r.headers, body, max_bytes).await
    }
}
