//! The effects of a login through a connector, in one place (the decisions are
//! [`super::oidc`]'s values): the IdP's discovery document and JWK Set through
//! [`crate::remote`] (SSRF policy, the one loopback switch, cache; an unknown `kid` refetches
//! the set at most every [`crate::idp::UNKNOWN_KID_REFRESH_SECS`]); the pending login stored
//! single-use; the token endpoint and UserInfo calls; and the identity resolved to one local
//! user: the linked `(connector, subject)`, else (only for a verified email in a domain the
//! operator declared as owned) the local account named by that email, else a new user.

use serde_json::{Map, Value};
use url::Url;

use super::connector::Connector;
use super::oidc::{self, ExternalIdentity, IdpMetadata, LoginParams, Refusal};
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::Error;
use crate::remote::{Doc, Kind, Remote};
use crate::runtime::random_token;
use crate::store::repo::federation::{self as repo, IdentityRow, PendingLogin};
use crate::store::repo::users::{self, UserRow};
use crate::store::StoreError;

/// How long a started login may take, seconds.
pub const LOGIN_TTL_SECS: i64 = 600;
/// The password hash of users created by a connector: not a PHC string, so no password ever
/// verifies against it.
pub const NO_PASSWORD: &str = "!federated";

/// Forgets the cached IdP documents of connector `id` (after its declaration changed).
pub async fn forget(ctx: &Context, id: &str) {
    for kind in [Kind::ConnectorConfiguration, Kind::ConnectorJwks] {
        let key = crate::remote::cache_key(kind, id);
        if let Err(e) = ctx.env().kv.delete(&key).await {
            tracing::warn!(error = %e, "connector cache entry could not be removed");
        }
    }
}

/// The IdP's discovery document (OpenID Connect Discovery 1.0 §4).
async fn metadata(ctx: &Context, c: &Connector) -> Result<IdpMetadata, Refusal> {
    let url = Url::parse(&format!(
        "{}/.well-known/openid-configuration",
        c.issuer.trim_end_matches('/')
    ))
    .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let doc = Doc {
        kind: Kind::ConnectorConfiguration,
        url: &url,
        cache_id: &c.id,
        max_bytes: oidc::MAX_DOCUMENT_BYTES,
    };
    Remote::of(ctx)
        .get(&doc, |resp| oidc::metadata(&c.issuer, resp))
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))
}

/// Why a login could not be finished.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown, used or lapsed `state`, or a callback in another browser.
    #[error("This sign-in attempt has expired, was already used or was started in another browser. Start again from the application.")]
    Expired,
    /// The IdP or its answer was refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Our own failure.
    #[error(transparent)]
    Server(#[from] Error),
}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        Self::Server(e.into())
    }
}

/// Stores a pending login for the authorization request `handle` and returns the IdP URL to
/// send the browser to and the `state` (which the browser must also carry in a cookie).
pub async fn start(
    ctx: &Context,
    c: &Connector,
    handle: &str,
) -> Result<(Url, String), LoginError> {
    let meta = metadata(ctx, c).await?;
    let rng = ctx.env().rng.as_ref();
    let state = random_token(rng, 32);
    let nonce = random_token(rng, 32);
    let verifier = random_token(rng, 32);
    let challenge = crate::pkce::s256_challenge(&verifier);
    repo::start_login(
        ctx.env().sql.as_ref(),
        &PendingLogin {
            state_hash: token_hash(&state),
            connector: c.id.clone(),
            request_hash: token_hash(handle),
            nonce_hash: token_hash(&nonce),
            verifier,
            expires_at: ctx.now() + LOGIN_TTL_SECS,
        },
    )
    .await?;
    let redirect_uri = super::connectors::redirect_uri(ctx, &c.id);
    let url = oidc::authorize_url(
        c,
        &meta,
        LoginParams {
            redirect_uri: &redirect_uri,
            state: &state,
            nonce: &nonce,
            challenge: &challenge,
        },
    )
    .map_err(|e| Refusal::Unavailable(format!("authorization_endpoint: {e}")))?;
    Ok((url, state))
}

/// A finished login.
#[derive(Debug)]
pub struct Finished {
    /// The local user.
    pub user: UserRow,
    /// The hash of the authorization request's handle the login was for.
    pub request_hash: String,
    /// Whether the identity was linked now (a first login).
    pub linked_now: bool,
}

/// Finishes a login from the IdP's callback: `state` (checked against the pending login and
/// its connector), the code redeemed, the ID token verified, the user resolved.
pub async fn finish(
    ctx: &Context,
    c: &Connector,
    state: &str,
    code: &str,
) -> Result<Finished, LoginError> {
    let db = ctx.env().sql.as_ref();
    let pending = repo::consume_login(db, &token_hash(state), ctx.now())
        .await?
        .filter(|p| p.connector == c.id)
        .ok_or(LoginError::Expired)?;
    let meta = metadata(ctx, c).await?;
    let tokens = redeem(ctx, c, &meta, code, &pending.verifier).await?;
    let mut claims = verified_claims(ctx, c, &meta, &tokens.id_token).await?;
    oidc::check_claims(
        &claims,
        oidc::Expected {
            issuer: &c.issuer,
            client_id: &c.client_id,
            nonce_hash: &pending.nonce_hash,
            now: ctx.now(),
            skew: ctx.config().jwt_clock_skew_seconds,
        },
    )?;
    if c.userinfo {
        if let (Some(endpoint), Some(at)) = (&meta.userinfo_endpoint, &tokens.access_token) {
            let info = userinfo(ctx, endpoint, at).await?;
            oidc::merge_userinfo(&mut claims, &info)?;
        }
    }
    let identity = oidc::identity(c, &claims)?;
    let (user, linked_now) = resolve(ctx, c, &identity).await?;
    if user.disabled {
        return Err(Refusal::Disabled.into());
    }
    Ok(Finished {
        user,
        request_hash: pending.request_hash,
        linked_now,
    })
}

async fn redeem(
    ctx: &Context,
    c: &Connector,
    meta: &IdpMetadata,
    code: &str,
    verifier: &str,
) -> Result<oidc::IdpTokens, Refusal> {
    let url = Url::parse(&meta.token_endpoint).map_err(|e| Refusal::Unavailable(e.to_string()))?;
    if let Err(e) = crate::remote::check_url(ctx.config(), &url) {
        tracing::warn!(connector = %c.id, reason = %e, "connector: token endpoint refused");
        return Err(Refusal::Unavailable(
            "its token endpoint is not an allowed destination".into(),
        ));
    }
    let redirect_uri = super::connectors::redirect_uri(ctx, &c.id);
    let (headers, body) = oidc::token_request(c, code, &redirect_uri, verifier);
    let resp = ctx
        .env()
        .fetcher
        .post_form(&url, &headers, &body, oidc::MAX_DOCUMENT_BYTES)
        .await
        .map_err(|e| {
            tracing::warn!(connector = %c.id, error = %e, "connector: token endpoint unreachable");
            Refusal::Unavailable("its token endpoint could not be reached".into())
        })?;
    oidc::token_response(resp.status, &resp.body)
}

/// The ID token's claims once its signature verifies with the IdP key its `kid` names, under
/// the algorithm that key decides (J1, J2; `jku`, `x5u`, `jwk` headers are never used, J3).
async fn verified_claims(
    ctx: &Context,
    c: &Connector,
    meta: &IdpMetadata,
    id_token: &str,
) -> Result<Map<String, Value>, Refusal> {
    let jws = oidc::Jws::parse(id_token)?;
    let url = Url::parse(&meta.jwks_uri).map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let doc = Doc {
        kind: Kind::ConnectorJwks,
        url: &url,
        cache_id: &c.id,
        max_bytes: oidc::MAX_DOCUMENT_BYTES,
    };
    let kid = jws.kid();
    let jwks = Remote::of(ctx)
        .get_refreshing(
            &doc,
            |resp| {
                let set = resp
                    .json_document(oidc::MAX_DOCUMENT_BYTES, "JWK Set")
                    .map_err(|e| e.to_string())?;
                if set.get("keys").is_some_and(Value::is_array) {
                    Ok(set)
                } else {
                    Err("the JWK Set has no 'keys' array".to_owned())
                }
            },
            |set: &Value| crate::jose::select_key(set, kid).is_none(),
            crate::idp::UNKNOWN_KID_REFRESH_SECS,
        )
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let jwk = crate::jose::select_key(&jwks, kid)
        .ok_or(Refusal::IdToken("it is signed by an unknown key"))?;
    let alg = crate::crypto::jws::alg_for(jwk, jws.alg())
        .ok_or(Refusal::IdToken("its algorithm is not the one of its key"))?;
    if !ctx
        .env()
        .crypto
        .jws_verify(alg, jwk, jws.signing_input.as_bytes(), &jws.signature)
        .await
    {
        return Err(Refusal::IdToken("its signature does not verify"));
    }
    Ok(jws.claims)
}

/// UserInfo (OIDC Core §5.3), asked with the access token in the header (RFC 6750 §2.1) by
/// POST, which §5.3.1 allows and our fetcher supports.
async fn userinfo(
    ctx: &Context,
    endpoint: &str,
    access_token: &str,
) -> Result<Map<String, Value>, Refusal> {
    let url = Url::parse(endpoint).map_err(|e| Refusal::Unavailable(e.to_string()))?;
    crate::remote::check_url(ctx.config(), &url)
        .map_err(|_| Refusal::Unavailable("its UserInfo endpoint is not allowed".into()))?;
    let headers = vec![
        ("Accept".to_owned(), "application/json".to_owned()),
        ("Authorization".to_owned(), format!("Bearer {access_token}")),
    ];
    let resp = ctx
        .env()
        .fetcher
        .post_form(&url, &headers, "", oidc::MAX_DOCUMENT_BYTES)
        .await
        .map_err(|_| Refusal::Unavailable("its UserInfo endpoint could not be reached".into()))?;
    resp.json_document(oidc::MAX_DOCUMENT_BYTES, "UserInfo response")
        .ok()
        .and_then(|v| v.as_object().cloned())
        .ok_or_else(|| Refusal::Unavailable("its UserInfo answer is unusable".into()))
}

/// The local user of `id`: linked already; else linked by an owned, verified email; else new.
async fn resolve(
    ctx: &Context,
    c: &Connector,
    id: &ExternalIdentity,
) -> Result<(UserRow, bool), LoginError> {
    let db = ctx.env().sql.as_ref();
    let now = ctx.now();
    if let Some(linked) = repo::identity_get(db, &c.id, &id.subject).await? {
        repo::identity_touch(db, &c.id, &id.subject, id.email.as_deref(), &id.groups, now).await?;
        let user = users::by_id(db, &linked.user_id)
            .await?
            .ok_or_else(|| Error::server("a linked identity's user is gone"))?;
        return Ok((user, false));
    }
    let existing = match oidc::may_link_by_email(c, id) {
        Some(email) => users::by_username(db, email).await?,
        None => None,
    };
    let user = match existing {
        Some(u) => u,
        None => new_user(ctx, c, id).await?,
    };
    let row = IdentityRow {
        connector: c.id.clone(),
        subject: id.subject.clone(),
        user_id: user.id.clone(),
        email: id.email.clone(),
        groups: id.groups.clone(),
        created_at: now,
        last_login_at: now,
    };
    match repo::identity_insert(db, &row).await {
        Ok(()) => Ok((user, true)),
        // A concurrent first login linked it: use that link.
        Err(StoreError::Conflict(_)) => {
            let linked = repo::identity_get(db, &c.id, &id.subject)
                .await?
                .ok_or_else(|| Error::server("identity link vanished"))?;
            let user = users::by_id(db, &linked.user_id)
                .await?
                .ok_or_else(|| Error::server("a linked identity's user is gone"))?;
            Ok((user, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// A new local user for a first login: named `{connector}:{username, email or subject}` (the
/// admin API never accepts a colon in a username, so no local account can be taken over or
/// shadowed by that name; if it is taken, the subject and then a random suffix are used),
/// without a password.
async fn new_user(
    ctx: &Context,
    c: &Connector,
    id: &ExternalIdentity,
) -> Result<UserRow, LoginError> {
    let db = ctx.env().sql.as_ref();
    let shown = id
        .username
        .as_deref()
        .or(id.email.as_deref())
        .unwrap_or(&id.subject);
    let rng = ctx.env().rng.as_ref();
    let candidates = [
        format!("{}:{shown}", c.id),
        format!("{}:{}", c.id, id.subject),
        format!("{}:{}-{}", c.id, id.subject, random_token(rng, 6)),
    ];
    for name in candidates {
        let user = UserRow {
            id: random_token(rng, 16),
            username: crate::text::truncate(&name, 128).to_owned(),
            password_hash: NO_PASSWORD.to_owned(),
            disabled: false,
            created_at: ctx.now(),
        };
        match users::insert(db, &user).await {
            Ok(()) => return Ok(user),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::server("no free username for a new federated user").into())
}
