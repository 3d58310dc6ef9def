//! DPoP (RFC 9449) at the token endpoint: the proof of a token request is checked
//! ([`proof::check`], D1), server nonces are required when configured (§8, D4, stateless:
//! [`nonce`]), the proof's `jti` is reserved once per key in the replay cache (§11.1, D2,
//! failing closed when storage fails), and the key's thumbprint goes to the grant handlers,
//! which bind the tokens to it (§5, §6.1: `cnf.jkt`, `token_type: DPoP`). Clients registered
//! with `dpop_bound_access_tokens` must send a proof (§5.2). Every refusal is audited as
//! `dpop.rejected` with its reason.
//!
//! Resource servers verify DPoP-bound tokens with [`crate::resource_server`].

pub mod nonce;
pub mod proof;
#[cfg(test)]
pub(crate) mod test_support;

use bytes::Bytes;
use http::{HeaderName, Request};

use self::nonce::NonceKey;
use self::proof::{Checked, Expected, Reason, Rejection};
use crate::audit::{self, Event};
use crate::clients::Client;
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::paths::{self, endpoint_url};
use crate::request::RequestId;
use crate::store::StoreError;

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
pub const NONCE_HEADER: HeaderName = HeaderName::from_static("dpop-nonce");

/// The outcome of checking a token request's DPoP proof.
#[derive(Debug, Clone, Default)]
pub struct ProofCheck {
    /// Thumbprint of the proof's key when a valid proof was sent.
    pub jkt: Option<String>,
    /// Headers to add to the response (`DPoP-Nonce`).
    pub response_headers: Vec<(http::HeaderName, String)>,
}

/// Why a proof was not accepted: refused, or the replay cache could not be reached.
#[derive(Debug)]
pub enum ProofError {
    /// The proof was refused.
    Rejected(Rejection),
    /// Storage failed: fail closed (D2).
    Store(StoreError),
}

impl From<Rejection> for ProofError {
    fn from(r: Rejection) -> Self {
        Self::Rejected(r)
    }
}

/// Where nonces are required: the key and lifetime for [`Expected::nonce`].
pub fn nonce_policy(ctx: &Context) -> Option<(NonceKey, i64)> {
    let cfg = &ctx.config().dpop;
    cfg.require_nonce
        .then(|| (NonceKey::of(ctx), cfg.nonce_lifetime_secs))
}

/// A fresh nonce for a `DPoP-Nonce` header.
pub fn fresh_nonce(ctx: &Context) -> String {
    NonceKey::of(ctx).issue(ctx.now())
}

/// Reserves the proof's `jti` for its key until it could no longer pass the `iat` check
/// (D2). A replay is a rejection; a storage failure is an error (fail closed).
pub async fn reserve(ctx: &Context, checked: &Checked) -> Result<(), ProofError> {
    let max_age = ctx.config().dpop.proof_max_age_secs;
    let key = format!("dpop:{}:{}", checked.jkt, checked.jti);
    // A proof is accepted while `now - iat <= max_age`, so it must stay reserved through
    // `iat + max_age` inclusive; the cache holds a key while `expires_at > now`.
    let expires_at = checked.iat.saturating_add(max_age).saturating_add(1);
    match crate::store::repo::replay::reserve(ctx.env().sql.as_ref(), &key, expires_at, ctx.now())
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => {
            Err(Rejection::new(Reason::Replay, "the DPoP proof has already been used").into())
        }
        Err(e) => Err(ProofError::Store(e)),
    }
}

/// Records a refused proof (`dpop.rejected`).
pub async fn audit_rejection(
    ctx: &Context,
    reason: Reason,
    client_id: Option<&str>,
    request_id: Option<&RequestId>,
    endpoint: &str,
) {
    audit::record(
        ctx.env(),
        Event {
            action: "dpop.rejected",
            success: false,
            client_id,
            reason: Some(reason.as_str()),
            request: request_id,
            detail: Some(serde_json::json!({ "endpoint": endpoint })),
            ..Default::default()
        },
    )
    .await;
}

/// Checks the `DPoP` header of a token request (D1–D4): `Ok` with the key's thumbprint when
/// a valid proof was sent, `Ok` without one when none was sent and the client does not
/// require DPoP; `invalid_dpop_proof` or `use_dpop_nonce` (with a `DPoP-Nonce` header)
/// otherwise, or 503 when the replay cache is unavailable.
pub async fn check_token_request(
    ctx: &Context,
    req: &Request<Bytes>,
    client: &Client,
) -> Result<ProofCheck> {
    let policy = nonce_policy(ctx);
    let outcome = async {
        let Some(proof) = proof::single_header(req.headers())? else {
            if client.metadata.dpop_bound_access_tokens {
                return Err(Rejection::new(
                    Reason::Missing,
                    "this client is registered with dpop_bound_access_tokens and must send a DPoP proof",
                )
                .into());
            }
            return Ok(None);
        };
        let url = endpoint_url(ctx, paths::TOKEN);
        let expected = Expected {
            method: req.method().as_str(),
            url: &url,
            access_token: None,
            now: ctx.now(),
            max_age: ctx.config().dpop.proof_max_age_secs,
            skew: ctx.config().jwt_clock_skew_seconds,
            nonce: policy.as_ref().map(|(k, l)| (k, *l)),
        };
        let checked = proof::check(ctx.env().crypto.as_ref(), proof, &expected).await?;
        reserve(ctx, &checked).await?;
        Ok(Some(checked.jkt))
    }
    .await;
    let nonce_headers = || match &policy {
        Some((key, _)) => vec![(NONCE_HEADER, key.issue(ctx.now()))],
        None => Vec::new(),
    };
    match outcome {
        Ok(jkt) => Ok(ProofCheck {
            response_headers: if jkt.is_some() {
                nonce_headers()
            } else {
                Vec::new()
            },
            jkt,
        }),
        Err(ProofError::Store(e)) => Err(e.into()),
        Err(ProofError::Rejected(r)) => {
            audit_rejection(
                ctx,
                r.reason,
                Some(&client.client_id),
                crate::request::request_id(req),
                paths::TOKEN,
            )
            .await;
            let code = if r.reason == Reason::Nonce {
                ErrorCode::UseDpopNonce
            } else {
                ErrorCode::InvalidDpopProof
            };
            let mut err = Error::new(code, r.description);
            err.headers.extend(nonce_headers());
            Err(err)
        }
    }
}

/// The grant is bound to `bound` (a code's `dpop_jkt`, a public client's refresh token):
/// the request's proof must use that key (RFC 9449 §5, §10). Refused as `invalid_grant`,
/// audited as `dpop.rejected`.
pub async fn require_binding(
    ctx: &Context,
    bound: Option<&str>,
    presented: Option<&str>,
    what: &str,
    client_id: &str,
    request_id: Option<&RequestId>,
) -> Result<()> {
    let Some(bound) = bound else {
        return Ok(());
    };
    let reason = match presented {
        Some(p) if crate::crypto::ct_eq(p.as_bytes(), bound.as_bytes()) => return Ok(()),
        Some(_) => Reason::KeyMismatch,
        None => Reason::Missing,
    };
    audit_rejection(ctx, reason, Some(client_id), request_id, paths::TOKEN).await;
    Err(Error::invalid_grant(format!(
        "the {what} is bound to a DPoP key: send a DPoP proof signed with that key"
    )))
}

#[cfg(test)]
mod tests;
