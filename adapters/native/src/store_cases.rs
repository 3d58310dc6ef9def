//! Test cases shared by the unit tests of both native SQL stores (rusqlite in
//! `store_sqlite`, sqlx in `store_sql`): value round trips, conflicts, atomic batches, the C1
//! race at the storage layer and repeated migrations, each on a store a test hands in.

use std::sync::Arc;

use portcullis_core::store::{Row, SqlStore, StoreError, Value};

/// Text, integers and NULL survive a write and a read, aggregates included.
pub async fn roundtrips_values(store: &dyn SqlStore) {
    store
        .execute(
            "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, s TEXT)",
            &[],
        )
        .await
        .unwrap();
    let n = store
        .execute(
            "INSERT INTO t (id, n, s) VALUES (?, ?, ?), (?, ?, ?)",
            &[
                "a".into(),
                7.into(),
                Value::Null,
                "b".into(),
                Value::Null,
                "x".into(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    let rows = store
        .query("SELECT id, n, s FROM t ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            Row(vec!["a".into(), Value::Int(7), Value::Null]),
            Row(vec!["b".into(), Value::Null, "x".into()]),
        ]
    );
    let agg = store
        .query("SELECT COUNT(*), MAX(n), MAX(s) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(
        agg,
        vec![Row(vec![Value::Int(2), Value::Int(7), "x".into()])]
    );
    let empty = store
        .query("SELECT MAX(n) FROM t WHERE id = ?", &["zzz".into()])
        .await
        .unwrap();
    assert_eq!(empty, vec![Row(vec![Value::Null])]);
}

/// Primary-key and unique violations are conflicts; a broken statement is "unavailable";
/// a batch with a conflict changes nothing, a good batch everything.
pub async fn conflicts_and_atomic_batches(store: &dyn SqlStore) {
    store
        .execute("CREATE TABLE u (k TEXT PRIMARY KEY, v TEXT UNIQUE)", &[])
        .await
        .unwrap();
    store
        .execute(
            "INSERT INTO u (k, v) VALUES (?, ?)",
            &["a".into(), "x".into()],
        )
        .await
        .unwrap();
    for (k, v) in [("a", "y"), ("b", "x")] {
        let err = store
            .execute("INSERT INTO u (k, v) VALUES (?, ?)", &[k.into(), v.into()])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }
    let err = store.query("SELECT * FROM missing", &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store
        .execute("SELECT * FROM missing", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let failing = vec![
        ("INSERT INTO u (k) VALUES (?)".to_owned(), vec!["c".into()]),
        ("INSERT INTO u (k) VALUES (?)".to_owned(), vec!["c".into()]),
    ];
    assert!(matches!(
        store.batch(&failing).await,
        Err(StoreError::Conflict(_))
    ));
    let rows = store.query("SELECT COUNT(*) FROM u", &[]).await.unwrap();
    assert_eq!(rows[0].int(0).unwrap(), 1);
    let ok = vec![
        ("INSERT INTO u (k) VALUES (?)".to_owned(), vec!["c".into()]),
        ("INSERT INTO u (k) VALUES (?)".to_owned(), vec!["d".into()]),
    ];
    store.batch(&ok).await.unwrap();
    let rows = store.query("SELECT COUNT(*) FROM u", &[]).await.unwrap();
    assert_eq!(rows[0].int(0).unwrap(), 3);
}

/// Creates the `codes` table of the race with one unused row.
pub async fn race_setup(store: &dyn SqlStore) {
    store
        .execute(
            "CREATE TABLE IF NOT EXISTS codes (h TEXT PRIMARY KEY, used_at INTEGER)",
            &[],
        )
        .await
        .unwrap();
    store.execute("DELETE FROM codes", &[]).await.unwrap();
    store
        .execute("INSERT INTO codes (h) VALUES (?)", &["code".into()])
        .await
        .unwrap();
}

/// C1 at the storage layer: 32 parallel conditional updates of one row spread over `stores`
/// (one, or several on the same file as several processes would be); asserts that exactly one
/// wins, that none fails with "database is locked", and that the row was used once.
pub async fn one_winner_of_32(stores: Vec<Arc<dyn SqlStore>>) {
    race_setup(stores[0].as_ref()).await;
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            tokio::spawn(async move {
                store
                    .query(
                        "UPDATE codes SET used_at = ? WHERE h = ? AND used_at IS NULL RETURNING h",
                        &[Value::Int(i as i64), "code".into()],
                    )
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += t
            .await
            .unwrap()
            .expect("no storage error under contention")
            .len();
    }
    assert_eq!(winners, 1);
    let rows = stores[0]
        .query("SELECT COUNT(*) FROM codes WHERE used_at IS NOT NULL", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].int(0).unwrap(), 1);
}

/// The core's migrations apply, and applying them again changes nothing.
pub async fn runs_core_migrations_twice(store: &dyn SqlStore) {
    let v = portcullis_core::store::migrations::migrate(store, 1)
        .await
        .unwrap();
    assert!(v >= 1);
    let again = portcullis_core::store::migrations::migrate(store, 2)
        .await
        .unwrap();
    assert_eq!(v, again);
}

/// An in-memory database keeps what was written (one connection, not one per query).
pub async fn memory_database_keeps_data(store: &dyn SqlStore) {
    store
        .execute("CREATE TABLE m (k INTEGER)", &[])
        .await
        .unwrap();
    store
        .execute("INSERT INTO m (k) VALUES (?)", &[Value::Int(1)])
        .await
        .unwrap();
    let rows = store.query("SELECT k FROM m", &[]).await.unwrap();
    assert_eq!(rows, vec![Row(vec![Value::Int(1)])]);
}
