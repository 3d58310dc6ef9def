//! Runtime seams: everything the core needs from the outside world (time, randomness,
//! outbound HTTP) reaches it through these small traits, supplied by each adapter
//! (DESIGN.md rule 1) and bundled in [`crate::env::Env`]. Storage traits live in
//! [`crate::store`], crypto in [`crate::crypto`].

use async_trait::async_trait;

/// `Send + Sync` on native targets, nothing on wasm (DESIGN.md rule 7).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSend for T {}
/// `Send + Sync` on native targets, nothing on wasm (DESIGN.md rule 7).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// Wall clock, in whole seconds and milliseconds since the Unix epoch, and waiting.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait Clock: MaybeSend {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
    /// Waits `ms` milliseconds (the vault's losers of a refresh race wait for the winner).
    async fn sleep_ms(&self, ms: u64);
}

/// Cryptographically secure randomness.
pub trait Rng: MaybeSend {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// Returns `n` random bytes as unpadded base64url: the shape of every opaque token we mint.
pub fn random_token(rng: &dyn Rng, n: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; n];
    rng.fill(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A fixed clock for tests and tools; `set` moves it.
#[derive(Debug, Default)]
pub struct FixedClock(std::sync::atomic::AtomicI64);

impl FixedClock {
    /// A clock frozen at `secs` seconds since the epoch.
    pub fn at(secs: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(secs * 1000))
    }
    /// Moves the clock to `secs`.
    pub fn set(&self, secs: i64) {
        self.0
            .store(secs * 1000, std::sync::atomic::Ordering::SeqCst);
    }
    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0
            .fetch_add(secs * 1000, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl Clock for FixedClock {
    fn now_millis(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// Time passes for whoever waits on a test clock: it moves forward by `ms`.
    async fn sleep_ms(&self, ms: u64) {
        self.0.fetch_add(
            i64::try_from(ms).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

/// A deterministic RNG for tests (splitmix64). Never use outside tests.
#[derive(Debug)]
pub struct SeededRng(std::sync::Mutex<u64>);

impl SeededRng {
    /// An RNG whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(std::sync::Mutex::new(seed))
    }
}

impl Rng for SeededRng {
    fn fill(&self, buf: &mut [u8]) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in buf.chunks_mut(8) {
            *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// An outbound HTTP response, already limited in size by the fetcher.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// `Cache-Control` header, if any.
    pub cache_control: Option<String>,
    /// The body (at most the requested limit).
    pub body: Vec<u8>,
}

/// Why a fetched response is not an acceptable JSON document (S5). `Display` is the reason
/// told to the caller; `what` names the document ("document", "JWK Set").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonDocumentError {
    #[error("the server answered HTTP {0}")]
    Status(u16),
    /// Carries the content type, already truncated for display.
    #[error("the content type must be application/json (got '{0}')")]
    ContentType(String),
    #[error("the {what} exceeds {max_bytes} bytes")]
    TooLarge { what: String, max_bytes: usize },
    /// Carries the parser's message.
    #[error("the {what} is not valid JSON ({reason})")]
    NotJson { what: String, reason: String },
}

impl FetchResponse {
    /// The body as a JSON document, refusing (S5) a status other than 200, a content type
    /// other than `application/json` or `application/*+json`, a body over `max_bytes` and
    /// invalid JSON. `what` names the document in the messages ("document", "JWK Set").
    pub fn json_document(
        &self,
        max_bytes: usize,
        what: &str,
    ) -> Result<serde_json::Value, JsonDocumentError> {
        if self.status != 200 {
            return Err(JsonDocumentError::Status(self.status));
        }
        let ct = self.content_type.as_deref().unwrap_or("");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let json = mime == "application/json"
            || (mime.starts_with("application/") && mime.ends_with("+json"));
        if !json {
            return Err(JsonDocumentError::ContentType(
                crate::text::truncate(ct, 64).to_string(),
            ));
        }
        if self.body.len() > max_bytes {
            return Err(JsonDocumentError::TooLarge {
                what: what.to_owned(),
                max_bytes,
            });
        }
        serde_json::from_slice(&self.body).map_err(|e| JsonDocumentError::NotJson {
            what: what.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// Why an outbound fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The destination is not allowed (SSRF policy, checked after DNS resolution).
    #[error("destination refused: {0}")]
    Forbidden(String),
    /// The body exceeded the limit (by `Content-Length` or while reading).
    #[error("response too large")]
    TooLarge,
    /// The request timed out.
    #[error("timed out")]
    Timeout,
    /// Any other transport failure.
    #[error("fetch failed: {0}")]
    Transport(String),
}

/// Outbound HTTP GET, used for client ID metadata documents and (later) IdP JWKS.
///
/// Implementations must: not follow redirects (S4), send no cookies or inbound headers (S8),
/// enforce `max_bytes` including an early `Content-Length` check (S5), time out, and refuse
/// destinations for which [`crate::ssrf::ip_allowed`] is false *after* DNS resolution (S3).
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait Fetcher: MaybeSend {
    /// Fetches `url` with `Accept: application/json`.
    async fn get(&self, url: &url::Url, max_bytes: usize) -> Result<FetchResponse, FetchError>;

    /// POSTs an `application/x-www-form-urlencoded` body with `headers` (the vault's calls to
    /// upstream token endpoints), under the same rules as [`Fetcher::get`]. Fetchers that
    /// only read documents (test doubles) keep this default, which refuses.
    async fn post_form(
        &self,
        url: &url::Url,
        headers: &[(String, String)],
        body: &str,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        let _ = (headers, body, max_bytes);
        Err(FetchError::Forbidden(format!(
            "this fetcher does not send POST requests ({})",
            url.host_str().unwrap_or("")
        )))
    }

    /// Sends a request to an operator-configured service ([`ConfiguredRequest`]): no
    /// redirects, no cookies, the time and size limits, but no SSRF address policy (the
    /// destination is configuration). Fetchers without it keep this default, which refuses.
    async fn send_configured(
        &self,
        req: ConfiguredRequest<'_>,
        max_bytes: usize,
    ) -> Result<FetchResponse, FetchError> {
        let _ = max_bytes;
        Err(FetchError::Forbidden(format!(
            "this fetcher does not call configured services ({})",
            req.url.host_str().unwrap_or("")
        )))
    }
}

/// A request to a service the operator configured (the KMS: HashiCorp Vault), which
/// [`Fetcher::send_configured`] sends. Its destination is trusted configuration, not input,
/// so the SSRF address policy does not apply (a Vault usually sits on a private network);
/// every other rule does: no redirects, no cookies or inbound headers, the time and size
/// limits.
#[derive(Debug, Clone, Copy)]
pub struct ConfiguredRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The destination.
    pub url: &'a url::Url,
    /// Extra headers (e.g. `X-Vault-Token`).
    pub headers: &'a [(&'a str, &'a str)],
    /// A JSON body (sent with `Content-Type: application/json`), for a POST.
    pub json: Option<&'a str>,
}

/// A fetcher that refuses everything (for runtimes or tests without outbound HTTP).
#[derive(Debug, Default)]
pub struct NoFetcher;

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl Fetcher for NoFetcher {
    async fn get(&self, url: &url::Url, _max: usize) -> Result<FetchResponse, FetchError> {
        Err(FetchError::Forbidden(format!(
            "outbound HTTP is disabled ({})",
            url.host_str().unwrap_or("")
        )))
    }
}
