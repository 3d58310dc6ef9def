//! An OIDC connector as declared (`[[connectors]]` seeds, `POST /admin/connectors`) and as
//! checked: the IdP's issuer (OpenID Connect Discovery 1.0 §4 finds its endpoints), our client
//! at it, the claims to read (OIDC Core §5.1 names by default) and the admission rules
//! (`allowed_groups`, `allowed_email_domains`, `link_by_email_domains`).

use url::Url;

use crate::secret::Secret;
use crate::vault::provider::AuthMethod;

pub use crate::config::{ClaimNames, ConnectorInput};

/// A checked connector.
#[derive(Debug, Clone)]
pub struct Connector {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The IdP's issuer, exactly as declared (ID tokens must carry it).
    pub issuer: String,
    /// Our client id.
    pub client_id: String,
    /// Our client secret.
    pub client_secret: Option<Secret>,
    /// How we authenticate at the token endpoint.
    pub auth_method: AuthMethod,
    /// Scopes, `openid` first.
    pub scopes: Vec<String>,
    /// Claim names.
    pub claims: ClaimNames,
    /// Read UserInfo.
    pub userinfo: bool,
    /// Admission by group.
    pub allowed_groups: Vec<String>,
    /// Admission by email domain (lower case).
    pub allowed_email_domains: Vec<String>,
    /// Domains whose verified emails link existing accounts (lower case).
    pub link_by_email_domains: Vec<String>,
}

/// Why a declaration is refused; `Display` names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct ConnectorError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> ConnectorError {
    ConnectorError {
        field,
        message: message.into(),
    }
}

/// Whether `id` is a valid connector id: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
pub fn valid_id(id: &str) -> bool {
    crate::vault::provider::valid_name(id)
}

fn bounded_list(field: &'static str, v: &[String]) -> Result<(), ConnectorError> {
    if v.len() > 100 || v.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(refuse(
            field,
            "must hold at most 100 non-empty values of at most 256 bytes",
        ));
    }
    if v.iter().any(|s| s.chars().any(char::is_control)) {
        return Err(refuse(field, "must not contain control characters"));
    }
    Ok(())
}

fn domains(field: &'static str, v: &[String]) -> Result<Vec<String>, ConnectorError> {
    bounded_list(field, v)?;
    v.iter()
        .map(|d| {
            let d = d.trim().to_ascii_lowercase();
            let ok = !d.is_empty()
                && !d.starts_with('.')
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            ok.then_some(d)
                .ok_or_else(|| refuse(field, "must hold bare domain names such as example.com"))
        })
        .collect()
}

/// Checks a declaration. `allow_loopback`: whether an `http` issuer on loopback is allowed
/// (the `cimd.allow_loopback` switch on a loopback issuer).
pub fn validate(input: &ConnectorInput, allow_loopback: bool) -> Result<Connector, ConnectorError> {
    if !valid_id(&input.id) {
        return Err(refuse(
            "id",
            "must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
        ));
    }
    let name = input.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(refuse(
            "name",
            "must be 1 to 64 characters without control characters",
        ));
    }
    crate::idp::validate_issuer(&input.issuer).map_err(|e| refuse("issuer", e.to_string()))?;
    let url = Url::parse(&input.issuer).map_err(|e| refuse("issuer", e.to_string()))?;
    if url.scheme() == "http" && !allow_loopback {
        return Err(refuse(
            "issuer",
            "must use https (plain http on loopback needs cimd.allow_loopback)",
        ));
    }
    if input.client_id.is_empty()
        || input.client_id.len() > 256
        || input.client_id.chars().any(char::is_control)
    {
        return Err(refuse("client_id", "must be 1 to 256 characters"));
    }
    if input
        .client_secret
        .as_ref()
        .is_none_or(|s| s.expose().is_empty() || s.expose().len() > 1024)
    {
        return Err(refuse("client_secret", "is required (1 to 1024 bytes)"));
    }
    let auth_method = match input.token_endpoint_auth_method.as_deref() {
        None | Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
        Some("client_secret_post") => AuthMethod::ClientSecretPost,
        Some(_) => {
            return Err(refuse(
                "token_endpoint_auth_method",
                "must be client_secret_basic or client_secret_post",
            ))
        }
    };
    bounded_list("scopes", &input.scopes)?;
    if input
        .scopes
        .iter()
        .any(|s| s.chars().any(|c| c == ' ' || c == '"' || c == '\\'))
    {
        return Err(refuse("scopes", "must be single scope tokens"));
    }
    let mut scopes = vec!["openid".to_owned()];
    let wanted: Vec<String> = if input.scopes.is_empty() {
        vec!["email".into(), "profile".into()]
    } else {
        input.scopes.clone()
    };
    for s in wanted {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    for (field, v) in [
        ("claims.subject", &input.claims.subject),
        ("claims.username", &input.claims.username),
        ("claims.email", &input.claims.email),
        ("claims.groups", &input.claims.groups),
    ] {
        if v.is_empty() || v.len() > 128 {
            return Err(refuse(field, "must be a claim name of 1 to 128 bytes"));
        }
    }
    bounded_list("allowed_groups", &input.allowed_groups)?;
    Ok(Connector {
        id: input.id.clone(),
        name: name.to_owned(),
        issuer: input.issuer.clone(),
        client_id: input.client_id.clone(),
        client_secret: input.client_secret.clone(),
        auth_method,
        scopes,
        claims: input.claims.clone(),
        userinfo: input.userinfo,
        allowed_groups: input.allowed_groups.clone(),
        allowed_email_domains: domains("allowed_email_domains", &input.allowed_email_domains)?,
        link_by_email_domains: domains("link_by_email_domains", &input.link_by_email_domains)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn okta() -> ConnectorInput {
        ConnectorInput {
            id: "okta".into(),
            name: "Okta".into(),
            issuer: "https://acme.okta.com".into(),
            client_id: "0oa1".into(),
            client_secret: Some(Secret::new("s3cret")),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_refusals() {
        let c = validate(&okta(), false).unwrap();
        assert_eq!(c.scopes, ["openid", "email", "profile"]);
        assert_eq!(c.claims.subject, "sub");
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        let mut bad = okta();
        bad.issuer = "http://127.0.0.1:9999".into();
        assert_eq!(validate(&bad, false).unwrap_err().field, "issuer");
        assert!(validate(&bad, true).is_ok());
        let mut bad = okta();
        bad.client_secret = None;
        assert_eq!(validate(&bad, false).unwrap_err().field, "client_secret");
        let mut bad = okta();
        bad.id = "Okta!".into();
        assert_eq!(validate(&bad, false).unwrap_err().field, "id");
        let mut bad = okta();
        bad.token_endpoint_auth_method = Some("private_key_jwt".into());
        assert_eq!(
            validate(&bad, false).unwrap_err().field,
            "token_endpoint_auth_method"
        );
        let mut bad = okta();
        bad.link_by_email_domains = vec!["@acme.com".into()];
        assert_eq!(
            validate(&bad, false).unwrap_err().field,
            "link_by_email_domains"
        );
    }
}
