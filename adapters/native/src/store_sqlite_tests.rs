//! Tests of the rusqlite store on a real SQLite file: value round trips, conflicts,
//! transactions, reader/writer routing and the C1 race (within one store and across two).

use std::sync::Arc;

use super::*;
use crate::store_cases as cases;

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
    cases::roundtrips_values(&store).await;
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
    cases::conflicts_and_atomic_batches(&store).await;
}

/// C1 at the storage layer, within one store and across two stores (two processes) on the
/// same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c1_concurrent_conditional_update_has_one_winner() {
    let (_dir, store, url) = temp_store();
    let store: Arc<dyn SqlStore> = Arc::new(store);
    let other: Arc<dyn SqlStore> = Arc::new(SqliteStore::open(&url).unwrap());
    for stores in [vec![store.clone()], vec![store.clone(), other.clone()]] {
        cases::one_winner_of_32(stores).await;
    }
}

#[tokio::test]
async fn runs_core_migrations_twice() {
    let (_dir, store, _) = temp_store();
    cases::runs_core_migrations_twice(&store).await;
}

#[tokio::test]
async fn memory_database_works() {
    let store = SqliteStore::open("sqlite::memory:").unwrap();
    cases::memory_database_keeps_data(&store).await;
}

#[test]
fn non_sqlite_urls_are_refused() {
    assert!(SqliteStore::open("postgres://x/y").is_err());
}
