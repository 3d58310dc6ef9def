//! Optional token introspection (RFC 7662 §2) for tools that must see a revocation at once:
//! the locally verified token is sent to the issuer's `introspection_endpoint` (from its
//! RFC 8414 metadata) by the resource server, authenticated as a confidential client (at
//! Portcullis: listed in the resource's `introspection_clients`). Answers are cached for a
//! short time per token (never past the token's `exp`), so a revocation shows within that
//! time. A token is active only when the answer says `"active": true` for the same subject
//! and client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::claims::VerifiedToken;
use crate::vend::ClientCredentials;
use crate::verifier::{FetchError, Verifier};

/// Most answers remembered; past it, expired ones are dropped, then all.
const MAX_ENTRIES: usize = 10_000;

/// Introspection could not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrospectError {
    /// The endpoint is unknown or unreachable, or answered 5xx.
    #[error("introspection unavailable: {0}")]
    Unavailable(String),
    /// The endpoint refused the request (e.g. `invalid_client`) or answered without `active`.
    #[error("introspection refused: {0}")]
    Refused(String),
}

/// Whether an RFC 7662 answer (`status`, `body`) says `token` is active.
pub fn parse_response(
    token: &VerifiedToken,
    status: u16,
    body: &[u8],
) -> Result<bool, IntrospectError> {
    if status >= 500 {
        return Err(IntrospectError::Unavailable(format!("status {status}")));
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|_| IntrospectError::Refused(format!("status {status}, not JSON")))?;
    if !(200..300).contains(&status) {
        let error = doc.get("error").and_then(Value::as_str).unwrap_or("");
        return Err(IntrospectError::Refused(format!("status {status} {error}")));
    }
    let active = doc
        .get("active")
        .and_then(Value::as_bool)
        .ok_or_else(|| IntrospectError::Refused("no active member".into()))?;
    let same = |name: &str, want: &str| {
        doc.get(name)
            .and_then(Value::as_str)
            .is_none_or(|v| v == want)
    };
    Ok(active && same("sub", token.subject()) && same("client_id", token.client_id()))
}

/// Introspects verified tokens, with a short cache.
#[derive(Debug, Clone)]
pub struct Introspection {
    verifier: Arc<Verifier>,
    client: ClientCredentials,
    ttl: i64,
    cache: Arc<Mutex<HashMap<String, (bool, i64)>>>,
}

impl Introspection {
    /// Introspection as `client`, answers cached for `ttl` (a few seconds: the longest a
    /// revocation may go unnoticed).
    pub fn new(verifier: Arc<Verifier>, client: ClientCredentials, ttl: Duration) -> Self {
        Self {
            verifier,
            client,
            ttl: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            cache: Arc::default(),
        }
    }

    fn cached(&self, key: &str, now: i64) -> Option<bool> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|(_, until)| now < *until)
            .map(|(a, _)| *a)
    }

    fn remember(&self, key: String, active: bool, until: i64, now: i64) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, (_, u)| now < *u);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (active, until));
    }

    /// Whether `token` is still active at the issuer (a revoked token is not).
    pub async fn is_active(&self, token: &VerifiedToken) -> Result<bool, IntrospectError> {
        let now = self.verifier.now();
        let key = hex(&Sha256::digest(token.access_token().as_bytes()));
        if let Some(active) = self.cached(&key, now) {
            return Ok(active);
        }
        let endpoint = self
            .verifier
            .issuer_endpoint("introspection_endpoint")
            .await
            .map_err(|FetchError(e)| IntrospectError::Unavailable(e))?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token.access_token())
            .append_pair("token_type_hint", "access_token")
            .finish();
        let (status, bytes) = self
            .verifier
            .fetcher()
            .post_form(&endpoint, &self.client.basic(), body)
            .await
            .map_err(|FetchError(e)| IntrospectError::Unavailable(e))?;
        let active = parse_response(token, status, &bytes)?;
        let until = now.saturating_add(self.ttl).min(token.claims.exp.max(now));
        self.remember(key, active, until, now);
        Ok(active)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{Claims, Scheme};

    fn token() -> VerifiedToken {
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "iss": "https://as.example", "sub": "alice", "aud": "https://mcp.example/mcp",
            "client_id": "c1", "scope": "mcp:read", "jti": "j", "iat": 1, "exp": 2_000_000_000u64,
        }))
        .unwrap();
        VerifiedToken::new(claims, Scheme::Bearer, "tok")
    }

    #[test]
    fn answers() {
        let t = token();
        let ok = |b: &str| parse_response(&t, 200, b.as_bytes());
        assert_eq!(
            ok(r#"{"active":true,"sub":"alice","client_id":"c1"}"#),
            Ok(true)
        );
        assert_eq!(ok(r#"{"active":true}"#), Ok(true));
        assert_eq!(ok(r#"{"active":false}"#), Ok(false));
        assert_eq!(ok(r#"{"active":true,"sub":"mallory"}"#), Ok(false));
        assert_eq!(ok(r#"{"active":true,"client_id":"c2"}"#), Ok(false));
        assert!(matches!(ok(r#"{}"#), Err(IntrospectError::Refused(_))));
        assert!(matches!(ok("not json"), Err(IntrospectError::Refused(_))));
        assert!(matches!(
            parse_response(&t, 401, br#"{"error":"invalid_client"}"#),
            Err(IntrospectError::Refused(e)) if e.contains("invalid_client")
        ));
        assert!(matches!(
            parse_response(&t, 503, b""),
            Err(IntrospectError::Unavailable(_))
        ));
    }
}
