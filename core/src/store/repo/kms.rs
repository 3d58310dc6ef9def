//! Data keys wrapped by an external KMS ([`crate::kms`]): the wrapped form only (the
//! KMS unwraps it; the plaintext never reaches storage), named by the id of the key it wraps
//! (`k{id}`, as sealed values name it) and by the KMS key that wrapped it.

use crate::store::{SqlStore, StoreError};

/// A stored wrapped data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyRow {
    /// The id of the data key ([`crate::crypto::master::key_label`] of its plaintext).
    pub id: String,
    /// The KMS key that wrapped it (`{mount}/{key}` for Vault Transit).
    pub kms_key: String,
    /// The wrapped data key (`vault:v1:…`).
    pub wrapped: String,
    /// When it was made.
    pub created_at: i64,
}

/// The data keys wrapped by `kms_key`, oldest first (the oldest seals: every instance picks
/// the same one, whichever made it).
pub async fn data_keys(db: &dyn SqlStore, kms_key: &str) -> Result<Vec<DataKeyRow>, StoreError> {
    db.query(
        "SELECT id, kms_key, wrapped, created_at FROM kms_data_keys WHERE kms_key = ? \
         ORDER BY created_at, id",
        &[kms_key.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(DataKeyRow {
            id: r.text(0)?,
            kms_key: r.text(1)?,
            wrapped: r.text(2)?,
            created_at: r.int(3)?,
        })
    })
    .collect()
}

/// Stores a wrapped data key (nothing happens if its id is already stored).
pub async fn insert_data_key(db: &dyn SqlStore, k: &DataKeyRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO kms_data_keys (id, kms_key, wrapped, created_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (id) DO NOTHING",
        &[
            k.id.as_str().into(),
            k.kms_key.as_str().into(),
            k.wrapped.as_str().into(),
            k.created_at.into(),
        ],
    )
    .await
    .map(|_| ())
}
