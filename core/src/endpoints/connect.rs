//! The vault in the browser: `GET /connect/{provider}` (sign in first if needed; a `for`
//! binding from a `connect_uri` must name the signed-in user) sends the user to the provider;
//! `GET /connect/{provider}/callback` finishes the connect and shows a confirmation;
//! `GET /connections` lists the user's connections and `POST /connections` removes one.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use super::browser::{self, add_cookie};
use super::pages::{self, error_page, SignInFor};
use super::vault_pages::{self, ConnectionView};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::paths::{self, endpoint_url};
use crate::request::Params;
use crate::response::redirect;
use crate::store::repo::{connections, users};
use crate::vault::broker::{self, ConnectError};
use crate::vault::{link, providers};

/// `/connect/{provider}` and `/connect/{provider}/callback` (`rest` is what follows
/// `/connect`).
pub async fn handle(server: &Context, req: Request<Bytes>, rest: &str) -> Response<Bytes> {
    if req.method() != Method::GET {
        return error_page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "Open this page with a link.",
        );
    }
    let rest = rest.trim_start_matches('/');
    let (name, callback) = match rest.strip_suffix("/callback") {
        Some(name) => (name, true),
        None => (rest, false),
    };
    let result = if callback {
        finish(server, &req, name).await
    } else {
        start(server, &req, name).await
    };
    result.unwrap_or_else(|e| error_page(e.code.status(), "Connection failed", &e.description))
}

async fn provider_or_page(
    server: &Context,
    name: &str,
) -> Result<std::result::Result<crate::vault::provider::Provider, Response<Bytes>>> {
    if !crate::vault::provider::valid_name(name) {
        return Ok(Err(unknown()));
    }
    Ok(providers::load(server, name).await?.ok_or_else(unknown))
}

fn unknown() -> Response<Bytes> {
    error_page(
        StatusCode::NOT_FOUND,
        "Unknown provider",
        "There is no provider of that name on this server.",
    )
}

/// The sign-in page that comes back to `path` and from there goes on to `then` (another
/// origin, which the page's CSP must name for the form's redirect chain to reach it), if any:
/// a "Sign in with {name}" link per connector (coming back to `path` too), and the password
/// form unless switched off.
async fn sign_in(
    server: &Context,
    req: &Request<Bytes>,
    path: &str,
    what: &str,
    then: Option<&str>,
) -> Result<Response<Bytes>> {
    let (csrf, set_csrf) = browser::csrf_token(server, req.headers());
    let options = super::connectors::continue_options(server, path).await?;
    let mut resp = pages::login_page_with(
        &endpoint_url(server, paths::LOGIN),
        SignInFor::Continue { path, what },
        &csrf,
        None,
        StatusCode::OK,
        &options,
    );
    if let Some(then) = then {
        pages::allow_form_redirect_to(&mut resp, then);
    }
    if let Some(c) = set_csrf {
        add_cookie(&mut resp, &c);
    }
    Ok(resp)
}

fn path_and_query(req: &Request<Bytes>) -> String {
    req.uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned())
}

async fn start(server: &Context, req: &Request<Bytes>, name: &str) -> Result<Response<Bytes>> {
    let provider = match provider_or_page(server, name).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let Some(session) = browser::session(server, req.headers()).await? else {
        let what = format!("connect your {} account", provider.name);
        let then = provider.authorization_endpoint.as_str();
        return sign_in(server, req, &path_and_query(req), &what, Some(then)).await;
    };
    let query = Params::from_query(req.uri())?;
    if let Some(bound) = query.get("for") {
        let checked = link::check(
            server.config().master_key_bytes(),
            &provider.name,
            bound,
            &session.subject,
            server.now(),
        );
        if let Err(refusal) = checked {
            let status = match refusal {
                link::LinkRefusal::OtherUser => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            };
            return Ok(error_page(status, "Cannot connect", &refusal.to_string()));
        }
    }
    let url = broker::start_connect(server, &provider, &session.subject).await?;
    Ok(redirect(url.as_str()))
}

async fn finish(server: &Context, req: &Request<Bytes>, name: &str) -> Result<Response<Bytes>> {
    let provider = match provider_or_page(server, name).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let query = Params::from_query(req.uri())?;
    if let Some(error) = query.get("error") {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "Connection refused",
            &format!(
                "{} did not connect your account ({}).",
                provider.name,
                crate::text::truncate(error, 64)
            ),
        ));
    }
    let Some(session) = browser::session(server, req.headers()).await? else {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "Signed out",
            "You were signed out before the connection finished. Sign in and start again.",
        ));
    };
    let (state, code) = (query.require("state")?, query.require("code")?);
    match broker::finish_connect(server, &provider, state, code, &session.subject).await {
        Ok(row) => Ok(vault_pages::connected_page(
            &provider.name,
            &row.scope,
            &endpoint_url(server, paths::CONNECTIONS),
        )),
        Err(ConnectError::Server(e)) => Err(e),
        Err(e) => {
            let status = match e {
                ConnectError::OtherUser => StatusCode::FORBIDDEN,
                ConnectError::Upstream(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            Ok(error_page(status, "Connection failed", &e.to_string()))
        }
    }
}

/// `GET /connections` (the list) and `POST /connections` (remove one).
pub async fn connections(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    let result = match *req.method() {
        Method::GET => list(server, &req).await,
        Method::POST => remove(server, &req).await,
        _ => Err(crate::request::method_not_allowed("GET, POST")),
    };
    result.unwrap_or_else(|e| error_page(e.code.status(), "Connected accounts", &e.description))
}

async fn list(server: &Context, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let Some(session) = browser::session(server, req.headers()).await? else {
        return sign_in(
            server,
            req,
            &path_and_query(req),
            "manage your connected accounts",
            None,
        )
        .await;
    };
    let db = server.env().sql.as_ref();
    let rows = connections::list(db, Some(&session.subject), None, 200).await?;
    let username = users::by_id(db, &session.subject)
        .await?
        .map_or_else(|| session.subject.clone(), |u| u.username);
    let views: Vec<ConnectionView<'_>> = rows
        .iter()
        .map(|r| ConnectionView {
            id: &r.id,
            provider: &r.provider,
            state: &r.state,
            scope: &r.scope,
            connect_url: format!("{}{}/{}", server.issuer(), paths::CONNECT, r.provider),
        })
        .collect();
    let (csrf, set_csrf) = browser::csrf_token(server, req.headers());
    let mut resp = vault_pages::connections_page(
        &username,
        &views,
        &endpoint_url(server, paths::CONNECTIONS),
        &csrf,
    );
    if let Some(c) = set_csrf {
        add_cookie(&mut resp, &c);
    }
    Ok(resp)
}

async fn remove(server: &Context, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let form = Params::from_form(req.headers(), req.body())?;
    browser::check_csrf(server, req.headers(), form.get("csrf"))?;
    let Some(session) = browser::session(server, req.headers()).await? else {
        return Err(Error::new(
            crate::error::ErrorCode::Unauthorized,
            "sign in to manage your connected accounts",
        ));
    };
    let id = form.require("connection")?;
    let row = connections::by_id(server.env().sql.as_ref(), id)
        .await?
        .filter(|r| r.owner == session.subject)
        .ok_or_else(|| Error::new(crate::error::ErrorCode::NotFound, "no such connection"))?;
    broker::revoke(server, &row, "user").await?;
    Ok(redirect(&endpoint_url(server, paths::CONNECTIONS)))
}
