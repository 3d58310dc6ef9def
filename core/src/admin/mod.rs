//! Admin API, served on the admin listener: users, resources (RFC 8707 / RFC 9728), static
//! clients (RFC 7591 metadata), the audit log and signing keys (RFC 7517). Requests carry
//! `Authorization: Bearer <admin_api_key>` (RFC 6750 §2.1), compared in constant time;
//! bodies are JSON and errors are RFC 9457 problem details. [`route_trusted`] is the same
//! routing without the key check, for the local CLI that already holds the database.

mod audit;
mod audit_export;
mod client_policy;
mod clients;
mod connectors;
mod console;
mod grants;
mod idps;
mod keys;
mod resources;
pub mod seed;
#[cfg(test)]
mod tests;
mod tokens;
mod trusted_issuers;
mod users;
mod vault;
mod workloads;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::host::{too_large, MAX_BODY_BYTES};
use crate::request::{method_not_allowed, Params, RequestId};
use crate::response::{error_json, json};

/// The challenge sent with every 401 (RFC 6750 §3).
const CHALLENGE: &str = "Bearer realm=\"portcullis-admin\"";

/// Largest page a list endpoint returns.
const MAX_PAGE: i64 = 1000;

/// Routes an admin request after checking the admin API key.
pub async fn route(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    // The console has its own sign-in (with the same key) and session.
    if console::owns(req.uri().path()) {
        if req.body().len() > MAX_BODY_BYTES {
            return too_large();
        }
        return console::handle(server, req).await;
    }
    // Metrics take the admin key or the read-only metrics token.
    if req.uri().path() == crate::metrics::PATH {
        if !crate::metrics::authorized(server, &req) {
            return error_json(&crate::metrics::unauthorized());
        }
        return route_trusted(server, req).await;
    }
    if let Err(e) = check_key(server, &req) {
        if server.config().admin_api_key.is_some() {
            record_refusal(server, &req).await;
        }
        return error_json(&e);
    }
    route_trusted(server, req).await
}

/// Length of the window in which refused admin requests are counted, seconds (B4).
pub const REFUSAL_WINDOW_SECS: i64 = 300;

/// Counts a refused (unauthenticated) admin request in the cache, per window, and writes one
/// `admin.auth` failure event per window, carrying the previous window's count: on the edge
/// the admin API is on the public origin, and one audit row per anonymous request would let
/// anyone grow the audit table without bound (B4). The count is approximate on eventually
/// consistent caches; when the cache fails, the refusal is only logged.
async fn record_refusal(server: &Context, req: &Request<Bytes>) {
    let kv = server.env().kv.as_ref();
    let now = server.now();
    let window = now.div_euclid(REFUSAL_WINDOW_SECS);
    let key = |w: i64| format!("admin_refused:{w}");
    let read = |v: Option<Vec<u8>>| {
        v.and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let count = match kv.get(&key(window), now).await {
        Ok(v) => read(v),
        Err(e) => {
            tracing::warn!(error = %e, "refused admin request not counted");
            return;
        }
    };
    // Kept one window longer, so the next window's event can report it.
    let keep_until = (window + 2) * REFUSAL_WINDOW_SECS;
    if let Err(e) = kv
        .put(
            &key(window),
            (count + 1).to_string().into_bytes(),
            keep_until,
        )
        .await
    {
        tracing::warn!(error = %e, "refused admin request not counted");
        return;
    }
    if count > 0 {
        return;
    }
    let previous = kv
        .get(&key(window - 1), now)
        .await
        .ok()
        .flatten()
        .map(|v| read(Some(v)));
    crate::audit::record(
        server.env(),
        crate::audit::Event {
            action: "admin.auth",
            success: false,
            reason: Some("unauthorized"),
            request: request_id(req),
            detail: Some(serde_json::json!({
                "window_secs": REFUSAL_WINDOW_SECS,
                "counted_not_recorded": "further refusals in this window",
                "previous_window_refusals": previous,
            })),
            ..Default::default()
        },
    )
    .await;
}

/// Routes an admin request without the key check: only for callers that already hold the
/// server's storage (the local CLI), never for a network listener.
pub async fn route_trusted(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    if req.body().len() > MAX_BODY_BYTES {
        return too_large();
    }
    match dispatch(server, &req).await {
        Ok(resp) => resp,
        Err(e) => error_json(&e),
    }
}

/// Checks `Authorization: Bearer <key>`. Both sides are hashed first so the comparison is
/// constant time and independent of the key's length.
fn check_key(server: &Context, req: &Request<Bytes>) -> Result<()> {
    let Some(key) = server.config().admin_api_key.as_ref() else {
        return Err(Error::new(
            ErrorCode::Unauthorized,
            "no admin API key is configured (set admin_api_key or PORTCULLIS_ADMIN_API_KEY); \
             the admin API refuses every request",
        )
        .with_header(header::WWW_AUTHENTICATE, CHALLENGE));
    };
    let unauthorized = || {
        Error::new(
            ErrorCode::Unauthorized,
            "a valid admin API key is required (Authorization: Bearer <key>)",
        )
        .with_header(header::WWW_AUTHENTICATE, CHALLENGE)
    };
    if presents_key(req.headers(), key) {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

use crate::admin_key::presents_key;

async fn dispatch(server: &Context, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/admin/") else {
        return Err(not_found());
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let m = req.method();
    match segments.as_slice() {
        ["openapi.json"] => match *m {
            Method::GET => Ok(openapi()),
            _ => Err(method_not_allowed("GET")),
        },
        ["users"] => match *m {
            Method::GET => users::list(server, req).await,
            Method::POST => users::create(server, req).await,
            _ => Err(method_not_allowed("GET, POST")),
        },
        ["users", name] => {
            let name = decode_segment(name)?;
            match *m {
                Method::GET => users::get(server, &name).await,
                Method::DELETE => users::delete(server, req, &name).await,
                _ => Err(method_not_allowed("GET, DELETE")),
            }
        }
        ["users", name, action @ ("disable" | "enable")] => {
            let name = decode_segment(name)?;
            match *m {
                Method::POST => users::set_disabled(server, req, &name, *action == "disable").await,
                _ => Err(method_not_allowed("POST")),
            }
        }
        ["users", name, "sessions"] => {
            let name = decode_segment(name)?;
            match *m {
                Method::GET => users::sessions(server, &name).await,
                Method::DELETE => users::end_sessions(server, req, &name, None).await,
                _ => Err(method_not_allowed("GET, DELETE")),
            }
        }
        ["users", name, "sessions", id] => {
            let (name, id) = (decode_segment(name)?, decode_segment(id)?);
            match *m {
                Method::DELETE => users::end_sessions(server, req, &name, Some(&id)).await,
                _ => Err(method_not_allowed("DELETE")),
            }
        }
        ["users", name, "password"] => {
            let name = decode_segment(name)?;
            match *m {
                Method::POST => users::set_password(server, req, &name).await,
                _ => Err(method_not_allowed("POST")),
            }
        }
        ["resources"] => match *m {
            Method::GET => resources::list(server).await,
            Method::POST => resources::create(server, req).await,
            Method::DELETE => resources::delete(server, req).await,
            _ => Err(method_not_allowed("GET, POST, DELETE")),
        },
        ["clients"] => match *m {
            Method::GET => clients::list(server, req).await,
            Method::POST => clients::create(server, req).await,
            _ => Err(method_not_allowed("GET, POST")),
        },
        ["clients", id] => {
            let id = decode_segment(id)?;
            match *m {
                Method::GET => clients::get(server, &id).await,
                Method::PATCH => clients::update(server, req, &id).await,
                Method::DELETE => clients::delete(server, req, &id).await,
                _ => Err(method_not_allowed("GET, PATCH, DELETE")),
            }
        }
        ["clients", id, "secret"] => {
            let id = decode_segment(id)?;
            match *m {
                Method::POST => clients::rotate_secret(server, req, &id).await,
                _ => Err(method_not_allowed("POST")),
            }
        }
        ["clients", id, "policy"] => {
            let id = decode_segment(id)?;
            match *m {
                Method::GET => client_policy::get(server, &id).await,
                Method::PUT => client_policy::put(server, req, &id).await,
                _ => Err(method_not_allowed("GET, PUT")),
            }
        }
        ["clients", id, action @ ("suspend" | "resume")] => {
            let id = decode_segment(id)?;
            match *m {
                Method::POST => {
                    client_policy::set_suspended(server, req, &id, *action == "suspend").await
                }
                _ => Err(method_not_allowed("POST")),
            }
        }
        ["metrics"] => match *m {
            Method::GET => crate::metrics::serve(server).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["audit"] => match *m {
            Method::GET => audit::list(server, req).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["audit", "export"] => match *m {
            Method::GET => audit_export::export(server, req).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["grants"] => match *m {
            Method::GET => grants::list(server, req).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["grants", id, "revoke"] => {
            let id = decode_segment(id)?;
            match *m {
                Method::POST => grants::revoke(server, req, &id).await,
                _ => Err(method_not_allowed("POST")),
            }
        }
        ["tokens"] => match *m {
            Method::GET => tokens::search(server, req).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["tokens", "revoke"] => match *m {
            Method::POST => tokens::revoke(server, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["tokens", jti] => {
            let jti = decode_segment(jti)?;
            match *m {
                Method::GET => tokens::get(server, &jti).await,
                _ => Err(method_not_allowed("GET")),
            }
        }
        ["keys"] => match *m {
            Method::GET => keys::list(server).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["keys", "rotate"] => match *m {
            Method::POST => keys::rotate(server, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["rekey"] => match *m {
            Method::POST => keys::rekey(server, req).await,
            _ => Err(method_not_allowed("POST")),
        },
        ["idps"] => match *m {
            Method::GET => idps::list(server).await,
            Method::POST => idps::create(server, req).await,
            Method::DELETE => idps::delete(server, req).await,
            _ => Err(method_not_allowed("GET, POST, DELETE")),
        },
        ["idp-policies"] => match *m {
            Method::GET => idps::list_policies(server, req).await,
            Method::POST => idps::create_policy(server, req).await,
            _ => Err(method_not_allowed("GET, POST")),
        },
        ["idp-policies", id] => {
            let id = decode_segment(id)?;
            match *m {
                Method::DELETE => idps::delete_policy(server, req, &id).await,
                _ => Err(method_not_allowed("DELETE")),
            }
        }
        ["workload-issuers"] => match *m {
            Method::GET => workloads::list_issuers(server).await,
            Method::POST => workloads::create_issuer(server, req).await,
            Method::DELETE => workloads::delete_issuer(server, req).await,
            _ => Err(method_not_allowed("GET, POST, DELETE")),
        },
        ["workload-rules"] => match *m {
            Method::GET => workloads::list_rules(server, req).await,
            Method::POST => workloads::create_rule(server, req).await,
            _ => Err(method_not_allowed("GET, POST")),
        },
        ["workload-rules", id] => {
            let id = decode_segment(id)?;
            match *m {
                Method::DELETE => workloads::delete_rule(server, req, &id).await,
                _ => Err(method_not_allowed("DELETE")),
            }
        }
        ["providers"] => match *m {
            Method::GET => vault::list_providers(server).await,
            Method::POST => vault::create_provider(server, req).await,
            _ => Err(method_not_allowed("GET, POST")),
        },
        ["providers", name] => {
            let name = decode_segment(name)?;
            match *m {
                Method::DELETE => vault::delete_provider(server, req, &name).await,
                _ => Err(method_not_allowed("DELETE")),
            }
        }
        ["connections"] => match *m {
            Method::GET => vault::list_connections(server, req).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["connections", id] => {
            let id = decode_segment(id)?;
            match *m {
                Method::DELETE => vault::revoke_connection(server, req, &id).await,
                _ => Err(method_not_allowed("DELETE")),
            }
        }
        ["connectors"] => match *m {
            Method::GET => connectors::list(server).await,
            Method::POST => connectors::create(server, req).await,
            _ => Err(method_not_allowed("GET, POST")),
        },
        ["connectors", id] => {
            let id = decode_segment(id)?;
            match *m {
                Method::DELETE => connectors::delete(server, req, &id).await,
                _ => Err(method_not_allowed("DELETE")),
            }
        }
        ["identities"] => match *m {
            Method::GET => connectors::list_identities(server, req).await,
            _ => Err(method_not_allowed("GET")),
        },
        ["identities", connector, subject] => {
            let (connector, subject) = (decode_segment(connector)?, decode_segment(subject)?);
            match *m {
                Method::DELETE => connectors::unlink(server, req, &connector, &subject).await,
                _ => Err(method_not_allowed("DELETE")),
            }
        }
        ["idp-subjects"] => match *m {
            Method::GET => idps::list_subjects(server, req).await,
            Method::POST => idps::create_subject(server, req).await,
            Method::DELETE => idps::delete_subject(server, req).await,
            _ => Err(method_not_allowed("GET, POST, DELETE")),
        },
        _ => Err(not_found()),
    }
}

/// The OpenAPI 3.1 description of this API (`GET /admin/openapi.json`), written by hand and
/// checked against real responses by the test suite.
pub const OPENAPI: &str = include_str!("openapi.json");

fn openapi() -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from_static(OPENAPI.as_bytes()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn not_found() -> Error {
    Error::new(ErrorCode::NotFound, "no such admin endpoint")
}

/// The request id the adapter attached, for audit events.
fn request_id(req: &Request<Bytes>) -> Option<&RequestId> {
    req.extensions().get::<RequestId>()
}

/// Writes an admin audit event (always a success: refused requests change nothing).
async fn record(
    server: &Context,
    req: &Request<Bytes>,
    action: &str,
    client_id: Option<&str>,
    subject: Option<&str>,
    detail: serde_json::Value,
) {
    crate::audit::record(
        server.env(),
        crate::audit::Event {
            action,
            success: true,
            client_id,
            subject,
            request: request_id(req),
            detail: Some(console::annotate(req, detail)),
            ..Default::default()
        },
    )
    .await;
}

/// The answer to an upsert: the audit event `{kind}.created` (201) when the row is new,
/// `{kind}.updated` (200) when it replaced one, with the stored row's `view` as the body.
async fn upserted(
    server: &Context,
    req: &Request<Bytes>,
    kind: &str,
    is_new: bool,
    client_id: Option<&str>,
    detail: serde_json::Value,
    view: serde_json::Value,
) -> Response<Bytes> {
    let action = format!("{kind}.{}", if is_new { "created" } else { "updated" });
    record(server, req, &action, client_id, None, detail).await;
    if is_new {
        created(view)
    } else {
        ok(view)
    }
}

/// The answer to a delete: 404 with `missing` when nothing was removed, else the audit event
/// `action` and 204.
async fn deleted(
    server: &Context,
    req: &Request<Bytes>,
    removed: bool,
    missing: impl FnOnce() -> String,
    action: &str,
    detail: serde_json::Value,
) -> Result<Response<Bytes>> {
    if !removed {
        return Err(Error::new(ErrorCode::NotFound, missing()));
    }
    record(server, req, action, None, None, detail).await;
    Ok(no_content())
}

/// `200 OK` with a JSON body.
fn ok(value: serde_json::Value) -> Response<Bytes> {
    json(StatusCode::OK, &value)
}

/// `201 Created` with a JSON body.
fn created(value: serde_json::Value) -> Response<Bytes> {
    json(StatusCode::CREATED, &value)
}

/// `204 No Content`.
fn no_content() -> Response<Bytes> {
    let mut resp = Response::new(Bytes::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The query parameters of `req` (a repeated parameter is `invalid_request`).
fn query(req: &Request<Bytes>) -> Result<Params> {
    Params::from_query(req.uri())
}

/// An optional integer query parameter within `min..=max`.
fn int_param(params: &Params, name: &str, min: i64, max: i64) -> Result<Option<i64>> {
    let Some(raw) = params.get(name) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(Error::invalid_request(format!(
            "'{name}' must be an integer between {min} and {max}"
        ))),
    }
}

/// `limit` (default `default`, at most [`MAX_PAGE`]) and `offset` (default 0).
fn page(params: &Params, default: i64) -> Result<(i64, i64)> {
    let limit = int_param(params, "limit", 1, MAX_PAGE)?.unwrap_or(default);
    let offset = int_param(params, "offset", 0, i64::from(i32::MAX))?.unwrap_or(0);
    Ok((limit, offset))
}

/// Percent-decodes one path segment (RFC 3986 §2.1); invalid escapes or UTF-8 are 400.
fn decode_segment(s: &str) -> Result<String> {
    let bad = || Error::invalid_request("the path contains an invalid percent-encoding");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let digit = |c: u8| (c as char).to_digit(16);
            let (Some(hi), Some(lo)) = (digit(hex[0]), digit(hex[1])) else {
                return Err(bad());
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| bad())?;
    if decoded.is_empty() {
        return Err(not_found());
    }
    Ok(decoded)
}
