//! Client metadata validation (RFC 7591 §2, with `application_type` from OpenID Connect
//! Dynamic Client Registration §2 and redirect rules from RFC 8252 §7), shared by dynamic
//! registration, client ID metadata documents and admin-created clients
//! (SECURITY-CHECKLIST G1, G2).
//!
//! [`metadata_from_json`] turns a registration request or metadata document into
//! [`ClientMetadata`]; [`validate_metadata`] applies the defaults and refuses anything the
//! server cannot honour, with `invalid_client_metadata` or `invalid_redirect_uri`.

use serde_json::Value;

use crate::client_metadata::ClientMetadata;
use crate::error::{Error, ErrorCode, Result};
use crate::redirect;
use crate::text::truncate;

/// Most redirect URIs per client (G2).
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest metadata URI (`client_uri`, `logo_uri`, `tos_uri`, `policy_uri`) (G2).
pub const MAX_URI_LEN: usize = 2000;
/// Longest `client_name`, `software_id`, `software_version` (G2).
pub const MAX_TEXT_LEN: usize = 200;
/// Most contacts, and the longest one (G2).
pub const MAX_CONTACTS: usize = 10;
/// Longest contact.
pub const MAX_CONTACT_LEN: usize = 320;
/// Most entries in `grant_types` or `response_types` before de-duplication (G2).
pub const MAX_LIST_LEN: usize = 10;

/// Grant types a client may register.
pub const GRANT_TYPES: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    crate::grant_types::JWT_BEARER,
    crate::grant_types::TOKEN_EXCHANGE,
];
/// Client authentication methods a client may register.
pub const AUTH_METHODS: [&str; 4] = [
    "none",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];
/// Most keys in an inline `jwks` (G2).
pub const MAX_JWKS_KEYS: usize = 10;
/// Largest inline `jwks`, serialized, bytes (G2).
pub const MAX_JWKS_BYTES: usize = 8 * 1024;

fn bad_meta(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidClientMetadata, msg)
}

fn bad_redirect(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidRedirectUri, msg)
}

/// Reads client metadata from a JSON object (a registration request or a metadata
/// document). `null` members count as absent and unknown members are ignored; a
/// non-string `tos_uri` / `policy_uri` is refused here with a precise message (G1).
///
/// When `application_type` is absent it is `native` if a redirect URI uses a private-use
/// scheme and `web` otherwise: MCP clients rarely send it, and an explicit `web` with a
/// private-use redirect URI is still refused.
pub fn metadata_from_json(value: Value) -> Result<ClientMetadata> {
    let Value::Object(mut obj) = value else {
        return Err(bad_meta("client metadata must be a JSON object"));
    };
    obj.retain(|_, v| !v.is_null());
    for field in ["tos_uri", "policy_uri"] {
        if let Some(v) = obj.get(field) {
            let s = v
                .as_str()
                .ok_or_else(|| bad_meta(format!("{field} must be a string")))?;
            check_https_uri(field, s)?;
        }
    }
    // Client assertions (private_key_jwt) are verified with the algorithm of the key.
    if let Some(alg) = obj.get("token_endpoint_auth_signing_alg") {
        if !matches!(alg.as_str(), Some("ES256" | "RS256" | "PS256" | "EdDSA")) {
            return Err(bad_meta(
                "token_endpoint_auth_signing_alg must be ES256, RS256, PS256 or EdDSA",
            ));
        }
    }
    if !obj.contains_key("application_type") {
        let custom = obj
            .get("redirect_uris")
            .and_then(Value::as_array)
            .is_some_and(|uris| {
                uris.iter().filter_map(Value::as_str).any(|u| {
                    url::Url::parse(u).is_ok_and(|u| !matches!(u.scheme(), "http" | "https"))
                })
            });
        let t = if custom { "native" } else { "web" };
        obj.insert("application_type".into(), Value::String(t.into()));
    }
    serde_json::from_value(Value::Object(obj))
        .map_err(|e| bad_meta(format!("invalid client metadata: {e}")))
}

/// Validates `meta` and fills in the defaults (RFC 7591 §2): `application_type` `web`,
/// `token_endpoint_auth_method` `client_secret_basic`, `grant_types`
/// `["authorization_code"]`, `response_types` `["code"]` when the code grant is used.
///
/// Refused (G1, G2): unknown grant, response or application types and auth methods;
/// `code` without `authorization_code` (and the reverse); `refresh_token` alone;
/// `client_credentials` for a public client; missing, too many or bad redirect URIs
/// (`invalid_redirect_uri`); non-https `client_uri` / `logo_uri`; oversized or
/// control-character text; a malformed `scope`.
pub fn validate_metadata(meta: &mut ClientMetadata) -> Result<(), Error> {
    if meta.application_type.is_empty() {
        meta.application_type = "web".into();
    }
    if !matches!(meta.application_type.as_str(), "web" | "native") {
        return Err(bad_meta("application_type must be \"web\" or \"native\""));
    }

    if meta.token_endpoint_auth_method.is_empty() {
        meta.token_endpoint_auth_method = "client_secret_basic".into();
    }
    if !AUTH_METHODS.contains(&meta.token_endpoint_auth_method.as_str()) {
        return Err(bad_meta(format!(
            "token_endpoint_auth_method '{}' is not supported (supported: {})",
            truncate(&meta.token_endpoint_auth_method, 64),
            AUTH_METHODS.join(", ")
        )));
    }
    let public = meta.token_endpoint_auth_method == "none";
    check_client_keys(meta)?;

    meta.grant_types = checked_list("grant_types", &meta.grant_types, &GRANT_TYPES)?;
    if meta.grant_types.is_empty() {
        meta.grant_types = vec!["authorization_code".into()];
    }
    let has = |g: &str| meta.grant_types.iter().any(|x| x == g);
    let code_grant = has("authorization_code");
    if has("refresh_token") && !code_grant {
        return Err(bad_meta(
            "grant type refresh_token requires authorization_code",
        ));
    }
    if has("client_credentials") && public {
        return Err(bad_meta(
            "client_credentials requires a confidential client (token_endpoint_auth_method must not be none)",
        ));
    }
    if has(crate::grant_types::JWT_BEARER) && public {
        return Err(bad_meta(
            "the jwt-bearer grant requires a confidential client (token_endpoint_auth_method must not be none)",
        ));
    }

    meta.response_types = checked_list("response_types", &meta.response_types, &["code"])?;
    if meta.response_types.is_empty() && code_grant {
        meta.response_types = vec!["code".into()];
    }
    if code_grant == meta.response_types.is_empty() {
        return Err(bad_meta(if code_grant {
            "grant type authorization_code requires response type code"
        } else {
            "response type code requires grant type authorization_code"
        }));
    }

    if meta.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(bad_redirect(format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris may be registered"
        )));
    }
    if code_grant && meta.redirect_uris.is_empty() {
        return Err(bad_redirect(
            "at least one redirect_uri is required for the authorization_code grant",
        ));
    }
    let mut uris: Vec<String> = Vec::with_capacity(meta.redirect_uris.len());
    for uri in &meta.redirect_uris {
        redirect::validate_for_registration(uri, &meta.application_type)
            .map_err(|why| bad_redirect(format!("{why}: '{}'", truncate(uri, 100))))?;
        if !uris.contains(uri) {
            uris.push(uri.clone());
        }
    }
    meta.redirect_uris = uris;

    check_text("client_name", meta.client_name.as_deref(), MAX_TEXT_LEN)?;
    check_text("software_id", meta.software_id.as_deref(), MAX_TEXT_LEN)?;
    check_text(
        "software_version",
        meta.software_version.as_deref(),
        MAX_TEXT_LEN,
    )?;
    if let Some(u) = &meta.client_uri {
        check_https_uri("client_uri", u)?;
    }
    if let Some(u) = &meta.logo_uri {
        check_https_uri("logo_uri", u)?;
    }
    if let Some(u) = &meta.tos_uri {
        check_https_uri("tos_uri", u)?;
    }
    if let Some(u) = &meta.policy_uri {
        check_https_uri("policy_uri", u)?;
    }
    if meta.contacts.len() > MAX_CONTACTS {
        return Err(bad_meta(format!(
            "at most {MAX_CONTACTS} contacts are allowed"
        )));
    }
    for c in &meta.contacts {
        if c.is_empty() {
            return Err(bad_meta("contacts must not be empty strings"));
        }
        check_text("contacts", Some(c), MAX_CONTACT_LEN)?;
    }
    if let Some(s) = &meta.scope {
        let scopes =
            crate::scope::parse(s).map_err(|e| bad_meta(format!("scope: {}", e.description)))?;
        meta.scope = (!scopes.is_empty()).then(|| crate::scope::join(&scopes));
    }
    Ok(())
}

/// `jwks` and `jwks_uri` (RFC 7591 §2): never both; `jwks` a JWK Set of public keys only
/// (S6), `jwks_uri` an https URI. A `private_key_jwt` client (RFC 7523 §2.2) needs exactly
/// one of them, and an inline set needs a public signing key of a type its assertions may be
/// signed with (P-256 for ES256, RSA for RS256/PS256, Ed25519 for EdDSA).
fn check_client_keys(meta: &ClientMetadata) -> Result<()> {
    if meta.jwks.is_some() && meta.jwks_uri.is_some() {
        return Err(bad_meta("jwks and jwks_uri must not both be present"));
    }
    if let Some(uri) = &meta.jwks_uri {
        check_https_uri("jwks_uri", uri)?;
    }
    if let Some(jwks) = &meta.jwks {
        check_public_jwks(jwks).map_err(|e| bad_meta(e.to_string()))?;
        if jwks.to_string().len() > MAX_JWKS_BYTES {
            return Err(bad_meta(format!(
                "jwks is larger than {MAX_JWKS_BYTES} bytes"
            )));
        }
    }
    if meta.token_endpoint_auth_method == "private_key_jwt" {
        match &meta.jwks {
            None if meta.jwks_uri.is_none() => {
                return Err(bad_meta(
                    "token_endpoint_auth_method private_key_jwt requires jwks or jwks_uri",
                ))
            }
            Some(jwks) if !has_signing_key(jwks) => {
                return Err(bad_meta(
                    "jwks has no usable public signing key (private_key_jwt assertions must be signed with ES256, RS256, PS256 or EdDSA)",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

fn has_signing_key(jwks: &Value) -> bool {
    jwks.get("keys")
        .and_then(Value::as_array)
        .is_some_and(|keys| keys.iter().any(crate::crypto::jws::usable_public_key))
}

/// Why a `jwks` member is refused (S6). `Display` is the `invalid_client_metadata`
/// description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("jwks must be a JWK Set with a 'keys' array")]
    NotASet,
    #[error("jwks holds more than {MAX_JWKS_KEYS} keys")]
    TooManyKeys,
    #[error("jwks keys must be JSON objects")]
    KeyNotObject,
    /// Carries the member found.
    #[error("jwks must contain only public keys (found private or symmetric member '{0}')")]
    PrivateMember(&'static str),
}

/// Refuses a `jwks` member that is not a JWK Set of at most [`MAX_JWKS_KEYS`] public keys
/// (S6): any private or symmetric member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) is
/// refused, as is a key that is not a JSON object.
pub fn check_public_jwks(jwks: &Value) -> std::result::Result<(), JwksError> {
    const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwksError::NotASet)?;
    if keys.len() > MAX_JWKS_KEYS {
        return Err(JwksError::TooManyKeys);
    }
    for key in keys {
        let obj = key.as_object().ok_or(JwksError::KeyNotObject)?;
        if let Some(m) = PRIVATE.iter().find(|m| obj.contains_key(**m)) {
            return Err(JwksError::PrivateMember(m));
        }
    }
    Ok(())
}

/// Checks a list field against the allowed values and removes repeats, keeping order.
fn checked_list(field: &str, values: &[String], allowed: &[&str]) -> Result<Vec<String>> {
    if values.len() > MAX_LIST_LEN {
        return Err(bad_meta(format!("{field} has too many entries")));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        if !allowed.contains(&v.as_str()) {
            return Err(bad_meta(format!(
                "{field} value '{}' is not supported (supported: {})",
                truncate(v, 64),
                allowed.join(", ")
            )));
        }
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Ok(out)
}

/// Bounded text without control characters.
fn check_text(field: &str, value: Option<&str>, max_chars: usize) -> Result<()> {
    let Some(v) = value else { return Ok(()) };
    if v.chars().count() > max_chars {
        return Err(bad_meta(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(bad_meta(format!(
            "{field} must not contain control characters"
        )));
    }
    if v.chars().any(is_invisible_format) {
        return Err(bad_meta(format!(
            "{field} must not contain bidirectional or zero-width format characters"
        )));
    }
    Ok(())
}

/// E2: Unicode format characters (category Cf) that reorder or hide text, with which a name
/// shown at consent could impersonate another (`"Goo\u{202e}elgo"`, zero-width joiners).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// An absolute https URI of bounded length without userinfo or whitespace (G1, G2).
fn check_https_uri(field: &str, value: &str) -> Result<()> {
    if value.len() > MAX_URI_LEN {
        return Err(bad_meta(format!(
            "{field} is longer than {MAX_URI_LEN} bytes"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(bad_meta(format!(
            "{field} must not contain whitespace, control characters or backslashes"
        )));
    }
    let url =
        url::Url::parse(value).map_err(|_| bad_meta(format!("{field} must be an absolute URI")))?;
    if url.scheme() != "https" {
        return Err(bad_meta(format!("{field} must be an https URI")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad_meta(format!(
            "{field} must not contain user information"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Result<ClientMetadata> {
        let mut m = metadata_from_json(v)?;
        validate_metadata(&mut m)?;
        Ok(m)
    }

    fn code(v: Value) -> ErrorCode {
        meta(v).unwrap_err().code
    }

    const CB: &str = "https://app.example.com/cb";

    #[test]
    fn defaults_follow_rfc7591() {
        let m = meta(json!({"redirect_uris": [CB]})).unwrap();
        assert_eq!(m.application_type, "web");
        assert_eq!(m.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(m.grant_types, vec!["authorization_code"]);
        assert_eq!(m.response_types, vec!["code"]);
    }

    #[test]
    fn typical_mcp_public_client() {
        let m = meta(json!({
            "client_name": "MCP Inspector",
            "redirect_uris": ["http://localhost:6274/oauth/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "mcp:tools  mcp:tools read",
            "client_uri": "https://github.com/modelcontextprotocol/inspector"
        }))
        .unwrap();
        assert_eq!(m.token_endpoint_auth_method, "none");
        assert_eq!(m.grant_types, vec!["authorization_code", "refresh_token"]);
        assert_eq!(m.scope.as_deref(), Some("mcp:tools read"));
    }

    #[test]
    fn machine_client() {
        let m = meta(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post"
        }))
        .unwrap();
        assert!(m.response_types.is_empty());
        assert!(m.redirect_uris.is_empty());
    }

    #[test]
    fn application_type_inferred_for_private_use_schemes() {
        let m = meta(json!({
            "redirect_uris": ["com.example.app:/cb"],
            "token_endpoint_auth_method": "none"
        }))
        .unwrap();
        assert_eq!(m.application_type, "native");
        // An explicit "web" is honoured, and refuses the private-use scheme.
        let e = meta(json!({
            "redirect_uris": ["com.example.app:/cb"],
            "application_type": "web"
        }))
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRedirectUri);
    }

    #[test]
    fn g1_unsupported_values_refused() {
        for (body, why) in [
            (
                json!({"redirect_uris": [CB], "token_endpoint_auth_method": "private_key_jwt"}),
                "auth method",
            ),
            (
                json!({"redirect_uris": [CB], "token_endpoint_auth_method": "client_secret_jwt"}),
                "auth method",
            ),
            (
                json!({"redirect_uris": [CB], "grant_types": ["implicit"]}),
                "implicit",
            ),
            (
                json!({"redirect_uris": [CB], "grant_types": ["password"]}),
                "password",
            ),
            (
                json!({"redirect_uris": [CB], "response_types": ["token"]}),
                "token response",
            ),
            (
                json!({"redirect_uris": [CB], "response_types": ["code id_token"]}),
                "hybrid",
            ),
            (
                json!({"redirect_uris": [CB], "application_type": "desktop"}),
                "app type",
            ),
        ] {
            assert_eq!(code(body), ErrorCode::InvalidClientMetadata, "{why}");
        }
    }

    #[test]
    fn g1_inconsistent_grant_and_response_types_refused() {
        for body in [
            json!({"redirect_uris": [CB], "grant_types": ["client_credentials"], "response_types": ["code"]}),
            json!({"redirect_uris": [CB], "grant_types": ["refresh_token"]}),
            json!({"grant_types": ["client_credentials", "refresh_token"], "token_endpoint_auth_method": "client_secret_basic"}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
        ] {
            assert_eq!(
                code(body.clone()),
                ErrorCode::InvalidClientMetadata,
                "{body}"
            );
        }
    }

    #[test]
    fn g1_redirect_uris_checked() {
        for body in [
            json!({"redirect_uris": []}),
            json!({}),
            json!({"redirect_uris": ["http://app.example.com/cb"]}),
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            json!({"redirect_uris": [CB, "https://app.example.com/cb#f"]}),
        ] {
            assert_eq!(code(body.clone()), ErrorCode::InvalidRedirectUri, "{body}");
        }
    }

    #[test]
    fn g1_metadata_uris_must_be_https() {
        for field in ["client_uri", "logo_uri", "tos_uri", "policy_uri"] {
            for bad in [
                "http://app.example.com/",
                "javascript:alert(1)",
                "data:image/png;base64,AAAA",
                "//app.example.com/",
                "https://user@app.example.com/",
                "https://app.example.com/a b",
            ] {
                let mut body = json!({"redirect_uris": [CB]});
                body[field] = json!(bad);
                assert_eq!(
                    code(body),
                    ErrorCode::InvalidClientMetadata,
                    "{field} {bad}"
                );
            }
            let mut body = json!({"redirect_uris": [CB]});
            body[field] = json!("https://app.example.com/x");
            meta(body).unwrap();
        }
        let body = json!({"redirect_uris": [CB], "tos_uri": 5});
        assert_eq!(code(body), ErrorCode::InvalidClientMetadata);
    }

    #[test]
    fn g2_field_sizes_limited() {
        let uris: Vec<String> = (0..=MAX_REDIRECT_URIS)
            .map(|i| format!("https://app.example.com/cb{i}"))
            .collect();
        assert_eq!(
            code(json!({"redirect_uris": uris})),
            ErrorCode::InvalidRedirectUri
        );
        let ok: Vec<String> = uris[..MAX_REDIRECT_URIS].to_vec();
        meta(json!({"redirect_uris": ok})).unwrap();

        let long = "x".repeat(MAX_TEXT_LEN + 1);
        for field in ["client_name", "software_id", "software_version"] {
            let mut body = json!({"redirect_uris": [CB]});
            body[field] = json!(long);
            assert_eq!(code(body), ErrorCode::InvalidClientMetadata, "{field}");
        }
        let long_uri = format!("https://app.example.com/{}", "a".repeat(MAX_URI_LEN));
        assert_eq!(
            code(json!({"redirect_uris": [CB], "client_uri": long_uri})),
            ErrorCode::InvalidClientMetadata
        );
        let contacts: Vec<String> = (0..=MAX_CONTACTS)
            .map(|i| format!("a{i}@x.example"))
            .collect();
        assert_eq!(
            code(json!({"redirect_uris": [CB], "contacts": contacts})),
            ErrorCode::InvalidClientMetadata
        );
        assert_eq!(
            code(json!({"redirect_uris": [CB], "grant_types": vec!["authorization_code"; 11]})),
            ErrorCode::InvalidClientMetadata
        );
        assert_eq!(
            code(json!({"redirect_uris": [CB], "scope": "a ".repeat(2000)})),
            ErrorCode::InvalidClientMetadata
        );
    }

    #[test]
    fn control_characters_refused_in_text() {
        assert_eq!(
            code(json!({"redirect_uris": [CB], "client_name": "evil\u{202e}\nname"})),
            ErrorCode::InvalidClientMetadata
        );
    }

    #[test]
    fn e2_bidi_and_zero_width_characters_refused_in_text() {
        for name in [
            "Goo\u{202e}elgo",
            "Git\u{200b}Hub",
            "a\u{2066}b",
            "\u{feff}App",
        ] {
            assert_eq!(
                code(json!({"redirect_uris": [CB], "client_name": name})),
                ErrorCode::InvalidClientMetadata,
                "{name:?}"
            );
        }
        meta(json!({"redirect_uris": [CB], "client_name": "Café Ünïcode 日本"})).unwrap();
    }

    #[test]
    fn malformed_shapes_are_invalid_client_metadata() {
        for body in [
            json!([]),
            json!("x"),
            json!({"redirect_uris": CB}),
            json!({"redirect_uris": [1]}),
            json!({"client_name": ["x"]}),
        ] {
            assert_eq!(
                code(body.clone()),
                ErrorCode::InvalidClientMetadata,
                "{body}"
            );
        }
        // null means absent.
        meta(json!({"redirect_uris": [CB], "client_name": null, "scope": null})).unwrap();
    }

    #[test]
    fn repeats_are_removed() {
        let m = meta(json!({
            "redirect_uris": [CB, CB],
            "grant_types": ["authorization_code", "authorization_code"],
            "response_types": ["code", "code"]
        }))
        .unwrap();
        assert_eq!(m.redirect_uris, vec![CB]);
        assert_eq!(m.grant_types.len(), 1);
        assert_eq!(m.response_types.len(), 1);
    }

    fn p256_jwk() -> Value {
        use crate::crypto::rustcrypto::{generate_scalar, public_key_sec1};
        let scalar = generate_scalar(&crate::runtime::SeededRng::new(3));
        let mut jwk = crate::keys::public_jwk(&public_key_sec1(&scalar).unwrap());
        jwk["kid"] = json!("k1");
        jwk
    }

    #[test]
    fn g1_private_key_jwt_needs_exactly_one_key_source() {
        let base = || {
            json!({
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt"
            })
        };
        let mut with_jwks = base();
        with_jwks["jwks"] = json!({ "keys": [p256_jwk()] });
        let m = meta(with_jwks.clone()).unwrap();
        assert_eq!(m.token_endpoint_auth_method, "private_key_jwt");
        assert_eq!(m.jwks.unwrap()["keys"][0]["kid"], "k1");
        let mut with_uri = base();
        with_uri["jwks_uri"] = json!("https://app.example.com/jwks.json");
        assert_eq!(
            meta(with_uri).unwrap().jwks_uri.as_deref(),
            Some("https://app.example.com/jwks.json")
        );
        let mut both = with_jwks.clone();
        both["jwks_uri"] = json!("https://app.example.com/jwks.json");
        let mut http_uri = base();
        http_uri["jwks_uri"] = json!("http://app.example.com/jwks.json");
        let mut rsa_only = base();
        rsa_only["jwks"] = json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]});
        let mut hs256 = with_jwks.clone();
        hs256["token_endpoint_auth_signing_alg"] = json!("HS256");
        let mut rs256 = with_jwks.clone();
        rs256["token_endpoint_auth_signing_alg"] = json!("RS256");
        meta(rs256).unwrap();
        let mut es256 = with_jwks.clone();
        es256["token_endpoint_auth_signing_alg"] = json!("ES256");
        meta(es256).unwrap();
        let mut too_many = base();
        too_many["jwks"] = json!({ "keys": vec![p256_jwk(); MAX_JWKS_KEYS + 1] });
        for (why, body) in [
            ("neither", base()),
            ("both", both),
            ("http jwks_uri", http_uri),
            ("no usable key (a 17-bit RSA modulus)", rsa_only),
            ("too many keys", too_many),
            ("HS256 signing alg", hs256),
        ] {
            assert_eq!(code(body), ErrorCode::InvalidClientMetadata, "{why}");
        }
    }

    #[test]
    fn s6_jwks_with_private_key_material_refused() {
        for member in ["d", "k", "p"] {
            let mut key = p256_jwk();
            key[member] = json!("c2VjcmV0");
            let e = meta(json!({
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": { "keys": [key] }
            }))
            .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClientMetadata);
            assert!(e.description.contains(member), "{}", e.description);
        }
    }
}
