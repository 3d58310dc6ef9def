//! What the two JWT bearer grants (RFC 7523 §2.1: ID-JAG in [`super::jwt_bearer`], workload
//! JWTs in [`super::workload`]) share: a refusal as a value (the reason for the audit row, the
//! OAuth error for the client) and the signature check of an assertion with the key found for
//! its trusted issuer (the key decides the algorithm, J1/J2).

use serde_json::Value;

use crate::context::Context;
use crate::error::Error;
use crate::idp::KeyError;
use crate::jose::{self, JwtError};
use crate::store::StoreError;
use crate::text::truncate;

/// A refused grant: the audit reason and the error the client gets.
pub type Refusal = (&'static str, Error);

/// An `invalid_grant` refusal for `reason`.
pub fn refuse(reason: &'static str, description: impl Into<String>) -> Refusal {
    (reason, Error::invalid_grant(description))
}

/// A storage failure (503, never `invalid_grant`).
pub fn store(e: StoreError) -> Refusal {
    ("storage", e.into())
}

/// Verifies `assertion` with `key` (the result of looking up its `kid` at the trusted issuer
/// `issuer`; `who` names that kind of issuer in descriptions) and returns its claims, whose
/// `iss` must still be `issuer`.
pub async fn verify_with_key(
    server: &Context,
    assertion: &str,
    key: Result<Value, KeyError>,
    issuer: &str,
    who: &str,
) -> Result<Value, Refusal> {
    let jwk = match key {
        Ok(jwk) => jwk,
        Err(KeyError::UnknownKey) => {
            return Err(refuse(
                "unknown_key",
                format!("no signing key of the {who} matches the assertion's kid"),
            ))
        }
        Err(KeyError::Unavailable(why)) => {
            return Err(refuse(
                "keys_unavailable",
                format!(
                    "the {who}'s keys could not be obtained: {}",
                    truncate(&why.to_string(), 200)
                ),
            ))
        }
        Err(KeyError::Store(e)) => return Err(store(e)),
    };
    let claims = jose::verify_with_jwk(server.env().crypto.as_ref(), assertion, &jwk)
        .await
        .map_err(|e| match e {
            JwtError::Algorithm => refuse(
                "algorithm",
                format!("the assertion's alg is not the one of the {who}'s key"),
            ),
            JwtError::Claims(_) | JwtError::Malformed => {
                refuse("malformed", "the assertion's claims are malformed")
            }
            _ => refuse("bad_signature", "the assertion's signature does not verify"),
        })?;
    let claims = Value::Object(claims);
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(refuse("malformed", "the assertion's issuer changed"));
    }
    Ok(claims)
}
