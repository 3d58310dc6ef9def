//! The login form behind the authorization endpoint and logout. Failures never reveal
//! whether an account exists and are throttled per username and per client IP
//! (SECURITY-CHECKLIST H4); the form is CSRF-protected (H2); a successful login binds the
//! pending authorization request to the new session (H5).

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use super::authorize::load_pending;
use super::browser::{self, add_cookie, set_cookie, SESSION_COOKIE};
use super::pages::{self, error_page, SignInFor};
use crate::audit::{self, Event};
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::Result;
use crate::paths::{self, endpoint_url};
use crate::request::{Params, RemoteAddr};
use crate::response::redirect;
use crate::store::repo::{auth_requests, sessions, users};
use crate::throttle::Window;

/// The one message for every failed login (H4).
pub const LOGIN_FAILED: &str = "The username or password is incorrect.";
/// Shown when throttled.
pub const THROTTLED: &str = "Too many failed sign-in attempts. Wait a few minutes and try again.";

/// `POST /oauth/login`.
pub async fn handle(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    if req.method() != Method::POST {
        return error_page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "The login form must be submitted with POST.",
        );
    }
    match login(server, &req).await {
        Ok(resp) => resp,
        Err(e) => error_page(e.code.status(), "Sign-in failed", &e.description),
    }
}

/// What a sign-in is for.
enum Purpose {
    /// A pending authorization request: bind it to the new session, then ask for consent.
    Authorization {
        handle: String,
        client_id: String,
        client_name: String,
    },
    /// A page of this server (a vault connect, the connections page) to go back to.
    Continue { path: String, what: String },
}

impl Purpose {
    fn form(&self) -> SignInFor<'_> {
        match self {
            Purpose::Authorization {
                handle,
                client_name,
                ..
            } => SignInFor::Authorization {
                request: handle,
                client_name,
            },
            Purpose::Continue { path, what } => SignInFor::Continue { path, what },
        }
    }

    fn handle(&self) -> Option<&str> {
        match self {
            Purpose::Authorization { handle, .. } => Some(handle),
            Purpose::Continue { .. } => None,
        }
    }

    fn client_id(&self) -> Option<&str> {
        match self {
            Purpose::Authorization { client_id, .. } => Some(client_id),
            Purpose::Continue { .. } => None,
        }
    }
}

/// Pages a sign-in may continue to, below the issuer's path: `/connect/{provider}` (with its
/// query) and `/connections`. Anything else (another origin, `//host`, a backslash, another
/// path) is refused, so the form cannot be turned into an open redirect. Returns what the
/// user is signing in for.
pub fn continue_target(issuer_path: &str, path: &str) -> Option<String> {
    let rest = path.strip_prefix(issuer_path)?;
    if path.len() > 2048
        || path.contains("//")
        || path.contains('\\')
        || path.chars().any(char::is_control)
    {
        return None;
    }
    let route = rest.split('?').next().unwrap_or(rest);
    if route == paths::CONNECTIONS {
        return Some("manage your connected accounts".to_owned());
    }
    let provider = route.strip_prefix(paths::CONNECT)?.strip_prefix('/')?;
    crate::vault::provider::valid_name(provider).then(|| format!("connect your {provider} account"))
}

async fn purpose(server: &Context, form: &Params) -> Result<Option<Purpose>> {
    if let Some(path) = form.get("continue") {
        let what = continue_target(&super::issuer_path(server), path).ok_or_else(|| {
            crate::error::Error::invalid_request("this sign-in cannot continue there")
        })?;
        return Ok(Some(Purpose::Continue {
            path: path.to_owned(),
            what,
        }));
    }
    let handle = form.get("request").unwrap_or_default();
    let Some((_, pending)) = load_pending(server, handle).await? else {
        return Ok(None);
    };
    let client = crate::client_lookup::resolve(server, &pending.client_id)
        .await?
        .ok_or_else(|| {
            crate::error::Error::invalid_request("the application is no longer registered")
        })?;
    Ok(Some(Purpose::Authorization {
        handle: handle.to_owned(),
        client_id: client.client_id.clone(),
        client_name: client.display_name().to_owned(),
    }))
}

async fn login(server: &Context, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let form = Params::from_form(req.headers(), req.body())?;
    browser::check_csrf(server, req.headers(), form.get("csrf"))?;
    let Some(purpose) = purpose(server, &form).await? else {
        return Ok(expired());
    };
    if !server.config().login.local_passwords {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "Sign-in failed",
            "Passwords are switched off on this server: sign in with your identity provider.",
        ));
    }
    let csrf = form.get("csrf").unwrap_or_default();
    let action = endpoint_url(server, paths::LOGIN);
    let username = form.get("username").unwrap_or_default();
    let password_given = form.get("password").unwrap_or_default();
    let ip = req.extensions().get::<RemoteAddr>().map(|r| r.0);
    let rid = crate::request::request_id(req);
    let limits = LoginWindows::new(server, username, ip);

    if !limits.reserve(server).await? {
        audit::record(
            server.env(),
            Event {
                action: "login",
                success: false,
                client_id: purpose.client_id(),
                reason: Some("throttled"),
                request: rid,
                ..Default::default()
            },
        )
        .await;
        return Ok(pages::login_page(
            &action,
            purpose.form(),
            csrf,
            Some(THROTTLED),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }

    let user = if username.is_empty() || username.len() > 256 {
        None
    } else {
        users::by_username(server.env().sql.as_ref(), username).await?
    };
    // Spend the same argon2 time whether or not the user exists (H4): the dummy hash has the
    // cost new hashes get.
    let dummy = server.config().login.password_cost().dummy_hash();
    let stored = user
        .as_ref()
        .map_or(dummy.as_str(), |u| u.password_hash.as_str());
    let verified = server
        .env()
        .crypto
        .password_verify(password_given, stored)
        .await;
    let ok = verified && user.as_ref().is_some_and(|u| !u.disabled);
    let Some(user) = user.filter(|_| ok) else {
        // The attempt reserved above stays counted as a failure.
        audit::record(
            server.env(),
            Event {
                action: "login",
                success: false,
                client_id: purpose.client_id(),
                reason: Some("bad_credentials"),
                request: rid,
                ..Default::default()
            },
        )
        .await;
        // The sign-in form again, with 200 like Keycloak's and node-oidc-provider's: the page
        // is the form, not an error, and browsers log a non-2xx document as a console error.
        let options = super::connectors::sign_in_options(server, purpose.handle()).await?;
        return Ok(pages::login_page_with(
            &action,
            purpose.form(),
            csrf,
            Some(LOGIN_FAILED),
            StatusCode::OK,
            &options,
        ));
    };

    limits.succeeded(server).await?;
    let now = server.now();
    let session_id = crate::runtime::random_token(server.env().rng.as_ref(), 32);
    let session_hash = token_hash(&session_id);
    sessions::insert(
        server.env().sql.as_ref(),
        &sessions::SessionRow {
            id_hash: session_hash.clone(),
            subject: user.id.clone(),
            auth_time: now,
            expires_at: now + server.config().session_ttl,
        },
    )
    .await?;
    let handle = match &purpose {
        Purpose::Authorization { handle, .. } => Some(handle.as_str()),
        Purpose::Continue { .. } => None,
    };
    if let Some(handle) = handle {
        if !auth_requests::bind_session(
            server.env().sql.as_ref(),
            &token_hash(handle),
            &session_hash,
        )
        .await?
        {
            return Ok(expired());
        }
    }
    audit::record(
        server.env(),
        Event {
            action: "login",
            success: true,
            client_id: purpose.client_id(),
            subject: Some(&user.id),
            request: rid,
            ..Default::default()
        },
    )
    .await;
    let next = match &purpose {
        Purpose::Authorization { handle, .. } => format!(
            "{}?{}",
            endpoint_url(server, paths::CONSENT),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("request", handle)
                .finish()
        ),
        Purpose::Continue { path, .. } => {
            let origin = url::Url::parse(server.issuer())
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            format!("{origin}{path}")
        }
    };
    let mut resp = redirect(&next);
    add_cookie(
        &mut resp,
        &set_cookie(
            server,
            SESSION_COOKIE,
            &session_id,
            server.config().session_ttl,
        ),
    );
    Ok(resp)
}

fn expired() -> Response<Bytes> {
    error_page(
        StatusCode::BAD_REQUEST,
        "Request expired",
        "This sign-in request has expired or was already used. Start again from the application.",
    )
}

/// The throttling windows of one sign-in attempt (H4, T1): per username (case-insensitive)
/// and per client address (its /64 for IPv6), the latter with a budget four times larger
/// since several people may share an address.
struct LoginWindows {
    user: Window,
    ip: Window,
    max: i64,
}

impl LoginWindows {
    fn new(server: &Context, username: &str, ip: Option<std::net::IpAddr>) -> Self {
        let cfg = &server.config().login;
        let now = server.now();
        let user = crate::crypto::b64(crate::crypto::sha256(username.to_lowercase()));
        Self {
            user: Window::at(&format!("login:user:{user}"), cfg.window_secs, now),
            ip: Window::at(
                &format!("login:ip:{}", crate::throttle::ip_bucket(ip)),
                cfg.window_secs,
                now,
            ),
            max: i64::from(cfg.max_failures),
        }
    }

    /// Reserves this attempt in both windows (atomically, before the password is checked, so
    /// parallel guesses cannot slip past); `false` when either is used up.
    async fn reserve(&self, server: &Context) -> Result<bool> {
        let user_ok = crate::throttle::reserve(server, &self.user, self.max).await?;
        let ip_ok = crate::throttle::reserve(server, &self.ip, self.max.saturating_mul(4)).await?;
        Ok(user_ok && ip_ok)
    }

    /// A successful sign-in clears the user's failures and gives the address its attempt back.
    async fn succeeded(&self, server: &Context) -> Result<()> {
        crate::throttle::clear(server, &self.user).await?;
        crate::throttle::refund(server, &self.ip).await
    }
}

/// `GET /logout` asks (a link alone cannot end a session); `POST /logout` ends the session
/// (same-origin, CSRF token) and clears the cookie.
pub async fn logout(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    let result = match *req.method() {
        Method::GET => confirm_logout(server, &req).await,
        Method::POST => end_session(server, &req).await,
        _ => Err(crate::request::method_not_allowed("GET, POST")),
    };
    result.unwrap_or_else(|e| error_page(e.code.status(), "Sign-out failed", &e.description))
}

async fn confirm_logout(server: &Context, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let username = match browser::session(server, req.headers()).await? {
        Some(s) => Some(
            users::by_id(server.env().sql.as_ref(), &s.subject)
                .await?
                .map(|u| u.username)
                .unwrap_or(s.subject),
        ),
        None => None,
    };
    let (csrf, set_csrf) = browser::csrf_token(server, req.headers());
    let mut resp = pages::logout_page(
        &endpoint_url(server, paths::LOGOUT),
        &csrf,
        username.as_deref(),
    );
    if let Some(c) = set_csrf {
        add_cookie(&mut resp, &c);
    }
    Ok(resp)
}

async fn end_session(server: &Context, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let form = Params::from_form(req.headers(), req.body())?;
    browser::check_csrf(server, req.headers(), form.get("csrf"))?;
    if let Some(id) = browser::read_cookie(server, req.headers(), SESSION_COOKIE) {
        sessions::delete(server.env().sql.as_ref(), &token_hash(id)).await?;
    }
    audit::record(
        server.env(),
        Event {
            action: "logout",
            success: true,
            request: crate::request::request_id(req),
            ..Default::default()
        },
    )
    .await;
    let mut resp = pages::logged_out_page();
    add_cookie(&mut resp, &set_cookie(server, SESSION_COOKIE, "", 0));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::continue_target;

    #[test]
    fn sign_in_continues_only_to_connect_pages_and_the_connections_page() {
        assert!(continue_target("", "/connect/github").is_some());
        assert!(continue_target("", "/connect/github?for=1.a.b").is_some());
        assert!(continue_target("/t", "/t/connections").is_some());
        for bad in [
            "https://evil.example/connect/github",
            "//evil.example/connect/github",
            "/connect//evil.example",
            "/connect/Git Hub",
            "/connect/",
            "/oauth/token",
            "/connections/../oauth/token",
            "/connect/github\\x",
            "/t/connect/github",
        ] {
            assert!(continue_target("", bad).is_none(), "{bad}");
        }
        assert!(continue_target("/t", "/connect/github").is_none());
    }
}
