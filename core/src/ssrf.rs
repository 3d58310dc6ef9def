//! Outbound fetch policy (SECURITY-CHECKLIST S1–S3). PLACEHOLDER signatures.

use std::net::IpAddr;

/// Whether an outbound connection to `ip` is allowed (S3).
pub fn ip_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    let _ = (ip, allow_loopback);
    unimplemented!()
}

/// Checks a URL before fetching (S1): https only (loopback http/https only if allowed).
pub fn check_url(url: &url::Url, allow_loopback: bool) -> Result<(), String> {
    let _ = (url, allow_loopback);
    unimplemented!()
}
