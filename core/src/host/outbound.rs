//! What every host's outbound fetcher (the [`Fetcher`] seam) shares, whatever its HTTP
//! client: the request it sends (only `Accept` and `User-Agent`: no cookies, no inbound
//! headers, S8), the time limit, the URL-level SSRF check with the one loopback rule for
//! hosts that cannot see resolved addresses (S1, S3 on the edge), and the response body read
//! up to the caller's limit, refused early on a larger `Content-Length` (S5).
//!
//! [`Fetcher`]: crate::runtime::Fetcher

use url::Url;

use super::body::Capped;
use crate::runtime::{FetchError, FetchResponse};

/// Total time one fetch may take, milliseconds.
pub const TIMEOUT_MS: u64 = 5_000;

/// The `Accept` header of every fetch.
pub const ACCEPT: &str = "application/json";

/// The `User-Agent` header of every fetch.
pub const USER_AGENT: &str = concat!("portcullis/", env!("CARGO_PKG_VERSION"));

/// Refuses a URL the SSRF policy forbids ([`crate::ssrf::check_url`]) under `allow_loopback`,
/// which a host takes from the one loopback rule (`remote::allow_loopback`): the edge
/// fetchers' only check, as they cannot see the addresses a name resolves to.
pub fn check_destination(url: &Url, allow_loopback: bool) -> Result<(), FetchError> {
    crate::ssrf::check_url(url, allow_loopback).map_err(|e| FetchError::Forbidden(e.to_string()))
}

/// Whether a response with `status` carries a body to read (204 and 304 do not).
pub fn has_body(status: u16) -> bool {
    !matches!(status, 204 | 304)
}

/// A response body read up to `max_bytes` (S5).
#[derive(Debug)]
pub struct ResponseBody(Capped);

impl ResponseBody {
    /// A buffer for a body of at most `max_bytes`; [`FetchError::TooLarge`] at once when the
    /// response declares more (`declared`: its `Content-Length`, as text).
    pub fn new(declared: Option<&str>, max_bytes: usize) -> Result<Self, FetchError> {
        let declared = declared.and_then(|v| v.trim().parse::<u64>().ok());
        Capped::new(max_bytes, declared)
            .map(Self)
            .map_err(|_| FetchError::TooLarge)
    }

    /// Appends a chunk; [`FetchError::TooLarge`] beyond the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        self.0.push(chunk).map_err(|_| FetchError::TooLarge)
    }

    /// The response.
    pub fn finish(
        self,
        status: u16,
        content_type: Option<String>,
        cache_control: Option<String>,
    ) -> FetchResponse {
        FetchResponse {
            status,
            content_type,
            cache_control,
            body: self.0.into_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s5_bodies_are_limited_early_and_while_reading() {
        assert_eq!(
            ResponseBody::new(Some("6"), 5).unwrap_err(),
            FetchError::TooLarge
        );
        let mut b = ResponseBody::new(Some("not a number"), 5).unwrap();
        b.push(b"abc").unwrap();
        assert_eq!(b.push(b"def").unwrap_err(), FetchError::TooLarge);
        let mut b = ResponseBody::new(None, 5).unwrap();
        b.push(b"{}").unwrap();
        let resp = b.finish(200, Some("application/json".into()), None);
        assert_eq!((resp.status, resp.body.as_slice()), (200, &b"{}"[..]));
    }

    #[test]
    fn s1_destinations_are_checked_with_the_loopback_rule() {
        let url = |s: &str| Url::parse(s).unwrap();
        check_destination(&url("https://client.example/meta.json"), false).unwrap();
        for refused in [
            "http://client.example/meta.json",
            "https://127.0.0.1/x",
            "https://10.0.0.1/x",
            "https://user@client.example/x",
        ] {
            assert!(
                matches!(
                    check_destination(&url(refused), false),
                    Err(FetchError::Forbidden(_))
                ),
                "{refused}"
            );
        }
        check_destination(&url("http://127.0.0.1:8080/x"), true).unwrap();
        assert!(!has_body(204) && !has_body(304) && has_body(200) && has_body(302));
    }
}
