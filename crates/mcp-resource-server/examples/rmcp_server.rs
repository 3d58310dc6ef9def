//! An MCP server (rmcp, streamable HTTP) protected by Portcullis in five minutes.
//!
//! Two settings:
//! - `MCP_AUTH_ISSUER`: the authorization server's issuer, e.g. `http://127.0.0.1:9000`;
//! - `MCP_RESOURCE_URL`: this server's own URL as clients use it, e.g.
//!   `http://127.0.0.1:3000/mcp` (register it at the authorization server as a resource with
//!   scopes `mcp:read mcp:write`).
//!
//! It listens on the resource URL's host and port (`MCP_LISTEN` overrides, e.g. behind a
//! proxy), serves the MCP endpoint at the resource URL's path and the protected resource
//! metadata at `/.well-known/oauth-protected-resource/<path>`. Tools: `whoami` (needs
//! `mcp:read`, as does every request) and `write_note` (needs `mcp:write`).
//!
//! Optional, for the token vault (docs/vault.md): with `MCP_CLIENT_ID` and
//! `MCP_CLIENT_SECRET` (a confidential client listed in this resource's `exchange_clients`),
//! the `upstream_token` tool vends the caller's token for a provider's `resource` and answers
//! with the connect link when the user has not connected that provider yet.
//!
//! Optional, with those credentials and `MCP_INTROSPECTION_TTL` (seconds; the client listed in
//! the resource's `introspection_clients`): `write_note` introspects the caller's token
//! (RFC 7662), so a revoked token cannot write for longer than that.
//!
//! Optional: `MCP_DPOP_NONCE_SECRET` (32 bytes or more) makes DPoP proofs carry a nonce
//! this server issued (RFC 9449 §9; refused with `use_dpop_nonce` and a `DPoP-Nonce` header).
//!
//! ```sh
//! MCP_AUTH_ISSUER=http://127.0.0.1:9000 MCP_RESOURCE_URL=http://127.0.0.1:3000/mcp \
//!   cargo run -p portcullis-resource-server --example rmcp_server
//! ```

use std::sync::{Arc, Mutex};

use portcullis_resource_server::introspect::Introspection;
use portcullis_resource_server::vend::{ClientCredentials, Vend, Vended};
use portcullis_resource_server::{native, Config, VerifiedToken};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::{
    session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
};
use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler};

/// The tools. Notes live in memory, shared by every session.
#[derive(Clone)]
struct Notes {
    notes: Arc<Mutex<Vec<(String, String)>>>,
    vend: Option<Vend>,
    introspection: Option<Introspection>,
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct UpstreamToken {
    /// The provider's `resource` (e.g. `https://api.github.com`).
    resource: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct WriteNote {
    /// The note's text.
    text: String,
}

/// The verified token the layer put into the HTTP request's extensions.
fn caller(parts: &http::request::Parts) -> Result<&VerifiedToken, rmcp::ErrorData> {
    parts
        .extensions
        .get::<VerifiedToken>()
        .ok_or_else(|| rmcp::ErrorData::internal_error("no verified token on the request", None))
}

#[tool_router]
impl Notes {
    fn new(vend: Option<Vend>, introspection: Option<Introspection>) -> Self {
        Self {
            notes: Arc::default(),
            vend,
            introspection,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Who is calling: the token's subject, client, scopes and actors")]
    async fn whoami(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<String, rmcp::ErrorData> {
        let t = caller(&parts)?;
        Ok(serde_json::json!({
            "sub": t.subject(),
            "client_id": t.client_id(),
            "scopes": t.scopes(),
            "actors": t.claims.actor_chain(),
            "scheme": t.scheme.as_str(),
            "dpop_jkt": t.claims.jkt(),
        })
        .to_string())
    }

    #[tool(description = "Save a note (needs scope mcp:write)")]
    async fn write_note(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(WriteNote { text }): Parameters<WriteNote>,
    ) -> Result<String, rmcp::ErrorData> {
        let token = caller(&parts)?;
        // Writing must not outlive a revocation by more than the introspection cache.
        if let Some(introspection) = &self.introspection {
            match introspection.is_active(token).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(rmcp::ErrorData::invalid_request(
                        "the token was revoked",
                        None,
                    ))
                }
                Err(e) => return Err(rmcp::ErrorData::internal_error(e.to_string(), None)),
            }
        }
        let who = token.subject().to_owned();
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        notes.push((who.clone(), text));
        Ok(format!("saved note {} for {who}", notes.len()))
    }

    #[tool(description = "Get the caller's token for an upstream provider from the vault")]
    async fn upstream_token(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(UpstreamToken { resource }): Parameters<UpstreamToken>,
    ) -> Result<String, rmcp::ErrorData> {
        let vend = self.vend.as_ref().ok_or_else(|| {
            rmcp::ErrorData::invalid_request("set MCP_CLIENT_ID and MCP_CLIENT_SECRET", None)
        })?;
        // A real tool would call the provider's API with the token; this one only shows what
        // it got (never the token itself).
        match vend.vend(caller(&parts)?, &resource, None).await {
            Ok(Vended::Token {
                scope, expires_in, ..
            }) => Ok(serde_json::json!({
                "connected": true, "scope": scope, "expires_in": expires_in,
            })
            .to_string()),
            Ok(Vended::Connect { connect_uri, .. }) => Ok(serde_json::json!({
                "connected": false, "connect_uri": connect_uri,
            })
            .to_string()),
            Err(e) => Err(rmcp::ErrorData::internal_error(e.to_string(), None)),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Notes {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn env(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = env("MCP_AUTH_ISSUER")?;
    let resource = env("MCP_RESOURCE_URL")?;

    // The whole authorization setup: who issues tokens, who we are, what each tool needs.
    let config = Config::new(&issuer, &resource)?
        .resource_name("Portcullis example notes server")
        .required_scopes(["mcp:read"])
        .tool("whoami", ["mcp:read"])
        .tool("write_note", ["mcp:write"])
        .tool("upstream_token", ["mcp:read"]);
    // Optional: DPoP proofs must carry a nonce from this server (RFC 9449 §9).
    let config = match std::env::var("MCP_DPOP_NONCE_SECRET") {
        Ok(secret) => config.dpop_nonces(secret.as_bytes(), std::time::Duration::from_secs(300))?,
        Err(_) => config,
    };
    let verifier = native::verifier(config)?;
    let client = match (
        std::env::var("MCP_CLIENT_ID"),
        std::env::var("MCP_CLIENT_SECRET"),
    ) {
        (Ok(id), Ok(secret)) => Some(ClientCredentials::new(&id, &secret)),
        _ => None,
    };
    let vend = client.clone().map(|c| Vend::new(verifier.clone(), c));
    let introspection = match (client, std::env::var("MCP_INTROSPECTION_TTL")) {
        (Some(c), Ok(ttl)) => Some(Introspection::new(
            verifier.clone(),
            c,
            std::time::Duration::from_secs(ttl.parse()?),
        )),
        _ => None,
    };
    let auth = portcullis_resource_server::layer::ResourceServerLayer::new(verifier);

    let url = url::Url::parse(&resource)?;
    let host = url
        .host_str()
        .ok_or("MCP_RESOURCE_URL has no host")?
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or("MCP_RESOURCE_URL has no port")?;
    let listen = std::env::var("MCP_LISTEN").unwrap_or_else(|_| format!("{host}:{port}"));

    let notes = Notes::new(vend, introspection);
    let mcp = StreamableHttpService::new(
        move || Ok(notes.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts([host.clone(), format!("{host}:{port}")]),
    );
    let path = match url.path() {
        "" => "/".to_owned(),
        p => p.to_owned(),
    };
    let app = axum::Router::new().route_service(&path, mcp).layer(auth);

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!(
        "MCP server for {resource} on {} (issuer {issuer})",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
