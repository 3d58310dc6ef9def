//! The vault's effects, in one place: starting and finishing a connect (RFC 6749 §4.1 with
//! PKCE against the provider), calling the provider's token endpoint through the SSRF-checked
//! fetcher, and vending a connection's access token with a single-flight refresh (the claim
//! is one conditional statement; losers wait and re-read, so however many vends race there is
//! exactly one upstream refresh). Every connect, refresh, refresh failure, vend and revoke is
//! audited; no upstream token is ever logged, audited or told.

use serde_json::json;
use url::Url;

use super::connection::{
    freshness, usable_despite_failed_refresh, ConnectionState, Freshness, Timing, CLAIM_SECS,
};
use super::provider::Provider;
use super::seal::{self, Binding, SealError};
use super::upstream::{self, Grant, UpstreamRefusal, UpstreamTokens};
use crate::audit::{self, Event};
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::{Error, ErrorCode, Result};
use crate::paths;
use crate::runtime::random_token;
use crate::store::repo::connections::{self as repo, ConnectRequest, ConnectionRow};

/// Largest token endpoint answer read.
pub const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// How long a started connect may take.
pub const CONNECT_TTL_SECS: i64 = 600;
/// How often a vend that lost the refresh race re-reads the connection.
const WAIT_STEP_MS: u64 = 50;
/// How many times it does before giving up (the claim's lifetime: the winner has died).
const MAX_WAITS: u64 = CLAIM_SECS as u64 * 1000 / WAIT_STEP_MS;

/// The provider's callback at this server.
pub fn callback_url(ctx: &Context, provider: &str) -> String {
    format!("{}{}/{provider}/callback", ctx.issuer(), paths::CONNECT)
}

/// The page that starts a connect, bound to `owner` (an `interaction_required` answer's
/// `connect_uri`).
pub fn connect_uri(ctx: &Context, provider: &str, owner: &str) -> String {
    let bound = super::link::binding(ctx.config().master_key_bytes(), provider, owner, ctx.now());
    let mut url = format!("{}{}/{provider}", ctx.issuer(), paths::CONNECT);
    url.push_str("?for=");
    url.push_str(&form_urlencoded::byte_serialize(bound.as_bytes()).collect::<String>());
    url
}

/// Stores a pending connect for `owner` and returns the provider URL to send the browser to.
pub async fn start_connect(ctx: &Context, provider: &Provider, owner: &str) -> Result<Url> {
    let rng = ctx.env().rng.as_ref();
    let state = random_token(rng, 32);
    let verifier = random_token(rng, 32);
    let challenge = crate::pkce::s256_challenge(&verifier);
    repo::start_connect(
        ctx.env().sql.as_ref(),
        &ConnectRequest {
            state_hash: token_hash(&state),
            owner: owner.to_owned(),
            provider: provider.name.clone(),
            verifier,
            expires_at: ctx.now() + CONNECT_TTL_SECS,
        },
    )
    .await?;
    Ok(upstream::authorize_url(
        provider,
        &callback_url(ctx, &provider.name),
        &state,
        Some(&challenge),
    ))
}

/// Why a connect could not be finished (each is a page for the person).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Unknown, used or lapsed `state`.
    #[error("This connection attempt has expired or was already used. Start again.")]
    Expired,
    /// Started by another user than the one signed in now.
    #[error("This connection attempt was started by another user. Sign in as that user and start again.")]
    OtherUser,
    /// The provider refused or failed.
    #[error("The provider did not issue a token: {0}")]
    Upstream(UpstreamRefusal),
    /// Our own failure.
    #[error(transparent)]
    Server(#[from] Error),
}

fn token_binding<'a>(row: &'a ConnectionRow, field: &'a str) -> Binding<'a> {
    Binding {
        owner: &row.owner,
        provider: &row.provider,
        connection: &row.id,
        field,
    }
}

/// Calls the provider's token endpoint.
async fn call(
    ctx: &Context,
    provider: &Provider,
    grant: Grant<'_>,
) -> std::result::Result<UpstreamTokens, UpstreamRefusal> {
    let c = upstream::token_call(provider, grant);
    if let Err(e) = crate::remote::check_url(ctx.config(), &c.url) {
        tracing::warn!(provider = %provider.name, reason = %e, "vault: token endpoint refused");
        return Err(UpstreamRefusal::Failed(
            "the token endpoint is not an allowed destination".into(),
        ));
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(c.form.iter())
        .finish();
    let resp = ctx
        .env()
        .fetcher
        .post_form(&c.url, &c.headers, &body, MAX_TOKEN_RESPONSE)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.name, error = %e, "vault: token endpoint unreachable");
            UpstreamRefusal::Failed("the token endpoint could not be reached".into())
        })?;
    upstream::read_token_response(
        provider.preset,
        resp.status,
        resp.content_type.as_deref(),
        &resp.body,
    )
}

fn scope_of(tokens: &UpstreamTokens, provider: &Provider) -> String {
    tokens
        .scope
        .clone()
        .unwrap_or_else(|| provider.scopes.clone())
        .join(" ")
}

/// Finishes a connect from the provider's callback: checks `state` against the signed-in
/// user, redeems the code, seals and stores the tokens.
pub async fn finish_connect(
    ctx: &Context,
    provider: &Provider,
    state: &str,
    code: &str,
    signed_in: &str,
) -> std::result::Result<ConnectionRow, ConnectError> {
    let db = ctx.env().sql.as_ref();
    let now = ctx.now();
    let pending = repo::consume_connect(db, &token_hash(state), now)
        .await
        .map_err(Error::from)?
        .filter(|p| p.provider == provider.name)
        .ok_or(ConnectError::Expired)?;
    if pending.owner != signed_in {
        return Err(ConnectError::OtherUser);
    }
    let redirect_uri = callback_url(ctx, &provider.name);
    let grant = Grant::Code {
        code,
        redirect_uri: &redirect_uri,
        verifier: Some(&pending.verifier),
    };
    let tokens = match call(ctx, provider, grant).await {
        Ok(t) => t,
        Err(e) => {
            audit_event(
                ctx,
                "vault.connect",
                false,
                Party {
                    client_id: None,
                    owner: &pending.owner,
                    provider: &provider.name,
                },
                Some(&e.to_string()),
                None,
            )
            .await;
            return Err(ConnectError::Upstream(e));
        }
    };
    let id = repo::get(db, &pending.owner, &provider.name)
        .await
        .map_err(Error::from)?
        .map_or_else(|| random_token(ctx.env().rng.as_ref(), 16), |c| c.id);
    let mut row = ConnectionRow {
        id,
        owner: pending.owner.clone(),
        provider: provider.name.clone(),
        state: ConnectionState::Active.as_str().to_owned(),
        scope: scope_of(&tokens, provider),
        access_token: String::new(),
        refresh_token: None,
        expires_at: tokens.expires_in.map(|s| now + s),
        claimed_until: 0,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    seal_into(ctx, &mut row, &tokens).await?;
    repo::connect(db, &row).await.map_err(Error::from)?;
    audit_event(
        ctx,
        "vault.connect",
        true,
        Party {
            client_id: None,
            owner: &row.owner,
            provider: &provider.name,
        },
        None,
        Some(json!({ "scope": row.scope })),
    )
    .await;
    Ok(row)
}

async fn seal_into(ctx: &Context, row: &mut ConnectionRow, tokens: &UpstreamTokens) -> Result<()> {
    let keys = ctx.sealing_keys().await?;
    let keys = keys.as_ref();
    let rng = ctx.env().rng.as_ref();
    row.access_token = seal::seal(
        keys,
        rng,
        token_binding(row, "access_token"),
        &tokens.access_token,
    );
    row.refresh_token = tokens
        .refresh_token
        .as_deref()
        .map(|r| seal::seal(keys, rng, token_binding(row, "refresh_token"), r));
    Ok(())
}

/// Who an audited vault event concerns.
struct Party<'a> {
    /// The MCP server, for a vend.
    client_id: Option<&'a str>,
    /// The user.
    owner: &'a str,
    /// The provider.
    provider: &'a str,
}

async fn audit_event(
    ctx: &Context,
    action: &'static str,
    success: bool,
    who: Party<'_>,
    reason: Option<&str>,
    extra: Option<serde_json::Value>,
) {
    let provider = who.provider;
    let mut detail = json!({ "provider": provider });
    if let Some(serde_json::Value::Object(m)) = extra {
        for (k, v) in m {
            detail[k] = v;
        }
    }
    audit::record(
        ctx.env(),
        Event {
            action,
            success,
            client_id: who.client_id,
            subject: Some(who.owner),
            reason,
            detail: Some(detail),
            label: Some(provider),
            ..Default::default()
        },
    )
    .await;
}

/// A vended upstream token.
pub struct Vended {
    /// The upstream access token.
    pub access_token: String,
    /// Seconds until it expires, when known.
    pub expires_in: Option<i64>,
    /// Its scope (what the user granted upstream).
    pub scope: Vec<String>,
}

fn interaction_required(ctx: &Context, provider: &str, owner: &str, why: &str) -> Error {
    Error::new(ErrorCode::InteractionRequired, why.to_owned())
        .with_field("connect_uri", connect_uri(ctx, provider, owner))
}

fn unreadable(e: SealError) -> Error {
    // A value that does not open (another master key, tampering) is our failure; the detail
    // stays in the log.
    tracing::error!(error = %e, "vault: a stored token does not open");
    Error::server("a stored upstream token could not be read")
}

/// The `vault.refresh` audit row of `row`'s refresh: a success without `failure`, else a
/// failure with that reason.
async fn audit_refresh(
    ctx: &Context,
    row: &ConnectionRow,
    provider: &Provider,
    failure: Option<&str>,
    detail: serde_json::Value,
) {
    let who = Party {
        client_id: None,
        owner: &row.owner,
        provider: &provider.name,
    };
    audit_event(
        ctx,
        "vault.refresh",
        failure.is_none(),
        who,
        failure,
        Some(detail),
    )
    .await;
}

/// The current access token of `owner`'s connection to `provider`, refreshed first when it
/// is (nearly) expired.
pub async fn current_token(ctx: &Context, provider: &Provider, owner: &str) -> Result<Vended> {
    let db = ctx.env().sql.as_ref();
    let mut waits = 0;
    // Whether another vend's refresh has been waited for (or its claim lost to).
    let mut deferred = false;
    loop {
        let Some(row) = repo::get(db, owner, &provider.name).await? else {
            return Err(interaction_required(
                ctx,
                &provider.name,
                owner,
                "the user has not connected this provider",
            ));
        };
        let state = ConnectionState::parse(&row.state).unwrap_or(ConnectionState::Revoked);
        let now = ctx.now();
        let timing = Timing {
            state,
            expires_at: row.expires_at,
            obtained_at: row.updated_at,
            has_refresh_token: row.refresh_token.is_some(),
            claimed_until: row.claimed_until,
        };
        match freshness(timing, now, deferred) {
            Freshness::Fresh => return open_vended(ctx, &row, now).await,
            Freshness::Reauthorize => {
                let why = match state {
                    ConnectionState::Active => {
                        "the connection's token expired and the provider gave no refresh token"
                    }
                    ConnectionState::NeedsReauthorization => {
                        "the connection needs to be authorized again"
                    }
                    ConnectionState::Revoked => "the connection was removed",
                };
                return Err(interaction_required(ctx, &provider.name, owner, why));
            }
            Freshness::Wait if usable_despite_failed_refresh(row.expires_at, now) => {
                return open_vended(ctx, &row, now).await;
            }
            Freshness::Wait => {
                if waits >= MAX_WAITS {
                    return Err(Error::new(
                        ErrorCode::TemporarilyUnavailable,
                        "the upstream token is being refreshed; try again",
                    )
                    .with_header(http::header::RETRY_AFTER, "1"));
                }
                waits += 1;
                deferred = true;
                ctx.env().clock.sleep_ms(WAIT_STEP_MS).await;
            }
            Freshness::Refresh => {
                if repo::claim_refresh(db, &row.id, row.version, now, now + CLAIM_SECS).await? {
                    return refresh(ctx, provider, row, now).await;
                }
                // Another vend won the claim (or changed the row): re-read, and take its
                // token.
                deferred = true;
            }
        }
    }
}

async fn open_vended(ctx: &Context, row: &ConnectionRow, now: i64) -> Result<Vended> {
    let keys = ctx.sealing_keys_for(&row.access_token).await?;
    let access_token = seal::open(&keys, token_binding(row, "access_token"), &row.access_token)
        .map_err(unreadable)?;
    Ok(Vended {
        access_token,
        expires_in: row.expires_at.map(|at| (at - now).max(0)),
        scope: row
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// The claim holder's refresh.
async fn refresh(
    ctx: &Context,
    provider: &Provider,
    row: ConnectionRow,
    now: i64,
) -> Result<Vended> {
    let db = ctx.env().sql.as_ref();
    let Some(sealed_rt) = row.refresh_token.as_deref() else {
        repo::release_claim(db, &row.id, row.version).await?;
        return Err(interaction_required(
            ctx,
            &provider.name,
            &row.owner,
            "the connection has no refresh token",
        ));
    };
    let keys = ctx.sealing_keys_for(sealed_rt).await?;
    let rt =
        seal::open(&keys, token_binding(&row, "refresh_token"), sealed_rt).map_err(unreadable)?;
    match call(ctx, provider, Grant::Refresh { refresh_token: &rt }).await {
        Ok(tokens) => {
            let mut next = row.clone();
            seal_into(ctx, &mut next, &tokens).await?;
            let expires_at = tokens.expires_in.map(|s| now + s);
            let scope = tokens
                .scope
                .as_ref()
                .map_or_else(|| row.scope.clone(), |s| s.join(" "));
            let stored = repo::store_refreshed(
                db,
                &row.id,
                row.version,
                &next.access_token,
                next.refresh_token.as_deref(),
                expires_at,
                &scope,
                now,
            )
            .await?;
            if !stored {
                return Err(Error::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the connection changed during the refresh; try again",
                ));
            }
            audit_refresh(
                ctx,
                &row,
                provider,
                None,
                json!({ "rotated": tokens.refresh_token.is_some() }),
            )
            .await;
            Ok(Vended {
                access_token: tokens.access_token,
                expires_in: tokens.expires_in,
                scope: scope
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        }
        Err(UpstreamRefusal::InvalidGrant(reason)) => {
            repo::needs_reauthorization(db, &row.id, row.version, now).await?;
            audit_refresh(
                ctx,
                &row,
                provider,
                Some("invalid_grant"),
                json!({ "provider_said": reason }),
            )
            .await;
            Err(interaction_required(
                ctx,
                &provider.name,
                &row.owner,
                "the provider refused the stored refresh token; the user must connect again",
            ))
        }
        Err(UpstreamRefusal::Failed(reason)) => {
            repo::release_claim(db, &row.id, row.version).await?;
            audit_refresh(
                ctx,
                &row,
                provider,
                Some("upstream_failed"),
                json!({ "provider_said": reason }),
            )
            .await;
            if usable_despite_failed_refresh(row.expires_at, now) {
                return open_vended(ctx, &row, now).await;
            }
            Err(Error::new(
                ErrorCode::TemporarilyUnavailable,
                "the provider could not refresh the token; try again later",
            ))
        }
    }
}

/// Revokes a connection (its tokens are forgotten); `by` names who did it for the audit.
pub async fn revoke(ctx: &Context, row: &ConnectionRow, by: &str) -> Result<bool> {
    let done = repo::revoke(ctx.env().sql.as_ref(), &row.id, ctx.now()).await?;
    if done {
        audit_event(
            ctx,
            "vault.revoke",
            true,
            Party {
                client_id: None,
                owner: &row.owner,
                provider: &row.provider,
            },
            None,
            Some(json!({ "by": by, "connection": row.id })),
        )
        .await;
    }
    Ok(done)
}

/// Records a vend.
pub async fn audit_vend(
    ctx: &Context,
    client_id: &str,
    owner: &str,
    provider: &str,
    scope: &str,
    success: bool,
    reason: Option<&str>,
) {
    let who = Party {
        client_id: Some(client_id),
        owner,
        provider,
    };
    let detail = json!({ "scope": scope });
    audit_event(ctx, "vault.vend", success, who, reason, Some(detail)).await;
}
