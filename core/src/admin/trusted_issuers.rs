//! What the two registries of trusted JWT issuers share (`/admin/idps` for ID-JAG issuers,
//! RFC 7523 §2.1; `/admin/workload-issuers` for workload identity federation): where an
//! issuer's keys come from (inline `jwks`, a `jwks_uri` the fetch policy allows, or OpenID
//! Connect discovery), the identifier checks, and the check that a policy's resource exists
//! with every scope it grants in its catalog.

use serde_json::Value;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::store::repo::resources as resource_repo;
use crate::store::SqlStore;
use crate::text::truncate;

/// Largest inline JWK Set, bytes of JSON.
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Longest client id, audience or subject, bytes.
pub(super) const MAX_ID_LEN: usize = 2048;

/// A 400 `invalid_request` naming what is wrong.
pub(super) fn bad(why: impl std::fmt::Display) -> Error {
    Error::invalid_request(why.to_string())
}

/// The keys of an issuer from at most one of inline `jwks` (validated public keys, at most
/// [`MAX_JWKS_BYTES`]; returned as stored text) and a `jwks_uri` allowed by the fetch policy
/// (S1). Neither means discovery from the issuer.
pub(super) fn key_material(
    server: &Context,
    jwks_uri: Option<&str>,
    jwks: Option<&Value>,
) -> Result<Option<String>> {
    match (jwks, jwks_uri) {
        (Some(_), Some(_)) => Err(bad("give either jwks or jwks_uri, not both")),
        (Some(set), None) => {
            crate::idp::validate_jwks(set).map_err(bad)?;
            let text = set.to_string();
            if text.len() > MAX_JWKS_BYTES {
                return Err(bad(format!("jwks exceeds {MAX_JWKS_BYTES} bytes")));
            }
            Ok(Some(text))
        }
        (None, Some(uri)) => {
            crate::idp::validate_jwks_uri(server, uri).map_err(bad)?;
            Ok(None)
        }
        (None, None) => Ok(None),
    }
}

/// Where a stored issuer's keys come from, as the admin API shows it.
pub(super) fn key_source(jwks: Option<&str>, jwks_uri: Option<&str>) -> &'static str {
    match (jwks, jwks_uri) {
        (Some(_), _) => "inline",
        (None, Some(_)) => "jwks_uri",
        (None, None) => "discovery",
    }
}

/// The stored inline JWK Set as JSON for a view.
pub(super) fn jwks_view(jwks: Option<&str>) -> Option<Value> {
    jwks.and_then(|t| serde_json::from_str::<Value>(t).ok())
}

/// A client id, audience or similar identifier: 1 to [`MAX_ID_LEN`] bytes without whitespace
/// or control characters (it may be a client ID metadata document URL).
pub(super) fn check_id(name: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value.len() > MAX_ID_LEN
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad(format!(
            "{name} must be 1 to {MAX_ID_LEN} bytes without whitespace"
        )));
    }
    Ok(())
}

/// The resource a policy or rule names is registered and has every scope it grants.
pub(super) async fn check_resource_scopes(
    db: &dyn SqlStore,
    resource: &str,
    scopes: &[String],
) -> Result<()> {
    let Some(stored) = resource_repo::get(db, resource).await? else {
        return Err(bad(format!(
            "no resource '{}' is registered",
            truncate(resource, 256)
        )));
    };
    if let Some(s) = scopes.iter().find(|s| !stored.scopes.contains(s)) {
        return Err(bad(format!(
            "scope '{}' is not in the resource's catalog",
            truncate(s, 64)
        )));
    }
    Ok(())
}
