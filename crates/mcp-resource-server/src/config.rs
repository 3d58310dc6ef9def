//! What the resource server accepts: its issuer, its own canonical resource URL (the `aud` of
//! the tokens it takes, RFC 8707 §2 and RFC 9068 §4), the signature algorithm allow-list
//! (RFC 8725 §3.1), clock skew, the DPoP requirement (RFC 9449 §7) and the scope policy.

use std::time::Duration;

use crate::policy::{ToolPolicy, UnknownTools};

/// A JWS signature algorithm this crate can verify (RFC 7518 §3, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA with P-256 and SHA-256 (what Portcullis signs with).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (feature `rsa`).
    Rs256,
    /// RSASSA-PSS with SHA-256 (feature `rsa`).
    Ps256,
    /// Ed25519 (feature `eddsa`).
    EdDsa,
}

impl Alg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm for a JOSE `alg` value (exact, case-sensitive: RFC 7515 §4.1.1).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    /// Whether this build can verify it.
    pub fn supported(self) -> bool {
        match self {
            Self::Es256 => true,
            Self::Rs256 | Self::Ps256 => cfg!(feature = "rsa"),
            Self::EdDsa => cfg!(feature = "eddsa"),
        }
    }
}

/// Whether requests may, must or must not use DPoP-bound tokens (RFC 9449 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpopMode {
    /// Only `Authorization: Bearer`; a DPoP-bound token is refused (it cannot be checked).
    Off,
    /// Bearer tokens and DPoP-bound tokens with proofs (the default). A DPoP-bound token sent
    /// as a bearer token is refused either way.
    #[default]
    Allowed,
    /// Only DPoP-bound tokens with proofs; bearer tokens are refused.
    Required,
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The issuer is not an absolute http(s) URL without query or fragment.
    #[error("issuer {0:?} must be an absolute https URL (http only on loopback) without query or fragment")]
    Issuer(String),
    /// The resource is not an absolute http(s) URL without fragment.
    #[error(
        "resource {0:?} must be an absolute https URL (http only on loopback) without fragment"
    )]
    Resource(String),
    /// The JWKS URL is not an absolute http(s) URL.
    #[error("jwks_uri {0:?} must be an absolute http(s) URL")]
    JwksUri(String),
    /// An algorithm this build cannot verify, or an empty allow-list.
    #[error("algorithm allow-list: {0}")]
    Algorithm(String),
    /// A scope that is not a valid scope token (RFC 6749 §3.3), or `offline_access`.
    #[error("scope {0:?} is not a valid scope token for a resource")]
    Scope(String),
    /// The DPoP nonce secret is shorter than 32 bytes.
    #[error("the DPoP nonce secret must be at least 32 bytes")]
    NonceSecret,
}

/// The resource server's settings. Two are required (the issuer and this server's own
/// resource URL); the rest have safe defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) issuer: String,
    pub(crate) resource: url::Url,
    pub(crate) resource_str: String,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) algorithms: Vec<Alg>,
    pub(crate) dpop_algorithms: Vec<Alg>,
    pub(crate) leeway: u64,
    pub(crate) dpop: DpopMode,
    pub(crate) dpop_max_age: u64,
    pub(crate) dpop_nonce: Option<crate::nonce::NonceKey>,
    pub(crate) scopes_supported: Vec<String>,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) tools: ToolPolicy,
    pub(crate) jwks_refetch_floor: u64,
    pub(crate) jwks_max_age: u64,
    pub(crate) resource_name: Option<String>,
    pub(crate) max_body_bytes: usize,
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn web_url(s: &str) -> Option<url::Url> {
    let u = url::Url::parse(s).ok()?;
    let secure = u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u));
    (secure && u.fragment().is_none() && !u.cannot_be_a_base() && u.username().is_empty())
        .then_some(u)
}

fn valid_scope(s: &str) -> bool {
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). `offline_access` is an
    // authorization server matter, never a resource's (MCP: not in scopes_supported).
    !s.is_empty()
        && s != "offline_access"
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn scopes<I, S>(items: I) -> Result<Vec<String>, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out: Vec<String> = Vec::new();
    for s in items {
        let s = s.into();
        if !valid_scope(&s) {
            return Err(ConfigError::Scope(s));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// The valid scope tokens of `items`, deduplicated.
fn valid_scopes<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out: Vec<String> = Vec::new();
    for s in items.into_iter().map(Into::into) {
        if valid_scope(&s) && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

impl Config {
    /// A resource server for tokens from `issuer` whose audience is `resource`, this server's
    /// own canonical URL (for an MCP server, the URL clients connect to, e.g.
    /// `https://mcp.example.com/mcp`). Both must be https, or http on a loopback host.
    pub fn new(issuer: &str, resource: &str) -> Result<Self, ConfigError> {
        let iss = web_url(issuer).ok_or_else(|| ConfigError::Issuer(issuer.into()))?;
        if iss.query().is_some() {
            return Err(ConfigError::Issuer(issuer.into()));
        }
        let res = web_url(resource).ok_or_else(|| ConfigError::Resource(resource.into()))?;
        Ok(Self {
            // Compared as strings, exactly as the authorization server writes `iss`.
            issuer: issuer.to_owned(),
            resource_str: resource.to_owned(),
            resource: res,
            jwks_uri: None,
            algorithms: vec![Alg::Es256],
            dpop_algorithms: vec![Alg::Es256],
            leeway: 60,
            dpop: DpopMode::Allowed,
            dpop_max_age: 300,
            dpop_nonce: None,
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
            tools: ToolPolicy::default(),
            jwks_refetch_floor: 10,
            jwks_max_age: 3600,
            resource_name: None,
            max_body_bytes: 4 * 1024 * 1024,
        })
    }

    /// Requires DPoP proofs to carry a nonce this server issued (RFC 9449 §9): a proof
    /// without a current one is refused with 401 `use_dpop_nonce` and a fresh nonce in the
    /// `DPoP-Nonce` header, which DPoP clients retry with. Nonces are stateless (an HMAC
    /// with `secret`, at least 32 bytes, shared by every instance of this server) and valid
    /// for `lifetime` to twice that.
    pub fn dpop_nonces(mut self, secret: &[u8], lifetime: Duration) -> Result<Self, ConfigError> {
        self.dpop_nonce = Some(crate::nonce::NonceKey::new(secret, lifetime)?);
        Ok(self)
    }

    /// The issuer, as configured.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// This server's resource URL, as configured (the token audience).
    pub fn resource(&self) -> &str {
        &self.resource_str
    }

    /// The tool policy.
    pub fn tools(&self) -> &ToolPolicy {
        &self.tools
    }

    /// The DPoP requirement.
    pub fn dpop_mode(&self) -> DpopMode {
        self.dpop
    }

    /// Use this JWKS URL instead of the `jwks_uri` of the issuer's metadata.
    pub fn jwks_uri(mut self, jwks_uri: &str) -> Result<Self, ConfigError> {
        let u = url::Url::parse(jwks_uri).map_err(|_| ConfigError::JwksUri(jwks_uri.into()))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(ConfigError::JwksUri(jwks_uri.into()));
        }
        self.jwks_uri = Some(jwks_uri.to_owned());
        Ok(self)
    }

    /// The access-token signature algorithms accepted (default: ES256 only).
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Alg>) -> Result<Self, ConfigError> {
        self.algorithms = Self::allow_list(algs)?;
        Ok(self)
    }

    /// The DPoP proof signature algorithms accepted (default: ES256 only).
    pub fn dpop_algorithms(
        mut self,
        algs: impl IntoIterator<Item = Alg>,
    ) -> Result<Self, ConfigError> {
        self.dpop_algorithms = Self::allow_list(algs)?;
        Ok(self)
    }

    fn allow_list(algs: impl IntoIterator<Item = Alg>) -> Result<Vec<Alg>, ConfigError> {
        let mut out = Vec::new();
        for a in algs {
            if !a.supported() {
                return Err(ConfigError::Algorithm(format!(
                    "{} needs a crate feature that is off in this build",
                    a.as_str()
                )));
            }
            if !out.contains(&a) {
                out.push(a);
            }
        }
        if out.is_empty() {
            return Err(ConfigError::Algorithm("it is empty".into()));
        }
        Ok(out)
    }

    /// Allowed clock skew for `exp`, `nbf`, `iat` and DPoP `iat` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs();
        self
    }

    /// Whether DPoP-bound tokens are off, allowed (default) or required.
    pub fn dpop(mut self, mode: DpopMode) -> Self {
        self.dpop = mode;
        self
    }

    /// How old a DPoP proof's `iat` may be (default 300 s); the replay cache keeps a `jti`
    /// this long plus the leeway.
    pub fn dpop_max_age(mut self, age: Duration) -> Self {
        self.dpop_max_age = age.as_secs();
        self
    }

    /// Scopes listed in the protected resource metadata (`scopes_supported`). Defaults to
    /// every scope named by [`Config::required_scopes`] and [`Config::tool`].
    pub fn scopes_supported<I, S>(mut self, items: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes(items)?;
        Ok(self)
    }

    /// Scopes every request needs (announced in the 401 challenge's `scope`). Invalid scope
    /// tokens (and `offline_access`) are left out; [`Config::try_required_scopes`] reports
    /// them instead.
    pub fn required_scopes<I, S>(mut self, items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = valid_scopes(items);
        self
    }

    /// Scopes every request needs, with invalid scope tokens reported.
    pub fn try_required_scopes<I, S>(mut self, items: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes(items)?;
        Ok(self)
    }

    /// Requires `scopes` (all of them) to call MCP tool `name` (`tools/call`). Invalid scope
    /// tokens are left out; [`Config::try_tool`] reports them instead.
    pub fn tool<I, S>(mut self, name: &str, items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tools.insert(name, valid_scopes(items));
        self
    }

    /// Requires `scopes` to call tool `name`, with invalid scope tokens reported.
    pub fn try_tool<I, S>(mut self, name: &str, items: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tools.insert(name, scopes(items)?);
        Ok(self)
    }

    /// What to do with a `tools/call` for a tool that has no entry (default: allow with the
    /// required scopes; [`UnknownTools::Deny`] refuses it with 403).
    pub fn unknown_tools(mut self, unknown: UnknownTools) -> Self {
        self.tools.unknown = unknown;
        self
    }

    /// `resource_name` in the protected resource metadata.
    pub fn resource_name(mut self, name: &str) -> Self {
        self.resource_name = Some(name.to_owned());
        self
    }

    /// The shortest time between two JWKS fetches caused by unknown `kid`s (default 10 s).
    pub fn jwks_refetch_floor(mut self, floor: Duration) -> Self {
        self.jwks_refetch_floor = floor.as_secs();
        self
    }

    /// How long a fetched JWKS is used before it is fetched again (default 1 hour; a failed
    /// fetch keeps the old keys).
    pub fn jwks_max_age(mut self, age: Duration) -> Self {
        self.jwks_max_age = age.as_secs();
        self
    }

    /// Largest request body the tower layer reads to find the tools called (default 4 MiB).
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// The scopes listed in the metadata: the explicit list, or everything configured.
    pub fn effective_scopes_supported(&self) -> Vec<String> {
        if !self.scopes_supported.is_empty() {
            return self.scopes_supported.clone();
        }
        let mut out = self.required_scopes.clone();
        for s in self.tools.all_scopes() {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_owned());
            }
        }
        out
    }

    /// The origin of the resource URL (`scheme://host[:port]`), used to rebuild the absolute
    /// URL a request was sent to (DPoP `htu`) from its path: the `Host` header is not trusted.
    pub fn origin(&self) -> String {
        self.resource.origin().ascii_serialization()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_or_loopback_http() {
        assert!(Config::new("https://as.example", "https://mcp.example/mcp").is_ok());
        assert!(Config::new("http://127.0.0.1:9000", "http://localhost:3000/mcp").is_ok());
        assert!(matches!(
            Config::new("http://as.example", "https://mcp.example/mcp"),
            Err(ConfigError::Issuer(_))
        ));
        assert!(matches!(
            Config::new("https://as.example", "https://mcp.example/mcp#x"),
            Err(ConfigError::Resource(_))
        ));
        assert!(Config::new("https://as.example?x=1", "https://mcp.example/").is_err());
        assert!(Config::new("not a url", "https://mcp.example/").is_err());
    }

    #[test]
    fn scopes_are_validated_and_offline_access_refused() {
        let c = Config::new("https://as.example", "https://mcp.example/mcp").unwrap();
        assert!(c.clone().try_required_scopes(["a b"]).is_err());
        assert!(c.clone().try_required_scopes(["offline_access"]).is_err());
        let c = c
            .required_scopes(["mcp:read", "offline_access"])
            .tool("w", ["mcp:write"]);
        assert_eq!(c.effective_scopes_supported(), ["mcp:read", "mcp:write"]);
    }

    #[test]
    fn algorithm_allow_list_cannot_be_empty() {
        let c = Config::new("https://as.example", "https://mcp.example/mcp").unwrap();
        assert!(c.clone().algorithms([]).is_err());
        assert_eq!(c.algorithms([Alg::Es256]).unwrap().algorithms, [Alg::Es256]);
        assert_eq!(Alg::parse("es256"), None, "alg names are case-sensitive");
    }
}
