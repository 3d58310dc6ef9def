//! Redirect URI rules (RFC 9700 §4.1, OAuth 2.1 §2.3.1, RFC 8252 §7.3): registration checks
//! and exact matching at authorize. PLACEHOLDER signatures: bodies are being written.

use url::Url;

/// Whether `url`'s host is loopback (`127.0.0.0/8`, `[::1]`, `localhost`).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a redirect URI offered at registration (R4, R5, G1); returns a precise reason.
pub fn validate_for_registration(uri: &str, application_type: &str) -> Result<(), String> {
    let _ = (uri, application_type);
    unimplemented!()
}

/// Whether `requested` exactly matches one of `registered` (loopback: any port, R3, R4).
pub fn matches(registered: &[String], requested: &str) -> bool {
    let _ = (registered, requested);
    unimplemented!()
}

/// Whether `uri` uses a scheme that must never be redirected to (R5).
pub fn is_dangerous_scheme(uri: &str) -> bool {
    let _ = uri;
    unimplemented!()
}
