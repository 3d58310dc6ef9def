//! Admin API: end users (`/admin/users`). Passwords are hashed with argon2id (RFC 9106) and
//! never returned; the user id is a random opaque subject identifier. A user's sign-in
//! sessions are listed (`GET /admin/users/{name}/sessions`, each named by the hash of its
//! cookie, never the cookie) and ended, one or all (`DELETE …/sessions[/{id}]`); their grants
//! are at `GET /admin/grants?subject={id}`. Password reset is the administrator setting a new
//! password (`POST …/password`), which also ends the user's sessions and grants.

use bytes::Bytes;
use http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, page, query, record};
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::request::json_body;
use crate::secret::Secret;
use crate::store::repo::users::{self as repo, UserRow};
use crate::store::StoreError;
use crate::text::truncate;

/// Longest username, characters.
const MAX_USERNAME: usize = 128;
/// Shortest and longest password, characters.
const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: Secret,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: Secret,
}

/// Checks a username: 1 to 128 characters of ASCII letters, digits and `. _ - @ +`.
pub(crate) fn validate_username(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_USERNAME {
        return Err(Error::invalid_request(format!(
            "username must be 1 to {MAX_USERNAME} characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+')))
    {
        return Err(Error::invalid_request(format!(
            "username may only contain ASCII letters, digits and . _ - @ + (found {c:?})"
        )));
    }
    Ok(())
}

/// Checks a password's length: 8 to 1024 characters.
pub(crate) fn validate_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !PASSWORD_LEN.contains(&n) {
        return Err(Error::invalid_request(format!(
            "password must be {} to {} characters",
            PASSWORD_LEN.start(),
            PASSWORD_LEN.end()
        )));
    }
    Ok(())
}

/// Hashes `password` with argon2id at the configured cost, through the host's crypto
/// provider (which may run it off the async workers).
pub(crate) async fn hash_password(server: &Context, password: &str) -> Result<String> {
    let salt = crate::crypto::password::new_salt(server.env().rng.as_ref());
    server
        .env()
        .crypto
        .password_hash(password, salt, server.config().login.password_cost())
        .await
        .map_err(|_| Error::server("the password could not be hashed"))
}

/// The public view of a user (no hash).
fn view(u: &UserRow) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "disabled": u.disabled,
        "created_at": u.created_at,
    })
}

fn no_such_user(name: &str) -> Error {
    Error::new(
        ErrorCode::NotFound,
        format!("no user named '{}'", truncate(name, 128)),
    )
}

/// Stores a new user with an already computed hash; a taken name is
/// [`StoreError::Conflict`].
pub(crate) async fn insert(
    server: &Context,
    username: &str,
    password_hash: String,
) -> Result<UserRow, StoreError> {
    let row = UserRow {
        id: crate::runtime::random_token(server.env().rng.as_ref(), 16),
        username: username.to_owned(),
        password_hash,
        disabled: false,
        created_at: server.now(),
    };
    repo::insert(server.env().sql.as_ref(), &row).await?;
    Ok(row)
}

/// `POST /admin/users`.
pub(super) async fn create(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let body: NewUser = json_body(req.headers(), req.body())?;
    validate_username(&body.username)?;
    validate_password(body.password.expose())?;
    let db = server.env().sql.as_ref();
    let taken = || {
        Error::new(
            ErrorCode::Conflict,
            format!("a user named '{}' already exists", body.username),
        )
    };
    // Checked first so a taken name costs no argon2 work; the insert is still the
    // authority (a concurrent create loses with the same 409).
    if repo::by_username(db, &body.username).await?.is_some() {
        return Err(taken());
    }
    let hash = hash_password(server, body.password.expose()).await?;
    let row = match insert(server, &body.username, hash).await {
        Ok(row) => row,
        Err(StoreError::Conflict(_)) => return Err(taken()),
        Err(e) => return Err(e.into()),
    };
    record(
        server,
        req,
        "admin.user.created",
        None,
        Some(&row.id),
        json!({ "username": row.username }),
    )
    .await;
    Ok(created(json!({
        "id": row.id,
        "username": row.username,
        "created_at": row.created_at,
    })))
}

/// `GET /admin/users?limit=&offset=`.
pub(super) async fn list(server: &Context, req: &Request<Bytes>) -> Result<http::Response<Bytes>> {
    let (limit, offset) = page(&query(req)?, 100)?;
    let users = repo::list(server.env().sql.as_ref(), limit, offset).await?;
    Ok(ok(
        json!({ "users": users.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// `GET /admin/users/{username}`.
pub(super) async fn get(server: &Context, name: &str) -> Result<http::Response<Bytes>> {
    let user = repo::by_username(server.env().sql.as_ref(), name)
        .await?
        .ok_or_else(|| no_such_user(name))?;
    Ok(ok(view(&user)))
}

/// `DELETE /admin/users/{username}`.
pub(super) async fn delete(
    server: &Context,
    req: &Request<Bytes>,
    name: &str,
) -> Result<http::Response<Bytes>> {
    let db = server.env().sql.as_ref();
    let user = repo::by_username(db, name)
        .await?
        .ok_or_else(|| no_such_user(name))?;
    if !repo::delete(db, name).await? {
        return Err(no_such_user(name));
    }
    end_access(server, &user.id).await?;
    record(
        server,
        req,
        "admin.user.deleted",
        None,
        Some(&user.id),
        json!({ "username": user.username }),
    )
    .await;
    Ok(no_content())
}

/// `POST /admin/users/{username}/password` with `{"password": "..."}`.
pub(super) async fn set_password(
    server: &Context,
    req: &Request<Bytes>,
    name: &str,
) -> Result<http::Response<Bytes>> {
    let body: NewPassword = json_body(req.headers(), req.body())?;
    validate_password(body.password.expose())?;
    let db = server.env().sql.as_ref();
    let user = repo::by_username(db, name)
        .await?
        .ok_or_else(|| no_such_user(name))?;
    let hash = hash_password(server, body.password.expose()).await?;
    if !repo::set_password(db, name, &hash).await? {
        return Err(no_such_user(name));
    }
    // U2: whoever knew the old password is signed out and loses what it granted.
    end_access(server, &user.id).await?;
    record(
        server,
        req,
        "admin.user.password_changed",
        None,
        Some(&user.id),
        json!({ "username": user.username }),
    )
    .await;
    Ok(no_content())
}

/// The user's sessions end and every grant they made is revoked, with its refresh and access
/// tokens (deletion, password change, disabling).
async fn end_access(server: &Context, user_id: &str) -> Result<()> {
    let db = server.env().sql.as_ref();
    crate::store::repo::sessions::delete_for_subject(db, user_id).await?;
    crate::store::repo::grants::revoke_for_subject(db, user_id, server.now()).await?;
    Ok(())
}

/// `POST /admin/users/{username}/disable` or `…/enable` (U1): a disabled user cannot sign in,
/// their sessions end, their grants are revoked, and their tokens introspect as inactive.
pub(super) async fn set_disabled(
    server: &Context,
    req: &Request<Bytes>,
    name: &str,
    disabled: bool,
) -> Result<http::Response<Bytes>> {
    let db = server.env().sql.as_ref();
    let user = repo::by_username(db, name)
        .await?
        .ok_or_else(|| no_such_user(name))?;
    if !repo::set_disabled(db, name, disabled).await? {
        return Err(no_such_user(name));
    }
    if disabled {
        end_access(server, &user.id).await?;
    }
    let action = if disabled {
        "admin.user.disabled"
    } else {
        "admin.user.enabled"
    };
    record(
        server,
        req,
        action,
        None,
        Some(&user.id),
        json!({ "username": user.username }),
    )
    .await;
    Ok(no_content())
}

/// Most sessions listed per user.
const MAX_SESSIONS: i64 = 200;

/// `GET /admin/users/{username}/sessions`: `{"sessions": [{"id", "auth_time", "expires_at"}]}`,
/// live sessions, newest sign-in first.
pub(super) async fn sessions(server: &Context, name: &str) -> Result<http::Response<Bytes>> {
    let db = server.env().sql.as_ref();
    let user = repo::by_username(db, name)
        .await?
        .ok_or_else(|| no_such_user(name))?;
    let rows =
        crate::store::repo::sessions::list_for_subject(db, &user.id, server.now(), MAX_SESSIONS)
            .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|s| json!({ "id": s.id_hash, "auth_time": s.auth_time, "expires_at": s.expires_at }))
        .collect();
    Ok(ok(json!({ "user_id": user.id, "sessions": list })))
}

/// `DELETE /admin/users/{username}/sessions` (all) or `…/sessions/{id}` (one): 204; the user
/// must sign in again (grants and tokens stay: revoke those at `/admin/grants`). Audited as
/// `admin.user.sessions_ended`.
pub(super) async fn end_sessions(
    server: &Context,
    req: &Request<Bytes>,
    name: &str,
    one: Option<&str>,
) -> Result<http::Response<Bytes>> {
    let db = server.env().sql.as_ref();
    let user = repo::by_username(db, name)
        .await?
        .ok_or_else(|| no_such_user(name))?;
    match one {
        Some(id) => {
            if !crate::store::repo::sessions::delete_of_subject(db, &user.id, id).await? {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    format!("{name} has no session '{}'", truncate(id, 64)),
                ));
            }
        }
        None => crate::store::repo::sessions::delete_for_subject(db, &user.id).await?,
    }
    record(
        server,
        req,
        "admin.user.sessions_ended",
        None,
        Some(&user.id),
        json!({ "username": user.username, "session": one }),
    )
    .await;
    Ok(no_content())
}
