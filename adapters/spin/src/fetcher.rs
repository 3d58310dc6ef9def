//! Outbound HTTP on Spin (`wasi:http` through spin-sdk) behind the core's [`Fetcher`] seam,
//! for client ID metadata documents and IdP key sets. The URL-level SSRF policy
//! ([`portcullis_core::ssrf::check_url`]) runs here; the address-level check after DNS
//! resolution cannot (Spin resolves names in the host), so spin.toml's
//! `allowed_outbound_hosts` is the second line (docs/spin.md). wasi:http never follows
//! redirects, sends no cookies, and the body is read up to `max_bytes` only.

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use portcullis_core::runtime::{FetchError, FetchResponse, Fetcher};
use spin_sdk::http::send;
use spin_sdk::wasip3::http::types::ErrorCode;

/// How long a fetch may take in total.
const TIMEOUT_NANOS: u64 = 5_000_000_000;

/// The Spin fetcher.
#[derive(Debug, Clone, Copy)]
pub struct SpinFetcher {
    /// `cimd.allow_loopback` (tests with a loopback issuer only).
    pub allow_loopback: bool,
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

async fn fetch(url: &url::Url, max_bytes: usize) -> Result<FetchResponse, FetchError> {
    let req = http::Request::get(url.as_str())
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("portcullis/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Transport(format!("bad request: {e}")))?;
    let resp = send(req).await.map_err(|code| transport(&code))?;
    let status = resp.status().as_u16();
    let content_type = header(resp.headers(), http::header::CONTENT_TYPE);
    let cache_control = header(resp.headers(), http::header::CACHE_CONTROL);
    let declared =
        header(resp.headers(), http::header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return Err(FetchError::TooLarge);
    }
    let body = Limited::new(resp.into_body(), max_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                FetchError::TooLarge
            } else if let Some(code) = e.downcast_ref::<ErrorCode>() {
                transport(code)
            } else {
                FetchError::Transport(e.to_string())
            }
        })?
        .to_bytes();
    Ok(FetchResponse {
        status,
        content_type,
        cache_control,
        body: body.to_vec(),
    })
}

#[async_trait(?Send)]
impl Fetcher for SpinFetcher {
    async fn get(&self, url: &url::Url, max_bytes: usize) -> Result<FetchResponse, FetchError> {
        portcullis_core::ssrf::check_url(url, self.allow_loopback)
            .map_err(|e| FetchError::Forbidden(e.to_string()))?;
        let timeout = async {
            spin_sdk::wasip3::clocks::monotonic_clock::wait_for(TIMEOUT_NANOS).await;
            Err(FetchError::Timeout)
        };
        let fetch = fetch(url, max_bytes);
        futures::pin_mut!(timeout, fetch);
        match futures::future::select(fetch, timeout).await {
            futures::future::Either::Left((r, _)) | futures::future::Either::Right((r, _)) => r,
        }
    }
}
