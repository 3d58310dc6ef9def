//! Console sign-in (`/admin/console/sign-in`) with the admin API key in a password field,
//! compared in constant time like the API's bearer check (both sides hashed first); a wrong
//! key is refused with a page and counted like the API's refused requests (B4). Sign-out
//! (`POST /admin/console/sign-out`) drops the cookie and remembers the session as ended.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use super::layout::{self, a, hidden, t};
use super::{add_cookie, error_page, session, Ctx};
use crate::context::Context;
use crate::crypto::{ct_eq, sha256};
use crate::error::{Error, ErrorCode};
use crate::request::Params;
use crate::response::redirect;

fn form(
    server: &Context,
    req: &Request<Bytes>,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Bytes> {
    let (csrf, set) = session::pre_csrf(server, req.headers());
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", t(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in to the console</h1><p>Enter this server's admin API key.</p>{err}\
<form class=\"stack\" method=\"post\" action=\"{}\">{}\
<label for=\"key\">Admin API key</label>\
<input type=\"password\" id=\"key\" name=\"key\" autocomplete=\"current-password\" required autofocus>\
<button class=\"primary\" type=\"submit\">Sign in</button></form>\
<p class=\"muted\">The session lasts {} minutes.</p>",
        a(&layout::url("sign-in")),
        hidden("csrf", &csrf),
        session::TTL / 60,
    );
    let mut resp = layout::bare(status, "Sign in", &body);
    if let Some(c) = set {
        add_cookie(&mut resp, &c);
    }
    resp
}

/// `GET` shows the form; `POST` checks the key and starts a session.
pub async fn handle(server: &Context, req: &Request<Bytes>) -> Response<Bytes> {
    match *req.method() {
        Method::GET | Method::HEAD => {
            if session::current(server, req.headers()).await.is_some() {
                return redirect(&layout::url("overview"));
            }
            form(server, req, None, StatusCode::OK)
        }
        Method::POST => post(server, req).await,
        _ => error_page(None, &crate::request::method_not_allowed("GET, POST")),
    }
}

async fn post(server: &Context, req: &Request<Bytes>) -> Response<Bytes> {
    if let Err(e) = session::check_origin(server, req) {
        return error_page(None, &e);
    }
    let params = match Params::from_form(req.headers(), req.body()) {
        Ok(p) => p,
        Err(e) => return error_page(None, &e),
    };
    if let Err(e) = session::check_pre_csrf(server, req.headers(), params.get("csrf")) {
        return form(server, req, Some(&e.description), StatusCode::BAD_REQUEST);
    }
    let Some(key) = server.config().admin_api_key.as_ref() else {
        return error_page(
            None,
            &Error::new(
                ErrorCode::Unauthorized,
                "no admin API key is configured (set admin_api_key or PORTCULLIS_ADMIN_API_KEY); \
                 the console refuses every sign-in",
            ),
        );
    };
    let given = params.get("key").unwrap_or("").trim();
    if !ct_eq(&sha256(given), &sha256(key.expose())) {
        super::super::record_refusal(server, req).await;
        return form(
            server,
            req,
            Some("That is not this server's admin API key."),
            StatusCode::UNAUTHORIZED,
        );
    }
    let mut resp = redirect(&layout::url("overview"));
    add_cookie(&mut resp, &session::start(server, req.headers()));
    resp
}

/// `POST /admin/console/sign-out` (CSRF-checked).
pub async fn sign_out(cx: &Ctx<'_>) -> Response<Bytes> {
    if cx.req.method() != Method::POST {
        return error_page(Some(cx), &crate::request::method_not_allowed("POST"));
    }
    let checked = Params::from_form(cx.req.headers(), cx.req.body())
        .and_then(|f| session::check_csrf(cx.server, &cx.session, f.get("csrf")));
    if let Err(e) = checked {
        return error_page(Some(cx), &e);
    }
    session::end(cx.server, &cx.session).await;
    let body = format!(
        "<h1>Signed out</h1><p>You have been signed out of the console.</p><p><a href=\"{}\">Sign in again</a></p>",
        a(&layout::url("sign-in"))
    );
    let mut resp = layout::bare(StatusCode::OK, "Signed out", &body);
    add_cookie(&mut resp, &session::clear(cx.server, cx.req.headers()));
    resp
}
