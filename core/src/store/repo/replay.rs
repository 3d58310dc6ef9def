//! Single-use identifiers with expiry: DPoP proof `jti`s (RFC 9449 §11.1), client assertion
//! and ID-JAG `jti`s (RFC 7523 §3). Reserving is one atomic upsert (DESIGN.md rule 4): a key
//! is granted once while it is unexpired; an expired key may be reserved again.

use crate::store::{SqlStore, StoreError};

/// Reserves `key` until `expires_at`. Returns `false` when it is already reserved and
/// unexpired at `now` (a replay). Exactly one of any number of concurrent callers wins.
pub async fn reserve(
    db: &dyn SqlStore,
    key: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let rows = db
        .query(
            "INSERT INTO replay_cache (key, expires_at) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE replay_cache.expires_at <= ? RETURNING key",
            &[key.into(), expires_at.into(), now.into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Deletes entries that expired before `now` (housekeeping).
pub async fn purge_expired(db: &dyn SqlStore, now: i64) -> Result<u64, StoreError> {
    db.execute(
        "DELETE FROM replay_cache WHERE expires_at <= ?",
        &[now.into()],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store::TestSql;

    #[test]
    fn reserved_once_until_expiry_then_reusable() {
        futures::executor::block_on(async {
            let db = TestSql::memory();
            crate::store::migrations::migrate(&db, 0).await.unwrap();
            assert!(reserve(&db, "k", 100, 10).await.unwrap());
            assert!(!reserve(&db, "k", 100, 50).await.unwrap());
            assert!(!reserve(&db, "k", 200, 99).await.unwrap());
            assert!(reserve(&db, "k", 300, 100).await.unwrap());
            assert!(!reserve(&db, "k", 300, 150).await.unwrap());
            assert_eq!(purge_expired(&db, 301).await.unwrap(), 1);
        });
    }
}
