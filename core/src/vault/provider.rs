//! Upstream providers of the token vault: the declared input (config seed `[[providers]]`,
//! `POST /admin/providers`), the presets with their real quirks (GitHub, Slack, Linear,
//! Atlassian) and the validated [`Provider`] every other vault module works with.

use serde::{Deserialize, Serialize};
use url::Url;

pub use crate::config::ProviderInput;
use crate::redirect::is_loopback_host;
use crate::secret::Secret;

/// The presets: defaults and response quirks of well-known providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// GitHub OAuth apps and GitHub Apps (user-to-server tokens).
    Github,
    /// Slack OAuth v2 user tokens (`user_scope`, `authed_user`).
    Slack,
    /// Linear (comma-separated scopes).
    Linear,
    /// Atlassian Cloud / Jira (`audience=api.atlassian.com`, `offline_access`).
    Atlassian,
    /// Any OAuth 2.0 provider that follows RFC 6749.
    Generic,
}

impl Preset {
    /// The preset named `value` (`None` for an unknown name).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "github" => Some(Self::Github),
            "slack" => Some(Self::Slack),
            "linear" => Some(Self::Linear),
            "atlassian" => Some(Self::Atlassian),
            _ => None,
        }
    }

    /// The wire name (`generic` for none).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Slack => "slack",
            Self::Linear => "linear",
            Self::Atlassian => "atlassian",
            Self::Generic => "generic",
        }
    }

    /// Default (authorization endpoint, token endpoint).
    fn endpoints(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Github => Some((
                "https://github.com/login/oauth/authorize",
                "https://github.com/login/oauth/access_token",
            )),
            Self::Slack => Some((
                "https://slack.com/oauth/v2/authorize",
                "https://slack.com/api/oauth.v2.access",
            )),
            Self::Linear => Some((
                "https://linear.app/oauth/authorize",
                "https://api.linear.app/oauth/token",
            )),
            Self::Atlassian => Some((
                "https://auth.atlassian.com/authorize",
                "https://auth.atlassian.com/oauth/token",
            )),
            Self::Generic => None,
        }
    }

    /// How scopes are joined in the authorization request.
    pub fn scope_separator(self) -> &'static str {
        match self {
            Self::Github | Self::Linear | Self::Slack => ",",
            Self::Atlassian | Self::Generic => " ",
        }
    }

    /// The authorization request parameter that carries the scopes (Slack asks for user
    /// scopes in `user_scope`; `scope` there names bot scopes).
    pub fn scope_param(self) -> &'static str {
        match self {
            Self::Slack => "user_scope",
            _ => "scope",
        }
    }

    /// Extra authorization request parameters.
    pub fn extra_authorize_params(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Atlassian => &[("audience", "api.atlassian.com"), ("prompt", "consent")],
            Self::Linear => &[("prompt", "consent")],
            _ => &[],
        }
    }

    /// Scopes every connection needs for a refresh token (Atlassian issues one only with
    /// `offline_access`).
    pub fn required_scopes(self) -> &'static [&'static str] {
        match self {
            Self::Atlassian => &["offline_access"],
            _ => &[],
        }
    }
}

/// How Portcullis authenticates to the provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic (RFC 6749 §2.3.1), the default.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl AuthMethod {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }
}

/// A validated provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    /// URL-safe name.
    pub name: String,
    /// The preset (or `Generic`).
    pub preset: Preset,
    /// Authorization endpoint.
    pub authorization_endpoint: Url,
    /// Token endpoint.
    pub token_endpoint: Url,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret at the provider.
    pub client_secret: Option<Secret>,
    /// Scopes asked for at connect (the preset's required ones included).
    pub scopes: Vec<String>,
    /// The identifier MCP servers name to get this provider's token.
    pub resource: String,
    /// MCP server resources whose user tokens may be exchanged for this provider's token.
    pub vend_resources: Vec<String>,
    /// Token endpoint authentication.
    pub auth_method: AuthMethod,
}

/// Why a provider declaration was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ProviderError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> ProviderError {
    ProviderError {
        field,
        message: message.into(),
    }
}

/// Longest provider name.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` is URL-safe (`[a-z0-9][a-z0-9_-]*`, at most [`MAX_NAME_LEN`]).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// An endpoint URL: `https`, or `http` on a loopback host when `allow_loopback` is set (the
/// same switch as client metadata documents), with no fragment and no credentials.
fn endpoint(
    field: &'static str,
    value: Option<&str>,
    default: Option<&str>,
    allow_loopback: bool,
) -> Result<Url, ProviderError> {
    let raw = value
        .or(default)
        .ok_or_else(|| refuse(field, "is required for a provider without a preset"))?;
    let url = Url::parse(raw).map_err(|e| refuse(field, format!("is not a URL ({e})")))?;
    let loopback_http = url.scheme() == "http" && allow_loopback && is_loopback_host(&url);
    if url.scheme() != "https" && !loopback_http {
        return Err(refuse(
            field,
            "must use https (http only on loopback when cimd.allow_loopback is set)",
        ));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(field, "must not carry a fragment or credentials"));
    }
    Ok(url)
}

/// Checks a declaration and fills in the preset's defaults.
pub fn validate(input: &ProviderInput, allow_loopback: bool) -> Result<Provider, ProviderError> {
    if !valid_name(&input.name) {
        return Err(refuse(
            "name",
            "must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
        ));
    }
    let preset = match input.preset.as_deref() {
        None | Some("generic") => Preset::Generic,
        Some(p) => Preset::parse(p).ok_or_else(|| {
            refuse(
                "preset",
                format!(
                    "unknown preset '{}' (github, slack, linear, atlassian)",
                    crate::text::truncate(p, 32)
                ),
            )
        })?,
    };
    let defaults = preset.endpoints();
    let authorization_endpoint = endpoint(
        "authorization_endpoint",
        input.authorization_endpoint.as_deref(),
        defaults.map(|d| d.0),
        allow_loopback,
    )?;
    let token_endpoint = endpoint(
        "token_endpoint",
        input.token_endpoint.as_deref(),
        defaults.map(|d| d.1),
        allow_loopback,
    )?;
    if input.client_id.trim().is_empty() || input.client_id.len() > 512 {
        return Err(refuse("client_id", "must be 1-512 characters"));
    }
    let auth_method = match input.token_endpoint_auth_method.as_deref() {
        None | Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
        Some("client_secret_post") => AuthMethod::ClientSecretPost,
        Some(other) => {
            return Err(refuse(
                "token_endpoint_auth_method",
                format!(
                    "'{}' is not supported (client_secret_basic or client_secret_post)",
                    crate::text::truncate(other, 32)
                ),
            ))
        }
    };
    if input
        .client_secret
        .as_ref()
        .is_none_or(|s| s.expose().is_empty())
    {
        return Err(refuse("client_secret", "is required"));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in input
        .scopes
        .iter()
        .map(String::as_str)
        .chain(preset.required_scopes().iter().copied())
    {
        if s.is_empty() || s.len() > 256 || s.chars().any(|c| c.is_whitespace() || c == ',') {
            return Err(refuse(
                "scopes",
                format!("'{}' is not a scope token", crate::text::truncate(s, 32)),
            ));
        }
        if !scopes.iter().any(|k| k == s) {
            scopes.push(s.to_owned());
        }
    }
    if input.resource.trim().is_empty() || input.resource.len() > 2048 {
        return Err(refuse("resource", "must be 1-2048 characters"));
    }
    for r in &input.vend_resources {
        Url::parse(r).map_err(|e| refuse("vend_resources", format!("'{r}' is not a URL ({e})")))?;
    }
    Ok(Provider {
        name: input.name.clone(),
        preset,
        authorization_endpoint,
        token_endpoint,
        client_id: input.client_id.clone(),
        client_secret: input.client_secret.clone(),
        scopes,
        resource: input.resource.clone(),
        vend_resources: input.vend_resources.clone(),
        auth_method,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(preset: Option<&str>) -> ProviderInput {
        ProviderInput {
            name: "gh".into(),
            preset: preset.map(str::to_owned),
            client_id: "Iv1.abc".into(),
            client_secret: Some(Secret::new("s3cret")),
            scopes: vec!["repo".into()],
            resource: "https://api.github.com".into(),
            vend_resources: vec!["https://mcp.example.com/mcp".into()],
            ..Default::default()
        }
    }

    #[test]
    fn presets_fill_endpoints_and_required_scopes() {
        let p = validate(&input(Some("github")), false).unwrap();
        assert_eq!(p.preset, Preset::Github);
        assert_eq!(
            p.token_endpoint.as_str(),
            "https://github.com/login/oauth/access_token"
        );
        let a = validate(&input(Some("atlassian")), false).unwrap();
        assert_eq!(a.scopes, ["repo", "offline_access"]);
        assert_eq!(a.auth_method, AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn generic_providers_name_their_endpoints_over_https() {
        let mut i = input(None);
        assert_eq!(
            validate(&i, false).unwrap_err().field,
            "authorization_endpoint"
        );
        i.authorization_endpoint = Some("https://as.example/authorize".into());
        i.token_endpoint = Some("http://as.example/token".into());
        assert_eq!(validate(&i, true).unwrap_err().field, "token_endpoint");
        i.token_endpoint = Some("http://127.0.0.1:9000/oauth/token".into());
        assert_eq!(validate(&i, false).unwrap_err().field, "token_endpoint");
        let p = validate(&i, true).unwrap();
        assert_eq!(p.preset, Preset::Generic);
    }

    #[test]
    fn refusals_name_the_field() {
        type Change = Box<dyn Fn(&mut ProviderInput)>;
        let cases: Vec<(&str, Change)> = vec![
            ("name", Box::new(|i| i.name = "Git Hub".into())),
            ("name", Box::new(|i| i.name = "-x".into())),
            ("preset", Box::new(|i| i.preset = Some("gitlab".into()))),
            ("client_id", Box::new(|i| i.client_id = " ".into())),
            ("client_secret", Box::new(|i| i.client_secret = None)),
            ("scopes", Box::new(|i| i.scopes = vec!["a b".into()])),
            ("scopes", Box::new(|i| i.scopes = vec!["a,b".into()])),
            ("resource", Box::new(|i| i.resource = String::new())),
            (
                "vend_resources",
                Box::new(|i| i.vend_resources = vec!["nope".into()]),
            ),
            (
                "token_endpoint_auth_method",
                Box::new(|i| i.token_endpoint_auth_method = Some("private_key_jwt".into())),
            ),
        ];
        for (field, change) in cases {
            let mut i = input(Some("github"));
            change(&mut i);
            assert_eq!(validate(&i, false).unwrap_err().field, field, "{i:?}");
        }
    }

    #[test]
    fn secrets_never_serialize() {
        let text = serde_json::to_string(&input(Some("slack"))).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn scope_wire_format_per_preset() {
        assert_eq!(Preset::Slack.scope_param(), "user_scope");
        assert_eq!(Preset::Linear.scope_separator(), ",");
        assert_eq!(Preset::Generic.scope_separator(), " ");
        assert!(Preset::Atlassian
            .extra_authorize_params()
            .contains(&("audience", "api.atlassian.com")));
    }
}
