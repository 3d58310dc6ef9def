//! Signing keys (RFC 7517 JWK, RFC 9068 §2.1): public JWK in clear, private scalar sealed
//! with the key-encryption key. A key is published from the moment it is stored, signs from
//! `activates_at` (pre-publication), stops signing at `retired_at` and keeps being published
//! until `remove_after`.

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
    /// Creation time (publication in the JWKS starts here).
    pub created_at: i64,
    /// When it stops (or stopped) signing; may lie in the future while a successor is
    /// pre-published.
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS (after every token it signed has expired).
    pub remove_after: Option<i64>,
}

/// A stored key with its activation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledKey {
    /// The key.
    pub key: KeyRow,
    /// When it starts signing (`0` or `created_at` for keys that signed at once).
    pub activates_at: i64,
}

const COLS: &str =
    "kid, alg, public_jwk, private_enc, created_at, retired_at, remove_after, activates_at";

fn from_row(r: &crate::store::Row) -> Result<ScheduledKey, StoreError> {
    Ok(ScheduledKey {
        key: KeyRow {
            kid: r.text(0)?,
            alg: r.text(1)?,
            public_jwk: r.text(2)?,
            private_enc: r.text(3)?,
            created_at: r.int(4)?,
            retired_at: r.opt_int(5)?,
            remove_after: r.opt_int(6)?,
        },
        activates_at: r.int(7)?,
    })
}

/// Stores a new key that signs from its creation.
pub async fn insert(db: &dyn SqlStore, k: &KeyRow) -> Result<(), StoreError> {
    insert_scheduled(db, k, k.created_at).await
}

/// Stores a new key that is published at once and signs from `activates_at`.
pub async fn insert_scheduled(
    db: &dyn SqlStore,
    k: &KeyRow,
    activates_at: i64,
) -> Result<(), StoreError> {
    db.execute(
        &format!("INSERT INTO signing_keys ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            k.kid.as_str().into(),
            k.alg.as_str().into(),
            k.public_jwk.as_str().into(),
            k.private_enc.as_str().into(),
            k.created_at.into(),
            k.retired_at.into(),
            k.remove_after.into(),
            activates_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Keys still published at `now` (pending, active and retired-but-not-removed), newest
/// first.
pub async fn published(db: &dyn SqlStore, now: i64) -> Result<Vec<KeyRow>, StoreError> {
    Ok(published_scheduled(db, now)
        .await?
        .into_iter()
        .map(|k| k.key)
        .collect())
}

/// [`published`] with each key's activation time.
pub async fn published_scheduled(
    db: &dyn SqlStore,
    now: i64,
) -> Result<Vec<ScheduledKey>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM signing_keys WHERE remove_after IS NULL OR remove_after > ? ORDER BY created_at DESC, kid"),
            &[now.into()],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// Retires every key except `keep_kid` at `retired_at` (which may be in the future: the
/// moment `keep_kid` activates), publishing them until `remove_after`. Keys already
/// retiring at or before `retired_at` are left alone, so an earlier retirement is never
/// postponed. One statement, so concurrent rotations cannot leave two keys unretired.
pub async fn retire_others(
    db: &dyn SqlStore,
    keep_kid: &str,
    retired_at: i64,
    remove_after: i64,
) -> Result<u64, StoreError> {
    db.execute(
        "UPDATE signing_keys SET retired_at = ?, remove_after = ? \
         WHERE kid <> ? AND (retired_at IS NULL OR retired_at > ?)",
        &[
            retired_at.into(),
            remove_after.into(),
            keep_kid.into(),
            retired_at.into(),
        ],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store::TestSql;

    fn key(kid: &str, created_at: i64) -> KeyRow {
        KeyRow {
            kid: kid.into(),
            alg: "ES256".into(),
            public_jwk: "{}".into(),
            private_enc: "sealed".into(),
            created_at,
            retired_at: None,
            remove_after: None,
        }
    }

    #[test]
    fn scheduled_keys_and_future_retirement() {
        futures::executor::block_on(async {
            let db = TestSql::memory();
            crate::store::migrations::migrate(&db, 0).await.unwrap();
            insert(&db, &key("a", 100)).await.unwrap();
            insert_scheduled(&db, &key("b", 200), 500).await.unwrap();
            let all = published_scheduled(&db, 200).await.unwrap();
            assert_eq!(
                all.iter()
                    .map(|k| (k.key.kid.as_str(), k.activates_at))
                    .collect::<Vec<_>>(),
                vec![("b", 500), ("a", 100)]
            );
            // "a" retires when "b" activates.
            assert_eq!(retire_others(&db, "b", 500, 2000).await.unwrap(), 1);
            // A later rotation that activates at once moves the retirement earlier and
            // retires the never-activated "b" too.
            insert(&db, &key("c", 300)).await.unwrap();
            assert_eq!(retire_others(&db, "c", 300, 1800).await.unwrap(), 2);
            // A rotation activating later never postpones those retirements.
            insert_scheduled(&db, &key("d", 310), 900).await.unwrap();
            assert_eq!(retire_others(&db, "d", 900, 2400).await.unwrap(), 1);
            let all = published_scheduled(&db, 310).await.unwrap();
            let get = |kid: &str| {
                let k = &all.iter().find(|k| k.key.kid == kid).unwrap().key;
                (k.retired_at, k.remove_after)
            };
            assert_eq!(get("a"), (Some(300), Some(1800)));
            assert_eq!(get("b"), (Some(300), Some(1800)));
            assert_eq!(get("c"), (Some(900), Some(2400)));
            assert_eq!(get("d"), (None, None));
            assert_eq!(published(&db, 1800).await.unwrap().len(), 2);
        });
    }
}
