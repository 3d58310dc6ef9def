//! Registered clients (static, seeded and RFC 7591 dynamic). Client ID metadata document
//! clients are not stored here; they are fetched and cached (see [`crate::cimd`]).

use crate::client_metadata::ClientMetadata;
use crate::store::{SqlStore, StoreError};

/// A stored client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRow {
    /// The client id.
    pub client_id: String,
    /// Hash of the client secret ([`crate::crypto::token_hash`]), for confidential clients.
    pub secret_hash: Option<String>,
    /// Registered metadata.
    pub metadata: ClientMetadata,
    /// `static`, `seed` or `dynamic`.
    pub source: String,
    /// Creation time.
    pub created_at: i64,
    /// When it last obtained a token, to [`LAST_USED_GRANULARITY`] (none yet: `None`).
    pub last_used_at: Option<i64>,
}

/// How coarse [`ClientRow::last_used_at`] is, seconds: the token endpoint writes it at most
/// once per this interval per client, so the hot path stays read-only almost always.
pub const LAST_USED_GRANULARITY: i64 = 300;

const COLS: &str = "client_id, secret_hash, metadata, source, created_at, last_used_at";

fn from_row(r: &crate::store::Row) -> Result<ClientRow, StoreError> {
    let metadata = serde_json::from_str(&r.text(2)?)
        .map_err(|e| StoreError::Corrupt(format!("client metadata: {e}")))?;
    Ok(ClientRow {
        client_id: r.text(0)?,
        secret_hash: r.opt_text(1)?,
        metadata,
        source: r.text(3)?,
        created_at: r.int(4)?,
        last_used_at: r.opt_int(5)?,
    })
}

/// Inserts a client; an existing id is [`StoreError::Conflict`].
pub async fn insert(db: &dyn SqlStore, c: &ClientRow) -> Result<(), StoreError> {
    let meta =
        serde_json::to_string(&c.metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    db.execute(
        "INSERT INTO clients (client_id, secret_hash, metadata, source, created_at) VALUES (?, ?, ?, ?, ?)",
        &[
            c.client_id.as_str().into(),
            c.secret_hash.clone().into(),
            meta.into(),
            c.source.as_str().into(),
            c.created_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Replaces a client's secret and metadata (seeds re-applied on start).
pub async fn upsert(db: &dyn SqlStore, c: &ClientRow) -> Result<(), StoreError> {
    let meta =
        serde_json::to_string(&c.metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let n = db
        .execute(
            "UPDATE clients SET secret_hash = ?, metadata = ?, source = ? WHERE client_id = ?",
            &[
                c.secret_hash.clone().into(),
                meta.into(),
                c.source.as_str().into(),
                c.client_id.as_str().into(),
            ],
        )
        .await?;
    if n == 0 {
        insert(db, c).await?;
    }
    Ok(())
}

/// Looks a client up by id.
pub async fn get(db: &dyn SqlStore, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM clients WHERE client_id = ?"),
            &[client_id.into()],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// Lists clients, oldest first.
pub async fn list(
    db: &dyn SqlStore,
    limit: i64,
    offset: i64,
) -> Result<Vec<ClientRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM clients ORDER BY created_at, client_id LIMIT ? OFFSET ?"),
            &[limit.into(), offset.into()],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// Deletes a client; returns whether it existed.
pub async fn delete(db: &dyn SqlStore, client_id: &str) -> Result<bool, StoreError> {
    Ok(db
        .execute(
            "DELETE FROM clients WHERE client_id = ?",
            &[client_id.into()],
        )
        .await?
        > 0)
}

/// Replaces a client's metadata (an administrator's edit); returns whether it existed.
pub async fn update_metadata(
    db: &dyn SqlStore,
    client_id: &str,
    metadata: &ClientMetadata,
) -> Result<bool, StoreError> {
    let meta = serde_json::to_string(metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(db
        .execute(
            "UPDATE clients SET metadata = ? WHERE client_id = ?",
            &[meta.into(), client_id.into()],
        )
        .await?
        > 0)
}

/// Replaces a client's secret hash (rotation); returns whether it existed.
pub async fn set_secret_hash(
    db: &dyn SqlStore,
    client_id: &str,
    secret_hash: &str,
) -> Result<bool, StoreError> {
    Ok(db
        .execute(
            "UPDATE clients SET secret_hash = ? WHERE client_id = ?",
            &[secret_hash.into(), client_id.into()],
        )
        .await?
        > 0)
}

/// Whether a use at `now` should be written, given the stored `last_used_at`.
pub fn use_is_news(last_used_at: Option<i64>, now: i64) -> bool {
    last_used_at.is_none_or(|t| now - t >= LAST_USED_GRANULARITY)
}

/// Records that the client obtained a token at `now`; the guard keeps the column monotone
/// when two instances write at once.
pub async fn touch(db: &dyn SqlStore, client_id: &str, now: i64) -> Result<(), StoreError> {
    db.execute(
        "UPDATE clients SET last_used_at = ? WHERE client_id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
        &[now.into(), client_id.into(), now.into()],
    )
    .await
    .map(|_| ())
}
