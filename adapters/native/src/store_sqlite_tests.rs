//! Tests of the rusqlite store on a real SQLite file: value round trips, conflicts,
//! transactions, reader/writer routing and the C1 race (within one store and across two).

use std::sync::Arc;

use super::*;

fn temp_store() -> (tempfile::TempDir, SqliteStore, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqliteStore::open(&url).unwrap();
    (dir, store, url)
}

#[tokio::test]
async fn creates_file_and_roundtrips_values() {
    let (dir, store, _) = temp_store();
    assert!(dir.path().join("t.db").exists());
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
}

#[tokio::test]
async fn writes_with_returning_go_to_the_writer_and_readers_see_them() {
    let (_dir, store, _) = temp_store();
    store
        .execute("CREATE TABLE c (k TEXT PRIMARY KEY, used INTEGER)", &[])
        .await
        .unwrap();
    store
        .execute("INSERT INTO c (k) VALUES (?)", &["a".into()])
        .await
        .unwrap();
    let sql = "UPDATE c SET used = 1 WHERE k = ? AND used IS NULL RETURNING k";
    assert_eq!(store.query(sql, &["a".into()]).await.unwrap().len(), 1);
    assert_eq!(store.query(sql, &["a".into()]).await.unwrap().len(), 0);
    let seen = store
        .query("SELECT used FROM c WHERE k = ?", &["a".into()])
        .await
        .unwrap();
    assert_eq!(seen, vec![Row(vec![Value::Int(1)])]);
    // `execute` of a RETURNING statement reports the rows it changed.
    let n = store
        .execute("UPDATE c SET used = 2 RETURNING k", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn unique_violation_is_conflict_and_batch_is_atomic() {
    let (_dir, store, _) = temp_store();
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

async fn race(stores: Vec<Arc<SqliteStore>>) -> usize {
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
    winners
}

/// C1 at the storage layer: 32 parallel conditional updates of one row, exactly one wins,
/// within one store and across two stores (two processes) on the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c1_concurrent_conditional_update_has_one_winner() {
    let (_dir, store, url) = temp_store();
    store
        .execute(
            "CREATE TABLE codes (h TEXT PRIMARY KEY, used_at INTEGER)",
            &[],
        )
        .await
        .unwrap();
    let other = Arc::new(SqliteStore::open(&url).unwrap());
    let store = Arc::new(store);
    for stores in [vec![store.clone()], vec![store.clone(), other.clone()]] {
        store.execute("DELETE FROM codes", &[]).await.unwrap();
        store
            .execute("INSERT INTO codes (h) VALUES (?)", &["code".into()])
            .await
            .unwrap();
        assert_eq!(race(stores).await, 1);
    }
}

#[tokio::test]
async fn runs_core_migrations_twice() {
    let (_dir, store, _) = temp_store();
    let v = portcullis_core::store::migrations::migrate(&store, 1)
        .await
        .unwrap();
    assert!(v >= 1);
    let again = portcullis_core::store::migrations::migrate(&store, 2)
        .await
        .unwrap();
    assert_eq!(v, again);
}

#[tokio::test]
async fn memory_database_works() {
    let store = SqliteStore::open("sqlite::memory:").unwrap();
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

#[test]
fn non_sqlite_urls_are_refused() {
    assert!(SqliteStore::open("postgres://x/y").is_err());
}
