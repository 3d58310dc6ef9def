//! Protected resources (MCP servers) with their scope catalogs (RFC 8707, RFC 9728).

use crate::store::{SqlStore, StoreError};

/// A registered resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResourceRow {
    /// The resource URI, the `aud` of tokens issued for it.
    pub uri: String,
    /// Display name.
    pub name: Option<String>,
    /// The scope catalog.
    pub scopes: Vec<String>,
    /// Confidential clients (typically the resource server itself) allowed to introspect
    /// tokens whose audience is this resource (RFC 7662 §4).
    pub introspection_clients: Vec<String>,
    /// Clients allowed to exchange (RFC 8693) tokens of other clients, or tokens for other
    /// audiences, into tokens for this resource.
    pub exchange_clients: Vec<String>,
    /// Creation time.
    pub created_at: i64,
}

fn from_row(r: &crate::store::Row) -> Result<ResourceRow, StoreError> {
    Ok(ResourceRow {
        uri: r.text(0)?,
        name: r.opt_text(1)?,
        scopes: r.text(2)?.split_whitespace().map(str::to_owned).collect(),
        created_at: r.int(3)?,
        introspection_clients: r
            .opt_text(4)?
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        exchange_clients: r
            .opt_text(5)?
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    })
}

/// Inserts or replaces a resource's name and scope catalog.
pub async fn upsert(db: &dyn SqlStore, r: &ResourceRow) -> Result<(), StoreError> {
    let scopes = r.scopes.join(" ");
    let introspectors = r.introspection_clients.join(" ");
    let exchangers = r.exchange_clients.join(" ");
    let n = db
        .execute(
            "UPDATE resources SET name = ?, scopes = ?, introspection_clients = ?, exchange_clients = ? WHERE uri = ?",
            &[
                r.name.clone().into(),
                scopes.as_str().into(),
                introspectors.as_str().into(),
                exchangers.as_str().into(),
                r.uri.as_str().into(),
            ],
        )
        .await?;
    if n == 0 {
        db.execute(
            "INSERT INTO resources (uri, name, scopes, created_at, introspection_clients, exchange_clients) VALUES (?, ?, ?, ?, ?, ?)",
            &[
                r.uri.as_str().into(),
                r.name.clone().into(),
                scopes.into(),
                r.created_at.into(),
                introspectors.into(),
                exchangers.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Looks a resource up by its exact URI.
pub async fn get(db: &dyn SqlStore, uri: &str) -> Result<Option<ResourceRow>, StoreError> {
    let rows = db
        .query(
            "SELECT uri, name, scopes, created_at, introspection_clients, exchange_clients FROM resources WHERE uri = ?",
            &[uri.into()],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// Every resource, by URI.
pub async fn list(db: &dyn SqlStore) -> Result<Vec<ResourceRow>, StoreError> {
    let rows = db
        .query(
            "SELECT uri, name, scopes, created_at, introspection_clients, exchange_clients FROM resources ORDER BY uri",
            &[],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// Deletes a resource; returns whether it existed.
pub async fn delete(db: &dyn SqlStore, uri: &str) -> Result<bool, StoreError> {
    Ok(db
        .execute("DELETE FROM resources WHERE uri = ?", &[uri.into()])
        .await?
        > 0)
}
