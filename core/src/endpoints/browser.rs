//! Browser state at the authorization server: the login session cookie, the double-submit
//! CSRF cookie (SECURITY-CHECKLIST H2) with a Fetch Metadata / `Origin` check, and the
//! authorization response redirect that always carries `iss` (RFC 9207 §2) and `state`.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response};

use crate::context::Context;
use crate::crypto::{ct_eq, token_hash};
use crate::error::{Error, Result};
use crate::request::cookie;
use crate::store::repo::sessions::{self, SessionRow};

/// Session cookie.
pub const SESSION_COOKIE: &str = "pc_session";
/// CSRF cookie.
pub const CSRF_COOKIE: &str = "pc_csrf";

fn secure(server: &Context) -> bool {
    server.issuer().starts_with("https://")
}

/// The cookie's name and `Path` for this server (H6: `__Host-` cookies on https). On https
/// the name carries the `__Host-` prefix, which browsers accept only with `Secure`,
/// `Path=/` and no `Domain`, so no sibling subdomain can set or shadow it; an issuer with a
/// path gets a suffix naming it instead of a narrower `Path`. Plain http (a loopback
/// development issuer) keeps the bare name, scoped to the issuer's path.
pub fn cookie_name_and_path(server: &Context, base: &str) -> (String, String) {
    let path = super::issuer_path(server);
    if !secure(server) {
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        return (base.to_owned(), path);
    }
    let name = if path.is_empty() {
        format!("__Host-{base}")
    } else {
        let tag = crate::crypto::sha256(&path);
        format!(
            "__Host-{base}-{:02x}{:02x}{:02x}{:02x}",
            tag[0], tag[1], tag[2], tag[3]
        )
    };
    (name, "/".to_owned())
}

/// The value of this server's cookie `base` in a request.
pub fn read_cookie<'a>(server: &Context, headers: &'a HeaderMap, base: &str) -> Option<&'a str> {
    cookie(headers, &cookie_name_and_path(server, base).0)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure on https (with the `__Host-` prefix).
pub fn set_cookie(server: &Context, base: &str, value: &str, max_age: i64) -> String {
    let (name, path) = cookie_name_and_path(server, base);
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure(server) { "; Secure" } else { "" }
    )
}

/// Appends a `Set-Cookie` header.
pub fn add_cookie(resp: &mut Response<Bytes>, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The CSRF token for this browser: the existing cookie, or a new one to be set.
pub fn csrf_token(server: &Context, headers: &HeaderMap) -> (String, Option<String>) {
    match read_cookie(server, headers, CSRF_COOKIE).filter(|c| c.len() >= 32 && c.len() <= 64) {
        Some(existing) => (existing.to_owned(), None),
        None => {
            let fresh = crate::runtime::random_token(server.env().rng.as_ref(), 32);
            let set = set_cookie(server, CSRF_COOKIE, &fresh, server.config().session_ttl);
            (fresh, Some(set))
        }
    }
}

/// Where a browser says a form post came from. Fetch Metadata (`Sec-Fetch-Site`) is read
/// first, then `Origin`; pages served with `Referrer-Policy: no-referrer` make browsers send
/// `Origin: null` even for same-origin posts (Fetch, "serializing a request origin"), so
/// `null` and a missing header prove nothing either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostSource {
    /// The browser says the post came from our own origin.
    SameOrigin,
    /// The browser does not say (no headers, or `Origin: null`): the CSRF token decides.
    Unknown,
    /// The browser says the post came from another origin (or another site).
    CrossOrigin,
}

/// Classifies a form post by its `Sec-Fetch-Site` and `Origin` headers against `our_origin`
/// (the issuer's serialized origin).
pub fn post_source(headers: &HeaderMap, our_origin: &str) -> PostSource {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    match value("sec-fetch-site") {
        // `none`: started by the user (typed, bookmarked), never by another page.
        Some("same-origin") | Some("none") => return PostSource::SameOrigin,
        Some(_) => return PostSource::CrossOrigin,
        None => {}
    }
    match value(header::ORIGIN.as_str()) {
        None | Some("null") => PostSource::Unknown,
        Some(origin) if origin == our_origin => PostSource::SameOrigin,
        Some(_) => PostSource::CrossOrigin,
    }
}

/// Checks a posted form: refused when the browser says it came from another origin, and in
/// every case only accepted with the CSRF token that matches this browser's `pc_csrf` cookie
/// (double submit: the cookie is `SameSite=Lax`, so a cross-site post never carries it).
pub fn check_csrf(server: &Context, headers: &HeaderMap, posted: Option<&str>) -> Result<()> {
    check_origin(server, headers)?;
    let cookie = read_cookie(server, headers, CSRF_COOKIE).unwrap_or("");
    match posted {
        Some(p) if !cookie.is_empty() && ct_eq(p.as_bytes(), cookie.as_bytes()) => Ok(()),
        _ => Err(Error::invalid_request(
            "the form has expired or was not submitted from this browser (CSRF check failed)",
        )),
    }
}

/// Refuses a form the browser says was posted from another origin.
pub fn check_origin(server: &Context, headers: &HeaderMap) -> Result<()> {
    let ours = url::Url::parse(server.issuer())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    match post_source(headers, &ours) {
        PostSource::CrossOrigin => Err(Error::invalid_request(
            "cross-origin form submission refused",
        )),
        PostSource::SameOrigin | PostSource::Unknown => Ok(()),
    }
}

/// The live login session of this browser, if any, with its cookie value's hash.
pub async fn session(server: &Context, headers: &HeaderMap) -> Result<Option<SessionRow>> {
    let Some(id) = read_cookie(server, headers, SESSION_COOKIE).filter(|c| c.len() <= 128) else {
        return Ok(None);
    };
    Ok(sessions::get_live(server.env().sql.as_ref(), &token_hash(id), server.now()).await?)
}

/// Builds an authorization response redirect: the parameters are appended to the
/// registered redirect URI's query, with `iss` added exactly once (M3).
pub fn authorization_redirect(
    server: &Context,
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
) -> Response<Bytes> {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => {
            return super::pages::error_page(
                http::StatusCode::BAD_REQUEST,
                "Invalid redirect URI",
                "The application's redirect URI is not a valid URL.",
            )
        }
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", server.issuer());
    }
    crate::response::redirect(url.as_str())
}

/// An error authorization response (RFC 6749 §4.1.2.1) with `state` and `iss` (R8).
pub fn error_redirect(
    server: &Context,
    redirect_uri: &str,
    err: &Error,
    state: Option<&str>,
) -> Response<Bytes> {
    authorization_redirect(
        server,
        redirect_uri,
        &[
            ("error", err.code.as_str()),
            ("error_description", &err.description),
        ],
        state,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Portcullis;

    fn server(issuer: &str) -> Portcullis {
        let (env, _) = crate::store::test_store::test_env();
        let cfg = crate::config::Config {
            issuer: issuer.into(),
            admin_api_key: Some(crate::secret::Secret::new("admin-key-0123456789")),
            master_key: Some(crate::secret::Secret::new("master-key-0123456789")),
            ..Default::default()
        };
        futures::executor::block_on(Portcullis::start(env, cfg)).unwrap()
    }

    #[test]
    fn h6_host_prefixed_secure_cookies_on_https() {
        let root = server("https://as.example.com");
        let set = set_cookie(&root, SESSION_COOKIE, "v", 60);
        assert!(set.starts_with("__Host-pc_session=v; Path=/;"), "{set}");
        assert!(
            set.ends_with("; Secure") && !set.contains("Domain"),
            "{set}"
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("pc_session=plain; __Host-pc_session=prefixed"),
        );
        assert_eq!(
            read_cookie(&root, &h, SESSION_COOKIE),
            Some("prefixed"),
            "only the prefixed cookie counts"
        );

        let tenant = server("https://as.example.com/tenant");
        let (name, path) = cookie_name_and_path(&tenant, CSRF_COOKIE);
        assert!(
            name.starts_with("__Host-pc_csrf-") && name.len() == "__Host-pc_csrf-".len() + 8,
            "{name}"
        );
        assert_eq!(path, "/", "__Host- cookies must have Path=/");
        let other = server("https://as.example.com/other");
        assert_ne!(
            cookie_name_and_path(&other, CSRF_COOKIE).0,
            name,
            "tenants do not share cookies"
        );

        let dev = server("http://127.0.0.1:9000");
        assert_eq!(
            set_cookie(&dev, SESSION_COOKIE, "v", 60),
            "pc_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
        );
    }

    const OURS: &str = "https://as.example";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn h2_same_origin_posts_as_browsers_send_them() {
        // Chromium under `Referrer-Policy: no-referrer`: Origin null, Fetch Metadata same-origin.
        let chromium = headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert_eq!(post_source(&chromium, OURS), PostSource::SameOrigin);
        let with_origin = headers(&[("origin", "https://as.example")]);
        assert_eq!(post_source(&with_origin, OURS), PostSource::SameOrigin);
        let typed = headers(&[("sec-fetch-site", "none")]);
        assert_eq!(post_source(&typed, OURS), PostSource::SameOrigin);
    }

    #[test]
    fn h2_silent_browsers_leave_it_to_the_token() {
        assert_eq!(post_source(&headers(&[]), OURS), PostSource::Unknown);
        let null = headers(&[("origin", "null")]);
        assert_eq!(post_source(&null, OURS), PostSource::Unknown);
    }

    #[test]
    fn h2_cross_origin_posts_refused() {
        for h in [
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site"), ("origin", "null")]),
            // Fetch Metadata wins over a forged-looking Origin.
            headers(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://as.example"),
            ]),
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "https://as.example:444")]),
            headers(&[("origin", "http://as.example")]),
        ] {
            assert_eq!(post_source(&h, OURS), PostSource::CrossOrigin, "{h:?}");
        }
    }
}
