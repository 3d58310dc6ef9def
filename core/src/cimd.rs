//! Client ID Metadata Documents. PLACEHOLDER signatures: bodies are being written.

use crate::clients::Client;
use crate::error::Result;
use crate::server::Portcullis;

/// Whether `client_id` is URL-shaped (an https URL with a path).
pub fn is_metadata_document_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Fetches (or reads from cache) and validates the metadata document of `client_id`.
pub async fn fetch_client(server: &Portcullis, client_id: &str) -> Result<Client> {
    let _ = (server, client_id);
    unimplemented!()
}
