//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, RFC 7521 §4.2, OpenID
//! Connect Core 1.0 §9): a JWT signed with one of the client's registered public keys.
//!
//! SECURITY-CHECKLIST A5 (`aud` is the issuer or the token endpoint, `exp` required, `jti`
//! single use) and J1–J5 (ES256 only, the key decides the algorithm, header key references
//! `jku` / `x5u` / `x5c` / `jwk` are never used, zero signatures fail, time claims within a
//! bounded skew). Keys come from the client's inline `jwks` or its `jwks_uri`
//! ([`super::jwks`]). The `jti` is reserved last, after every other check, so a refused
//! assertion does not spend it.

use serde_json::{Map, Value};

use super::jwks;
use crate::clients::Client;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::jose;
use crate::text::truncate;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest accepted assertion lifetime (`exp` this far ahead at most), which also bounds how
/// long a `jti` is remembered.
pub const MAX_LIFETIME_SECS: i64 = 3600;
/// Longest `jti`.
pub const MAX_JTI_LEN: usize = 256;

fn refused(why: impl Into<String>) -> Error {
    Error::invalid_client(format!("client assertion refused: {}", why.into()))
}

/// The `sub` of an assertion, read without verifying anything: only to find which client
/// to authenticate when the request carries no `client_id`. `None` when unreadable.
pub fn unverified_subject(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    if payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = crate::crypto::b64_decode(payload)?;
    match serde_json::from_slice::<Value>(&bytes).ok()?.get("sub")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// What a verified assertion yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`.
    pub exp: i64,
}

/// Why an assertion's claims are refused (A5, J5). `Display` is the reason told in the
/// `invalid_client` description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("'{0}' must be the client_id")]
    NotClientId(&'static str),
    #[error("'{0}' is required")]
    Required(&'static str),
    #[error("'{0}' must be a NumericDate")]
    NotNumericDate(&'static str),
    #[error("'aud' must be the issuer or the token endpoint URL")]
    Audience,
    #[error("the assertion has expired")]
    Expired,
    #[error("'exp' is more than {MAX_LIFETIME_SECS} seconds in the future")]
    ExpTooFar,
    #[error("'iat' is in the future")]
    IatInFuture,
    #[error("'iat' is too old")]
    IatTooOld,
    #[error("the assertion is not valid yet ('nbf')")]
    NotYetValid,
    #[error("'jti' must be 1 to {MAX_JTI_LEN} bytes")]
    JtiLength,
}

fn int_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> std::result::Result<Option<i64>, ClaimsError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or(ClaimsError::NotNumericDate(name)),
    }
}

/// Checks the claims of a signature-verified assertion (A5, J5): `iss` and `sub` are the
/// client id; `aud` (a string, or an array) names one of `audiences` (our issuer or token
/// endpoint); `exp` is present, in the future and at most [`MAX_LIFETIME_SECS`] ahead;
/// `iat` and `nbf`, when present, are not in the future beyond `skew` (the
/// `jwt_clock_skew_seconds` setting) and `iat` is not older than [`MAX_LIFETIME_SECS`];
/// `jti` is a non-empty string.
pub fn check_claims(
    claims: &Map<String, Value>,
    client_id: &str,
    audiences: &[&str],
    now: i64,
    skew: i64,
) -> std::result::Result<Checked, ClaimsError> {
    for name in ["iss", "sub"] {
        match claims.get(name) {
            Some(Value::String(v)) if v == client_id => {}
            Some(Value::String(_)) => return Err(ClaimsError::NotClientId(name)),
            _ => return Err(ClaimsError::Required(name)),
        }
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.contains(&a.as_str()),
        Some(Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str().is_some_and(|a| audiences.contains(&a))),
        _ => return Err(ClaimsError::Required("aud")),
    };
    if !aud_ok {
        return Err(ClaimsError::Audience);
    }
    let exp = int_claim(claims, "exp")?.ok_or(ClaimsError::Required("exp"))?;
    if exp <= now {
        return Err(ClaimsError::Expired);
    }
    if exp - now > MAX_LIFETIME_SECS {
        return Err(ClaimsError::ExpTooFar);
    }
    if let Some(iat) = int_claim(claims, "iat")? {
        if iat > now + skew {
            return Err(ClaimsError::IatInFuture);
        }
        if iat < now - MAX_LIFETIME_SECS - skew {
            return Err(ClaimsError::IatTooOld);
        }
    }
    if let Some(nbf) = int_claim(claims, "nbf")? {
        if nbf > now + skew {
            return Err(ClaimsError::NotYetValid);
        }
    }
    let jti = match claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() && j.len() <= MAX_JTI_LEN => j.clone(),
        Some(Value::String(_)) => return Err(ClaimsError::JtiLength),
        _ => return Err(ClaimsError::Required("jti")),
    };
    Ok(Checked { jti, exp })
}

/// The `typ` header values accepted: none, `JWT`, or the explicit
/// `client-authentication+jwt` of draft-ietf-oauth-rfc7523bis. Any other type (an access
/// token, a DPoP proof, an ID-JAG) is not a client assertion (J5).
fn typ_ok(header: &Map<String, Value>) -> bool {
    match header.get("typ") {
        None => true,
        Some(Value::String(t)) => {
            let t = t.to_ascii_lowercase();
            t == "jwt" || t == "client-authentication+jwt"
        }
        Some(_) => false,
    }
}

/// Verifies `assertion` for `client` (registered for `private_key_jwt`): signature with a
/// key from the client's `jwks` or `jwks_uri` (J1–J4), claims (A5, J5), then reserves the
/// `jti` until `exp` (A5). Every failure is `invalid_client`.
pub async fn verify(ctx: &Context, client: &Client, assertion: &str) -> Result<Checked> {
    let header = jose::header(assertion).map_err(|_| refused("not a compact JWS"))?;
    if !typ_ok(&header) {
        return Err(refused("'typ' is not a client assertion type"));
    }
    match header.get("alg").and_then(Value::as_str) {
        Some("ES256" | "RS256" | "PS256" | "EdDSA") => {}
        Some(alg) => {
            return Err(refused(format!(
                "alg '{}' is not accepted (ES256, RS256, PS256 or EdDSA, as the key decides)",
                truncate(alg, 32)
            )))
        }
        None => return Err(refused("'alg' is missing")),
    }
    // Only `kid` is read from the header: `jku`, `x5u`, `x5c` and `jwk` are ignored (J3).
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(refused("'kid' must be a string")),
    };
    let set = jwks::client_keys(ctx, client, kid).await?;
    let key = jose::select_key(&set, kid).ok_or_else(|| {
        refused(match kid {
            Some(_) => "no registered key has the assertion's 'kid'",
            None => "the assertion has no 'kid' and the client has several keys",
        })
    })?;
    let claims = jose::verify_with_jwk(ctx.env().crypto.as_ref(), assertion, key)
        .await
        .map_err(|e| refused(format!("signature not verified ({e})")))?;
    let token_endpoint = crate::paths::endpoint_url(ctx, crate::paths::TOKEN);
    let now = ctx.now();
    let checked = check_claims(
        &claims,
        &client.client_id,
        &[ctx.issuer(), &token_endpoint],
        now,
        ctx.config().jwt_clock_skew_seconds,
    )
    .map_err(|e| refused(e.to_string()))?;
    let replay_key = format!("client-assertion:{}:{}", client.client_id, checked.jti);
    if !crate::store::repo::replay::reserve(ctx.env().sql.as_ref(), &replay_key, checked.exp, now)
        .await?
    {
        return Err(refused("this assertion 'jti' has already been used"));
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://as.example.com";
    const TOKEN: &str = "https://as.example.com/oauth/token";
    /// The default `jwt_clock_skew_seconds`.
    const MAX_SKEW_SECS: i64 = 60;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn good() -> Value {
        json!({"iss": "app", "sub": "app", "aud": TOKEN, "exp": NOW + 60, "iat": NOW, "jti": "j1"})
    }

    fn check(v: Value) -> std::result::Result<Checked, String> {
        check_claims(&claims(v), "app", &[ISS, TOKEN], NOW, MAX_SKEW_SECS)
            .map_err(|e| e.to_string())
    }

    fn with(name: &str, value: Value) -> Value {
        let mut v = good();
        v[name] = value;
        v
    }

    fn without(name: &str) -> Value {
        let mut v = good();
        v.as_object_mut().unwrap().remove(name);
        v
    }

    #[test]
    fn a5_good_claims_pass() {
        assert_eq!(
            check(good()).unwrap(),
            Checked {
                jti: "j1".into(),
                exp: NOW + 60
            }
        );
        check(with("aud", json!(ISS))).unwrap();
        check(with("aud", json!(["https://other.example", TOKEN]))).unwrap();
        check(without("iat")).unwrap();
        check(with("nbf", json!(NOW + MAX_SKEW_SECS))).unwrap();
    }

    #[test]
    fn a5_aud_must_be_issuer_or_token_endpoint() {
        for aud in [
            json!("https://as.example.com/"),
            json!("https://as.example.com/oauth/introspect"),
            json!("https://evil.example/oauth/token"),
            json!([]),
            json!(["https://other.example"]),
            json!(42),
        ] {
            assert!(check(with("aud", aud.clone())).is_err(), "{aud}");
        }
        assert!(check(without("aud")).unwrap_err().contains("aud"));
    }

    #[test]
    fn a5_exp_required_and_in_the_future() {
        assert!(check(without("exp")).unwrap_err().contains("exp"));
        assert!(check(with("exp", json!(NOW))).is_err());
        assert!(check(with("exp", json!(NOW - 1))).is_err());
        assert!(check(with("exp", json!("soon"))).is_err());
        check(with("exp", json!(NOW + 1))).unwrap();
        check(with("exp", json!(NOW + MAX_LIFETIME_SECS))).unwrap();
        assert!(check(with("exp", json!(NOW + MAX_LIFETIME_SECS + 1))).is_err());
    }

    #[test]
    fn a5_jti_required() {
        assert!(check(without("jti")).unwrap_err().contains("jti"));
        assert!(check(with("jti", json!(""))).is_err());
        assert!(check(with("jti", json!(7))).is_err());
        assert!(check(with("jti", json!("x".repeat(MAX_JTI_LEN + 1)))).is_err());
    }

    #[test]
    fn a5_iss_and_sub_are_the_client() {
        for name in ["iss", "sub"] {
            assert!(check(with(name, json!("other"))).is_err(), "{name}");
            assert!(check(without(name)).is_err(), "{name}");
            assert!(check(with(name, json!(["app"]))).is_err(), "{name}");
        }
    }

    #[test]
    fn j5_iat_and_nbf_within_bounded_skew() {
        assert!(check(with("iat", json!(NOW + MAX_SKEW_SECS + 1))).is_err());
        check(with("iat", json!(NOW + MAX_SKEW_SECS))).unwrap();
        assert!(check(with(
            "iat",
            json!(NOW - MAX_LIFETIME_SECS - MAX_SKEW_SECS - 1)
        ))
        .is_err());
        assert!(check(with("nbf", json!(NOW + MAX_SKEW_SECS + 1))).is_err());
        assert!(check(with("iat", json!("now"))).is_err());
    }

    #[test]
    fn j5_skew_is_the_configured_one() {
        let ahead = claims(with("iat", json!(NOW + 45)));
        let at = |skew| check_claims(&ahead, "app", &[ISS, TOKEN], NOW, skew);
        at(60).unwrap();
        assert_eq!(at(10).unwrap_err(), ClaimsError::IatInFuture);
        let nbf = claims(with("nbf", json!(NOW + 1)));
        assert_eq!(
            check_claims(&nbf, "app", &[ISS, TOKEN], NOW, 0).unwrap_err(),
            ClaimsError::NotYetValid
        );
    }

    #[test]
    fn j5_typ_must_be_a_client_assertion_type() {
        let h = |t: Value| claims(json!({ "alg": "ES256", "typ": t }));
        assert!(typ_ok(&claims(json!({"alg": "ES256"}))));
        assert!(typ_ok(&h(json!("JWT"))));
        assert!(typ_ok(&h(json!("client-authentication+jwt"))));
        for t in [
            json!("at+jwt"),
            json!("dpop+jwt"),
            json!("oauth-id-jag+jwt"),
            json!(1),
        ] {
            assert!(!typ_ok(&h(t.clone())), "{t}");
        }
    }

    #[test]
    fn unverified_subject_reads_sub_only() {
        use crate::crypto::b64;
        let t = format!("{}.{}.sig", b64("{}"), b64(r#"{"sub":"app"}"#));
        assert_eq!(unverified_subject(&t).as_deref(), Some("app"));
        for bad in ["", "a.b.c", "x", &format!("h.{}.s", b64(r#"{"sub":5}"#))] {
            assert_eq!(unverified_subject(bad), None, "{bad}");
        }
    }
}
