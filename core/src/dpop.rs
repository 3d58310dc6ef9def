//! DPoP (RFC 9449). PLACEHOLDER: being written.

use bytes::Bytes;
use http::Request;

use crate::clients::Client;
use crate::error::Result;
use crate::server::Portcullis;

/// The outcome of checking a token request's DPoP proof.
#[derive(Debug, Clone, Default)]
pub struct ProofCheck {
    /// Thumbprint of the proof's key when a valid proof was sent.
    pub jkt: Option<String>,
    /// Headers to add to the response (`DPoP-Nonce`).
    pub response_headers: Vec<(http::HeaderName, String)>,
}

/// Checks the `DPoP` header of a token request (D1–D4).
pub async fn check_token_request(
    server: &Portcullis,
    req: &Request<Bytes>,
    client: &Client,
) -> Result<ProofCheck> {
    let _ = (server, client);
    if req.headers().contains_key("dpop") {
        unimplemented!()
    }
    Ok(ProofCheck::default())
}
