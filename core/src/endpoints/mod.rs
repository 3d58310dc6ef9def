//! Routing of the public listener. Endpoints live under the issuer's path (RFC 8414 §3:
//! an issuer `https://as.example/tenant` serves `/tenant/oauth/token`); well-known documents
//! are also served at the path-inserted locations (RFC 8414 §3.1, RFC 9728 §3.1).

pub mod authorize;
pub mod browser;
pub mod connect;
pub mod connectors;
pub mod consent;
pub mod discovery;
pub mod health;
pub mod introspect;
pub mod login;
pub mod pages;
pub mod prm;
pub mod register;
pub mod revoke;
pub mod token;
pub mod vault_pages;

use bytes::Bytes;
use http::{Method, Request, Response};

use crate::context::Context;
use crate::error::{Error, ErrorCode};
use crate::host::{too_large, MAX_BODY_BYTES};
use crate::paths;
use crate::response::{error_json, preflight, with_cors};

/// Dispatches a public request.
pub async fn route(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    if req.body().len() > MAX_BODY_BYTES {
        return too_large();
    }
    let path = req.uri().path().to_owned();

    // Path-inserted well-known documents live at the origin root.
    if let Some(resp) = discovery::route_well_known(server, &req, &path).await {
        return resp;
    }
    if let Some(rest) = path.strip_prefix("/.well-known/oauth-protected-resource") {
        return with_cors(prm::handle(server, &req, rest).await);
    }
    if path == "/health" {
        return health::live();
    }
    if path == "/ready" {
        return health::ready(server).await;
    }

    let issuer_path = issuer_path(server);
    let Some(local) = path.strip_prefix(issuer_path.as_str()) else {
        return not_found();
    };
    let local = if local.is_empty() { "/" } else { local };
    let cors = matches!(
        local,
        paths::TOKEN | paths::REVOKE | paths::INTROSPECT | paths::REGISTER | paths::JWKS
    );
    if cors && req.method() == Method::OPTIONS {
        return preflight();
    }
    let resp = match local {
        paths::AUTHORIZE => authorize::handle(server, req).await,
        paths::LOGIN => login::handle(server, req).await,
        paths::CONSENT => consent::handle(server, req).await,
        paths::LOGOUT => login::logout(server, req).await,
        paths::TOKEN => token::handle(server, req).await,
        paths::REGISTER => register::handle(server, req).await,
        paths::REVOKE => revoke::handle(server, req).await,
        paths::INTROSPECT => introspect::handle(server, req).await,
        paths::JWKS => discovery::jwks(server, &req).await,
        paths::CONNECTIONS => connect::connections(server, req).await,
        other if other.starts_with(paths::CONNECTORS) => {
            let rest = other[paths::CONNECTORS.len()..].to_owned();
            connectors::handle(server, req, &rest).await
        }
        other => match other.strip_prefix(paths::CONNECT) {
            Some(rest) if rest.starts_with('/') => {
                let rest = rest.to_owned();
                connect::handle(server, req, &rest).await
            }
            _ => not_found(),
        },
    };
    if cors {
        with_cors(resp)
    } else {
        resp
    }
}

/// The issuer's path without a trailing slash (empty for an origin issuer).
pub fn issuer_path(server: &Context) -> String {
    url::Url::parse(server.issuer())
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// 404 in the common error shape.
pub fn not_found() -> Response<Bytes> {
    error_json(&Error::new(ErrorCode::NotFound, "no such endpoint"))
}
