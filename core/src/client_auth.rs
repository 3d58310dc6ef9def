//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3, OAuth 2.1 §2.4). PLACEHOLDER signatures: bodies are being written.

use http::HeaderMap;

use crate::clients::Client;
use crate::error::Result;
use crate::http_util::Params;
use crate::server::Portcullis;

/// Authenticates the client of a token-endpoint style request (A1–A4). Public clients
/// (`none`) are identified by `client_id` alone.
pub async fn authenticate(
    server: &Portcullis,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client> {
    let _ = (server, headers, params);
    unimplemented!()
}
