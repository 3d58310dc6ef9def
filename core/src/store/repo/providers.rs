//! Upstream providers of the token vault: the declaration (as JSON, without its secret) and
//! the client secret sealed at rest, with where it came from (`seed` or `admin`).

use crate::store::{Row, SqlStore, StoreError};

/// A stored provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    /// The provider's name.
    pub name: String,
    /// The identifier an MCP server names to vend this provider's tokens (unique).
    pub resource: String,
    /// The declaration as JSON (`client_secret` never included).
    pub config: String,
    /// The client secret, sealed.
    pub client_secret: String,
    /// `seed` or `admin`.
    pub source: String,
    /// When it was stored.
    pub created_at: i64,
}

const COLS: &str = "name, resource, config, client_secret, source, created_at";

fn from_row(r: &Row) -> Result<ProviderRow, StoreError> {
    Ok(ProviderRow {
        name: r.text(0)?,
        resource: r.text(1)?,
        config: r.text(2)?,
        client_secret: r.text(3)?,
        source: r.text(4)?,
        created_at: r.int(5)?,
    })
}

/// Creates or replaces a provider; [`StoreError::Conflict`] when another provider has its
/// `resource`.
pub async fn put(db: &dyn SqlStore, p: &ProviderRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO providers (name, resource, config, client_secret, source, created_at) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET resource = excluded.resource, config = excluded.config, \
         client_secret = excluded.client_secret, source = excluded.source",
        &[
            p.name.as_str().into(),
            p.resource.as_str().into(),
            p.config.as_str().into(),
            p.client_secret.as_str().into(),
            p.source.as_str().into(),
            p.created_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// The provider named `name`.
pub async fn get(db: &dyn SqlStore, name: &str) -> Result<Option<ProviderRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM providers WHERE name = ?"),
            &[name.into()],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// The provider whose `resource` is `resource`.
pub async fn by_resource(
    db: &dyn SqlStore,
    resource: &str,
) -> Result<Option<ProviderRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM providers WHERE resource = ?"),
            &[resource.into()],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// Every provider, by name.
pub async fn list(db: &dyn SqlStore) -> Result<Vec<ProviderRow>, StoreError> {
    db.query(&format!("SELECT {COLS} FROM providers ORDER BY name"), &[])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Deletes a provider and its connections and pending connects; whether it existed.
pub async fn delete(db: &dyn SqlStore, name: &str) -> Result<bool, StoreError> {
    let existed = get(db, name).await?.is_some();
    db.batch(&[
        (
            "DELETE FROM connect_requests WHERE provider = ?".into(),
            vec![name.into()],
        ),
        (
            "DELETE FROM connections WHERE provider = ?".into(),
            vec![name.into()],
        ),
        (
            "DELETE FROM providers WHERE name = ?".into(),
            vec![name.into()],
        ),
    ])
    .await?;
    Ok(existed)
}
