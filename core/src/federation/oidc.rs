//! The relying party's side of OpenID Connect Core 1.0 as values: the IdP's discovery
//! document (Discovery §4.3: its `issuer` must equal the connector's), the authentication
//! request (§3.1.2.1, with `state`, `nonce` and PKCE S256, RFC 7636), the token request
//! (§3.1.3.1), ID token validation (§3.1.3.7: `iss`, `aud`, `azp`, `exp`, `iat` with the clock
//! skew, `nonce`; the signature is checked by the caller with the key the JWS header's `kid`
//! names, the algorithm decided by that key), the claims read from it (and UserInfo, §5.3.2:
//! its `sub` must be the ID token's), and the admission rules: `email_verified`, allowed
//! groups and email domains, and Entra ID's groups overage (`_claim_names` / `_claim_sources`
//! pointing at `groups`), which is refused since the groups are then not in the token.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::connector::Connector;
use crate::runtime::FetchResponse;
use crate::vault::provider::AuthMethod;

/// Largest discovery document, JWK Set, token or UserInfo answer read, bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Largest ID token accepted, bytes.
pub const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

/// What the IdP's discovery document tells us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdpMetadata {
    /// Its issuer (equal to the connector's).
    pub issuer: String,
    /// Where people are sent.
    pub authorization_endpoint: String,
    /// Where codes are redeemed.
    pub token_endpoint: String,
    /// Its signing keys.
    pub jwks_uri: String,
    /// Its UserInfo endpoint, if any.
    pub userinfo_endpoint: Option<String>,
}

/// Validates a fetched discovery document for `issuer`.
pub fn metadata(issuer: &str, resp: &FetchResponse) -> Result<IdpMetadata, String> {
    let doc = resp
        .json_document(MAX_DOCUMENT_BYTES, "document")
        .map_err(|e| e.to_string())?;
    let text = |name: &str| doc.get(name).and_then(Value::as_str).map(str::to_owned);
    if text("issuer").as_deref() != Some(issuer) {
        return Err("the discovery document's issuer is not the connector's".into());
    }
    let url = |name: &str| -> Result<String, String> {
        let v = text(name).ok_or_else(|| format!("the discovery document has no {name}"))?;
        Url::parse(&v).map_err(|e| format!("{name} is not a URL ({e})"))?;
        Ok(v)
    };
    Ok(IdpMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: url("authorization_endpoint")?,
        token_endpoint: url("token_endpoint")?,
        jwks_uri: url("jwks_uri")?,
        userinfo_endpoint: url("userinfo_endpoint").ok(),
    })
}

/// What one login sends to the IdP and must find again.
#[derive(Debug, Clone, Copy)]
pub struct LoginParams<'a> {
    /// Our callback.
    pub redirect_uri: &'a str,
    /// The `state`.
    pub state: &'a str,
    /// The `nonce`.
    pub nonce: &'a str,
    /// The PKCE S256 challenge.
    pub challenge: &'a str,
}

/// The authentication request URL (OIDC Core §3.1.2.1).
pub fn authorize_url(
    c: &Connector,
    meta: &IdpMetadata,
    p: LoginParams<'_>,
) -> Result<Url, url::ParseError> {
    let mut url = Url::parse(&meta.authorization_endpoint)?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &c.client_id)
        .append_pair("redirect_uri", p.redirect_uri)
        .append_pair("scope", &c.scopes.join(" "))
        .append_pair("state", p.state)
        .append_pair("nonce", p.nonce)
        .append_pair("code_challenge", p.challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url)
}

/// The token request (OIDC Core §3.1.3.1): headers and form body.
pub fn token_request(
    c: &Connector,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> (Vec<(String, String)>, String) {
    let secret = c
        .client_secret
        .as_ref()
        .map(|s| s.expose().to_owned())
        .unwrap_or_default();
    let mut headers = vec![("Accept".to_owned(), "application/json".to_owned())];
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier);
    match c.auth_method {
        AuthMethod::ClientSecretBasic => {
            // RFC 6749 §2.3.1: each part form-urlencoded before Basic.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(&c.client_id),
                enc(&secret)
            ));
            headers.push(("Authorization".to_owned(), format!("Basic {basic}")));
        }
        AuthMethod::ClientSecretPost => {
            form.append_pair("client_id", &c.client_id)
                .append_pair("client_secret", &secret);
        }
    }
    (headers, form.finish())
}

/// Tokens from the IdP's token endpoint.
#[derive(Clone)]
pub struct IdpTokens {
    /// The ID token.
    pub id_token: String,
    /// The access token (for UserInfo).
    pub access_token: Option<String>,
}

impl std::fmt::Debug for IdpTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdpTokens([redacted])")
    }
}

/// Reads the token response: 200 with an `id_token`, or the IdP's `error`.
pub fn token_response(status: u16, body: &[u8]) -> Result<IdpTokens, Refusal> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::Token(format!("HTTP {status}, not JSON")))?;
    if status != 200 {
        let err = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no error code");
        return Err(Refusal::Token(format!(
            "HTTP {status}, {}",
            crate::text::truncate(err, 64)
        )));
    }
    let id_token = v
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::Token("no id_token in the answer".into()))?;
    Ok(IdpTokens {
        id_token: id_token.to_owned(),
        access_token: v
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// A compact JWS split into its parts, nothing verified.
#[derive(Debug)]
pub struct Jws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload (a JSON object).
    pub claims: Map<String, Value>,
    /// The signing input (RFC 7515 §5.2).
    pub signing_input: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl Jws {
    /// Splits `token`; the `alg` and `kid` of its header.
    pub fn parse(token: &str) -> Result<Self, Refusal> {
        let bad = || Refusal::IdToken("it is not a signed JWT");
        if token.len() > MAX_ID_TOKEN_BYTES {
            return Err(bad());
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let json = |part: &str| -> Result<Map<String, Value>, Refusal> {
            let bytes = crate::crypto::b64_decode(part).ok_or_else(bad)?;
            serde_json::from_slice(&bytes).map_err(|_| bad())
        };
        let header = json(h)?;
        if header.contains_key("crit") {
            return Err(Refusal::IdToken("its header has critical extensions"));
        }
        Ok(Self {
            header,
            claims: json(p)?,
            signing_input: format!("{h}.{p}"),
            signature: crate::crypto::b64_decode(s).ok_or_else(bad)?,
        })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or("")
    }

    /// The header's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }
}

/// Why a login through a connector is refused. `Display` is what the person is told;
/// [`Refusal::reason`] is the audit row's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The IdP sent the person back with an error (they cancelled, or it refused).
    #[error("The identity provider did not sign you in ({0}).")]
    Denied(String),
    /// The IdP could not be reached or its documents are unusable.
    #[error("The identity provider is not available right now: {0}.")]
    Unavailable(String),
    /// The token endpoint refused or failed.
    #[error("The identity provider did not issue a token ({0}).")]
    Token(String),
    /// The ID token is not valid for this login.
    #[error("The identity provider's answer was refused: {0}.")]
    IdToken(&'static str),
    /// The email is not verified where the connector needs one.
    #[error("Your email address is not verified at the identity provider.")]
    EmailNotVerified,
    /// The email domain is not allowed.
    #[error("Your email domain is not allowed to sign in here.")]
    EmailDomain,
    /// Not in an allowed group.
    #[error("You are not in a group that is allowed to sign in here.")]
    Group,
    /// Entra ID's groups overage: the groups are not in the token.
    #[error("You are in too many groups for the identity provider to list them in its token (groups overage); ask your administrator to emit only the groups assigned to this application.")]
    GroupsOverage,
    /// The account is disabled.
    #[error("This account is disabled.")]
    Disabled,
}

impl Refusal {
    /// The audit reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Denied(_) => "idp_denied",
            Self::Unavailable(_) => "idp_unavailable",
            Self::Token(_) => "idp_token_refused",
            Self::IdToken(why) => match *why {
                "its nonce does not match this login" => "id_token_nonce",
                "it is not for this application (aud)" => "id_token_aud",
                "it has expired" => "id_token_expired",
                _ => "id_token_invalid",
            },
            Self::EmailNotVerified => "email_not_verified",
            Self::EmailDomain => "email_domain_not_allowed",
            Self::Group => "group_not_allowed",
            Self::GroupsOverage => "groups_overage",
            Self::Disabled => "user_disabled",
        }
    }
}

/// What the ID token must say for this login.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The connector's issuer.
    pub issuer: &'a str,
    /// Our client id.
    pub client_id: &'a str,
    /// The hash of the nonce this login sent.
    pub nonce_hash: &'a str,
    /// Now, seconds.
    pub now: i64,
    /// Allowed clock skew, seconds.
    pub skew: i64,
}

/// OIDC Core §3.1.3.7 steps 2–5, 9, 10 and 11 (the signature, step 6, is the caller's).
pub fn check_claims(claims: &Map<String, Value>, e: Expected<'_>) -> Result<(), Refusal> {
    if claims.get("iss").and_then(Value::as_str) != Some(e.issuer) {
        return Err(Refusal::IdToken("it is from another issuer"));
    }
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let azp = claims.get("azp").and_then(Value::as_str);
    if !aud.contains(&e.client_id) {
        return Err(Refusal::IdToken("it is not for this application (aud)"));
    }
    // Several audiences: the token must say it was issued to us (azp); an azp, when
    // present, must be us.
    if (aud.len() > 1 && azp.is_none()) || azp.is_some_and(|a| a != e.client_id) {
        return Err(Refusal::IdToken("it was issued to another party (azp)"));
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    let exp = time("exp").ok_or(Refusal::IdToken("it has no expiry"))?;
    if exp + e.skew <= e.now {
        return Err(Refusal::IdToken("it has expired"));
    }
    let iat = time("iat").ok_or(Refusal::IdToken("it has no issue time"))?;
    if iat > e.now + e.skew {
        return Err(Refusal::IdToken("it was issued in the future"));
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if !crate::crypto::ct_eq(
        crate::crypto::token_hash(nonce).as_bytes(),
        e.nonce_hash.as_bytes(),
    ) || nonce.is_empty()
    {
        return Err(Refusal::IdToken("its nonce does not match this login"));
    }
    Ok(())
}

/// The person as the IdP describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The stable subject.
    pub subject: String,
    /// A display name, when given.
    pub username: Option<String>,
    /// The email, when given.
    pub email: Option<String>,
    /// Whether the IdP says the email is verified (`email_verified` true).
    pub email_verified: bool,
    /// The groups, when given.
    pub groups: Vec<String>,
}

fn short_text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control))
        .map(str::to_owned)
}

/// Merges UserInfo claims into the ID token's (OIDC Core §5.3.2: refused unless its `sub` is
/// the ID token's); the ID token's values win.
pub fn merge_userinfo(
    claims: &mut Map<String, Value>,
    userinfo: &Map<String, Value>,
) -> Result<(), Refusal> {
    if userinfo.get("sub") != claims.get("sub") {
        return Err(Refusal::IdToken("its UserInfo is about another subject"));
    }
    for (k, v) in userinfo {
        claims.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Ok(())
}

/// The identity in `claims`, by the connector's claim names, and whether it may sign in.
pub fn identity(c: &Connector, claims: &Map<String, Value>) -> Result<ExternalIdentity, Refusal> {
    let subject = match claims.get(&c.claims.subject) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty() && s.len() <= 255)
    .ok_or(Refusal::IdToken("it has no usable subject"))?;
    let overage = |key: &str| {
        claims
            .get(key)
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key(&c.claims.groups))
    };
    let groups = match claims.get(&c.claims.groups) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|g| short_text(Some(g)))
            .take(1000)
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ if overage("_claim_names") || overage("_claim_sources") => {
            return Err(Refusal::GroupsOverage)
        }
        _ => Vec::new(),
    };
    let email = short_text(claims.get(&c.claims.email)).map(|e| e.to_ascii_lowercase());
    let email_verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
        || matches!(claims.get("email_verified"), Some(Value::String(s)) if s == "true");
    let id = ExternalIdentity {
        subject,
        username: short_text(claims.get(&c.claims.username)),
        email,
        email_verified,
        groups,
    };
    admit(c, &id)?;
    Ok(id)
}

/// The email's domain, lower case.
pub fn email_domain(email: &str) -> Option<&str> {
    email
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}

/// The admission rules: allowed groups, then allowed email domains (which need a verified
/// email).
pub fn admit(c: &Connector, id: &ExternalIdentity) -> Result<(), Refusal> {
    if !c.allowed_groups.is_empty() && !id.groups.iter().any(|g| c.allowed_groups.contains(g)) {
        return Err(Refusal::Group);
    }
    if !c.allowed_email_domains.is_empty() {
        let Some(email) = &id.email else {
            return Err(Refusal::EmailDomain);
        };
        if !id.email_verified {
            return Err(Refusal::EmailNotVerified);
        }
        let domain = email_domain(email).unwrap_or("");
        if !c.allowed_email_domains.iter().any(|d| d == domain) {
            return Err(Refusal::EmailDomain);
        }
    }
    Ok(())
}

/// Whether a first login with `id` may link the existing local account named by its email:
/// only with a verified email in one of the connector's `link_by_email_domains`.
pub fn may_link_by_email<'a>(c: &Connector, id: &'a ExternalIdentity) -> Option<&'a str> {
    let email = id.email.as_deref()?;
    let domain = email_domain(email)?;
    (id.email_verified && c.link_by_email_domains.iter().any(|d| d == domain)).then_some(email)
}

#[cfg(test)]
mod tests;
