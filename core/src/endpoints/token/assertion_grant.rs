//! What the two JWT bearer grants (RFC 7523 §2.1: ID-JAG in [`super::jwt_bearer`], workload
//! JWTs in [`super::workload`]) share: a refusal as a value (the reason for the audit row, the
//! OAuth error for the client), the signature check of an assertion with the key found for
//! its trusted issuer (the key decides the algorithm, J1/J2), and the claim checks of RFC 7523
//! §3 (audience, time window, required string claims).

use serde_json::Value;

use crate::context::Context;
use crate::error::Error;
use crate::idp::KeyError;
use crate::jose::{self, JwtError};
use crate::store::StoreError;
use crate::text::truncate;

/// The longest string claim an assertion may carry (`sub`, `jti`, `client_id`), in bytes.
pub const MAX_CLAIM_LEN: usize = 1024;

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

/// Whether the assertion's `aud` (a string, or an array of them) names an audience `accepted`
/// takes (RFC 7523 §3 item 3).
pub fn audience_matches(claims: &Value, accepted: impl Fn(&str) -> bool) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => accepted(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(accepted),
        _ => false,
    }
}

/// The time window at `now` (RFC 7523 §3 items 4–6), with `skew` seconds of clock difference
/// allowed: `exp` present and in the future, `iat` present and not in the future, `nbf` (when
/// present) reached. Returns `(exp, iat)` for the grant's own age or lifetime rule.
pub fn check_time_window(claims: &Value, now: i64, skew: i64) -> Result<(i64, i64), Refusal> {
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return Err(refuse("missing_claim", "the assertion has no 'exp' claim"));
    };
    if exp <= now {
        return Err(refuse("expired", "the assertion has expired"));
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else {
        return Err(refuse("missing_claim", "the assertion has no 'iat' claim"));
    };
    if iat > now + skew {
        return Err(refuse(
            "issued_in_future",
            "the assertion's iat is in the future",
        ));
    }
    if let Some(nbf) = claims.get("nbf") {
        match nbf.as_i64() {
            Some(nbf) if nbf <= now + skew => {}
            Some(_) => return Err(refuse("not_yet_valid", "the assertion is not valid yet")),
            None => return Err(refuse("malformed", "the assertion's nbf is not a number")),
        }
    }
    Ok((exp, iat))
}

/// The string claims `names`, in order: each present, non-empty and at most
/// [`MAX_CLAIM_LEN`] bytes.
pub fn required_strings<'a, const N: usize>(
    claims: &'a Value,
    names: [&str; N],
) -> Result<[&'a str; N], Refusal> {
    let mut values = [""; N];
    for (name, value) in names.into_iter().zip(values.iter_mut()) {
        match claims.get(name).and_then(Value::as_str) {
            Some(v) if !v.is_empty() && v.len() <= MAX_CLAIM_LEN => *value = v,
            Some(v) if !v.is_empty() => {
                return Err(refuse(
                    "malformed",
                    format!("the assertion's '{name}' claim is too long"),
                ))
            }
            _ => {
                return Err(refuse(
                    "missing_claim",
                    format!("the assertion has no '{name}' claim"),
                ))
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_000_000;

    fn reason(r: Result<impl std::fmt::Debug, Refusal>) -> &'static str {
        r.expect_err("a refusal").0
    }

    #[test]
    fn the_audience_is_a_string_or_an_array_holding_an_accepted_one() {
        let is_us = |a: &str| a == "https://as.example";
        assert!(audience_matches(
            &json!({"aud": "https://as.example"}),
            is_us
        ));
        assert!(audience_matches(
            &json!({"aud": [7, "other", "https://as.example"]}),
            is_us
        ));
        assert!(!audience_matches(&json!({"aud": ["other"]}), is_us));
        assert!(!audience_matches(&json!({"aud": 7}), is_us));
        assert!(!audience_matches(&json!({}), is_us));
    }

    #[test]
    fn the_time_window_allows_the_skew_and_refuses_each_way_out() {
        let ok = json!({"exp": NOW + 60, "iat": NOW + 30, "nbf": NOW + 30});
        assert_eq!(
            check_time_window(&ok, NOW, 30).unwrap(),
            (NOW + 60, NOW + 30)
        );
        let cases = [
            (json!({"iat": NOW}), "missing_claim"),
            (json!({"exp": NOW, "iat": NOW}), "expired"),
            (json!({"exp": NOW + 60}), "missing_claim"),
            (
                json!({"exp": NOW + 60, "iat": NOW + 31}),
                "issued_in_future",
            ),
            (
                json!({"exp": NOW + 60, "iat": NOW, "nbf": NOW + 31}),
                "not_yet_valid",
            ),
            (
                json!({"exp": NOW + 60, "iat": NOW, "nbf": "soon"}),
                "malformed",
            ),
        ];
        for (claims, expected) in cases {
            assert_eq!(
                reason(check_time_window(&claims, NOW, 30)),
                expected,
                "{claims}"
            );
        }
    }

    #[test]
    fn required_strings_are_present_non_empty_and_bounded() {
        let claims = json!({"sub": "alice", "jti": "j1", "empty": "", "long": "x".repeat(MAX_CLAIM_LEN + 1)});
        assert_eq!(
            required_strings(&claims, ["sub", "jti"]).unwrap(),
            ["alice", "j1"]
        );
        assert_eq!(
            reason(required_strings(&claims, ["sub", "gone"])),
            "missing_claim"
        );
        assert_eq!(
            reason(required_strings(&claims, ["empty"])),
            "missing_claim"
        );
        assert_eq!(reason(required_strings(&claims, ["long"])), "malformed");
        let at_limit = json!({"sub": "x".repeat(MAX_CLAIM_LEN)});
        assert!(required_strings(&at_limit, ["sub"]).is_ok());
    }
}
