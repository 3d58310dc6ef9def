//! Signing keys (RFC 7517 JWK, RFC 9068 §2.1): public JWK in clear, private scalar sealed
//! with the key-encryption key. Retired keys keep being published until `remove_after`.

use crate::store::{SqlStore, StoreError};

/// A stored signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Key id (the JWK thumbprint).
    pub kid: String,
    /// JWS algorithm (`ES256`).
    pub alg: String,
    /// The public JWK, JSON.
    pub public_jwk: String,
    /// The sealed private key ([`crate::crypto::kek::Kek::seal`]).
    pub private_enc: String,
    /// Creation time; the newest unretired key signs.
    pub created_at: i64,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS (after every token it signed has expired).
    pub remove_after: Option<i64>,
}

const COLS: &str = "kid, alg, public_jwk, private_enc, created_at, retired_at, remove_after";

fn from_row(r: &crate::store::Row) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        kid: r.text(0)?,
        alg: r.text(1)?,
        public_jwk: r.text(2)?,
        private_enc: r.text(3)?,
        created_at: r.int(4)?,
        retired_at: r.opt_int(5)?,
        remove_after: r.opt_int(6)?,
    })
}

/// Stores a new key.
pub async fn insert(db: &dyn SqlStore, k: &KeyRow) -> Result<(), StoreError> {
    db.execute(
        &format!("INSERT INTO signing_keys ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
        &[
            k.kid.as_str().into(),
            k.alg.as_str().into(),
            k.public_jwk.as_str().into(),
            k.private_enc.as_str().into(),
            k.created_at.into(),
            k.retired_at.into(),
            k.remove_after.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Keys still published at `now` (active and retired-but-not-removed), newest first.
pub async fn published(db: &dyn SqlStore, now: i64) -> Result<Vec<KeyRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM signing_keys WHERE remove_after IS NULL OR remove_after > ? ORDER BY created_at DESC, kid"),
            &[now.into()],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// Retires every active key except `keep_kid`, publishing them until `remove_after`.
pub async fn retire_others(
    db: &dyn SqlStore,
    keep_kid: &str,
    now: i64,
    remove_after: i64,
) -> Result<u64, StoreError> {
    db.execute(
        "UPDATE signing_keys SET retired_at = ?, remove_after = ? WHERE kid <> ? AND retired_at IS NULL",
        &[now.into(), remove_after.into(), keep_kid.into()],
    )
    .await
}
