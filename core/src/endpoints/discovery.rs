//! Authorization server metadata (RFC 8414 §2–3; MCP 2025-11-25 and 2026-07-28 "Authorization
//! Server Metadata Discovery") and the JWK Set. One document, identical at every location it is
//! served: the RFC 8414 §3.1 path-inserted URL (`/.well-known/oauth-authorization-server/tenant`
//! for an issuer with a path) and the path-appended one (`/tenant/.well-known/…`). Portcullis
//! issues no ID tokens, so it is not an OpenID Provider and serves no
//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §3 would require
//! `id_token_signing_alg_values_supported`); MCP clients try the RFC 8414 URL first.

use std::collections::BTreeSet;

use bytes::Bytes;
use http::{Method, Request, Response};
use serde_json::{json, Value};

use super::issuer_path;
use crate::config::RegistrationMode;
use crate::context::Context;
use crate::paths::{self, endpoint_url};
use crate::request::method_not_allowed;
use crate::response::{error_json, preflight, public_json, with_cors};
use crate::store::repo::resources::{self, ResourceRow};

/// Algorithms client assertions may be signed with (the key decides which one applies).
const CLIENT_ASSERTION_ALGS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];

const AS_METADATA: &str = "/.well-known/oauth-authorization-server";

/// Serves the metadata documents if `path` names one; `None` otherwise.
pub async fn route_well_known(
    server: &Context,
    req: &Request<Bytes>,
    path: &str,
) -> Option<Response<Bytes>> {
    let ip = issuer_path(server);
    let candidates = [format!("{AS_METADATA}{ip}"), format!("{ip}{AS_METADATA}")];
    if !candidates.iter().any(|c| c == path) {
        return None;
    }
    Some(with_cors(match *req.method() {
        Method::GET | Method::HEAD => match resources::list(server.env().sql.as_ref()).await {
            Ok(all) => public_json(&metadata(server, &scopes_supported(&all)), 300),
            Err(e) => error_json(&e.into()),
        },
        Method::OPTIONS => preflight(),
        _ => error_json(&method_not_allowed("GET")),
    }))
}

/// `scopes_supported` (RFC 8414 §2): every scope some registered resource offers, sorted and
/// without repeats. Each resource's own catalogue is in its protected resource metadata.
pub fn scopes_supported(resources: &[ResourceRow]) -> Vec<String> {
    let set: BTreeSet<&str> = resources
        .iter()
        .flat_map(|r| r.scopes.iter().map(String::as_str))
        .collect();
    set.into_iter().map(str::to_owned).collect()
}

/// The metadata document: it advertises exactly what works, and omits what does not apply
/// (no `null`, no empty `scopes_supported`, which would read as "no scopes").
pub fn metadata(server: &Context, scopes: &[String]) -> Value {
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
        "resource_indicators_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": cfg.cimd.enabled,
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
    if !scopes.is_empty() {
        doc["scopes_supported"] = json!(scopes);
    }
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
