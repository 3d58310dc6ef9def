//! Native integration: an [`HttpFetch`] over reqwest (timeouts, size cap, 2xx only), the
//! system clock, and one-call constructors for the [`Verifier`] and the tower layer.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::layer::ResourceServerLayer;
use crate::verifier::{Clock, FetchError, HttpFetch, Verifier};

/// Largest metadata or JWKS document accepted.
const MAX_DOCUMENT: usize = 512 * 1024;

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// Fetches with reqwest: 5 s connect / 10 s total timeouts, no redirects, 512 KiB cap.
#[derive(Debug, Clone)]
pub struct ReqwestFetch {
    client: reqwest::Client,
}

impl ReqwestFetch {
    /// A fetcher with its own client.
    pub fn new() -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FetchError(e.to_string()))?;
        Ok(Self { client })
    }

    /// A fetcher over an existing client.
    pub fn with_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

#[async_trait::async_trait]
impl HttpFetch for ReqwestFetch {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut res = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| FetchError(format!("GET {url}: {e}")))?;
        if !res.status().is_success() {
            return Err(FetchError(format!("GET {url}: status {}", res.status())));
        }
        let mut out = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| FetchError(format!("GET {url}: {e}")))?
        {
            if out.len() + chunk.len() > MAX_DOCUMENT {
                return Err(FetchError(format!("GET {url}: the document is too large")));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    async fn post_form(
        &self,
        url: &str,
        authorization: &str,
        body: String,
    ) -> Result<(u16, Vec<u8>), FetchError> {
        let mut res = self
            .client
            .post(url)
            .header("authorization", authorization)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| FetchError(format!("POST {url}: {e}")))?;
        let status = res.status().as_u16();
        let mut out = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| FetchError(format!("POST {url}: {e}")))?
        {
            if out.len() + chunk.len() > MAX_DOCUMENT {
                return Err(FetchError(format!("POST {url}: the response is too large")));
            }
            out.extend_from_slice(&chunk);
        }
        Ok((status, out))
    }
}

/// A verifier with reqwest and the system clock.
pub fn verifier(config: Config) -> Result<Arc<Verifier>, FetchError> {
    Ok(Arc::new(Verifier::new(
        config,
        Arc::new(ReqwestFetch::new()?),
        Arc::new(SystemClock),
    )))
}

/// The tower layer with reqwest and the system clock.
pub fn layer(config: Config) -> Result<ResourceServerLayer, FetchError> {
    Ok(ResourceServerLayer::new(verifier(config)?))
}
