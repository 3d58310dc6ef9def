//! The console's session: a stateless, HMAC-SHA256-signed cookie (key derived from the master
//! key with HKDF, bound to the admin API key in force), so it works on every runtime and
//! across instances without a table. `HttpOnly`, `SameSite=Strict`, 30 minutes; on https it
//! is `Secure` with the `__Host-` prefix. Forms carry a CSRF token derived from the session
//! (a pre-session double-submit cookie for the sign-in form), and posts the browser says are
//! cross-site are refused (Fetch Metadata, `Origin`; SECURITY-CHECKLIST H2).

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{header, HeaderMap, Request};
use sha2::Sha256;

use crate::context::Context;
use crate::crypto::kek::derive_key;
use crate::crypto::{b64, ct_eq, sha256};
use crate::endpoints::browser::{post_source, PostSource};
use crate::error::{Error, ErrorCode, Result};
use crate::request::cookie;

/// Session lifetime, seconds.
pub const TTL: i64 = 30 * 60;
/// Where the console lives.
pub const BASE: &str = "/admin/console/";
const SESSION: &str = "pc_console";
const PRE_CSRF: &str = "pc_console_csrf";

/// A verified console session.
#[derive(Debug, Clone)]
pub struct Session {
    nonce: String,
    /// When it ends, seconds.
    pub expires_at: i64,
}

impl Session {
    /// A short public name of the session for audit rows (not enough to forge or replay it).
    pub fn id(&self) -> String {
        let h = sha256(self.nonce.as_bytes());
        h[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The console's actor, attached to admin API requests the console makes, so their audit
/// rows name it.
#[derive(Debug, Clone)]
pub struct ConsoleActor(pub String);

fn mac(server: &Context, parts: &[&str]) -> String {
    let key = derive_key(
        server.config().master_key_bytes(),
        "admin-console-session v1",
    );
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC accepts any key length");
    // Bound to the admin key in force: changing it ends every console session.
    let admin = server
        .config()
        .admin_api_key
        .as_ref()
        .map(|k| sha256(k.expose().as_bytes()))
        .unwrap_or_default();
    m.update(&admin);
    for p in parts {
        m.update(p.as_bytes());
        m.update(b"\0");
    }
    b64(m.finalize().into_bytes())
}

/// Whether the console is served over https here: the issuer is https and the request did
/// not come to a loopback host (the native admin listener on 127.0.0.1 speaks plain http).
pub fn secure(server: &Context, headers: &HeaderMap) -> bool {
    server.issuer().starts_with("https://") && !loopback_host(headers)
}

fn loopback_host(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn cookie_name(secure: bool, base: &str) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// A `Set-Cookie` value for one of the console's cookies. `__Host-` cookies must have
/// `Path=/`; on plain http the cookie is scoped to the console's path.
fn set_cookie(secure: bool, base: &str, value: &str, max_age: i64) -> String {
    let name = cookie_name(secure, base);
    if secure {
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict; Secure")
    } else {
        format!("{name}={value}; Path={BASE}; Max-Age={max_age}; HttpOnly; SameSite=Strict")
    }
}

/// Starts a session: the `Set-Cookie` value.
pub fn start(server: &Context, headers: &HeaderMap) -> String {
    let nonce = crate::runtime::random_token(server.env().rng.as_ref(), 18);
    let exp = server.now() + TTL;
    let tag = mac(server, &["session", &exp.to_string(), &nonce]);
    set_cookie(
        secure(server, headers),
        SESSION,
        &format!("{exp}.{nonce}.{tag}"),
        TTL,
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear(server: &Context, headers: &HeaderMap) -> String {
    set_cookie(secure(server, headers), SESSION, "", 0)
}

fn signed_out_key(s: &Session) -> String {
    format!("console_signed_out:{}", s.id())
}

/// The live session of this request, if any: signature, expiry, and not signed out.
pub async fn current(server: &Context, headers: &HeaderMap) -> Option<Session> {
    let name = cookie_name(secure(server, headers), SESSION);
    let value = cookie(headers, &name).filter(|v| v.len() <= 256)?;
    let mut parts = value.splitn(3, '.');
    let (exp, nonce, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let expires_at: i64 = exp.parse().ok()?;
    if expires_at <= server.now() || expires_at > server.now() + TTL {
        return None;
    }
    let expected = mac(server, &["session", exp, nonce]);
    if !ct_eq(expected.as_bytes(), tag.as_bytes()) {
        return None;
    }
    let s = Session {
        nonce: nonce.to_owned(),
        expires_at,
    };
    // Sign-out is remembered in the cache until the cookie would have expired anyway.
    match server.env().kv.get(&signed_out_key(&s), server.now()).await {
        Ok(Some(_)) => None,
        _ => Some(s),
    }
}

/// Ends `s` on this server (best effort on eventually consistent caches; the browser also
/// drops the cookie).
pub async fn end(server: &Context, s: &Session) {
    if let Err(e) = server
        .env()
        .kv
        .put(&signed_out_key(s), b"1".to_vec(), s.expires_at)
        .await
    {
        tracing::warn!(error = %e, "console sign-out not remembered");
    }
}

/// The CSRF token of the session's forms.
pub fn csrf(server: &Context, s: &Session) -> String {
    mac(server, &["csrf", &s.nonce])
}

/// Checks a posted CSRF token against the session.
pub fn check_csrf(server: &Context, s: &Session, posted: Option<&str>) -> Result<()> {
    match posted {
        Some(p) if ct_eq(p.as_bytes(), csrf(server, s).as_bytes()) => Ok(()),
        _ => Err(stale_form()),
    }
}

fn stale_form() -> Error {
    Error::invalid_request(
        "the form has expired or was not submitted from this browser (CSRF check failed)",
    )
}

/// The sign-in form's CSRF token: the existing pre-session cookie, or a new one to set.
pub fn pre_csrf(server: &Context, headers: &HeaderMap) -> (String, Option<String>) {
    let name = cookie_name(secure(server, headers), PRE_CSRF);
    match cookie(headers, &name).filter(|c| (32..=64).contains(&c.len())) {
        Some(v) => (v.to_owned(), None),
        None => {
            let fresh = crate::runtime::random_token(server.env().rng.as_ref(), 32);
            let set = set_cookie(secure(server, headers), PRE_CSRF, &fresh, TTL);
            (fresh, Some(set))
        }
    }
}

/// Checks the sign-in form's token against its pre-session cookie (double submit).
pub fn check_pre_csrf(server: &Context, headers: &HeaderMap, posted: Option<&str>) -> Result<()> {
    let name = cookie_name(secure(server, headers), PRE_CSRF);
    let cookie = cookie(headers, &name).unwrap_or("");
    match posted {
        Some(p) if !cookie.is_empty() && ct_eq(p.as_bytes(), cookie.as_bytes()) => Ok(()),
        _ => Err(stale_form()),
    }
}

/// This request's own origin (scheme and `Host`), which the console's forms post to.
fn own_origin(server: &Context, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let scheme = if server.issuer().starts_with("https://") && !loopback_host(headers) {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// Refuses a post the browser says came from another origin (403).
pub fn check_origin(server: &Context, req: &Request<Bytes>) -> Result<()> {
    let ours = own_origin(server, req.headers());
    // On the edge the console shares the issuer's origin; a proxy may rewrite `Host`.
    let issuer = url::Url::parse(server.issuer())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let source = match post_source(req.headers(), &ours) {
        PostSource::CrossOrigin
            if post_source(req.headers(), &issuer) == PostSource::SameOrigin =>
        {
            PostSource::SameOrigin
        }
        s => s,
    };
    match source {
        PostSource::CrossOrigin => Err(Error::new(
            ErrorCode::AccessDenied,
            "cross-site form submission refused",
        )),
        PostSource::SameOrigin | PostSource::Unknown => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Portcullis;
    use http::HeaderValue;

    fn server(issuer: &str, admin_key: &str) -> Portcullis {
        let (env, _) = crate::store::test_store::test_env();
        let cfg = crate::config::Config {
            issuer: issuer.into(),
            admin_api_key: Some(crate::secret::Secret::new(admin_key)),
            master_key: Some(crate::secret::Secret::new("master-key-0123456789")),
            ..Default::default()
        };
        futures::executor::block_on(Portcullis::start(env, cfg)).unwrap()
    }

    fn headers(host: &str, cookie: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(c) = cookie {
            h.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    fn pair(set: &str) -> String {
        set.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn h6_https_cookie_is_host_prefixed_and_secure() {
        let s = server("https://as.example", "admin-key-0123456789");
        let h = headers("as.example", None);
        let set = start(&s, &h);
        assert!(set.starts_with("__Host-pc_console="), "{set}");
        for attr in [
            "; Path=/;",
            "HttpOnly",
            "SameSite=Strict",
            "; Secure",
            "Max-Age=1800",
        ] {
            assert!(set.contains(attr), "{attr}: {set}");
        }
        assert!(!set.contains("Domain"), "{set}");
        let live =
            futures::executor::block_on(current(&s, &headers("as.example", Some(&pair(&set)))));
        assert!(live.is_some());
        // The unprefixed name does not count on https.
        let plain = pair(&set).replace("__Host-", "");
        assert!(
            futures::executor::block_on(current(&s, &headers("as.example", Some(&plain))))
                .is_none()
        );
        // Loopback (the native admin listener over plain http): no Secure, console path.
        let local = start(&s, &headers("127.0.0.1:9001", None));
        assert!(
            local.starts_with("pc_console=") && local.contains("Path=/admin/console/"),
            "{local}"
        );
        assert!(!local.contains("Secure"), "{local}");
    }

    #[test]
    fn sessions_are_signed_expiring_and_bound_to_the_admin_key() {
        let s = server("http://127.0.0.1:9000", "admin-key-0123456789");
        let cookie = pair(&start(&s, &headers("127.0.0.1:9001", None)));
        let h = headers("127.0.0.1:9001", Some(&cookie));
        let session = futures::executor::block_on(current(&s, &h)).expect("a live session");
        // CSRF tokens belong to the session.
        let token = csrf(&s, &session);
        assert!(check_csrf(&s, &session, Some(&token)).is_ok());
        assert!(check_csrf(&s, &session, Some("forged")).is_err());
        assert!(check_csrf(&s, &session, None).is_err());
        // Tampering with the expiry breaks the signature.
        let value = cookie.trim_start_matches("pc_console=");
        let (exp, rest) = value.split_once('.').unwrap();
        let later = format!("pc_console={}.{rest}", exp.parse::<i64>().unwrap() - 1);
        assert!(
            futures::executor::block_on(current(&s, &headers("127.0.0.1:9001", Some(&later))))
                .is_none()
        );
        // Another admin key (same master key): the session is void.
        let rotated = server("http://127.0.0.1:9000", "another-admin-key-0123456789");
        assert!(futures::executor::block_on(current(&rotated, &h)).is_none());
        // Signed out: void on this server.
        futures::executor::block_on(end(&s, &session));
        assert!(futures::executor::block_on(current(&s, &h)).is_none());
    }
}
