//! The vend helper for the Portcullis token vault (docs/vault.md): exchanges the caller's
//! access token at the authorization server's token endpoint (RFC 8693 §2.1, with the MCP
//! server authenticating as a confidential client, RFC 6749 §2.3.1) for an upstream provider's
//! token, named by the provider's `resource`. The answer is either the upstream token
//! (RFC 8693 §2.2.1) or, when the user has not connected the provider (or must connect again),
//! the `connect_uri` from the `interaction_required` error, for an MCP URL-mode elicitation.
//! Building the request and reading the response are plain functions; [`Vend`] sends it.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;

use crate::claims::VerifiedToken;
use crate::verifier::{FetchError, Verifier};

/// RFC 8693 §2.1 `grant_type`.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3 access token type.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// What a vend gives.
#[derive(Clone, PartialEq, Eq)]
pub enum Vended {
    /// The upstream access token.
    Token {
        /// The token, for `Authorization: Bearer` at the provider's API. Never log it.
        access_token: String,
        /// Its remaining life, seconds, when stated.
        expires_in: Option<u64>,
        /// What it holds upstream, when stated.
        scope: Option<String>,
    },
    /// The user must connect (or reconnect) the provider first: send them to `connect_uri`
    /// (for example in an MCP URL-mode elicitation), then try again.
    Connect {
        /// The link, bound to the token's subject for ten minutes.
        connect_uri: String,
        /// The authorization server's description.
        description: Option<String>,
    },
}

impl std::fmt::Debug for Vended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token {
                expires_in, scope, ..
            } => f
                .debug_struct("Token")
                .field("access_token", &"<redacted>")
                .field("expires_in", expires_in)
                .field("scope", scope)
                .finish(),
            Self::Connect {
                connect_uri,
                description,
            } => f
                .debug_struct("Connect")
                .field("connect_uri", connect_uri)
                .field("description", description)
                .finish(),
        }
    }
}

/// Why a vend failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VendError {
    /// The authorization server refused (`invalid_scope`, `invalid_target`,
    /// `unauthorized_client`, …).
    #[error("the token exchange was refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The RFC 6749 §5.2 error code.
        error: String,
        /// `error_description`.
        description: Option<String>,
    },
    /// The authorization server could not be reached, or answered 5xx or
    /// `temporarily_unavailable`.
    #[error("the authorization server is unavailable: {0}")]
    Unavailable(String),
    /// The answer was not an RFC 8693 response.
    #[error("the token exchange response is malformed: {0}")]
    Malformed(String),
}

/// The confidential client the MCP server authenticates as (listed in its resource's
/// `exchange_clients` at Portcullis).
#[derive(Clone)]
pub struct ClientCredentials {
    client_id: String,
    client_secret: String,
}

impl ClientCredentials {
    /// Credentials for `client_secret_basic`.
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
        }
    }

    /// The `Authorization: Basic` value: id and secret form-urlencoded, then base64
    /// (RFC 6749 §2.3.1).
    pub fn basic(&self) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", enc(&self.client_id), enc(&self.client_secret));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// The form body of the exchange: the caller's token for the provider's `resource`, with an
/// optional `scope` the tool needs.
pub fn request_body(subject_token: &str, resource: &str, scope: Option<&str>) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", TOKEN_EXCHANGE)
        .append_pair("subject_token", subject_token)
        .append_pair("subject_token_type", ACCESS_TOKEN_TYPE)
        .append_pair("requested_token_type", ACCESS_TOKEN_TYPE)
        .append_pair("resource", resource);
    if let Some(scope) = scope.filter(|s| !s.is_empty()) {
        form.append_pair("scope", scope);
    }
    form.finish()
}

/// Reads the token endpoint's answer.
pub fn parse_response(status: u16, body: &[u8]) -> Result<Vended, VendError> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| {
        if status >= 500 {
            VendError::Unavailable(format!("status {status}"))
        } else {
            VendError::Malformed(format!("status {status}, not JSON"))
        }
    })?;
    let text = |name: &str| doc.get(name).and_then(Value::as_str).map(str::to_owned);
    if (200..300).contains(&status) {
        let access_token = text("access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| VendError::Malformed("no access_token".into()))?;
        return Ok(Vended::Token {
            access_token,
            expires_in: doc.get("expires_in").and_then(Value::as_u64),
            scope: text("scope"),
        });
    }
    let error = text("error").unwrap_or_default();
    let description = text("error_description");
    match error.as_str() {
        "interaction_required" => {
            let connect_uri = text("connect_uri")
                .filter(|u| url::Url::parse(u).is_ok())
                .ok_or_else(|| {
                    VendError::Malformed("interaction_required without a connect_uri".into())
                })?;
            Ok(Vended::Connect {
                connect_uri,
                description,
            })
        }
        "temporarily_unavailable" => Err(VendError::Unavailable(description.unwrap_or(error))),
        _ if status >= 500 => Err(VendError::Unavailable(format!("status {status}"))),
        "" => Err(VendError::Malformed(format!(
            "status {status} without an error"
        ))),
        _ => Err(VendError::Refused { error, description }),
    }
}

/// Vends upstream tokens for verified callers, through the verifier's fetcher and the token
/// endpoint from the issuer's metadata.
#[derive(Debug, Clone)]
pub struct Vend {
    verifier: Arc<Verifier>,
    client: ClientCredentials,
}

impl Vend {
    /// A vend helper authenticating as `client`.
    pub fn new(verifier: Arc<Verifier>, client: ClientCredentials) -> Self {
        Self { verifier, client }
    }

    /// Exchanges `caller`'s token for the provider whose `resource` is given.
    pub async fn vend(
        &self,
        caller: &VerifiedToken,
        resource: &str,
        scope: Option<&str>,
    ) -> Result<Vended, VendError> {
        let endpoint = self
            .verifier
            .issuer_endpoint("token_endpoint")
            .await
            .map_err(|FetchError(e)| VendError::Unavailable(e))?;
        let body = request_body(caller.access_token(), resource, scope);
        let (status, bytes) = self
            .verifier
            .fetcher()
            .post_form(&endpoint, &self.client.basic(), body)
            .await
            .map_err(|FetchError(e)| VendError::Unavailable(e))?;
        parse_response(status, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_client_authentication() {
        let body = request_body("tok.en", "https://api.github.com", Some("repo"));
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert!(pairs.contains(&("grant_type".into(), TOKEN_EXCHANGE.into())));
        assert!(pairs.contains(&("subject_token".into(), "tok.en".into())));
        assert!(pairs.contains(&("resource".into(), "https://api.github.com".into())));
        assert!(pairs.contains(&("scope".into(), "repo".into())));
        assert!(!request_body("t", "r", None).contains("scope="));
        // RFC 6749 §2.3.1: form-urlencoded before base64 (":" in the secret becomes %3A).
        let basic = ClientCredentials::new("mcp server", "s:e/c").basic();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"mcp+server:s%3Ae%2Fc");
        assert!(!format!("{:?}", ClientCredentials::new("a", "hidden")).contains("hidden"));
    }

    #[test]
    fn responses() {
        let ok = br#"{"access_token":"ghu_x","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":300,"scope":"repo"}"#;
        let v = parse_response(200, ok).unwrap();
        assert_eq!(
            v,
            Vended::Token {
                access_token: "ghu_x".into(),
                expires_in: Some(300),
                scope: Some("repo".into())
            }
        );
        assert!(!format!("{v:?}").contains("ghu_x"));
        let connect = br#"{"error":"interaction_required","error_description":"connect github","connect_uri":"https://as.example/connect/github?t=1"}"#;
        assert_eq!(
            parse_response(400, connect).unwrap(),
            Vended::Connect {
                connect_uri: "https://as.example/connect/github?t=1".into(),
                description: Some("connect github".into())
            }
        );
        assert!(matches!(
            parse_response(400, br#"{"error":"interaction_required"}"#),
            Err(VendError::Malformed(_))
        ));
        assert_eq!(
            parse_response(400, br#"{"error":"invalid_target"}"#),
            Err(VendError::Refused {
                error: "invalid_target".into(),
                description: None
            })
        );
        assert!(matches!(
            parse_response(503, b"<html>"),
            Err(VendError::Unavailable(_))
        ));
        assert!(matches!(
            parse_response(400, br#"{"error":"temporarily_unavailable"}"#),
            Err(VendError::Unavailable(_))
        ));
        assert!(matches!(
            parse_response(200, b"{}"),
            Err(VendError::Malformed(_))
        ));
    }

    /// The helper end to end over a fake authorization server: the token endpoint comes from
    /// the metadata, the caller's token and the client credentials go in the request.
    #[test]
    fn vend_posts_the_exchange_to_the_discovered_token_endpoint() {
        use crate::verifier::{FixedClock, HttpFetch};
        use std::sync::Mutex;

        #[derive(Default)]
        struct As(Mutex<Vec<(String, String, String)>>);
        #[async_trait::async_trait]
        impl HttpFetch for As {
            async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
                assert_eq!(
                    url,
                    "https://as.example/.well-known/oauth-authorization-server"
                );
                Ok(br#"{"issuer":"https://as.example","token_endpoint":"https://as.example/oauth/token"}"#.to_vec())
            }
            async fn post_form(
                &self,
                url: &str,
                authorization: &str,
                body: String,
            ) -> Result<(u16, Vec<u8>), FetchError> {
                self.0
                    .lock()
                    .unwrap()
                    .push((url.into(), authorization.into(), body));
                Ok((
                    400,
                    br#"{"error":"interaction_required","connect_uri":"https://as.example/connect/gh"}"#
                        .to_vec(),
                ))
            }
        }
        let fake = Arc::new(As::default());
        let config = crate::Config::new("https://as.example", "https://mcp.example/mcp").unwrap();
        let verifier = Arc::new(Verifier::new(config, fake.clone(), Arc::new(FixedClock(0))));
        let vend = Vend::new(verifier, ClientCredentials::new("mcp", "secret"));
        let claims: crate::Claims = serde_json::from_value(serde_json::json!({
            "iss": "https://as.example", "sub": "u", "aud": "https://mcp.example/mcp",
            "client_id": "c", "jti": "j", "iat": 0, "exp": 1
        }))
        .unwrap();
        let caller = VerifiedToken::new(claims, crate::Scheme::Bearer, "the.user.token");
        let got = futures::executor::block_on(vend.vend(&caller, "https://api.github.com", None));
        assert_eq!(
            got.unwrap(),
            Vended::Connect {
                connect_uri: "https://as.example/connect/gh".into(),
                description: None
            }
        );
        let sent = fake.0.lock().unwrap();
        assert_eq!(sent[0].0, "https://as.example/oauth/token");
        assert_eq!(sent[0].1, ClientCredentials::new("mcp", "secret").basic());
        assert!(sent[0].2.contains("subject_token=the.user.token"));
    }
}
