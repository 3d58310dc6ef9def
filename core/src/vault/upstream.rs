//! The vault's side of the provider's OAuth protocol (RFC 6749 §4.1 and §6, RFC 7636) as
//! values: the authorization URL a user is sent to, the token endpoint call (code
//! redemption or refresh) and the reading of the provider's answer, with each preset's
//! quirks (GitHub's errors in HTTP 200 and comma-separated scopes, Slack's `ok` envelope and
//! `authed_user`, Linear's scope arrays, Atlassian's `unauthorized_client` for a dead refresh
//! token). No I/O here: the caller sends the [`TokenCall`].

use base64::Engine;
use serde_json::Value;
use url::Url;

use super::provider::{AuthMethod, Preset, Provider};

/// A token endpoint call to make: a form POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCall {
    /// The token endpoint.
    pub url: Url,
    /// Request headers (`Accept`, and `Authorization` for `client_secret_basic`).
    pub headers: Vec<(String, String)>,
    /// The form body's parameters, in order.
    pub form: Vec<(String, String)>,
}

/// What the token endpoint is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Grant<'a> {
    /// Redeem an authorization code (RFC 6749 §4.1.3), with the PKCE verifier.
    Code {
        /// The code from the callback.
        code: &'a str,
        /// The redirect URI the authorization request named.
        redirect_uri: &'a str,
        /// The PKCE verifier (RFC 7636 §4.5).
        verifier: Option<&'a str>,
    },
    /// Refresh (RFC 6749 §6).
    Refresh {
        /// The stored refresh token.
        refresh_token: &'a str,
    },
}

/// Tokens the provider issued.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamTokens {
    /// The access token.
    pub access_token: String,
    /// A refresh token, when the provider sent one (absent: keep the old one).
    pub refresh_token: Option<String>,
    /// Access token lifetime in seconds, when told.
    pub expires_in: Option<i64>,
    /// Granted scopes, when told.
    pub scope: Option<Vec<String>>,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Why the provider did not issue tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamRefusal {
    /// The grant is dead (code used or expired, refresh token revoked or rotated away): the
    /// user must connect again.
    #[error("the provider refused the grant ({0})")]
    InvalidGrant(String),
    /// Anything else (provider down, our client misconfigured, an unreadable answer).
    #[error("the provider's token endpoint failed ({0})")]
    Failed(String),
}

/// Whether the preset's provider takes PKCE (S256).
pub fn supports_pkce(preset: Preset) -> bool {
    !matches!(preset, Preset::Atlassian)
}

/// The URL a user is sent to to connect (RFC 6749 §4.1.1, RFC 7636 §4.3).
pub fn authorize_url(
    p: &Provider,
    redirect_uri: &str,
    state: &str,
    challenge: Option<&str>,
) -> Url {
    let mut url = p.authorization_endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &p.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        if !p.scopes.is_empty() {
            q.append_pair(
                p.preset.scope_param(),
                &p.scopes.join(p.preset.scope_separator()),
            );
        }
        if let (Some(c), true) = (challenge, supports_pkce(p.preset)) {
            q.append_pair("code_challenge", c)
                .append_pair("code_challenge_method", "S256");
        }
        for (k, v) in p.preset.extra_authorize_params() {
            q.append_pair(k, v);
        }
        if p.preset == Preset::Generic {
            q.append_pair("resource", &p.resource);
        }
    }
    url
}

/// The token endpoint call for `grant`.
pub fn token_call(p: &Provider, grant: Grant<'_>) -> TokenCall {
    let mut form: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: &str| form.push((k.to_owned(), v.to_owned()));
    match grant {
        Grant::Code {
            code,
            redirect_uri,
            verifier,
        } => {
            push("grant_type", "authorization_code");
            push("code", code);
            push("redirect_uri", redirect_uri);
            if let (Some(v), true) = (verifier, supports_pkce(p.preset)) {
                push("code_verifier", v);
            }
        }
        Grant::Refresh { refresh_token } => {
            push("grant_type", "refresh_token");
            push("refresh_token", refresh_token);
        }
    }
    // A generic provider is told which API the token is for (RFC 8707 resource indicators);
    // the presets' providers have one API each and refuse unknown parameters.
    if p.preset == Preset::Generic {
        push("resource", &p.resource);
    }
    let secret = p.client_secret.as_ref().map(|s| s.expose()).unwrap_or("");
    let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
    match p.auth_method {
        AuthMethod::ClientSecretBasic => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&p.client_id), enc(secret));
            let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
            headers.push(("authorization".to_owned(), format!("Basic {b64}")));
        }
        AuthMethod::ClientSecretPost => {
            form.push(("client_id".to_owned(), p.client_id.clone()));
            form.push(("client_secret".to_owned(), secret.to_owned()));
        }
    }
    TokenCall {
        url: p.token_endpoint.clone(),
        headers,
        form,
    }
}

/// The body as JSON, or as a form (GitHub answers forms without `Accept: application/json`).
fn body_value(content_type: Option<&str>, body: &[u8]) -> Option<Value> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v.is_object().then_some(v);
    }
    let form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    form.then(|| {
        Value::Object(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        )
    })
}

/// Scopes as a space- or comma-separated string or an array.
fn scopes(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(
            s.split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|s| s.as_str())
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

fn string(v: &Value, name: &str) -> Option<String> {
    v.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn int(v: &Value, name: &str) -> Option<i64> {
    match v.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Error codes that mean "this grant is dead; connect again".
fn dead_grant(preset: Preset, error: &str, description: &str) -> bool {
    match preset {
        Preset::Github => matches!(error, "bad_verification_code" | "bad_refresh_token"),
        Preset::Slack => matches!(
            error,
            "invalid_code"
                | "invalid_refresh_token"
                | "token_revoked"
                | "token_expired"
                | "invalid_grant"
        ),
        // A reused rotating refresh token answers `unauthorized_client` "refresh_token is
        // invalid" (403) at Atlassian.
        Preset::Atlassian => {
            error == "invalid_grant"
                || (error == "unauthorized_client" && description.contains("refresh_token"))
        }
        Preset::Linear | Preset::Generic => error == "invalid_grant",
    }
}

/// Reads the token endpoint's answer.
pub fn read_token_response(
    preset: Preset,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<UpstreamTokens, UpstreamRefusal> {
    let Some(v) = body_value(content_type, body) else {
        return Err(UpstreamRefusal::Failed(format!(
            "HTTP {status} with a body that is neither a JSON object nor a form"
        )));
    };
    let error = string(&v, "error");
    let slack_failed = preset == Preset::Slack && v.get("ok") == Some(&Value::Bool(false));
    if let Some(error) =
        error.filter(|_| slack_failed || status != 200 || v.get("access_token").is_none())
    {
        let description = string(&v, "error_description").unwrap_or_default();
        let told = format!(
            "{} {}",
            crate::text::truncate(&error, 64),
            crate::text::truncate(&description, 120)
        );
        return Err(if dead_grant(preset, &error, &description) {
            UpstreamRefusal::InvalidGrant(told.trim().to_owned())
        } else {
            UpstreamRefusal::Failed(told.trim().to_owned())
        });
    }
    if status != 200 || slack_failed {
        return Err(UpstreamRefusal::Failed(format!(
            "HTTP {status} without an error code"
        )));
    }
    // Slack's code redemption puts the user token under `authed_user`; its refresh answers
    // with the user token at the top level (`token_type: user`).
    let tokens = match (preset, v.get("authed_user")) {
        (Preset::Slack, Some(user)) if user.get("access_token").is_some() => user,
        (Preset::Slack, _) if string(&v, "token_type").as_deref() != Some("user") => {
            return Err(UpstreamRefusal::Failed(
                "Slack issued no user token (declare user scopes in `scopes`)".into(),
            ))
        }
        _ => &v,
    };
    let access_token = string(tokens, "access_token")
        .ok_or_else(|| UpstreamRefusal::Failed("the answer has no access_token".into()))?;
    Ok(UpstreamTokens {
        access_token,
        refresh_token: string(tokens, "refresh_token"),
        expires_in: int(tokens, "expires_in").filter(|n| *n > 0),
        scope: scopes(tokens.get("scope")),
    })
}

#[cfg(test)]
mod tests {
    use super::super::provider::{validate, ProviderInput};
    use super::*;
    use crate::secret::Secret;

    fn provider(preset: Option<&str>, method: Option<&str>) -> Provider {
        validate(
            &ProviderInput {
                name: "p".into(),
                preset: preset.map(str::to_owned),
                authorization_endpoint: Some("https://as.example/authorize".into()),
                token_endpoint: Some("https://as.example/token".into()),
                client_id: "id with space".into(),
                client_secret: Some(Secret::new("se:cret")),
                scopes: vec!["read".into(), "write".into()],
                resource: "https://api.example".into(),
                token_endpoint_auth_method: method.map(str::to_owned),
                ..Default::default()
            },
            false,
        )
        .unwrap()
    }

    fn read(preset: Preset, status: u16, body: &str) -> Result<UpstreamTokens, UpstreamRefusal> {
        read_token_response(preset, status, Some("application/json"), body.as_bytes())
    }

    #[test]
    fn authorize_url_carries_state_pkce_and_the_presets_scope_format() {
        let p = provider(Some("slack"), None);
        let url = authorize_url(&p, "https://as/cb", "st", Some("ch"));
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(
            q.contains(&("user_scope".into(), "read,write".into())),
            "{q:?}"
        );
        assert!(q.contains(&("code_challenge_method".into(), "S256".into())));
        assert!(q.contains(&("state".into(), "st".into())));
        let a = authorize_url(
            &provider(Some("atlassian"), None),
            "https://as/cb",
            "st",
            Some("ch"),
        );
        let q: Vec<(String, String)> = a.query_pairs().into_owned().collect();
        assert!(
            q.contains(&("scope".into(), "read write offline_access".into())),
            "{q:?}"
        );
        assert!(q.contains(&("audience".into(), "api.atlassian.com".into())));
        assert!(!q.iter().any(|(k, _)| k == "code_challenge"));
    }

    #[test]
    fn token_call_authenticates_as_registered() {
        let basic = token_call(
            &provider(None, None),
            Grant::Code {
                code: "c",
                redirect_uri: "https://as/cb",
                verifier: Some("v"),
            },
        );
        let auth = &basic
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "id+with+space:se%3Acret"
        );
        assert!(basic.form.contains(&("code_verifier".into(), "v".into())));
        assert!(!basic.form.iter().any(|(k, _)| k == "client_secret"));
        let post = token_call(
            &provider(None, Some("client_secret_post")),
            Grant::Refresh { refresh_token: "r" },
        );
        assert!(post
            .form
            .contains(&("client_secret".into(), "se:cret".into())));
        assert!(post
            .form
            .contains(&("grant_type".into(), "refresh_token".into())));
        assert!(!post.headers.iter().any(|(k, _)| k == "authorization"));
    }

    #[test]
    fn github_errors_arrive_with_200_and_scopes_with_commas() {
        let e = read(
            Preset::Github,
            200,
            r#"{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}"#,
        );
        assert!(matches!(e, Err(UpstreamRefusal::InvalidGrant(_))), "{e:?}");
        let e = read(
            Preset::Github,
            200,
            r#"{"error":"incorrect_client_credentials"}"#,
        );
        assert!(matches!(e, Err(UpstreamRefusal::Failed(_))), "{e:?}");
        let t = read(Preset::Github, 200, r#"{"access_token":"ghu_x","expires_in":28800,"refresh_token":"ghr_y","refresh_token_expires_in":15897600,"scope":"repo,gist","token_type":"bearer"}"#).unwrap();
        assert_eq!(t.scope.unwrap(), ["repo", "gist"]);
        assert_eq!(t.expires_in, Some(28800));
        let form = read_token_response(
            Preset::Github,
            200,
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"access_token=gho_x&scope=repo&token_type=bearer",
        )
        .unwrap();
        assert_eq!(form.access_token, "gho_x");
        assert_eq!(form.refresh_token, None);
    }

    #[test]
    fn slack_user_tokens_and_ok_false() {
        let t = read(Preset::Slack, 200, r#"{"ok":true,"access_token":"xoxb-bot","token_type":"bot","authed_user":{"id":"U1","scope":"search:read,chat:write","access_token":"xoxe.xoxp-1","token_type":"user","refresh_token":"xoxe-1-r","expires_in":43200}}"#).unwrap();
        assert_eq!(t.access_token, "xoxe.xoxp-1");
        assert_eq!(t.scope.unwrap(), ["search:read", "chat:write"]);
        let r = read(Preset::Slack, 200, r#"{"ok":true,"access_token":"xoxe.xoxp-2","refresh_token":"xoxe-1-r2","token_type":"user","expires_in":43200}"#).unwrap();
        assert_eq!(r.refresh_token.as_deref(), Some("xoxe-1-r2"));
        let bot = read(
            Preset::Slack,
            200,
            r#"{"ok":true,"access_token":"xoxb-bot","token_type":"bot"}"#,
        );
        assert!(matches!(bot, Err(UpstreamRefusal::Failed(_))));
        let dead = read(
            Preset::Slack,
            200,
            r#"{"ok":false,"error":"invalid_refresh_token"}"#,
        );
        assert!(matches!(dead, Err(UpstreamRefusal::InvalidGrant(_))));
    }

    #[test]
    fn linear_scope_arrays_and_atlassian_rotation_refusal() {
        let t = read(Preset::Linear, 200, r#"{"access_token":"lin_oauth_x","token_type":"Bearer","expires_in":86399,"scope":["read","write"],"refresh_token":"lin_r"}"#).unwrap();
        assert_eq!(t.scope.unwrap(), ["read", "write"]);
        let e = read(
            Preset::Atlassian,
            403,
            r#"{"error":"unauthorized_client","error_description":"refresh_token is invalid"}"#,
        );
        assert!(matches!(e, Err(UpstreamRefusal::InvalidGrant(_))), "{e:?}");
        let e = read(
            Preset::Atlassian,
            401,
            r#"{"error":"access_denied","error_description":"Unauthorized"}"#,
        );
        assert!(matches!(e, Err(UpstreamRefusal::Failed(_))), "{e:?}");
    }

    #[test]
    fn generic_rfc6749_answers() {
        let e = read(Preset::Generic, 400, r#"{"error":"invalid_grant"}"#);
        assert!(matches!(e, Err(UpstreamRefusal::InvalidGrant(_))));
        assert!(matches!(
            read(Preset::Generic, 500, "<html>"),
            Err(UpstreamRefusal::Failed(_))
        ));
        assert!(matches!(
            read(Preset::Generic, 502, "{}"),
            Err(UpstreamRefusal::Failed(_))
        ));
        assert!(matches!(
            read(Preset::Generic, 200, r#"{"token_type":"Bearer"}"#),
            Err(UpstreamRefusal::Failed(_))
        ));
        let t = read(
            Preset::Generic,
            200,
            r#"{"access_token":"a","token_type":"Bearer","expires_in":"60","scope":"x y"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, Some(60));
        assert!(!format!("{t:?}").contains("\"a\""));
    }
}
