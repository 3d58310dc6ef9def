//! Authorization server metadata (RFC 8414 §2–3, OpenID Connect Discovery 1.0 §4) and the
//! JWK Set. For an issuer with a path, the metadata is served at the path-inserted
//! (`/.well-known/oauth-authorization-server/tenant`) and path-appended
//! (`/tenant/.well-known/openid-configuration`) locations.

use bytes::Bytes;
use http::{Method, Request, Response};
use serde_json::{json, Value};

use super::issuer_path;
use crate::config::RegistrationMode;
use crate::context::Context;
use crate::paths::{self, endpoint_url};
use crate::request::method_not_allowed;
use crate::response::{error_json, preflight, public_json, with_cors};

/// Algorithms client assertions may be signed with (the key decides which one applies).
const CLIENT_ASSERTION_ALGS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];

const AS_METADATA: &str = "/.well-known/oauth-authorization-server";
const OIDC_METADATA: &str = "/.well-known/openid-configuration";

/// Serves the metadata documents if `path` names one; `None` otherwise.
pub async fn route_well_known(
    server: &Context,
    req: &Request<Bytes>,
    path: &str,
) -> Option<Response<Bytes>> {
    let ip = issuer_path(server);
    let candidates = [
        format!("{AS_METADATA}{ip}"),
        format!("{OIDC_METADATA}{ip}"),
        format!("{ip}{AS_METADATA}"),
        format!("{ip}{OIDC_METADATA}"),
    ];
    if !candidates.iter().any(|c| c == path) {
        return None;
    }
    Some(with_cors(match *req.method() {
        Method::GET | Method::HEAD => public_json(&metadata(server), 3600),
        Method::OPTIONS => preflight(),
        _ => error_json(&method_not_allowed("GET")),
    }))
}

/// The metadata document: it advertises exactly what works.
pub fn metadata(server: &Context) -> Value {
    let cfg = server.config();
    let mut doc = json!({
        "issuer": server.issuer(),
        "authorization_endpoint": endpoint_url(server, paths::AUTHORIZE),
        "token_endpoint": endpoint_url(server, paths::TOKEN),
        "jwks_uri": endpoint_url(server, paths::JWKS),
        "revocation_endpoint": endpoint_url(server, paths::REVOKE),
        "introspection_endpoint": endpoint_url(server, paths::INTROSPECT),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", super::token::TOKEN_EXCHANGE],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGS,
        "scopes_supported": [],
        "resource_indicators_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": cfg.cimd.enabled,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "access_token_signing_alg_values_supported": ["ES256"],
        "dpop_signing_alg_values_supported": crate::dpop::proof::ALGS,
        "service_documentation": "https://github.com/portcullis-auth/portcullis",
    });
    // RFC 7523 JWT bearer grant with ID-JAG assertions (MCP enterprise-managed authorization).
    if let Some(grants) = doc["grant_types_supported"].as_array_mut() {
        grants.push(super::token::JWT_BEARER.into());
    }
    doc["authorization_grant_profiles_supported"] =
        json!([super::token::jwt_bearer::ID_JAG_PROFILE]);
    if cfg.registration.mode != RegistrationMode::AdminOnly || cfg.admin_api_key.is_some() {
        doc["registration_endpoint"] = endpoint_url(server, paths::REGISTER).into();
    }
    doc
}

/// `GET /.well-known/jwks.json`: public keys only, with `kid`, `alg` and `use`.
pub async fn jwks(server: &Context, req: &Request<Bytes>) -> Response<Bytes> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error_json(&method_not_allowed("GET"));
    }
    match server.keys().jwks(server.env()).await {
        Ok(doc) => public_json(&doc, crate::keys::JWKS_MAX_AGE_SECS as u32),
        Err(e) => error_json(&e.into()),
    }
}
