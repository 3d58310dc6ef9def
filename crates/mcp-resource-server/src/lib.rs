//! Protect an MCP server (an OAuth 2.1 resource server) with tokens from an authorization
//! server such as Portcullis: RFC 9068 access tokens verified locally against the issuer's
//! JWKS, DPoP sender-constrained tokens (RFC 9449 §7), protected resource metadata
//! (RFC 9728), `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9449 §7.1) and per-tool scopes.
//!
//! The verification core is sans-IO: every decision is a plain function over values (the
//! request's method, URL and headers, the current time, a key set) returning a [`Decision`].
//! It compiles to `wasm32-unknown-unknown` and `wasm32-wasip2`. Fetching the issuer's
//! metadata and JWKS goes through the [`HttpFetch`] trait that the integration supplies;
//! [`Verifier`] drives the cache and the fetcher. With the `tower` feature, [`layer`] wraps
//! any tower service (axum, rmcp's streamable HTTP service); with `native` (the default),
//! [`native`] supplies a reqwest fetcher and the system clock.
//!
//! ```no_run
//! # #[cfg(feature = "native")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use portcullis_resource_server::{Config, native};
//!
//! let config = Config::new("http://127.0.0.1:9000", "http://127.0.0.1:3000/mcp")?
//!     .required_scopes(["mcp:read"])
//!     .tool("whoami", ["mcp:read"])
//!     .tool("write_note", ["mcp:write"]);
//! let layer = native::layer(config)?;
//! // axum::Router::new().route_service("/mcp", mcp_service).layer(layer)
//! # let _ = layer; Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod challenge;
pub mod claims;
pub mod config;
pub mod decision;
pub mod dpop;
pub mod introspect;
pub mod jwks;
pub mod metadata;
pub mod nonce;
pub mod policy;
pub mod token;
pub mod vend;
pub mod verifier;

#[cfg(feature = "tower")]
pub mod layer;
#[cfg(feature = "native")]
pub mod native;

pub use claims::{Actor, Claims, Confirmation, Scheme, VerifiedToken};
pub use config::{Alg, Config, ConfigError, DpopMode};
pub use decision::{Decision, Denial};
pub use policy::{ToolPolicy, UnknownTools};
pub use verifier::{Clock, FetchError, HttpFetch, Verifier};
