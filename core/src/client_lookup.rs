//! Finding the client behind a `client_id`: a stored client (static, seeded or RFC 7591
//! dynamic), or for a URL-shaped id a client ID metadata document fetched on demand.

use crate::clients::Client;
use crate::context::Context;
use crate::error::Result;
use crate::store::repo;

/// Finds a client: stored clients first, then (for URL-shaped ids, when enabled) the client
/// ID metadata document. `Ok(None)` means unknown; a failed document fetch is an error that
/// says so (S7), not "unknown client".
pub async fn resolve(ctx: &Context, client_id: &str) -> Result<Option<Client>> {
    if client_id.is_empty() || client_id.len() > 2048 {
        return Ok(None);
    }
    if let Some(row) = repo::clients::get(ctx.env().sql.as_ref(), client_id).await? {
        return Ok(Some(row.into()));
    }
    if crate::cimd::is_metadata_document_id(client_id) {
        if !ctx.config().cimd.enabled {
            return Ok(None);
        }
        return crate::cimd::fetch_client(ctx, client_id).await.map(Some);
    }
    Ok(None)
}
