//! Protected resource metadata (RFC 9728 §2, §3): the document and its path-inserted
//! well-known URL (`/.well-known/oauth-protected-resource` between the host and the resource's
//! path, §3.1), listing the authorization server, the scopes (never `offline_access`, which is
//! the authorization server's business) and, when DPoP is on, the proof algorithms and whether
//! bound tokens are required (RFC 9449 §5.1).

use serde_json::{json, Value};

use crate::config::{Config, DpopMode};

/// The well-known suffix (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The path (and query) of the metadata document for `resource` on its own origin: the
/// well-known suffix, then the resource's path without a terminating slash.
pub fn well_known_path(resource: &url::Url) -> String {
    let path = resource.path().trim_end_matches('/');
    let mut out = format!("{WELL_KNOWN}{path}");
    if let Some(q) = resource.query() {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The absolute metadata URL, for the `resource_metadata` challenge parameter (RFC 9728 §5.1).
pub fn well_known_url(config: &Config) -> String {
    format!("{}{}", config.origin(), well_known_path(&config.resource))
}

/// The metadata document.
pub fn document(config: &Config) -> Value {
    let mut doc = json!({
        "resource": config.resource(),
        "authorization_servers": [config.issuer()],
        "bearer_methods_supported": ["header"],
        "resource_signing_alg_values_supported":
            config.algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
    });
    let scopes = config.effective_scopes_supported();
    if !scopes.is_empty() {
        doc["scopes_supported"] = json!(scopes);
    }
    if let Some(name) = &config.resource_name {
        doc["resource_name"] = json!(name);
    }
    if config.dpop != DpopMode::Off {
        doc["dpop_signing_alg_values_supported"] = json!(config
            .dpop_algorithms
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>());
        doc["dpop_bound_access_tokens_required"] = json!(config.dpop == DpopMode::Required);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_inserted_well_known_url() {
        let c = Config::new("https://as.example", "https://mcp.example/mcp").unwrap();
        assert_eq!(
            well_known_url(&c),
            "https://mcp.example/.well-known/oauth-protected-resource/mcp"
        );
        let c = Config::new("https://as.example", "https://mcp.example/").unwrap();
        assert_eq!(
            well_known_url(&c),
            "https://mcp.example/.well-known/oauth-protected-resource"
        );
        let c = Config::new("https://as.example", "http://127.0.0.1:3000/a/b/").unwrap();
        assert_eq!(
            well_known_url(&c),
            "http://127.0.0.1:3000/.well-known/oauth-protected-resource/a/b"
        );
    }

    #[test]
    fn document_lists_servers_scopes_and_dpop() {
        let c = Config::new("https://as.example", "https://mcp.example/mcp")
            .unwrap()
            .required_scopes(["mcp:read", "offline_access"])
            .tool("w", ["mcp:write"])
            .resource_name("Notes");
        let d = document(&c);
        assert_eq!(d["resource"], "https://mcp.example/mcp");
        assert_eq!(d["authorization_servers"], json!(["https://as.example"]));
        assert_eq!(d["scopes_supported"], json!(["mcp:read", "mcp:write"]));
        assert_eq!(d["dpop_signing_alg_values_supported"], json!(["ES256"]));
        assert_eq!(d["dpop_bound_access_tokens_required"], false);
        assert_eq!(d["resource_name"], "Notes");
        let d = document(&c.clone().dpop(DpopMode::Required));
        assert_eq!(d["dpop_bound_access_tokens_required"], true);
        let d = document(&c.dpop(DpopMode::Off));
        assert!(d.get("dpop_signing_alg_values_supported").is_none());
        assert!(
            !d.to_string().contains("null"),
            "absent members are omitted"
        );
    }
}
