//! Counters with expiry in the system of record, for limits that must hold across replicas and
//! isolates and that an attacker cannot flush (login throttling, registration rate limits,
//! machine-client rate limits and daily quotas). Each increment is one atomic upsert
//! (DESIGN.md rule 4), so parallel requests never slip past a limit; a counter belongs to one
//! window, named in its key, and expires with it.

use crate::store::{SqlStore, StoreError};

/// Adds one to `key` (creating it, valid until `expires_at`) and returns the new count. An
/// expired counter of the same key starts again at one.
pub async fn increment(
    db: &dyn SqlStore,
    key: &str,
    expires_at: i64,
    now: i64,
) -> Result<i64, StoreError> {
    add(db, key, 1, expires_at, now).await
}

/// Adds `delta` (which may be negative: a refund) to `key` and returns the new count.
pub async fn add(
    db: &dyn SqlStore,
    key: &str,
    delta: i64,
    expires_at: i64,
    now: i64,
) -> Result<i64, StoreError> {
    let rows = db
        .query(
            "INSERT INTO counters (key, count, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN counters.expires_at <= ? THEN excluded.count ELSE counters.count + excluded.count END, \
             expires_at = CASE WHEN counters.expires_at <= ? THEN excluded.expires_at ELSE counters.expires_at END \
             RETURNING count",
            &[
                key.into(),
                delta.into(),
                expires_at.into(),
                now.into(),
                now.into(),
            ],
        )
        .await?;
    rows.first()
        .map(|r| r.int(0))
        .transpose()
        .map(|c| c.unwrap_or(delta))
}

/// The live count of `key` at `now` (0 when absent or expired).
pub async fn get(db: &dyn SqlStore, key: &str, now: i64) -> Result<i64, StoreError> {
    let rows = db
        .query(
            "SELECT count FROM counters WHERE key = ? AND expires_at > ?",
            &[key.into(), now.into()],
        )
        .await?;
    rows.first()
        .map(|r| r.int(0))
        .transpose()
        .map(|c| c.unwrap_or(0))
}

/// Removes a counter (a successful login clears its user's failures).
pub async fn reset(db: &dyn SqlStore, key: &str) -> Result<(), StoreError> {
    db.execute("DELETE FROM counters WHERE key = ?", &[key.into()])
        .await
        .map(|_| ())
}

/// Deletes counters whose window ended before `now` (housekeeping).
pub async fn purge_expired(db: &dyn SqlStore, now: i64) -> Result<u64, StoreError> {
    db.execute("DELETE FROM counters WHERE expires_at <= ?", &[now.into()])
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store::TestSql;

    #[test]
    fn counts_within_a_window_and_restarts_after_it() {
        futures::executor::block_on(async {
            let db = TestSql::memory();
            crate::store::migrations::migrate(&db, 0).await.unwrap();
            assert_eq!(increment(&db, "k", 100, 10).await.unwrap(), 1);
            assert_eq!(increment(&db, "k", 100, 20).await.unwrap(), 2);
            assert_eq!(get(&db, "k", 50).await.unwrap(), 2);
            assert_eq!(get(&db, "k", 100).await.unwrap(), 0, "expired");
            assert_eq!(
                increment(&db, "k", 200, 100).await.unwrap(),
                1,
                "new window"
            );
            assert_eq!(get(&db, "k", 150).await.unwrap(), 1);
            assert_eq!(add(&db, "k", -1, 200, 150).await.unwrap(), 0, "a refund");
            reset(&db, "k").await.unwrap();
            assert_eq!(get(&db, "k", 150).await.unwrap(), 0);
            increment(&db, "old", 10, 0).await.unwrap();
            assert_eq!(purge_expired(&db, 150).await.unwrap(), 1);
        });
    }
}
