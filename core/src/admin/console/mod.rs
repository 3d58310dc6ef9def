//! The admin console (`/admin/console/`), server-rendered by the core so it runs unchanged on
//! every runtime: plain HTML forms, no script, nothing from another origin. The sign-in page
//! is served without a key; every other page needs the console session ([`session`]). Each
//! page reads and acts through the admin API's own handlers ([`api`]), so an action from the
//! console runs the same code and writes the same audit row as the API call, with
//! `"via": "console"` and the session's id in its detail. Adding a page is one file and one
//! line in [`layout::PAGES`] and [`render`].

mod api;
mod audit;
mod client_form;
mod clients;
mod keys;
mod layout;
mod overview;
mod resources;
mod session;
mod sign_in;
mod stats;
mod system;
mod tokens;
mod users;
mod vault;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::request::Params;
use crate::response::redirect;
pub use session::ConsoleActor;
use session::Session;

/// Whether `path` belongs to the console.
pub fn owns(path: &str) -> bool {
    path == "/admin/console" || path.starts_with(session::BASE)
}

/// Adds `"via": "console"` and the session's id to an admin audit row's detail when the
/// console made the request.
pub fn annotate(req: &Request<Bytes>, mut detail: serde_json::Value) -> serde_json::Value {
    if let Some(actor) = req.extensions().get::<ConsoleActor>() {
        if let Some(o) = detail.as_object_mut() {
            o.insert("via".into(), "console".into());
            o.insert("console_session".into(), actor.0.clone().into());
        }
    }
    detail
}

/// What a page handler gets.
pub(crate) struct Ctx<'a> {
    server: &'a Context,
    req: &'a Request<Bytes>,
    session: Session,
    csrf: String,
}

impl Ctx<'_> {
    fn frame<'b>(&'b self, current: &'b str) -> layout::Frame<'b> {
        layout::Frame {
            current,
            csrf: &self.csrf,
        }
    }
}

/// Serves a console request (no admin key: the console has its own session).
pub async fn handle(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    let path = req.uri().path();
    let page = path
        .strip_prefix(session::BASE)
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned();
    match page.as_str() {
        "" => {
            let to = if session::current(server, req.headers()).await.is_some() {
                "overview"
            } else {
                "sign-in"
            };
            return redirect(&layout::url(to));
        }
        "sign-in" => return sign_in::handle(server, &req).await,
        _ => {}
    }
    let is_post = req.method() == Method::POST;
    if is_post {
        if let Err(e) = session::check_origin(server, &req) {
            return error_page(None, &e);
        }
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        return error_page(None, &crate::request::method_not_allowed("GET, POST"));
    }
    let Some(s) = session::current(server, req.headers()).await else {
        if is_post {
            return error_page(
                None,
                &Error::new(
                    ErrorCode::Unauthorized,
                    "your console session has ended; sign in again",
                ),
            );
        }
        return redirect(&layout::url("sign-in"));
    };
    let cx = Ctx {
        server,
        csrf: session::csrf(server, &s),
        session: s,
        req: &req,
    };
    if page == "sign-out" {
        return sign_in::sign_out(&cx).await;
    }
    let result = if is_post {
        act(&cx, &page).await
    } else {
        render(&cx, &page, None).await
    };
    result.unwrap_or_else(|e| error_page(Some(&cx), &e))
}

/// A GET: the page `page`, with an optional message from the action that led here.
async fn render(cx: &Ctx<'_>, page: &str, flash: Option<&str>) -> Result<Response<Bytes>> {
    let q = Params::from_query(cx.req.uri())?;
    let flash = flash.or_else(|| q.get("done"));
    match page {
        "overview" => overview::page(cx, flash).await,
        "clients" => clients::page(cx, &q, flash).await,
        "users" => users::page(cx, &q, flash).await,
        "tokens" => tokens::page(cx, &q, flash).await,
        "audit" => audit::page(cx, &q).await,
        "audit/export" => audit::export(cx, &q).await,
        "keys" => keys::page(cx, flash).await,
        "resources" => resources::page(cx).await,
        "system" => system::page(cx).await,
        "providers" => vault::providers(cx).await,
        "connections" => vault::connections(cx, &q, flash).await,
        _ => Err(Error::new(ErrorCode::NotFound, "no such console page")),
    }
}

/// What a console action leads to.
pub(crate) enum Next {
    /// Back to the page, with a message.
    Flash(String),
    /// Back to the page with these query pairs (a detail view), with a message.
    FlashAt(Vec<(&'static str, String)>, String),
    /// A page shown in place: a secret shown once never goes into a URL.
    Page(Response<Bytes>),
}

/// A POST: checks the CSRF token, runs the page's action, then shows where it leads.
async fn act(cx: &Ctx<'_>, page: &str) -> Result<Response<Bytes>> {
    let form = Params::from_form(cx.req.headers(), cx.req.body())?;
    session::check_csrf(cx.server, &cx.session, form.get("csrf"))?;
    let next = match page {
        "clients" => clients::act(cx, &form).await?,
        "users" => users::act(cx, &form).await?,
        "keys" => Next::Flash(keys::act(cx, &form).await?),
        "connections" => Next::Flash(vault::act(cx, &form).await?),
        // The inspector answers in place (the token is never put in a URL).
        "tokens" => return tokens::act(cx, &form).await,
        _ => return Err(Error::new(ErrorCode::NotFound, "no such console action")),
    };
    let (pairs, done) = match next {
        Next::Page(resp) => return Ok(resp),
        Next::Flash(done) => (Vec::new(), done),
        Next::FlashAt(pairs, done) => (pairs, done),
    };
    // Post/redirect/get: reloading the result page does not repeat the action.
    let mut to = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        to.append_pair(k, v);
    }
    to.append_pair("done", &done);
    Ok(redirect(&layout::url(&format!("{page}?{}", to.finish()))))
}

/// An error as a page: with navigation when signed in.
fn error_page(cx: Option<&Ctx<'_>>, e: &Error) -> Response<Bytes> {
    let status = e.code.status();
    let title = match status {
        StatusCode::FORBIDDEN => "Refused",
        StatusCode::UNAUTHORIZED => "Signed out",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Something went wrong",
        _ => "Cannot do that",
    };
    let body = format!(
        "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>",
        layout::t(title),
        layout::t(&e.description)
    );
    match cx {
        Some(cx) => layout::page(&cx.frame(""), status, title, None, &body),
        None => {
            let body = format!(
                "{body}<p><a href=\"{}\">Sign in to the console</a></p>",
                layout::a(&layout::url("sign-in"))
            );
            layout::bare(status, title, &body)
        }
    }
}

/// Adds a `Set-Cookie` header.
fn add_cookie(resp: &mut Response<Bytes>, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}
