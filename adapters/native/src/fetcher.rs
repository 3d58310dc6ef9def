//! The SSRF-safe outbound HTTP fetcher (SECURITY-CHECKLIST S3–S5, S8) for client ID metadata
//! documents, IdP JWKS and the vault's upstream token endpoints: reqwest without redirects,
//! cookies, proxies or forwarded headers, with the core's shared fetch rules ([`outbound`]:
//! headers, size and time limits), and a DNS resolver that drops every address the [`portcullis_core::ssrf::ip_allowed`] policy
//! refuses, so the check holds after resolution.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::host::outbound::{self, ResponseBody};
use portcullis_core::runtime::{ConfiguredRequest, FetchError, FetchResponse, Fetcher};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT,
};

/// Which destination addresses may be contacted.
pub type IpPolicy = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// Fetcher settings.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// Allow loopback destinations (tests with a loopback issuer only): the core's one rule,
    /// [`portcullis_core::remote::allow_loopback`].
    pub allow_loopback: bool,
    /// PEM file of an extra trusted CA (`cimd.extra_ca_file`).
    pub extra_ca_file: Option<String>,
    /// Connect and total timeout.
    pub timeout: Duration,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            extra_ca_file: None,
            timeout: Duration::from_millis(outbound::TIMEOUT_MS),
        }
    }
}

impl FetcherConfig {
    /// The fetcher settings of a server configuration.
    pub fn from_config(cfg: &portcullis_core::Config) -> Self {
        Self {
            allow_loopback: portcullis_core::remote::allow_loopback(cfg),
            extra_ca_file: cfg.cimd.extra_ca_file.clone(),
            ..Self::default()
        }
    }
}

/// reqwest behind the core's [`Fetcher`] seam.
#[derive(Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    /// The same client rules without the address policy, for operator-configured services
    /// ([`Fetcher::send_configured`]: the KMS).
    configured: reqwest::Client,
    policy: IpPolicy,
}

/// The resolver refused every address of a name (S3).
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no allowed address for {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves with the system resolver and keeps only allowed addresses.
struct PolicyResolver(IpPolicy);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all.into_iter().filter(|a| policy(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

impl HttpFetcher {
    /// A fetcher enforcing the core's SSRF policy ([`portcullis_core::ssrf::ip_allowed`]).
    pub fn new(cfg: &FetcherConfig) -> anyhow::Result<Self> {
        let allow_loopback = cfg.allow_loopback;
        Self::with_policy(
            cfg,
            Arc::new(move |ip| portcullis_core::ssrf::ip_allowed(ip, allow_loopback)),
        )
    }

    /// A fetcher with an explicit address policy.
    pub fn with_policy(cfg: &FetcherConfig, policy: IpPolicy) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(outbound::ACCEPT));
        headers.insert(USER_AGENT, HeaderValue::from_static(outbound::USER_AGENT));
        let base = || {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .referer(false)
                .no_proxy()
                .default_headers(headers.clone())
                .connect_timeout(cfg.timeout)
                .timeout(cfg.timeout)
                .pool_max_idle_per_host(0);
            if let Some(path) = &cfg.extra_ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("cimd.extra_ca_file {path}: {e}"))?;
                for cert in reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| anyhow::anyhow!("cimd.extra_ca_file {path}: {e}"))?
                {
                    builder = builder.add_root_certificate(cert);
                }
            }
            anyhow::Ok(builder)
        };
        let client = base()?
            .dns_resolver(Arc::new(PolicyResolver(policy.clone())))
            .build()?;
        let configured = base()?.build()?;
        Ok(Self {
            client,
            configured,
            policy,
        })
    }
}

impl HttpFetcher {
    /// Refuses what the policy refuses before anything is sent: other schemes, IP literals
    /// (they never reach the resolver).
    fn check(&self, url: &url::Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "https" | "http") {
            return Err(FetchError::Forbidden(format!("scheme {}", url.scheme())));
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(FetchError::Forbidden("no host".into())),
        };
        match literal {
            Some(ip) if !(self.policy)(ip) => Err(FetchError::Forbidden(ip.to_string())),
            _ => Ok(()),
        }
    }

    /// Sends `req` and reads at most `max_bytes` of the answer (the core's shared rules).
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        let mut resp = req.send().await.map_err(map_err)?;
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut body = ResponseBody::new(header(CONTENT_LENGTH).as_deref(), max_bytes)?;
        let content_type = header(CONTENT_TYPE);
        let cache_control = header(CACHE_CONTROL);
        let status = resp.status().as_u16();
        while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
            body.push(&chunk)?;
        }
        Ok(body.finish(status, content_type, cache_control))
    }
}

#[async_trait]
impl Fetcher for HttpFetcher {
    async fn get(&self, url: &url::Url, max_bytes: usize) -> Result<FetchResponse, FetchError> {
        self.check(url)?;
        self.send(self.client.get(url.as_str()), max_bytes).await
    }

    async fn post_form(
        &self,
        url: &url::Url,
        headers: &[(String, String)],
        body: &str,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        self.check(url)?;
        let mut req = self
            .client
            .post(url.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.to_owned());
        for (name, value) in headers {
            req = req.header(name.as_str(), value.as_str());
        }
        self.send(req, max_bytes).await
    }

    async fn send_configured(
        &self,
        r: ConfiguredRequest<'_>,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        if !matches!(r.url.scheme(), "https" | "http") {
            return Err(FetchError::Forbidden(format!("scheme {}", r.url.scheme())));
        }
        let mut req = match r.method {
            "POST" => self.configured.post(r.url.as_str()),
            _ => self.configured.get(r.url.as_str()),
        };
        if let Some(json) = r.json {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(json.to_owned());
        }
        for (name, value) in r.headers {
            req = req.header(*name, *value);
        }
        self.send(req, max_bytes).await
    }
}

fn map_err(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return FetchError::Forbidden(refused.to_string());
        }
        source = err.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        // The cause chain without the URL (already known to the caller).
        let mut msg = String::new();
        let e = e.without_url();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&err.to_string());
            source = err.source();
        }
        FetchError::Transport(msg)
    }
}

#[cfg(test)]
#[path = "fetcher_tests.rs"]
mod tests;
