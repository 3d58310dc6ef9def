//! The claims of an RFC 9068 access token (§2.2: `iss`, `exp`, `aud`, `sub`, `client_id`,
//! `iat`, `jti`, `scope`), with the RFC 8693 §4.1 actor chain (`act`) and the RFC 7800 §3.1
//! confirmation (`cnf.jkt`, RFC 9449 §6.1), and the verified result handed to handlers.

use serde::{Deserialize, Serialize};

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `resource` is one of the audiences (exact string comparison).
    pub fn contains(&self, resource: &str) -> bool {
        match self {
            Self::One(a) => a == resource,
            Self::Many(v) => v.iter().any(|a| a == resource),
        }
    }
}

/// `cnf` (RFC 7800 §3.1) with the DPoP key thumbprint (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 SHA-256 thumbprint of the DPoP public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

/// One actor of a delegation chain (RFC 8693 §4.1): the current actor, with earlier ones
/// nested in `act`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The actor's client, when the issuer names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The actor before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// The claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user, or the client itself for `client_credentials`.
    pub sub: String,
    /// Audience.
    pub aud: Audience,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes (absent means none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Unique identifier.
    pub jti: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// When the user authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Confirmation (DPoP binding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Delegation chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

impl Claims {
    /// The scopes, split on spaces.
    pub fn scopes(&self) -> Vec<&str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Whether every one of `needed` is granted.
    pub fn has_scopes<S: AsRef<str>>(&self, needed: &[S]) -> bool {
        let granted = self.scopes();
        needed.iter().all(|n| granted.contains(&n.as_ref()))
    }

    /// The DPoP key thumbprint the token is bound to, if any.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().and_then(|c| c.jkt.as_deref())
    }

    /// The actors' subjects, the current actor first.
    pub fn actor_chain(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut next = self.act.as_ref();
        while let Some(a) = next {
            out.push(a.sub.as_deref().unwrap_or(""));
            next = a.act.as_deref();
        }
        out
    }
}

/// How the token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer` (RFC 6750 §2.1).
    Bearer,
    /// `Authorization: DPoP` with a `DPoP` proof (RFC 9449 §7.1).
    DPoP,
}

impl Scheme {
    /// The HTTP authentication scheme name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::DPoP => "DPoP",
        }
    }
}

/// A request's verified access token: what the layer puts into request extensions.
#[derive(Clone)]
pub struct VerifiedToken {
    /// The claims.
    pub claims: Claims,
    /// How it was presented.
    pub scheme: Scheme,
    token: String,
}

impl VerifiedToken {
    pub(crate) fn new(claims: Claims, scheme: Scheme, token: &str) -> Self {
        Self {
            claims,
            scheme,
            token: token.to_owned(),
        }
    }

    /// The subject (the user, or the client for machine tokens).
    pub fn subject(&self) -> &str {
        &self.claims.sub
    }

    /// The client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.claims.client_id
    }

    /// The granted scopes.
    pub fn scopes(&self) -> Vec<&str> {
        self.claims.scopes()
    }

    /// The raw access token, for exchanging it (RFC 8693) at the authorization server. Never
    /// log it.
    pub fn access_token(&self) -> &str {
        &self.token
    }
}

impl std::fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("claims", &self.claims)
            .field("scheme", &self.scheme)
            .field("token", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_actor_chain_and_redacted_debug() {
        let c: Claims = serde_json::from_value(serde_json::json!({
            "iss": "i", "sub": "u", "aud": ["x", "r"], "client_id": "c", "jti": "j",
            "iat": 1, "exp": 2, "scope": "a  b",
            "act": {"sub": "agent", "act": {"sub": "first"}}, "cnf": {"jkt": "t"}
        }))
        .unwrap();
        assert_eq!(c.scopes(), ["a", "b"]);
        assert!(c.has_scopes(&["b"]) && !c.has_scopes(&["c"]));
        assert!(c.aud.contains("r") && !c.aud.contains("y"));
        assert_eq!(c.actor_chain(), ["agent", "first"]);
        assert_eq!(c.jkt(), Some("t"));
        let v = VerifiedToken::new(c, Scheme::Bearer, "secret-token");
        assert!(!format!("{v:?}").contains("secret-token"));
    }
}
