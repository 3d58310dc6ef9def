//! Redirect URI rules (RFC 9700 §4.1.3 and §2.1, OAuth 2.1 §2.3.1, RFC 8252 §7.1 and §7.3):
//! what may be registered, and exact string matching at the authorization endpoint, with the
//! single loopback exception that the port of an `http` loopback redirect may vary.
//!
//! Matching never normalizes: the requested URI is compared byte for byte with the
//! registered one (SECURITY-CHECKLIST R3). Registration requires every URI to be in the
//! canonical WHATWG form already, so that what is stored is exactly what a browser follows.

use url::{Host, Url};

/// Why a redirect URI is refused at registration (R4, R5, G1, G2, O2). `Display` is the
/// precise reason shown in the `invalid_redirect_uri` description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("redirect URI must not be empty")]
    Empty,
    #[error("redirect URI is longer than {MAX_REDIRECT_URI_LEN} bytes")]
    TooLong,
    #[error("redirect URI uses a forbidden scheme")]
    DangerousScheme,
    #[error("redirect URI must not contain whitespace, control characters or backslashes")]
    ForbiddenCharacter,
    #[error("redirect URI must not contain a fragment")]
    Fragment,
    #[error("redirect URI is not an absolute URI ({0})")]
    NotAbsolute(url::ParseError),
    #[error("redirect URI must not contain user information")]
    UserInfo,
    #[error("redirect URI must not contain '.' or '..' path segments")]
    DotSegment,
    /// Carries the canonical form, already truncated for display.
    #[error("redirect URI is not in canonical form (expected '{0}')")]
    NotCanonical(String),
    #[error("redirect URI host must not end with a dot")]
    TrailingDotHost,
    #[error(
        "plain http redirect URIs are only allowed on loopback hosts \
         (127.0.0.1, [::1], localhost); use https"
    )]
    PlainHttp,
    #[error("redirect URI scheme '{0}' is not allowed")]
    SchemeNotAllowed(String),
    /// Carries the scheme, already truncated for display.
    #[error(
        "private-use scheme '{0}' is only allowed for native clients \
         (application_type \"native\")"
    )]
    PrivateUseNotNative(String),
    /// Carries the lowercased scheme, already truncated for display (O2).
    #[error(
        "private-use redirect scheme '{0}' must be reverse-domain (contain a dot, RFC 8252 §7.1, \
         e.g. com.example.app:/cb); the server's operator may allow it \
         (registration.extra_redirect_schemes)"
    )]
    NotReverseDomain(String),
}

/// Longest redirect URI accepted at registration (G2).
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

/// Schemes never redirected to (R5).
const DANGEROUS_SCHEMES: [&str; 5] = ["javascript", "data", "vbscript", "file", "blob"];

/// The loopback hosts, spelled exactly so, whose redirect URIs may use plain `http` and any
/// port (R4), and whose client ID metadata document URLs may be plain `http` (S1).
pub const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// Whether `url`'s host is loopback (`127.0.0.0/8`, `[::1]`, `localhost`).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a redirect URI offered at registration (R4, R5, G1, G2); returns a precise reason.
///
/// Accepted: `https` URIs; `http` only on `127.0.0.1`, `[::1]` or `localhost`; private-use
/// schemes (`com.example.app:/cb`) only when `application_type` is `native` (RFC 8252 §7.1).
/// Refused: fragments, userinfo, dot segments, whitespace, control characters, backslashes,
/// dangerous schemes, hosts with a trailing dot, and anything not already in canonical form.
pub fn validate_for_registration(
    uri: &str,
    application_type: &str,
) -> Result<(), RedirectUriError> {
    if uri.is_empty() {
        return Err(RedirectUriError::Empty);
    }
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(RedirectUriError::TooLong);
    }
    if is_dangerous_scheme(uri) {
        return Err(RedirectUriError::DangerousScheme);
    }
    if uri
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(RedirectUriError::ForbiddenCharacter);
    }
    if uri.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    let url = Url::parse(uri).map_err(RedirectUriError::NotAbsolute)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectUriError::UserInfo);
    }
    if has_dot_segment(url.path()) || has_dot_segment(raw_path(uri)) {
        return Err(RedirectUriError::DotSegment);
    }
    if url.as_str() != uri {
        return Err(RedirectUriError::NotCanonical(
            crate::text::truncate(url.as_str(), 200).to_string(),
        ));
    }
    if let Some(Host::Domain(d)) = url.host() {
        if d.ends_with('.') {
            return Err(RedirectUriError::TrailingDotHost);
        }
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = url.host_str().unwrap_or("");
            if LOOPBACK_HOSTS.contains(&host) {
                Ok(())
            } else {
                Err(RedirectUriError::PlainHttp)
            }
        }
        "ws" | "wss" | "ftp" => Err(RedirectUriError::SchemeNotAllowed(url.scheme().to_string())),
        scheme => {
            if application_type == "native" {
                Ok(())
            } else {
                Err(RedirectUriError::PrivateUseNotNative(
                    crate::text::truncate(scheme, 64).to_string(),
                ))
            }
        }
    }
}

/// O2: a private-use redirect scheme offered by a client that registered itself (RFC 7591,
/// client ID metadata document) must be reverse-domain (RFC 8252 §7.1: it contains a dot,
/// `com.example.app:`), so a client cannot aim the code at a protocol handler of the
/// operating system (`ms-settings:`, `smb:`, `itms-services:`…). `extra` lists dot-less
/// schemes the operator allows (`registration.extra_redirect_schemes`, e.g. `cursor`).
pub fn check_private_use_scheme(uri: &str, extra: &[String]) -> Result<(), RedirectUriError> {
    let Some((scheme, _)) = uri.split_once(':') else {
        return Ok(());
    };
    let scheme = scheme.to_ascii_lowercase();
    if matches!(scheme.as_str(), "http" | "https")
        || scheme.contains('.')
        || extra.iter().any(|e| e.eq_ignore_ascii_case(&scheme))
    {
        return Ok(());
    }
    Err(RedirectUriError::NotReverseDomain(
        crate::text::truncate(&scheme, 64).to_string(),
    ))
}

/// Whether `requested` exactly matches one of `registered` (loopback: any port, R3, R4).
pub fn matches(registered: &[String], requested: &str) -> bool {
    if requested.is_empty() || requested.len() > MAX_REDIRECT_URI_LEN {
        return false;
    }
    if is_dangerous_scheme(requested) {
        return false;
    }
    registered
        .iter()
        .any(|r| r == requested || loopback_match(r, requested))
}

/// Whether `uri` uses a scheme that must never be redirected to (R5). Browsers strip leading
/// C0 controls and spaces, and tabs and newlines anywhere, before reading the scheme; so
/// does this check.
pub fn is_dangerous_scheme(uri: &str) -> bool {
    let mut scheme = String::new();
    for c in uri
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
    {
        if c == ':' {
            let s = scheme.as_str();
            return DANGEROUS_SCHEMES.contains(&s);
        }
        if scheme.len() >= 16 {
            return false;
        }
        scheme.push(c.to_ascii_lowercase());
    }
    false
}

/// Loopback exception (RFC 8252 §7.3): both URIs are `http` on the same loopback host,
/// identical apart from the port.
fn loopback_match(registered: &str, requested: &str) -> bool {
    match (split_loopback(registered), split_loopback(requested)) {
        (Some((h1, rest1)), Some((h2, rest2))) => h1 == h2 && rest1 == rest2,
        _ => false,
    }
}

/// Splits `http://<loopback host>[:port]<rest>` into host and rest; `None` otherwise.
fn split_loopback(s: &str) -> Option<(&str, &str)> {
    let after = s.strip_prefix("http://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (host, port) = match authority.strip_prefix("[::1]") {
        Some("") => ("[::1]", None),
        Some(p) => ("[::1]", Some(p.strip_prefix(':')?)),
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if !LOOPBACK_HOSTS.contains(&host) {
        return None;
    }
    if let Some(p) = port {
        if !valid_port(p) {
            return None;
        }
    }
    Some((host, rest))
}

/// A port in canonical decimal form: 1 to 65535, no sign, no leading zero.
fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && !p.starts_with('0')
        && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
}

/// The path part of a raw URI string (after the authority, before query and fragment).
fn raw_path(uri: &str) -> &str {
    let after_scheme = uri.split_once(':').map_or(uri, |(_, r)| r);
    let path_start = match after_scheme.strip_prefix("//") {
        Some(r) => &r[r.find('/').unwrap_or(r.len())..],
        None => after_scheme,
    };
    let end = path_start.find(['?', '#']).unwrap_or(path_start.len());
    &path_start[..end]
}

/// Whether a path has a `.` or `..` segment, also when percent-encoded (`%2e`).
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|seg| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg == "." || seg == ".." || seg.starts_with("..;")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn o2_private_use_schemes_must_be_reverse_domain() {
        for ok in [
            "https://app.example/cb",
            "http://127.0.0.1:3000/cb",
            "com.example.app:/oauth",
            "io.github.tool://cb",
        ] {
            check_private_use_scheme(ok, &[]).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "ms-settings:privacy",
            "smb://evil/share",
            "itms-services://?action=download",
            "myapp://cb",
            "cursor://anysphere.cursor-retrieval/oauth",
        ] {
            assert!(check_private_use_scheme(bad, &[]).is_err(), "{bad}");
        }
        let extra = vec!["cursor".to_owned()];
        check_private_use_scheme("cursor://anysphere.cursor-retrieval/oauth", &extra).unwrap();
        assert!(check_private_use_scheme("myapp://cb", &extra).is_err());
    }

    const WEB: &str = "https://app.example.com/callback";
    const LOOP4: &str = "http://127.0.0.1/callback";

    fn reg(uris: &[&str]) -> Vec<String> {
        uris.iter().map(|s| s.to_string()).collect()
    }

    fn refused(requested: &str) {
        assert!(
            !matches(&reg(&[WEB, LOOP4]), requested),
            "{requested:?} must not match"
        );
    }

    #[test]
    fn exact_match_accepted() {
        assert!(matches(&reg(&[WEB]), WEB));
        assert!(matches(
            &reg(&["com.example.app:/cb"]),
            "com.example.app:/cb"
        ));
        assert!(!matches(&reg(&[]), WEB));
    }

    #[test]
    fn r3_trailing_slash_rejected() {
        refused("https://app.example.com/callback/");
        assert!(!matches(
            &reg(&["https://app.example.com/"]),
            "https://app.example.com"
        ));
    }

    #[test]
    fn r3_added_query_rejected() {
        refused("https://app.example.com/callback?x=1");
        refused("https://app.example.com/callback?");
    }

    #[test]
    fn r3_added_fragment_rejected() {
        refused("https://app.example.com/callback#frag");
        refused("https://app.example.com/callback#");
    }

    #[test]
    fn r3_dot_dot_rejected() {
        refused("https://app.example.com/callback/../evil");
        refused("https://app.example.com/evil/../callback");
    }

    #[test]
    fn r3_encoded_dot_dot_rejected() {
        refused("https://app.example.com/callback/%2e%2e/evil");
        refused("https://app.example.com/callback/%2E%2E/evil");
    }

    #[test]
    fn r3_dot_dot_semicolon_rejected() {
        refused("https://app.example.com/callback/..;/evil");
    }

    #[test]
    fn r3_double_slash_path_rejected() {
        refused("https://app.example.com//evil.com/callback");
        refused("https://app.example.com/callback//evil");
    }

    #[test]
    fn r3_path_case_change_rejected() {
        refused("https://app.example.com/Callback");
        refused("https://APP.example.com/callback");
    }

    #[test]
    fn r3_explicit_default_port_rejected() {
        refused("https://app.example.com:443/callback");
    }

    #[test]
    fn r3_userinfo_rejected() {
        refused("https://user@app.example.com/callback");
        refused("https://app.example.com@evil.com/callback");
        refused("https://app.example.com%25@evil.com/callback");
        refused("http://127.0.0.1@evil.com/callback");
        refused("http://127.0.0.1:8080@evil.com/callback");
    }

    #[test]
    fn r3_punycode_lookalike_rejected() {
        refused("https://xn--pp-8cd.example.com/callback");
        // Cyrillic 'а' in place of 'a'.
        refused("https://\u{0430}pp.example.com/callback");
    }

    #[test]
    fn r3_ipv6_zone_id_rejected() {
        assert!(!matches(
            &reg(&["http://[::1]/cb"]),
            "http://[::1%25eth0]/cb"
        ));
        assert!(!matches(
            &reg(&["http://[::1]/cb"]),
            "http://[::1%25eth0]:8080/cb"
        ));
        assert!(!matches(
            &reg(&["https://[fe80::1]/cb"]),
            "https://[fe80::1%25en0]/cb"
        ));
    }

    #[test]
    fn r3_trailing_dot_in_host_rejected() {
        refused("https://app.example.com./callback");
        refused("http://127.0.0.1./callback");
        assert!(!matches(
            &reg(&["http://localhost/cb"]),
            "http://localhost.:3000/cb"
        ));
    }

    #[test]
    fn r3_backslash_rejected() {
        refused("https://app.example.com\\@evil.com/callback");
        refused("https://app.example.com/callback\\");
        refused("http://127.0.0.1:3000\\@evil.com/callback");
    }

    #[test]
    fn r3_tab_or_newline_rejected() {
        refused("https://app.example.com/call\tback");
        refused("https://app.example.com/call\nback");
        refused("https://app.example.com/callback\r\n");
        refused("http://127.0.0.1:30\t00/callback");
    }

    #[test]
    fn r4_loopback_any_port() {
        assert!(matches(&reg(&[LOOP4]), "http://127.0.0.1:51234/callback"));
        assert!(matches(&reg(&[LOOP4]), "http://127.0.0.1:1/callback"));
        assert!(matches(&reg(&[LOOP4]), "http://127.0.0.1/callback"));
        assert!(matches(
            &reg(&["http://127.0.0.1:8080/callback"]),
            "http://127.0.0.1:9999/callback"
        ));
        assert!(matches(&reg(&["http://[::1]/cb"]), "http://[::1]:4000/cb"));
        assert!(matches(
            &reg(&["http://localhost/cb"]),
            "http://localhost:4000/cb"
        ));
    }

    #[test]
    fn r4_loopback_nothing_else_may_vary() {
        let r = reg(&[LOOP4]);
        for bad in [
            "http://127.0.0.1:51234/callback/",
            "http://127.0.0.1:51234/callback?x=1",
            "http://127.0.0.1:51234/callback#x",
            "http://127.0.0.1:51234/Callback",
            "http://localhost:51234/callback",
            "http://[::1]:51234/callback",
            "https://127.0.0.1:51234/callback",
            "HTTP://127.0.0.1:51234/callback",
            "http://127.0.0.2:51234/callback",
            "http://127.0.0.1:0/callback",
            "http://127.0.0.1:65536/callback",
            "http://127.0.0.1:08080/callback",
            "http://127.0.0.1:+80/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:80:81/callback",
            "http://127.0.0.1:51234/callback/../x",
        ] {
            assert!(!matches(&r, bad), "{bad:?} must not match");
        }
        // The port exception applies to loopback http only.
        assert!(!matches(
            &reg(&["https://app.example.com/cb"]),
            "https://app.example.com:8443/cb"
        ));
    }

    #[test]
    fn r4_http_off_loopback_refused_at_registration() {
        let err = validate_for_registration("http://app.example.com/cb", "web").unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(validate_for_registration("http://10.0.0.1/cb", "native").is_err());
        assert!(validate_for_registration("http://127.0.0.1/cb", "web").is_ok());
        assert!(validate_for_registration("http://127.0.0.1:8080/cb", "native").is_ok());
        assert!(validate_for_registration("http://[::1]/cb", "native").is_ok());
        assert!(validate_for_registration("http://localhost:3000/cb", "web").is_ok());
    }

    #[test]
    fn r5_dangerous_schemes_detected() {
        for uri in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "  javascript:alert(1)",
            "\u{0}\u{1f} javascript:alert(1)",
            "java\tscript:alert(1)",
            "java\nscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "DATA:text/html,x",
            "vbscript:msgbox(1)",
            "VbScript:msgbox(1)",
            "file:///etc/passwd",
            "\tfile:///etc/passwd",
            "blob:https://app.example.com/uuid",
            "BLOB:https://app.example.com/uuid",
        ] {
            assert!(is_dangerous_scheme(uri), "{uri:?} must be dangerous");
            assert!(validate_for_registration(uri, "native").is_err(), "{uri:?}");
            assert!(!matches(&[uri.to_string()], uri), "{uri:?} must not match");
        }
        for uri in [
            WEB,
            LOOP4,
            "com.example.app:/cb",
            "javascriptx:foo",
            "notdata:x",
        ] {
            assert!(!is_dangerous_scheme(uri), "{uri:?}");
        }
    }

    #[test]
    fn registration_accepts_good_uris() {
        for uri in [
            WEB,
            "https://app.example.com/cb?tenant=1",
            "https://app.example.com:8443/cb",
            "https://xn--bcher-kva.example/cb",
            "http://127.0.0.1/",
            "http://localhost:33418/",
        ] {
            validate_for_registration(uri, "web").unwrap_or_else(|e| panic!("{uri}: {e}"));
        }
        for uri in [
            "com.example.app:/oauth2redirect",
            "com.example.app:/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
        ] {
            validate_for_registration(uri, "native").unwrap_or_else(|e| panic!("{uri}: {e}"));
        }
    }

    #[test]
    fn g1_custom_scheme_only_for_native() {
        let err = validate_for_registration("com.example.app:/cb", "web").unwrap_err();
        assert!(err.to_string().contains("native"), "{err}");
    }

    #[test]
    fn g1_registration_refuses_bad_shapes() {
        for (uri, why) in [
            ("", "empty"),
            ("/callback", "relative"),
            ("app.example.com/cb", "relative"),
            ("https://app.example.com/cb#x", "fragment"),
            ("https://app.example.com/cb#", "empty fragment"),
            ("https://user@app.example.com/cb", "userinfo"),
            ("https://user:pw@app.example.com/cb", "userinfo"),
            ("https://app.example.com/a/../cb", "dot dot"),
            ("https://app.example.com/a/%2e%2e/cb", "encoded dot dot"),
            ("https://app.example.com/./cb", "dot"),
            ("com.example.app:/a/../cb", "dot dot in custom scheme"),
            ("https://app.example.com/cb\\x", "backslash"),
            ("https://app.example.com/c b", "space"),
            ("https://app.example.com/cb\t", "tab"),
            (" https://app.example.com/cb", "leading space"),
            ("https://APP.example.com/cb", "not canonical host"),
            ("https://app.example.com:443/cb", "default port"),
            ("https://app.example.com", "missing root path"),
            ("https://app.example.com./cb", "trailing dot"),
            ("https://b\u{fc}cher.example/cb", "unicode host"),
            ("https://[fe80::1%25en0]/cb", "zone id"),
            ("wss://app.example.com/cb", "websocket"),
            ("http://127.0.0.2/cb", "other loopback address"),
        ] {
            assert!(
                validate_for_registration(uri, "native").is_err(),
                "{why}: {uri:?} must be refused"
            );
        }
    }

    #[test]
    fn g2_redirect_uri_length_bounded() {
        let long = format!(
            "https://app.example.com/{}",
            "a".repeat(MAX_REDIRECT_URI_LEN)
        );
        assert!(validate_for_registration(&long, "web")
            .unwrap_err()
            .to_string()
            .contains("longer"));
        assert!(!matches(std::slice::from_ref(&long), &long));
    }
}
