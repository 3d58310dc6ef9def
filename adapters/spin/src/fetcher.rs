//! Outbound HTTP on Spin (`wasi:http` through spin-sdk) behind the core's [`Fetcher`] seam,
//! for client ID metadata documents and key sets, with the core's shared fetch rules
//! ([`outbound`]: the URL-level SSRF check, headers, time and size limits). The
//! address-level check after DNS resolution cannot run here (Spin resolves names in the
//! host), so spin.toml's `allowed_outbound_hosts` is the second line (docs/spin.md).
//! wasi:http never follows redirects and sends no cookies.

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::{select, Either};
use http_body_util::{BodyExt, Full};
use portcullis_core::host::outbound::{self, ResponseBody};
use portcullis_core::runtime::{ConfiguredRequest, FetchError, FetchResponse, Fetcher};
use spin_sdk::http::send;
use spin_sdk::wasip3::http::types::ErrorCode;

/// The Spin fetcher.
#[derive(Debug, Clone, Copy)]
pub struct SpinFetcher {
    allow_loopback: bool,
}

impl SpinFetcher {
    /// A fetcher under `cfg`'s loopback rule ([`portcullis_core::remote::allow_loopback`]).
    pub fn new(cfg: &portcullis_core::Config) -> Self {
        Self {
            allow_loopback: portcullis_core::remote::allow_loopback(cfg),
        }
    }
}

fn transport(code: &ErrorCode) -> FetchError {
    match code {
        ErrorCode::HttpRequestDenied => FetchError::Forbidden(
            "the destination is not in the component's allowed_outbound_hosts".into(),
        ),
        ErrorCode::DestinationIpProhibited | ErrorCode::DestinationIpUnroutable => {
            FetchError::Forbidden("the destination address is not allowed".into())
        }
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => FetchError::Timeout,
        ErrorCode::HttpResponseBodySize(_) => FetchError::TooLarge,
        other => FetchError::Transport(format!("{other:?}")),
    }
}

fn header(resp: &http::HeaderMap, name: http::header::HeaderName) -> Option<String> {
    resp.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Sends a GET (no `body`) or a POST of `body` (its content type, its text) with extra
/// headers, reading at most `max_bytes`.
async fn fetch(
    url: &url::Url,
    extra: &[(&str, &str)],
    body: Option<(&str, &str)>,
    max_bytes: usize,
) -> Result<FetchResponse, FetchError> {
    let mut builder = http::Request::builder()
        .uri(url.as_str())
        .header(http::header::ACCEPT, outbound::ACCEPT)
        .header(http::header::USER_AGENT, outbound::USER_AGENT);
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        None => Bytes::new(),
        Some((content_type, body)) => {
            builder = builder
                .method(http::Method::POST)
                .header(http::header::CONTENT_TYPE, content_type);
            Bytes::copy_from_slice(body.as_bytes())
        }
    };
    let req = builder
        .body(Full::new(body))
        .map_err(|e| FetchError::Transport(format!("bad request: {e}")))?;
    let resp = send(req).await.map_err(|code| transport(&code))?;
    let status = resp.status().as_u16();
    let headers = resp.headers();
    let content_type = header(headers, http::header::CONTENT_TYPE);
    let cache_control = header(headers, http::header::CACHE_CONTROL);
    let declared = header(headers, http::header::CONTENT_LENGTH);
    let mut body = ResponseBody::new(declared.as_deref(), max_bytes)?;
    let mut stream = resp.into_body();
    while let Some(frame) = stream.frame().await {
        let frame = frame.map_err(|code| transport(&code))?;
        if let Ok(data) = frame.into_data() {
            body.push(&data)?;
        }
    }
    Ok(body.finish(status, content_type, cache_control))
}

impl SpinFetcher {
    /// [`fetch`] under the shared rules (the URL-level SSRF check unless `configured`: a
    /// destination from the operator's configuration) and the outbound timeout.
    async fn send(
        &self,
        url: &url::Url,
        extra: &[(&str, &str)],
        body: Option<(&str, &str)>,
        configured: bool,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        if configured {
            if !matches!(url.scheme(), "https" | "http") {
                return Err(FetchError::Forbidden(format!("scheme {}", url.scheme())));
            }
        } else {
            outbound::check_destination(url, self.allow_loopback)?;
        }
        let timeout = async {
            let nanos = outbound::TIMEOUT_MS * 1_000_000;
            spin_sdk::wasip3::clocks::monotonic_clock::wait_for(nanos).await;
            Err(FetchError::Timeout)
        };
        let fetch = fetch(url, extra, body, max_bytes);
        futures::pin_mut!(timeout, fetch);
        match select(fetch, timeout).await {
            Either::Left((r, _)) | Either::Right((r, _)) => r,
        }
    }
}

#[async_trait(?Send)]
impl Fetcher for SpinFetcher {
    async fn get(&self, url: &url::Url, max_bytes: usize) -> Result<FetchResponse, FetchError> {
        self.send(url, &[], None, false, max_bytes).await
    }

    async fn post_form(
        &self,
        url: &url::Url,
        headers: &[(String, String)],
        body: &str,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        let extra: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let form = ("application/x-www-form-urlencoded", body);
        self.send(url, &extra, Some(form), false, max_bytes).await
    }

    async fn send_configured(
        &self,
        r: ConfiguredRequest<'_>,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        let body = match (r.method, r.json) {
            ("POST", json) => Some(("application/json", json.unwrap_or("{}"))),
            _ => None,
        };
        self.send(r.url, r.headers, body, true, max_bytes).await
    }
}
