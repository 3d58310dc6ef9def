//! What only the SQLite store has to show (the contract every backend shares is the storage
//! conformance suite in `tests/`): a real file that outlives the store, reader/writer
//! routing, the C1 race across two stores on one file (two processes), an in-memory database
//! on one connection, URL checks, and the value rule's edges as SQLite produces them.

use std::sync::{Arc, Barrier};

use futures::executor::block_on;

use super::*;

fn temp_store() -> (tempfile::TempDir, SqliteStore, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqliteStore::open(&url).unwrap();
    (dir, store, url)
}

#[test]
fn creates_the_file_and_another_store_reads_what_one_wrote() {
    let (dir, store, url) = temp_store();
    assert!(dir.path().join("t.db").exists());
    block_on(async {
        store
            .execute("CREATE TABLE f (k TEXT PRIMARY KEY)", &[])
            .await
            .unwrap();
        store
            .execute("INSERT INTO f (k) VALUES (?)", &["a".into()])
            .await
            .unwrap();
        drop(store);
        let again = SqliteStore::open(&format!("{url}?mode=rwc")).unwrap();
        let rows = again.query("SELECT k FROM f", &[]).await.unwrap();
        assert_eq!(rows, vec![Row(vec!["a".into()])]);
    });
}

#[test]
fn writes_with_returning_go_to_the_writer_and_readers_see_them() {
    let (_dir, store, _) = temp_store();
    block_on(async {
        store
            .execute("CREATE TABLE c (k TEXT PRIMARY KEY, used INTEGER)", &[])
            .await
            .unwrap();
        store
            .execute("INSERT INTO c (k) VALUES (?)", &["a".into()])
            .await
            .unwrap();
        // A `query` that writes must not land on a read-only reader connection.
        let sql = "UPDATE c SET used = 1 WHERE k = ? AND used IS NULL RETURNING k";
        assert_eq!(store.query(sql, &["a".into()]).await.unwrap().len(), 1);
        assert_eq!(store.query(sql, &["a".into()]).await.unwrap().len(), 0);
        // Every reader connection sees the committed write.
        for _ in 0..READERS + 1 {
            let seen = store
                .query("SELECT used FROM c WHERE k = ?", &["a".into()])
                .await
                .unwrap();
            assert_eq!(seen, vec![Row(vec![Value::Int(1)])]);
        }
    });
}

/// C1 at the storage layer across two stores on one file, as two native processes would
/// share it: 32 threads race one conditional update; exactly one wins and none fails with
/// "database is locked".
#[test]
fn c1_conditional_update_has_one_winner_across_two_stores() {
    let (_dir, store, url) = temp_store();
    let other = SqliteStore::open(&url).unwrap();
    block_on(async {
        store
            .execute(
                "CREATE TABLE codes (h TEXT PRIMARY KEY, used_at INTEGER)",
                &[],
            )
            .await
            .unwrap();
        store
            .execute("INSERT INTO codes (h) VALUES (?)", &["code".into()])
            .await
            .unwrap();
    });
    let stores = [&store, &other];
    let barrier = Arc::new(Barrier::new(32));
    let won: usize = std::thread::scope(|s| {
        let racers: Vec<_> = (0..32)
            .map(|i| {
                let db = stores[i % 2];
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    block_on(db.query(
                        "UPDATE codes SET used_at = ? WHERE h = ? AND used_at IS NULL RETURNING h",
                        &[Value::Int(i as i64), "code".into()],
                    ))
                    .expect("no storage error under contention")
                    .len()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).sum()
    });
    assert_eq!(won, 1);
    let used = block_on(other.query("SELECT COUNT(*) FROM codes WHERE used_at IS NOT NULL", &[]));
    assert_eq!(used.unwrap(), vec![Row(vec![Value::Int(1)])]);
}

#[test]
fn memory_database_keeps_data_on_its_one_connection() {
    for store in [
        SqliteStore::open("sqlite::memory:").unwrap(),
        SqliteStore::open_memory().unwrap(),
    ] {
        block_on(async {
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
        });
    }
}

#[test]
fn non_sqlite_urls_are_refused() {
    for url in ["postgres://x/y", "file:t.db", ""] {
        let err = SqliteStore::open(url).unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{url}: {err:?}");
    }
}

/// The edges of the shared value rule ([`Value::from_real`], [`Value::from_blob`]) as SQLite
/// produces them; ordinary REAL and BLOB columns are a conformance case on every backend.
#[test]
fn reals_and_blobs_at_the_edges() {
    let store = SqliteStore::open_memory().unwrap();
    let one = |sql: &'static str| block_on(store.query(sql, &[])).map(|rows| rows[0].0[0].clone());
    assert_eq!(one("SELECT 0.1").unwrap(), Value::Text("0.1".into()));
    assert_eq!(one("SELECT -2.0").unwrap(), Value::Int(-2));
    assert_eq!(
        one("SELECT CAST(9007199254740991 AS REAL)").unwrap(),
        Value::Int(9_007_199_254_740_991)
    );
    for sql in [
        "SELECT CAST(9007199254740993 AS REAL)",
        "SELECT 1e999",
        "SELECT -1e999",
        "SELECT X'7B7D'",
        "SELECT zeroblob(0)",
        "SELECT CAST(X'FF' AS TEXT)",
    ] {
        let err = one(sql).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{sql}: {err:?}");
    }
    // A blob in a column that is not selected does not matter.
    let rows = block_on(store.query("SELECT length(X'00FF'), typeof(X'00')", &[])).unwrap();
    assert_eq!(rows, vec![Row(vec![Value::Int(2), "blob".into()])]);
}
