//! The upstream token vault: users connect upstream providers (GitHub, Slack, Linear,
//! Atlassian or any OAuth 2.0 provider) once; MCP servers exchange the user's Portcullis
//! access token for a short-lived upstream access token at tool-call time (RFC 8693); agents
//! never see an upstream credential. Tokens are sealed at rest per connection; refreshes are
//! single-flight across instances.

pub mod broker;
pub mod connection;
pub mod link;
pub mod provider;
pub mod providers;
pub mod seal;
pub mod upstream;
pub mod vend;
