//! Typed errors (DESIGN.md rule 9). Protocol errors map one-to-one to the error codes of
//! RFC 6749 §4.1.2.1 / §5.2, RFC 7591 §3.2.2, RFC 8707 §2 and RFC 9449; storage failures are a
//! separate kind that becomes 503 `temporarily_unavailable` and never leaks detail.
//! Responses carry the RFC 6749 `error` fields together with RFC 9457 problem fields.

use http::StatusCode;

use crate::config::ConfigError;
use crate::store::StoreError;

/// An OAuth error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749: malformed or missing parameter.
    InvalidRequest,
    /// RFC 6749: client authentication failed.
    InvalidClient,
    /// RFC 6749: code, refresh token or credentials invalid, expired, revoked or mismatched.
    InvalidGrant,
    /// RFC 6749: client may not use this grant or response type.
    UnauthorizedClient,
    /// RFC 6749: grant type not supported.
    UnsupportedGrantType,
    /// RFC 6749: response type not supported.
    UnsupportedResponseType,
    /// RFC 6749: scope invalid, unknown or too wide.
    InvalidScope,
    /// RFC 8707: resource unknown or not allowed.
    InvalidTarget,
    /// RFC 6749: the resource owner or server denied the request.
    AccessDenied,
    /// RFC 7009: token type hint not supported.
    UnsupportedTokenType,
    /// RFC 7591: bad redirect URI in registration.
    InvalidRedirectUri,
    /// RFC 7591: bad client metadata.
    InvalidClientMetadata,
    /// RFC 6749: transient server failure (storage unavailable).
    TemporarilyUnavailable,
    /// RFC 6749: unexpected server failure.
    ServerError,
    /// Too many requests (rate limits and login throttling).
    SlowDown,
    /// Admin API: missing or wrong API key.
    Unauthorized,
    /// Admin API or routing: no such thing.
    NotFound,
    /// Method not allowed on this path.
    MethodNotAllowed,
    /// Body larger than the limit.
    PayloadTooLarge,
    /// Admin API: already exists.
    Conflict,
    /// RFC 9449 §5: the DPoP proof is invalid.
    InvalidDpopProof,
    /// RFC 9449 §8: the proof must carry a server-provided nonce (see the `DPoP-Nonce` header).
    UseDpopNonce,
    /// The user must act first (OpenID Connect Core §3.1.2.6; the vault: connect the
    /// provider, see `connect_uri`).
    InteractionRequired,
}

impl ErrorCode {
    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::SlowDown => "slow_down",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Conflict => "conflict",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InteractionRequired => "interaction_required",
        }
    }

    /// The HTTP status an endpoint answers with for this code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict => StatusCode::CONFLICT,
            Self::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short human title (RFC 9457 `title`).
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "Invalid request",
            Self::InvalidClient => "Client authentication failed",
            Self::InvalidGrant => "Invalid grant",
            Self::UnauthorizedClient => "Client not authorized for this request",
            Self::UnsupportedGrantType => "Unsupported grant type",
            Self::UnsupportedResponseType => "Unsupported response type",
            Self::InvalidScope => "Invalid scope",
            Self::InvalidTarget => "Invalid target resource",
            Self::AccessDenied => "Access denied",
            Self::UnsupportedTokenType => "Unsupported token type",
            Self::InvalidRedirectUri => "Invalid redirect URI",
            Self::InvalidClientMetadata => "Invalid client metadata",
            Self::TemporarilyUnavailable => "Temporarily unavailable",
            Self::ServerError => "Server error",
            Self::SlowDown => "Too many requests",
            Self::Unauthorized => "Unauthorized",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::PayloadTooLarge => "Payload too large",
            Self::Conflict => "Conflict",
            Self::InvalidDpopProof => "Invalid DPoP proof",
            Self::UseDpopNonce => "DPoP nonce required",
            Self::InteractionRequired => "User interaction required",
        }
    }
}

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The protocol error code.
    pub code: ErrorCode,
    /// A precise, client-safe description (never storage detail or secrets).
    pub description: String,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`, `Allow`).
    pub headers: Vec<(http::HeaderName, String)>,
    /// Extra members of the JSON body (`connect_uri` of `interaction_required`).
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

impl Error {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            headers: Vec::new(),
            fields: Vec::new(),
        }
    }
    /// Adds a member to the JSON body.
    pub fn with_field(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.push((name, value.into()));
        self
    }
    /// Adds a response header.
    pub fn with_header(mut self, name: http::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    /// `invalid_request` with a description.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    /// `invalid_grant` with a description.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    /// `invalid_scope` with a description.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    /// `invalid_target` with a description.
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, d)
    }
    /// `invalid_client` with the `WWW-Authenticate` challenge RFC 6749 §5.2 asks for.
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d).with_header(
            http::header::WWW_AUTHENTICATE,
            "Basic realm=\"portcullis\", charset=\"UTF-8\"",
        )
    }
    /// `server_error` for an internal invariant that failed (no detail to the client).
    pub fn server(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServerError, d)
    }

    /// The JSON body: RFC 6749 fields plus RFC 9457 problem details.
    pub fn body(&self) -> serde_json::Value {
        let status = self.code.status().as_u16();
        let mut body = serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
            "type": format!("urn:portcullis:error:{}", self.code.as_str()),
            "title": self.code.title(),
            "status": status,
            "detail": self.description,
        });
        for (name, value) in &self.fields {
            body[*name] = value.clone();
        }
        body
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for Error {}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => Self::new(
                ErrorCode::TemporarilyUnavailable,
                "the authorization server's storage is temporarily unavailable",
            )
            .with_header(http::header::RETRY_AFTER, "1"),
            StoreError::Corrupt(_) => Self::server("stored data could not be read"),
        }
    }
}

/// Result alias for request handling.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the server refused to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An unsafe or malformed setting.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storage failed during migrations or seeding.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A seed or key could not be prepared.
    #[error("{0}")]
    Init(String),
}
